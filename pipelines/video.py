"""Video sources for `frame_pair` tasks: a video file or a folder of frames becomes frame-pair work items.

A video is read twice with PyAV, never held whole: the first pass looks at a frame every `stride_s` seconds
and keeps only a small colour histogram of each, from which shot cuts are found (a pair never spans one) and
the pairs are chosen; the second pass keeps just the frames those pairs use. A frame folder (its images in
name order) is the same thing at one frame per `stride_s`.

A pair's key is sha256(video sha256 | frame a | frame b): it is the item's content hash, so resume and
sample ids work on frame pairs exactly as on photos.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipelines.decode import DecodeError, DecodeLimits, decode_image
from pipelines.items import WorkItem
from pipelines.load import read_bytes
from pipelines.resume import is_done
from tasks.contract import FramePairs
from tasks.records import SourceSample

# Correlation of two sampled frames' hue-saturation histograms below which they belong to different shots.
# Walking people or a panning camera stay above 0.8; a cut between scenes falls to 0.1-0.5.
CUT_CORRELATION = 0.6
HIST_SIZE = 96  # frames are shrunk to this width before their histogram is taken


@dataclass
class Frame:
    index: int  # position in decode order
    timestamp: float  # seconds
    image: np.ndarray | None = None  # RGB uint8, kept only for frames a pair uses
    histogram: np.ndarray | None = None


def pair_key(video_sha256: str, first: int, second: int) -> str:
    return hashlib.sha256(f"{video_sha256}|{first}|{second}".encode()).hexdigest()


def _histogram(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (HIST_SIZE, max(1, round(height * HIST_SIZE / width)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    return cv2.normalize(hist, None).flatten()


def shot_ids(frames: list[Frame]) -> list[int]:
    """A shot number per sampled frame: a new shot starts where consecutive histograms stop correlating."""
    shots = [0]
    for previous, frame in zip(frames, frames[1:], strict=False):
        similarity = cv2.compareHist(previous.histogram, frame.histogram, cv2.HISTCMP_CORREL)
        shots.append(shots[-1] + int(similarity < CUT_CORRELATION))
    return shots[: len(frames)]


def choose_pairs(frames: list[Frame], spec: FramePairs, stride_s: float) -> list[tuple[int, int]]:
    """Positions (in `frames`) of the pairs to make: each gap of the spec, inside one shot, spread evenly."""
    shots = shot_ids(frames)
    pairs = []
    for gap_s in spec.gaps_s:
        step = max(1, round(gap_s / stride_s))
        pairs.extend((i, i + step) for i in range(len(frames) - step) if shots[i] == shots[i + step])
    if len(pairs) <= spec.max_pairs:
        return sorted(pairs)
    picks = np.linspace(0, len(pairs) - 1, spec.max_pairs).round().astype(int)
    return sorted(pairs[i] for i in sorted(set(picks.tolist())))


class VideoError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def _decode_video(
    data: bytes, spec: FramePairs, keep: set[int] | None, max_side: int
) -> tuple[list[Frame], float]:
    """Sampled frames of a video and the seconds between two samples: with histograms only (first pass,
    keep=None), or with the images of the frames in `keep` (second pass)."""
    import av

    try:
        container = av.open(io.BytesIO(data))
    except (av.FFmpegError, ValueError) as error:
        raise VideoError("video_decode_error", f"{type(error).__name__}: {error}") from None
    with container:
        if not container.streams.video:
            raise VideoError("not_a_video", "the file has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        expected = stream.frames or int(rate * float(container.duration or 0) / 1e6)
        # Every `every`-th decoded frame is looked at: one per stride, fewer on videos longer than max_frames.
        every = max(1, round(spec.stride_s * rate), -(-expected // spec.max_frames) if expected else 1)
        frames = []
        try:
            for index, decoded in enumerate(container.decode(stream)):
                if index % every:
                    continue
                timestamp = float(decoded.time) if decoded.time is not None else index / rate
                if keep is None:
                    histogram = _histogram(decoded.to_ndarray(format="rgb24"))
                    frames.append(Frame(index, timestamp, histogram=histogram))
                elif index in keep:
                    image = _fit(decoded.to_ndarray(format="rgb24"), max_side)
                    frames.append(Frame(index, timestamp, image=image))
                if len(frames) >= spec.max_frames:
                    break
        except av.FFmpegError as error:
            if not frames:
                raise VideoError("video_decode_error", f"{type(error).__name__}: {error}") from None
    return frames, every / rate


def _frame_folder(
    uris: list[str], spec: FramePairs, limits: DecodeLimits, max_side: int
) -> tuple[str, list[Frame]]:
    """A folder of frames, in name order, as samples `stride_s` apart; its hash covers every frame."""
    digest = hashlib.sha256()
    frames = []
    for index, uri in enumerate(uris):
        data = read_bytes(uri)
        digest.update(hashlib.sha256(data).digest())
        try:
            image, _ = decode_image(data, limits)
        except DecodeError as error:
            name = posixpath.basename(uri)
            raise VideoError("frame_decode_error", f"{name}: {error.reason} {error.detail}") from None
        image = _fit(image, max_side)
        frames.append(Frame(index, index * spec.stride_s, image=image, histogram=_histogram(image)))
    return digest.hexdigest(), frames


def frame_pair_items(
    ref: dict[str, Any], spec: FramePairs, limits: DecodeLimits, max_side: int, done: frozenset[int]
) -> Iterator[WorkItem]:
    """The work items of one video or frame folder: one per chosen frame pair, or one reject."""
    kind = ref.get("kind")
    if kind not in ("video", "frames"):
        yield WorkItem(ref=ref).reject("not_a_video", "this task takes video files or folders of frames")
        return
    video_sha: str | None = None
    try:
        if kind == "frames":
            video_sha, sampled = _frame_folder(ref["frames"], spec, limits, max_side)
            stride = spec.stride_s
        else:
            data = read_bytes(ref["uri"])
            video_sha = hashlib.sha256(data).hexdigest()
            if is_done(video_sha, done):  # rejected as a whole by an earlier run
                yield WorkItem(ref=ref, sha256=video_sha, already_done=True)
                return
            sampled, stride = _decode_video(data, spec, None, max_side)
    except (DecodeError, VideoError) as error:
        yield WorkItem(ref=ref, sha256=video_sha).reject(error.reason, error.detail)
        return
    if is_done(video_sha, done):
        yield WorkItem(ref=ref, sha256=video_sha, already_done=True)
        return
    if len(sampled) < 2:
        yield WorkItem(ref=ref, sha256=video_sha).reject("too_few_frames", f"{len(sampled)} frame(s) decoded")
        return
    pairs = [(sampled[a].index, sampled[b].index) for a, b in choose_pairs(sampled, spec, stride)]
    if not pairs:
        yield WorkItem(ref=ref, sha256=video_sha).reject(
            "no_frame_pair", f"no two frames {', '.join(map(str, spec.gaps_s))} s apart inside one shot"
        )
        return
    todo = []
    for a, b in pairs:
        key = pair_key(video_sha, a, b)
        if is_done(key, done):
            yield WorkItem(ref=_pair_ref(ref, a, b), sha256=key, already_done=True)
        else:
            todo.append((a, b))
    if not todo:
        return
    if kind == "video":
        kept, _ = _decode_video(data, spec, {index for pair in todo for index in pair}, max_side)
        by_index = {frame.index: frame for frame in kept}
    else:
        by_index = {frame.index: frame for frame in sampled}
    for a, b in todo:
        yield _pair_item(ref, video_sha, by_index.get(a), by_index.get(b), a, b)


def _pair_item(
    ref: dict[str, Any], video_sha: str, first: Frame | None, second: Frame | None, a: int, b: int
) -> WorkItem:
    key = pair_key(video_sha, a, b)
    item = WorkItem(ref=_pair_ref(ref, a, b), sha256=key)
    if first is None or second is None:
        return item.reject("video_decode_error", f"frames {a} and {b} did not decode a second time")
    licence = ref.get("licence", "unknown")

    def frame_source(frame: Frame) -> SourceSample:
        return SourceSample(
            uri=f"{ref['uri']}#frame={frame.index}",
            sha256=key,
            image=frame.image,
            licence=licence,
            frame=frame.index,
            timestamp=frame.timestamp,
            video_sha256=video_sha,
        )

    item.source = frame_source(first)
    item.source.uri = item.ref["uri"]
    item.source.partners = [frame_source(second)]
    return item


def _pair_ref(ref: dict[str, Any], first: int, second: int) -> dict[str, Any]:
    return {"uri": f"{ref['uri']}#frames={first},{second}", "licence": ref.get("licence", "unknown")}
