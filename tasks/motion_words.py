"""Naming a person's motion between two frames from their body landmarks and where their body went.

Pose landmarks are MediaPipe's (BlazePose): 0 nose, 7/8 left/right ear, 11/12 shoulders, 15/16 wrists,
23/24 hips, "left" being the person's own. Directions in the instructions are the picture's ("to the left"
is towards the image's left edge), except for limbs, which are the person's own ("the left arm").
"""

from __future__ import annotations

import numpy as np

from tasks.tools import Pose

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_WRIST, RIGHT_WRIST = 11, 12, 15, 16
LEFT_HIP, RIGHT_HIP, NOSE, LEFT_EAR, RIGHT_EAR = 23, 24, 0, 7, 8

# kind -> the motion in words, without its subject ("Make the person {en}." / "让人物{zh}。").
PHRASES: dict[str, dict[str, str]] = {
    "raise_left_arm": {"en": "raise their left arm", "zh": "举起左手"},
    "raise_right_arm": {"en": "raise their right arm", "zh": "举起右手"},
    "lower_left_arm": {"en": "lower their left arm", "zh": "放下左手"},
    "lower_right_arm": {"en": "lower their right arm", "zh": "放下右手"},
    "turn_head_left": {"en": "turn their head to the left", "zh": "把头转向左边"},
    "turn_head_right": {"en": "turn their head to the right", "zh": "把头转向右边"},
    "walk_towards_camera": {"en": "walk towards the camera", "zh": "朝镜头走过来"},
    "walk_away": {"en": "walk away from the camera", "zh": "走远，离开镜头"},
    "walk_left": {"en": "walk to the left", "zh": "向左走"},
    "walk_right": {"en": "walk to the right", "zh": "向右走"},
    "close_eyes": {"en": "close their eyes", "zh": "闭上眼睛"},
    "open_eyes": {"en": "open their eyes", "zh": "睁开眼睛"},
    "open_mouth": {"en": "open their mouth", "zh": "张开嘴"},
    "close_mouth": {"en": "close their mouth", "zh": "闭上嘴"},
    "tilt_head_left": {"en": "tilt their head to the left", "zh": "把头向左歪"},
    "tilt_head_right": {"en": "tilt their head to the right", "zh": "把头向右歪"},
    "move_left": {"en": "move to the left", "zh": "向左移动"},
    "move_right": {"en": "move to the right", "zh": "向右移动"},
    "move_up": {"en": "move upwards", "zh": "向上移动"},
    "move_down": {"en": "move downwards", "zh": "向下移动"},
}

_ARMS = {"left": (LEFT_SHOULDER, LEFT_WRIST), "right": (RIGHT_SHOULDER, RIGHT_WRIST)}


def _visible(pose: Pose, *indices: int, at_least: float = 0.6) -> bool:
    return bool(all(pose.visibility[i] >= at_least for i in indices))


def _torso(pose: Pose) -> float | None:
    if not _visible(pose, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP):
        return None
    shoulders = (pose.landmarks[LEFT_SHOULDER] + pose.landmarks[RIGHT_SHOULDER]) / 2
    hips = (pose.landmarks[LEFT_HIP] + pose.landmarks[RIGHT_HIP]) / 2
    length = float(np.linalg.norm(shoulders - hips))
    return length if length > 1 else None


def shoulder_breadth(pose: Pose) -> float | None:
    """The shoulders' width in the picture over the torso's length: about 0.8 facing the camera (or away),
    near 0 seen from the side."""
    torso = _torso(pose)
    if torso is None:
        return None
    return abs(float(pose.landmarks[LEFT_SHOULDER, 0] - pose.landmarks[RIGHT_SHOULDER, 0])) / torso


def body_turn(first: Pose, second: Pose) -> float | None:
    """How much the body turned about its vertical axis: the change of its shoulder breadth."""
    breadths = shoulder_breadth(first), shoulder_breadth(second)
    if breadths[0] is None or breadths[1] is None:
        return None
    return breadths[1] - breadths[0]


def arm_motions(first: Pose, second: Pose, min_change: float = 0.5) -> list[str]:
    """A wrist that went from below its shoulder to about its height or above (raised), or back (lowered),
    by at least ``min_change`` torso lengths."""
    torso = _torso(first)
    if torso is None:
        return []
    motions = []
    for side, (shoulder, wrist) in _ARMS.items():
        if not (_visible(first, shoulder, wrist) and _visible(second, shoulder, wrist)):
            continue
        height = [(p.landmarks[shoulder, 1] - p.landmarks[wrist, 1]) / torso for p in (first, second)]
        if height[1] - height[0] >= min_change and height[1] > -0.15:
            motions.append(f"raise_{side}_arm")
        elif height[0] - height[1] >= min_change and height[0] > -0.15:
            motions.append(f"lower_{side}_arm")
    return motions


