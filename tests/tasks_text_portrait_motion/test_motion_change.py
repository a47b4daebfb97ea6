"""motion_change on the example clip (a fixed camera over walking people, frames 100-139 of vtest.avi):
pairs through the task and through the engine, camera compensation, bad videos, the naming of motions from
body landmarks, and each gate that keeps only pairs a person accepts, on real frame pairs where it decides."""

from __future__ import annotations

import io
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import engine_items
from engine_inputs import clip_frames
from PIL import Image

from tasks import motion_change, motion_gates, motion_words
from tasks.records import Skip, SourceSample
from tasks.tools import Pose, Tools


@pytest.fixture(scope="module")
def tools(flow, persons, pose, faces) -> Tools:  # noqa: ANN001
    return Tools(flow=flow, persons=persons, pose=pose, faces=faces)


def pair(first: np.ndarray, second: np.ndarray) -> SourceSample:
    source = SourceSample(uri="clip#frames=a,b", sha256="pair", image=first)
    source.partners = [SourceSample(uri="clip#b", sha256="pair", image=second)]
    return source


def test_only_the_named_person_moves_in_the_pair(tools: Tools) -> None:
    first, second = clip_frames((10, 30))
    result = motion_change.make_pairs(pair(first, second), motion_change.Params(), tools, seed=1)
    assert not isinstance(result, Skip), result
    forward = [c for c in result if not c.params["inverse"]]
    assert forward
    for candidate in forward:
        mask = candidate.mask
        assert 0 < mask.mean() < 0.2
        assert np.array_equal(candidate.target[~mask], first[~mask])  # the rest of the frame is frame one
        core = cv2.erode(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        assert np.array_equal(candidate.target[core], second[core])  # the person's region is frame two
        assert candidate.params["motion"] and candidate.params["camera_compensated"] is False
    inverse = [c for c in result if c.params["inverse"]]
    assert len(inverse) == len(forward)
    assert all(c.target is first for c in inverse)  # the inverse pair's target is the real frame


def test_a_small_pan_is_compensated_and_a_large_one_skipped(tools: Tools) -> None:
    first, second = clip_frames((10, 30))
    pan = cv2.warpAffine(
        second, np.float32([[1, 0, 5], [0, 1, 3]]), second.shape[1::-1], borderMode=cv2.BORDER_REFLECT
    )
    # The camera's part only: the gates (which judge the person) are off here.
    ungated = motion_change.Params(gates=False)
    result = motion_change.make_pairs(pair(first, pan), ungated, tools, seed=1)
    assert not isinstance(result, Skip), result
    candidate = result[0]
    assert candidate.params["camera_compensated"] is True
    assert candidate.params["camera_motion_px"] == pytest.approx(np.hypot(5, 3), abs=1.0)
    assert candidate.source.shape[0] < first.shape[0]  # both frames cropped to what they share
    far = cv2.warpAffine(
        second, np.float32([[1, 0, 60], [0, 1, 0]]), second.shape[1::-1], borderMode=cv2.BORDER_REFLECT
    )
    skipped = motion_change.make_pairs(pair(first, far), motion_change.Params(), tools, seed=1)
    assert isinstance(skipped, Skip) and skipped.reason == "camera_moved"


def test_a_still_pair_is_skipped(tools: Tools) -> None:
    (first,) = clip_frames((10,))
    result = motion_change.make_pairs(pair(first, first.copy()), motion_change.Params(), tools, seed=1)
    assert isinstance(result, Skip) and result.reason == "nothing_moved"


def write_clip(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def test_engine_items_from_a_clip_and_bad_videos(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    write_clip(videos / "walkers.mp4", clip_frames(tuple(range(25))))  # 2.5 s: four frame pairs
    write_clip(videos / "one_frame.mp4", clip_frames((0,)))
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    items = engine_items("motion_change", videos)
    reasons = {Path(i.ref["uri"].split("#")[0]).name: i.reject_reason for i in items if i.rejected}
    assert reasons["one_frame.mp4"] == "too_few_frames"
    assert reasons["broken.mp4"] in ("video_decode_error", "not_a_video")
    pairs = [i for i in items if "walkers.mp4" in i.ref["uri"]]
    assert len(pairs) == 4 and all(i.samples or i.rejected for i in pairs)
    samples = [s for i in pairs for s in i.samples]
    assert samples
    for sample in samples:
        record = sample.record
        assert record["gedit_key"] == "motion_change" and record["source"]["video_sha256"]
        assert "frames=" in record["source"]["uri"] and sample.mask is not None
        assert "person" in record["instruction"]["en"] and "人" in record["instruction"]["zh"]
        mask = np.asarray(Image.open(io.BytesIO(sample.mask)))
        assert 0 < (mask > 0).mean() < 0.2


def body(points: dict[int, tuple[float, float]]) -> Pose:
    landmarks = np.zeros((33, 2), np.float32)
    visibility = np.zeros(33, np.float32)
    for index, xy in points.items():
        landmarks[index], visibility[index] = xy, 1.0
    return Pose(landmarks=landmarks, visibility=visibility, score=1.0)


def test_motions_are_named_from_landmarks() -> None:
    w = motion_words
    torso = {
        w.LEFT_SHOULDER: (60, 100),
        w.RIGHT_SHOULDER: (40, 100),
        w.LEFT_HIP: (58, 160),
        w.RIGHT_HIP: (42, 160),
    }
    down = body({**torso, w.LEFT_WRIST: (62, 170), w.RIGHT_WRIST: (38, 170)})
    left_up = body({**torso, w.LEFT_WRIST: (62, 80), w.RIGHT_WRIST: (38, 170)})
    assert w.arm_motions(down, left_up) == ["raise_left_arm"]
    assert w.arm_motions(left_up, down) == ["lower_left_arm"]
    assert w.arm_motions(down, down) == []
    face = {w.LEFT_EAR: (60, 50), w.RIGHT_EAR: (40, 50)}
    front, turned = body({**face, w.NOSE: (50, 55)}), body({**face, w.NOSE: (41, 55)})
    assert w.head_turn(front, turned) == ["turn_head_left"] and w.head_turn(turned, front) == [
        "turn_head_right"
    ]
    assert w.body_motion((100, 50, 120, 110), (130, 50, 150, 110)) == ["walk_right"]
    assert w.body_motion((100, 50, 120, 110), (100, 40, 124, 118)) == ["walk_towards_camera"]
    assert w.flow_motion(np.array([0.2, -4.0]), 2.0) == ["move_up"]
    assert all(w.REVERSE[w.REVERSE[k]] == k for k in w.PHRASES)


def make(frames: tuple[int, int], tools: Tools, **params: object):  # noqa: ANN201
    first, second = clip_frames(frames)
    return motion_change.make_pairs(pair(first, second), motion_change.Params(**params), tools, seed=1)


def people(result) -> dict[tuple[int, ...], list[str]]:  # noqa: ANN001
    return {tuple(c.params["person_box"]): c.params["motion"] for c in result if not c.params["inverse"]}


def test_a_person_who_stayed_in_place_is_tracked_and_their_head_turn_named(tools: Tools) -> None:
    result = make((10, 30), tools)
    assert not isinstance(result, Skip), result
    (candidate,) = [c for c in result if not c.params["inverse"]]
    assert candidate.params["motion"] == ["turn_head_right"]
    tracked = candidate.params["tracked"]
    params = motion_change.Params()
    assert tracked["overlap"] >= params.min_track_overlap and tracked["colour"] <= params.max_colour_distance
    assert tracked["shift"] <= params.max_pose_shift and tracked["size_ratio"] >= params.min_size_ratio


def test_an_identity_swap_is_rejected(tools: Tools, persons) -> None:  # noqa: ANN001
    """Frames 5 and 25: where a man in a dark jacket walked, a woman in a white coat walks 2 s later."""
    result = make((5, 25), tools)
    assert isinstance(result, Skip) and "identity_changed: 1" in result.detail, result
    first, second = clip_frames((5, 25))
    crop = (640, 150, 780, 320)  # around both of them
    masks = [motion_change._largest(motion_change._person_in(persons, f, crop)) for f in (first, second)]
    flow = np.zeros((*first.shape[:2], 2), np.float32)
    swapped = motion_gates.track(first, second, *masks, flow)
    assert swapped.colour > motion_change.Params().max_colour_distance, swapped


def test_a_person_who_appeared_is_skipped_as_left(tools: Tools) -> None:
    """Frames 0 and 20: a small blob at the kerb (no whole person), then a woman in a white coat there;
    ungated, that became "raise their left arm"."""
    assert people(make((0, 20), tools, gates=False)) == {(738, 252, 756, 287): ["raise_left_arm"]}
    result = make((0, 20), tools)
    assert isinstance(result, Skip) and "person_left: 2" in result.detail, result


def test_a_couple_merged_into_one_mask_is_several_people(tools: Tools) -> None:
    couple = (491, 147, 540, 220)  # walking side by side: one person mask
    assert people(make((0, 10), tools, gates=False)) == {couple: ["walk_right"]}
    result = make((0, 10), tools)
    assert isinstance(result, Skip) and "several_people: 1" in result.detail, result


def test_a_head_turn_is_not_named_when_the_body_moved_and_a_body_turning_round_is_skipped(
    tools: Tools,
) -> None:
    ungated = people(make((15, 35), tools, gates=False))
    assert ungated[(370, 180, 399, 258)] == ["turn_head_right"]  # he stepped aside: more than a head turn
    result = make((15, 35), tools)
    assert isinstance(result, Skip) and "motion_too_large: 1" in result.detail, result
    assert people(make((5, 15), tools, gates=False))[(608, 145, 629, 224)] == ["walk_right"]
    turned = make((5, 15), tools)  # that walker turned to face the other way
    assert isinstance(turned, Skip) and "body_turned: 1" in turned.detail, turned


def moved(dx: float, feet_dy: float, scale: float) -> motion_gates.Track:
    return motion_gates.Track(
        overlap=1, colour=0, size_ratio=1, shift=float(np.hypot(dx, feet_dy)), dx=dx, feet_dy=feet_dy,
        scale=scale, breadth=0.4,
    )  # fmt: skip


def test_a_walk_is_named_only_when_clear_and_mostly_one_way() -> None:
    walk = motion_gates.walk
    assert walk(moved(0.4, 0.05, 1.0), 0.25, 1.15) == ["walk_right"]
    assert walk(moved(-0.3, -0.1, 0.95), 0.25, 1.15) == ["walk_left"]
    assert walk(moved(0.1, 0.0, 1.0), 0.25, 1.15) == []  # barely moved
    assert walk(moved(0.3, -0.3, 0.85), 0.25, 1.15) == []  # as much away as sideways
    assert walk(moved(0.02, -0.4, 0.8), 0.25, 1.15) == ["walk_away"]
    assert walk(moved(-0.05, 0.5, 1.3), 0.25, 1.15) == ["walk_towards_camera"]
    assert walk(moved(0.0, 0.5, 0.8), 0.25, 1.15) == []  # feet went down yet the body shrank: not a walk
