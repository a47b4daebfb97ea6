"""motion_change on the example clip (a fixed camera over walking people): pairs through the task and
through the engine, camera compensation, bad videos, and the naming of motions from body landmarks."""

from __future__ import annotations

import io
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import clip_frames, engine_items
from PIL import Image

from tasks import motion_change, motion_words
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
    first, second = clip_frames((10, 20))
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
    first, second = clip_frames((10, 20))
    pan = cv2.warpAffine(
        second, np.float32([[1, 0, 5], [0, 1, 3]]), second.shape[1::-1], borderMode=cv2.BORDER_REFLECT
    )
    result = motion_change.make_pairs(pair(first, pan), motion_change.Params(), tools, seed=1)
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