def head_turn(first: Pose, second: Pose, min_change: float = 0.45) -> list[str]:
    """The nose moving across the line between the ears: the head turned towards one side of the picture."""
    yaws = []
    for pose in (first, second):
        if not _visible(pose, NOSE, LEFT_EAR, RIGHT_EAR, at_least=0.5):
            return []
        ears = pose.landmarks[[LEFT_EAR, RIGHT_EAR]]
        span = abs(float(ears[0, 0] - ears[1, 0]))
        if span < 2:
            return []
        yaws.append(float(pose.landmarks[NOSE, 0] - ears[:, 0].mean()) / span)
    change = yaws[1] - yaws[0]
    if abs(change) < min_change:
        return []
    if change < 0:
        return ["turn_head_left"]
    return ["turn_head_right"]


def face_motions(first: np.ndarray, second: np.ndarray) -> list[str]:
    """Eyes closed or opened, mouth opened or closed, head tilted, from two face meshes (468 points)."""
    from tasks import face_regions as fr

    motions = []
    eyes = fr.eye_openness(first), fr.eye_openness(second)
    if eyes[0] > 0.2 and eyes[1] < 0.1:
        motions.append("close_eyes")
    elif eyes[0] < 0.1 and eyes[1] > 0.2:
        motions.append("open_eyes")
    mouth = fr.mouth_openness(first), fr.mouth_openness(second)
    if mouth[0] < 0.1 and mouth[1] > 0.15 and mouth[1] - mouth[0] > 0.06:
        motions.append("open_mouth")
    elif mouth[1] < 0.1 and mouth[0] > 0.15 and mouth[0] - mouth[1] > 0.06:
        motions.append("close_mouth")
    roll = [float(np.degrees(np.arctan2(*(m[263] - m[33])[::-1]))) for m in (first, second)]
    if abs(roll[1] - roll[0]) > 12:
        # The eye line turning clockwise in the picture tips the head towards the picture's right.
        motions.append("tilt_head_right" if roll[1] > roll[0] else "tilt_head_left")
    return motions


def body_motion(
    first_box: tuple[int, int, int, int], second_box: tuple[int, int, int, int], min_shift: float = 0.15
) -> list[str]:
    """Where the whole body went: sideways by ``min_shift`` of its height, or nearer or farther (its height
    grew or shrank by an eighth)."""
    h0 = first_box[3] - first_box[1]
    h1 = second_box[3] - second_box[1]
    dx = ((second_box[0] + second_box[2]) - (first_box[0] + first_box[2])) / 2
    motions: list[str] = []
    if h1 / max(h0, 1) > 1.12:
        motions.append("walk_towards_camera")
    elif h1 / max(h0, 1) < 1 / 1.12:
        motions.append("walk_away")
    if abs(dx) >= min_shift * max(h0, 1):
        if dx < 0:
            motions.append("walk_left")
        else:
            motions.append("walk_right")
    return motions


def flow_motion(median_flow: np.ndarray, min_px: float) -> list[str]:
    """The subject's main direction of motion in the picture, when no body landmark says more."""
    dx, dy = float(median_flow[0]), float(median_flow[1])
    if max(abs(dx), abs(dy)) < min_px:
        return []
    if abs(dx) >= abs(dy):
        if dx < 0:
            return ["move_left"]
        return ["move_right"]
    if dy < 0:
        return ["move_up"]
    return ["move_down"]


# The reverse of each motion, for the inverse pair (second frame -> first).
REVERSE = {
    "raise_left_arm": "lower_left_arm",
    "lower_left_arm": "raise_left_arm",
    "raise_right_arm": "lower_right_arm",
    "lower_right_arm": "raise_right_arm",
    "turn_head_left": "turn_head_right",
    "turn_head_right": "turn_head_left",
    "walk_towards_camera": "walk_away",
    "walk_away": "walk_towards_camera",
    "walk_left": "walk_right",
    "walk_right": "walk_left",
    "close_eyes": "open_eyes",
    "open_eyes": "close_eyes",
    "open_mouth": "close_mouth",
    "close_mouth": "open_mouth",
    "tilt_head_left": "tilt_head_right",
    "tilt_head_right": "tilt_head_left",
    "move_left": "move_right",
    "move_right": "move_left",
    "move_up": "move_down",
    "move_down": "move_up",
}
