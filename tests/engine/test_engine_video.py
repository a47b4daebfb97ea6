"""Video sources for frame_pair tasks: real clips decoded with PyAV, shots respected, bad videos rejected."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
from engine_inputs import photo
from PIL import Image

from pipelines.decode import DecodeLimits
from pipelines.resume import done_key
from pipelines.sources import list_sources
from pipelines.video import frame_pair_items, pair_key
from tasks.contract import FramePairs

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")  # Debian's opencv-doc (Makefile system-deps)
VTEST = OPENCV_DATA / "vtest.avi"  # a fixed camera on people walking: 795 frames at 10 fps


def expand(ref: dict, spec: FramePairs | None = None, done: frozenset[int] = frozenset()) -> list:
    return list(frame_pair_items(ref, spec or FramePairs(), DecodeLimits(), 2048, done))


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def pan(name: str, count: int, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """`count` frames of a slow pan across a real photo: one shot."""
    image = np.asarray(photo(name).resize((size[0] + 4 * count, size[1])))
    return [np.ascontiguousarray(image[:, 4 * i : 4 * i + size[0]]) for i in range(count)]


def test_a_real_clip_becomes_frame_pairs_keyed_by_its_hash_and_frames() -> None:
    items = expand({"uri": str(VTEST), "kind": "video", "licence": "BSD"})
    video_sha = hashlib.sha256(VTEST.read_bytes()).hexdigest()
    assert 2 <= len(items) <= FramePairs().max_pairs
    for item in items:
        assert not item.rejected, item.reject_detail
        a, b = item.source.frame, item.source.partners[0].frame
        assert item.sha256 == pair_key(video_sha, a, b) and item.ref["uri"].endswith(f"#frames={a},{b}")
        assert round(item.source.partners[0].timestamp - item.source.timestamp, 1) in (1.0, 2.0)
        assert item.source.image.shape == item.source.partners[0].image.shape == (576, 768, 3)
        assert item.source.video_sha256 == video_sha
        assert not np.array_equal(item.source.image, item.source.partners[0].image)  # people walked
    assert [i.sha256 for i in expand({"uri": str(VTEST), "kind": "video"})] == [i.sha256 for i in items]


def test_no_pair_spans_a_cut(tmp_path: Path) -> None:
    path = tmp_path / "two_shots.mp4"
    write_video(path, pan("astronaut.png", 30) + pan("coffee.png", 30))
    spec = FramePairs(stride_s=0.5, gaps_s=(1.0,), max_pairs=100)
    items = expand({"uri": str(path), "kind": "video"}, spec)
    spans = [(i.source.frame, i.source.partners[0].frame) for i in items]
    assert spans and all(b - a == 10 for a, b in spans)
    assert not [pair for pair in spans if pair[0] < 30 <= pair[1]], spans
    assert any(a >= 30 for a, _ in spans) and any(b < 30 for _, b in spans)  # both shots give pairs


def test_a_frame_folder_is_a_video(tmp_path: Path) -> None:
    folder = tmp_path / "clip" / "shot1"
    folder.mkdir(parents=True)
    for i, frame in enumerate(pan("chelsea.png", 8)):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    (ref,) = list_sources(str(tmp_path / "clip"), videos=True).refs
    assert ref["kind"] == "frames" and len(ref["frames"]) == 8
    items = expand(ref, FramePairs(stride_s=0.5, gaps_s=(1.0,)))
    assert [(i.source.frame, i.source.partners[0].frame) for i in items] == [(k, k + 2) for k in range(6)]


def test_resume_skips_done_pairs() -> None:
    ref = {"uri": str(VTEST), "kind": "video"}
    first = expand(ref)
    done = frozenset({done_key(first[0].sha256), done_key(first[-1].sha256)})
    again = expand(ref, done=done)
    assert [i.already_done for i in again] == [True, True] + [False] * (len(first) - 2)
    assert {i.sha256 for i in again} == {i.sha256 for i in first}


@pytest.mark.parametrize(
    ("content", "reason"),
    [("one_frame", "too_few_frames"), ("truncated", "video_decode_error"), ("text", "video_decode_error")],
)
def test_bad_videos_are_rejected_with_a_reason(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.mp4"
    if content == "one_frame":
        write_video(path, pan("rocket.jpg", 1))
    elif content == "truncated":
        path.write_bytes(VTEST.read_bytes()[:3000])
    else:
        path.write_text("not a video at all\n")
    (item,) = expand({"uri": str(path), "kind": "video"})
    assert item.reject_reason == reason, item.reject_detail


def test_video_listing_takes_files_and_frame_folders(tmp_path: Path) -> None:
    (tmp_path / "a.avi").write_bytes(b"x")
    (tmp_path / "seq").mkdir()
    for i in range(3):
        photo().save(tmp_path / "seq" / f"{i}.jpg")
    refs = list_sources(str(tmp_path), videos=True).refs
    assert [(Path(r["uri"]).name, r["kind"]) for r in refs] == [("a.avi", "video"), ("seq", "frames")]
