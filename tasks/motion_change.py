"""motion_change (GEdit-Bench `motion_change`): a person's motion between two frames of one video shot.

The engine hands two frames of one shot (FRAME_PAIRS). Optical flow between them (the `flow` tool) gives
the camera's motion as the homography most of the picture follows: a camera that moved too much is a skip;
a small motion is compensated by warping the second frame onto the first and cropping both to what they
share. What still moves is grouped into regions; each region must be a person (the `persons` tool, run on a
crop around it in both frames), else it is skipped as `unnamed_subject`.

The target is the first frame with only that person's region (where they were and where they are, grown a
little) taken from the second frame. Other people who move elsewhere in the shot therefore do not move in
the pair: only the named person's motion is the edit, and the mask says where it is. A region that touches
another mover, a seam that still moves, or light that changed between the frames is a skip.

Gates keep only pairs a person accepts (`motion_gates`, measured on the frames, never on the instruction):
the same person in both frames, present in both, one person, not turning round; an arm or head motion only
for a body that stayed in place, a walk only when clear. `Params(gates=False)` relaxes them (negatives).

The instruction comes from the person's body landmarks (the `pose` tool): an arm raised or lowered, the
head turned; else from where the body went (walking left, right, towards or away from the camera); else
from the direction of the flow. Each pair also gives its inverse (the reverse motion).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from tasks import face_regions as fr
from tasks import motion_gates as gates
from tasks import motion_words as words
from tasks.contract import FramePairs
from tasks.masks import bbox_of, dilate
from tasks.records import Candidate, Skip, SourceSample, TaskResult, skip_for
from tasks.tools import Tools
from tasks.vocabulary import position_phrase

NAME = "motion_change"
GEDIT_KEY = "motion_change"
ANNOTATORS: tuple[str, ...] = ()
TOOLS = ("flow", "persons", "pose", "faces")
INPUTS = "frame_pair"
LOCAL = True
# Half a second to two seconds apart: long enough for a visible motion, short enough for one shot.
FRAME_PAIRS = FramePairs(stride_s=0.5, gaps_s=(1.0, 2.0), max_pairs=12)


@dataclass(frozen=True)
class Params:
    max_camera_motion: float = 0.03  # of the diagonal: a camera that moved more is not compensated
    compensate_above_px: float = 0.5  # camera motion below this is none
    moving_px: float = 1.5  # a pixel moved when its compensated flow is longer (and 0.3 % of the diagonal)
    min_difference: int = 15  # levels by which the frames must differ where something moved
    min_region: float = 0.002  # of the frame: smaller moving regions are noise or too small to name
    max_region: float = 0.4
    min_person_cover: float = 0.5  # of a moving region that a person mask must cover to call it a person
    min_person_frame: float = 0.03  # a person this large is found on the whole frame; smaller ones on crops
    max_subjects: int = 2  # pairs per frame pair
    max_seam_change: float = 0.05  # share of the ring around the edited region where the frames differ
    max_light_change: float = 6.0  # mean level difference on that ring (exposure or light changed)
    inverse_pairs: bool = True
    # The gates below (motion_gates) keep what a person accepts; off, the pairs are the judge's negatives.
    gates: bool = True
    min_size_ratio: float = 0.7  # smaller over larger person mask: less is a person who left (person_left)
    min_track_overlap: float = 0.3  # IoU of the tracked first mask with the second (identity_changed)
    max_colour_distance: float = 0.5  # Bhattacharyya distance of the two masks' colours (identity_changed)
    max_breadth: float = 0.6  # a person mask wider than this (of its height) holds several people
    max_pose_shift: float = 0.12  # person heights: a body that went farther did not just move an arm or head
    max_pose_scale: float = 1.1  # nor one that grew or shrank by more (walked towards or away)
    max_body_turn: float = 0.3  # change of shoulder breadth over torso length: more is a body turning round
    min_walk: float = 0.25  # person heights: a shorter sideways walk is not clearly one
    min_walk_scale: float = 1.15  # a walk towards/away makes the body this much larger/smaller


_TEMPLATES = (
    ("Make the person{pos} {motion}.", "让{pos}人物{motion}。"),
    ("Have the person{pos} {motion}.", "让{pos}这个人{motion}。"),
)


def camera_motion(flow: np.ndarray, step: int = 8) -> tuple[np.ndarray, float]:
    """The homography most of the picture's flow follows (RANSAC), and its median displacement in pixels."""
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[step // 2 : height : step, step // 2 : width : step]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    moved = points + flow[ys.ravel(), xs.ravel()]
    homography, _ = cv2.findHomography(points, moved, cv2.RANSAC, 1.0)
    if homography is None:
        homography = np.eye(3)
    projected = cv2.perspectiveTransform(points[None], homography)[0]
    return homography, float(np.median(np.linalg.norm(projected - points, axis=1)))


def camera_flow(homography: np.ndarray, height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    points = np.stack([xs, ys], axis=-1).reshape(1, -1, 2)
    projected = cv2.perspectiveTransform(points, homography).reshape(height, width, 2)
    return projected - np.stack([xs, ys], axis=-1)


def _crop_box(
    box: tuple[int, int, int, int], height: int, width: int, grow: float
) -> tuple[int, int, int, int]:
    """A square around ``box``, ``grow`` times its longer side, inside the frame."""
    x0, y0, x1, y1 = box
    side = grow * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (
        max(0, round(cx - side / 2)),
        max(0, round(cy - side / 2)),
        min(width, round(cx + side / 2)),
        min(height, round(cy + side / 2)),
    )


def _person_in(segment, image: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:  # noqa: ANN001
    x0, y0, x1, y1 = crop
    mask = np.zeros(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = segment(np.ascontiguousarray(image[y0:y1, x0:x1])) > 0.5
    return mask


def _largest(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    if not source.partners:
        return Skip("no_second_frame", "a frame pair needs its second frame")
    first, second = source.image, source.partners[0].image
    if first.shape != second.shape:
        return Skip("frame_size_changed", f"{first.shape} and {second.shape}")
    height, width = first.shape[:2]
    diagonal = float(np.hypot(height, width))
    flow = tools["flow"](first, second)
    homography, camera_px = camera_motion(flow)
    if camera_px > params.max_camera_motion * diagonal:
        return Skip("camera_moved", f"camera motion {camera_px:.1f} px")
    compensated = camera_px > params.compensate_above_px
    if compensated:
        # The second frame seen from the first frame's camera; both cropped to what the two share.
        second = cv2.warpPerspective(
            second,
            np.linalg.inv(homography),
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        margin = int(np.ceil(np.abs(camera_flow(homography, height, width)).max())) + 2
        if 4 * margin >= min(height, width):
            return Skip("camera_moved", f"{margin} px of the frame lost to the camera's motion")
        residual = flow - camera_flow(homography, height, width)
        crop = (slice(margin, height - margin), slice(margin, width - margin))
        first, second, residual = first[crop], second[crop], residual[crop]
        height, width = first.shape[:2]
    else:
        residual = flow
    speed = np.linalg.norm(residual, axis=2)
    # Flow on flat, dark or blurred areas wanders; a pixel moved only when its flow is long AND the two
    # (aligned) frames differ there.
    blurred = [cv2.GaussianBlur(f, (0, 0), 1.5).astype(np.int16) for f in (first, second)]
    differs = np.abs(blurred[0] - blurred[1]).max(axis=2) > params.min_difference
    moving = (speed > max(params.moving_px, 0.003 * diagonal)) & differs
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)) > 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(moving.astype(np.uint8), connectivity=8)
    area = height * width
    regions = [
        i
        for i in range(1, count)
        if params.min_region * area <= stats[i, cv2.CC_STAT_AREA] <= params.max_region * area
    ]
    if not regions:
        return Skip(
            "nothing_moved",
            f"no moving region of {params.min_region:.1%}-{params.max_region:.0%} of the frame",
        )
    regions.sort(key=lambda i: -float(speed[labels == i].sum()))
    # Specks below min_region are noise; the rest is what other movers are checked against.
    moving = np.isin(labels, regions)

    rng = np.random.default_rng(seed)
    problems: Counter[str] = Counter()
    candidates: list[Candidate] = []
    taken = np.zeros((height, width), bool)
    wanted = params.max_subjects * (2 if params.inverse_pairs else 1)
    # People who fill a good part of the frame are segmented on the whole frame; what moves inside one of
    # them is that person's motion, however many pieces (a head, a hand) it moves in.
    segment = tools["persons"]
    person_first, person_second = segment(first) > 0.5, segment(second) > 0.5
    count_p, people, stats_p, _ = cv2.connectedComponentsWithStats(
        (person_first | person_second).astype(np.uint8), connectivity=8
    )
    large = [p for p in range(1, count_p) if stats_p[p, cv2.CC_STAT_AREA] >= params.min_person_frame * area]
    crowded = len(large) > 1 or (not large and len(regions) > 1)  # then the instruction says which person
    owner = {}
    for region in regions:
        overlaps = np.bincount(people[labels == region], minlength=count_p)
        best = max(large, key=lambda p: overlaps[p], default=None)
        if best is not None and overlaps[best] > 0:
            owner[region] = best
    covered = np.zeros((height, width), bool)
    for person in large:
        if len(candidates) >= wanted:
            break
        body = people == person
        # A moving region is the person's whom it overlaps most (hair and hands reach past the mask).
        mover = np.isin(labels, [r for r in regions if owner.get(r) == person])
        if mover.sum() < params.min_region * area:
            continue
        covered |= body | mover
        made = _pair_for_person(
            first,
            second,
            _largest(body & person_first),
            _largest(body & person_second),
            mover,
            moving,
            differs,
            residual,
            taken,
            crowded,
            params,
            tools,
            rng,
        )
        if isinstance(made, str):
            problems[made] += 1
        else:
            candidates.extend(made)
    # Smaller people: each moving region, with the person looked for on a crop around it.
    for region in regions:
        if len(candidates) >= wanted:
            break
        mover = labels == region
        if (mover & covered).any():
            continue
        found = _person_in_region(first, second, mover, stats[region], params, segment)
        if isinstance(found, str):
            problems[found] += 1
            continue
        made = _pair_for_person(
            first, second, *found, mover, moving, differs, residual, taken, crowded, params, tools, rng
        )
        if isinstance(made, str):
            problems[made] += 1
        else:
            candidates.extend(made)
    if candidates:
        for candidate in candidates:
            candidate.params.update(camera_motion_px=round(camera_px, 2), camera_compensated=compensated)
        return candidates
    return skip_for(problems)


def _person_in_region(
    first: np.ndarray,
    second: np.ndarray,
    mover: np.ndarray,
    stats: np.ndarray,
    params: Params,
    segment,  # noqa: ANN001
) -> tuple[np.ndarray, np.ndarray] | str:
    """The person who makes a small moving region, in each frame (segmented on a crop around it)."""
    height, width = first.shape[:2]
    x, y, w, h = (int(v) for v in stats[:4])
    crop = _crop_box((x, y, x + w, y + h), height, width, grow=1.6)
    in_first = _largest(_person_in(segment, first, crop))
    in_second = _largest(_person_in(segment, second, crop))
    cover = float((mover & (in_first | in_second)).sum()) / max(float(mover.sum()), 1.0)
    if cover < params.min_person_cover or not in_first.any() or not in_second.any():
        return "unnamed_subject"
    return in_first, in_second


def _pair_for_person(
    first: np.ndarray,
    second: np.ndarray,
    in_first: np.ndarray,
    in_second: np.ndarray,
    mover: np.ndarray,
    moving: np.ndarray,
    differs: np.ndarray,
    residual: np.ndarray,
    taken: np.ndarray,
    crowded: bool,
    params: Params,
    tools: Tools,
    rng: np.random.Generator,
) -> list[Candidate] | str:
    """The pair (and its inverse) for one person who moved, or the reason it gives none."""
    height, width = first.shape[:2]
    if not in_first.any() or not in_second.any():
        return "person_lost"
    moved = gates.track(first, second, in_first, in_second, residual)
    if params.gates:
        # Half gone (or, for a whole body, cut by the picture's side) is a person who left, not one who moved;
        # a close-up, cut by the bottom edge, may fill the picture's width.
        close_up = bool(in_first[-3:].any() or in_second[-3:].any())
        sides = not close_up and (in_first[:, [0, -1]].any() or in_second[:, [0, -1]].any())
        if moved.size_ratio < params.min_size_ratio or sides:
            return "person_left"
        if moved.breadth > params.max_breadth and not close_up:  # head and shoulders are wide
            return "several_people"
        if moved.overlap < params.min_track_overlap or moved.colour > params.max_colour_distance:
            return "identity_changed"
    box = bbox_of(in_first | in_second)
    assert box is not None
    w, h = box[2] - box[0], box[3] - box[1]
    grow = max(3, round(0.04 * max(w, h)))
    edited = dilate(in_first | in_second | mover, grow)
    if (edited & taken).any():
        return "overlapping_movers"
    others = moving & ~mover
    if (dilate(edited, grow) & others).any():
        return "overlapping_movers"
    ring = dilate(edited, 2 * grow) & ~edited
    # Around the region the two frames must agree, or the pasted region shows a seam.
    if ring.any() and float(differs[ring].mean()) > params.max_seam_change:
        return "seam_moves"
    if ring.any():
        light = float(np.abs(first[ring].astype(np.int16) - second[ring].astype(np.int16)).mean())
        if light > params.max_light_change:
            return "light_changed"

    box_first, box_second = bbox_of(in_first), bbox_of(in_second)
    assert box_first is not None and box_second is not None
    pose_tool = tools["pose"]
    pose_first, pose_second = pose_tool(first, box_first), pose_tool(second, box_second)
    kinds = _face_motions(tools["faces"], first, second, in_first, in_second, mover)
    if kinds == ["more_than_named"]:
        return "more_than_named"
    if pose_first is not None and pose_second is not None:
        kinds += words.arm_motions(pose_first, pose_second)
        if not any(k.startswith("tilt_head") for k in kinds):
            kinds += words.head_turn(pose_first, pose_second)
    source_of_words = "landmarks"
    turn = words.body_turn(pose_first, pose_second) if pose_first and pose_second else None
    if params.gates and turn is not None and abs(turn) > params.max_body_turn:
        return "body_turned"  # turned to face another way: neither "turn the head" nor "walk" says that
    in_place = moved.shift <= params.max_pose_shift and (
        1 / params.max_pose_scale <= moved.scale <= params.max_pose_scale
    )
    if kinds and params.gates and not in_place:
        # An arm or head motion named while the whole body went somewhere tells too little: the walk is named
        # instead, unless an arm moved too (then naming the walk alone would tell too little).
        if any(k.endswith("_arm") for k in kinds):
            return "more_than_named"
        kinds = []
    # A body cut by the frame's bottom edge (a close-up) does not walk anywhere the picture can show: its
    # motion is named from landmarks or not at all.
    whole_body = max(box_first[3], box_second[3]) < height - 2
    if not kinds and whole_body:
        if params.gates:
            kinds = gates.walk(moved, params.min_walk, params.min_walk_scale)
        else:
            kinds = words.body_motion(box_first, box_second)
        source_of_words = "body_box"
        if not kinds and params.gates:
            return "motion_too_large" if not in_place else "motion_unnamed"
    # The flow speaks for the person only where the motion is on the person (not something passing over).
    own = float((mover & in_first).sum()) / max(float(mover.sum()), 1.0) >= 0.6
    if not kinds and whole_body and own and not params.gates:
        median = np.median(residual[in_first & mover], axis=0) if (in_first & mover).any() else np.zeros(2)
        # The flow names a motion only when the body as a whole went somewhere (a tenth of its height).
        kinds, source_of_words = words.flow_motion(median, min_px=max(params.moving_px * 2, 0.1 * h)), "flow"
    if not kinds:
        return "motion_unnamed"
    kinds = kinds[:2]  # two motions at most in one sentence ("raise the left arm and turn the head")

    # The region is the second frame exactly; its rim is feathered outwards into the first frame.
    alpha = np.maximum(edited, cv2.GaussianBlur(edited.astype(np.float32), (0, 0), max(1.0, grow / 3)))
    alpha[~dilate(edited, grow)] = 0.0
    alpha = alpha[..., None]
    target = np.clip(np.round(first * (1 - alpha) + second * alpha), 0, 255).astype(np.uint8)
    mask = alpha[..., 0] > 1e-3
    taken |= mask
    position = position_phrase(box_first, width, height) if crowded else None
    box = bbox_of(mask)
    record = {
        "motion": kinds,
        "words_from": source_of_words,
        "person_box": list(box_first),
        "tracked": moved.as_record(),
        "body_turn": None if turn is None else round(turn, 3),
    }
    variant = f"{'+'.join(kinds)}:{box_first[0]},{box_first[1]}"
    pairs = [
        Candidate(
            variant,
            first,
            target,
            _instruction(kinds, position, rng),
            mask=mask,
            bbox=box,
            params={**record, "inverse": False},
        )
    ]
    if params.inverse_pairs:
        back = [words.REVERSE[k] for k in kinds]
        back_position = position_phrase(box_second, width, height) if crowded else None
        pairs.append(
            Candidate(
                f"{variant}:inverse",
                target,
                first,
                _instruction(back, back_position, rng),
                mask=mask,
                bbox=box,
                params={**record, "motion": back, "inverse": True},
            )
        )
    return pairs


def _face_motions(
    finder,
    first: np.ndarray,
    second: np.ndarray,
    in_first: np.ndarray,
    in_second: np.ndarray,
    mover: np.ndarray,  # noqa: ANN001
) -> list[str]:
    """What the person's face did, when the face mesh finds it on both frames (close-ups); ["more_than_named"]
    when the face motions found do not tell all that changed."""
    meshes = []
    for image, body in ((first, in_first), (second, in_second)):
        inside = [
            f for f in finder(image) if body[(f.box[1] + f.box[3] - 1) // 2, (f.box[0] + f.box[2] - 1) // 2]
        ]
        if len(inside) != 1:
            return []
        meshes.append(inside[0].landmarks)
    kinds = words.face_motions(meshes[0], meshes[1])
    if kinds and _more_than_the_face(meshes[0], meshes[1], kinds, mover):
        return ["more_than_named"]
    return kinds


def _more_than_the_face(first: np.ndarray, second: np.ndarray, kinds: list[str], mover: np.ndarray) -> bool:
    """Whether more changed than the face motions say: the head moved or turned (beyond a named tilt), or
    much of the person's motion lies away from the face (hands, body)."""
    transform, _ = cv2.estimateAffinePartial2D(first, second)
    if transform is None:
        return True
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    roll = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    width = float(np.linalg.norm(first[454] - first[234]))
    shift = float(np.linalg.norm(second.mean(axis=0) - first.mean(axis=0)))
    tilt_named = any(k.startswith("tilt_head") for k in kinds)
    if abs(scale - 1) > 0.08 or shift > 0.1 * width or (abs(roll) > 6 and not tilt_named):
        return True
    # With the head's own motion taken out, the brows (and the eyes, unless named) must stay where they were.
    residual = np.linalg.norm(second - (first @ transform[:, :2].T + transform[:, 2]), axis=1)
    still = list(fr.RIGHT_BROW + fr.LEFT_BROW)
    if not any(k.endswith("_eyes") for k in kinds):
        still += list(fr.RIGHT_EYE + fr.LEFT_EYE)
    if float(residual[still].mean()) > 0.02 * width:
        return True
    x0, y0 = np.floor(np.minimum(first.min(axis=0), second.min(axis=0)) - 0.25 * width).astype(int)
    x1, y1 = np.ceil(np.maximum(first.max(axis=0), second.max(axis=0)) + 0.25 * width).astype(int)
    near_face = np.zeros(mover.shape, bool)
    near_face[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return float((mover & ~near_face).sum()) > 0.2 * float(mover.sum())


def _instruction(
    kinds: list[str], position: dict[str, str] | None, rng: np.random.Generator
) -> dict[str, str]:
    en_motion = " and ".join(words.PHRASES[k]["en"] for k in kinds)
    zh_motion = "，并且".join(words.PHRASES[k]["zh"] for k in kinds)
    en, zh = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    return {
        "en": en.format(pos=f" {position['en']}" if position else "", motion=en_motion),
        "zh": zh.format(pos=f"{position['zh']}的" if position else "", motion=zh_motion),
    }
