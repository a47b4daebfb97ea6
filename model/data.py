"""Streaming training batches from the data engine's shards (docs/shard_format.md), with aspect buckets.

Filters are applied at load time from the manifests (a view's ids, judge threshold, tasks), so images of
dropped samples are never decoded. Buckets come from the manifest width/height, so a sample's bucket is
known before its bytes are read. Source, target and mask are resized and cropped identically.

The stream is a pure function of (shards, filters, seed, epoch, rank): shard order is a seeded shuffle,
samples pass a seeded shuffle buffer, then the bucket batcher. Resuming at batch k replays the stream and
skips k batches without decoding any image, which makes resume exact.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import webdataset as wds
from PIL import Image

from model.latents import image_to_pixels


@dataclass
class DataFilter:
    """Which samples to train on, and which instruction language to show."""

    view_ids: Path | None = None  # a view's ids.parquet (or its folder), from `step1x-data filter`
    min_o: float | None = None  # judge overall score threshold (manifest column "o")
    tasks: list[str] | None = None
    lang_en: float = 1.0  # probability of the English instruction (else Chinese)


@dataclass
class SampleRef:
    id: str
    width: int
    height: int


@dataclass
class Batch:
    ids: list[str]
    source: torch.Tensor  # [B, 3, H, W] in [-1, 1]
    target: torch.Tensor  # [B, 3, H, W] in [-1, 1]
    mask: torch.Tensor  # [B, 1, H, W] in {0, 1}; all ones for global edits
    instructions: list[str]
    languages: list[str]
    instruction_options: list[dict[str, str]]  # every language's instruction, for feature precomputation
    source_images: list[Image.Image] = field(repr=False)  # the cropped source, what the MLLM sees


def expand_shards(patterns: list[str]) -> list[str]:
    paths: list[str] = []
    for p in patterns:
        paths += sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
    if not paths:
        raise FileNotFoundError(f"no shards match {patterns}")
    return paths


def read_manifests(shards: list[str], flt: DataFilter) -> dict[str, dict[str, SampleRef]]:
    """{shard path: {id: ref}} for the samples that pass the filter. A tar with no manifest is skipped."""
    keep_ids = None
    if flt.view_ids is not None:
        path = Path(flt.view_ids)
        path = path / "ids.parquet" if path.is_dir() else path
        keep_ids = set(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    out: dict[str, dict[str, SampleRef]] = {}
    for shard in shards:
        manifest = Path(shard).with_suffix(".parquet")
        if not manifest.exists():
            continue  # an interrupted commit (docs/shard_format.md)
        rows = pq.read_table(manifest).to_pylist()
        refs = {}
        for r in rows:
            if keep_ids is not None and r["id"] not in keep_ids:
                continue
            if flt.tasks and r["task"] not in flt.tasks:
                continue
            if flt.min_o is not None and (r.get("o") is None or r["o"] < flt.min_o):
                continue
            refs[r["id"]] = SampleRef(r["id"], int(r["width"]), int(r["height"]))
        out[shard] = refs
    if not any(out.values()):
        raise ValueError("no sample passes the filter (or no shard has a manifest)")
    return out


def make_buckets(resolution: int, step: int = 64, max_ratio: float = 4.0) -> list[tuple[int, int]]:
    """(width, height) pairs, sides multiples of `step`, area at most resolution^2 and close to it."""
    buckets = set()
    area = resolution * resolution
    w = step
    while w <= area // step:
        h = (area // w) // step * step
        if h >= step and max(w / h, h / w) <= max_ratio:
            buckets.add((w, h))
        w += step
    return sorted(buckets)


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1]) - ratio))


def _cover_crop(image: Image.Image, size: tuple[int, int], resample: int) -> Image.Image:
    """Resize to cover `size`, then centre-crop: the same operation for source, target and mask."""
    w, h = size
    scale = max(w / image.width, h / image.height)
    rw, rh = max(w, round(image.width * scale)), max(h, round(image.height * scale))
    image = image.resize((rw, rh), resample)
    left, top = (rw - w) // 2, (rh - h) // 2
    return image.crop((left, top, left + w, top + h))


def _sample_rng(seed: int, epoch: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{epoch}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


class ShardBatches:
    """Deterministic, resumable stream of bucketed batches over WebDataset shards.

    Each rank reads its own shards (round-robin after the seeded shuffle), so shards are never split.
    """

    def __init__(
        self,
        shards: list[str],
        flt: DataFilter,
        batch_size: int,
        resolution: int,
        bucket_step: int = 64,
        shuffle_buffer: int = 64,
        instruction_dropout: float = 0.0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.refs = read_manifests(expand_shards(shards), flt)
        self.flt = flt
        self.batch_size = batch_size
        self.buckets = make_buckets(resolution, bucket_step)
        self.shuffle_buffer = shuffle_buffer
        self.instruction_dropout = instruction_dropout
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.num_samples = sum(len(r) for r in self.refs.values())

    def _shards_for(self, epoch: int) -> tuple[list[str], bool]:
        """This rank's shards for the epoch, and whether samples must be split by index instead."""
        shards = [s for s, r in self.refs.items() if r]
        random.Random(self.seed * 1_000_003 + epoch).shuffle(shards)
        if len(shards) >= self.world_size:
            return shards[self.rank :: self.world_size], False
        return (
            shards,
            True,
        )  # fewer shards than ranks: every rank reads all, keeping every world_size-th sample

    def _raw(self, epoch: int) -> Iterator[tuple[SampleRef, dict]]:
        rng = random.Random(self.seed * 7_919 + epoch * 31 + self.rank)
        buffer: list[tuple[SampleRef, dict]] = []
        shards, split_samples = self._shards_for(epoch)
        index = 0
        for shard in shards:
            refs = self.refs[shard]
            for sample in wds.WebDataset(shard, shardshuffle=False, nodesplitter=None, empty_check=False):
                ref = refs.get(sample["__key__"])
                if ref is None:
                    continue
                index += 1
                if split_samples and (index - 1) % self.world_size != self.rank:
                    continue
                buffer.append((ref, sample))
                if len(buffer) >= self.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
        while buffer:
            yield buffer.pop(rng.randrange(len(buffer)))

    def _raw_batches(self, epoch: int) -> Iterator[list[tuple[SampleRef, dict]]]:
        pending: dict[tuple[int, int], list[tuple[SampleRef, dict]]] = {}
        for ref, sample in self._raw(epoch):
            bucket = nearest_bucket(ref.width, ref.height, self.buckets)
            group = pending.setdefault(bucket, [])
            group.append((ref, sample))
            if len(group) == self.batch_size:
                yield pending.pop(bucket)
        # incomplete buckets at the end of an epoch are dropped, so every batch has batch_size samples

    def epoch_batches(self, epoch: int, skip: int = 0) -> Iterator[Batch]:
        """Batches of one epoch, after skipping `skip` batches without decoding them."""
        for i, raw in enumerate(self._raw_batches(epoch)):
            if i >= skip:
                yield self._decode(raw, epoch)

    def _decode(self, raw: list[tuple[SampleRef, dict]], epoch: int) -> Batch:
        size = nearest_bucket(raw[0][0].width, raw[0][0].height, self.buckets)
        src, tgt, masks, instr, langs, options, src_images = [], [], [], [], [], [], []
        for ref, sample in raw:
            record = json.loads(sample["json"])
            s_img = _cover_crop(_image(sample, "src"), size, Image.LANCZOS)
            t_img = _cover_crop(_image(sample, "tgt"), size, Image.LANCZOS)
            mask_bytes = sample.get("mask.png")
            if mask_bytes is not None:
                m = _cover_crop(Image.open(io.BytesIO(mask_bytes)).convert("L"), size, Image.NEAREST)
                masks.append(torch.from_numpy(np.asarray(m) > 127).float()[None])
            else:
                masks.append(torch.ones(1, size[1], size[0]))
            rng = _sample_rng(self.seed, epoch, ref.id)
            lang = "en" if rng.random() < self.flt.lang_en else "zh"
            text = record["instruction"].get(lang) or record["instruction"]["en"]
            if rng.random() < self.instruction_dropout:
                text = ""  # the unconditional branch of classifier-free guidance
            src.append(image_to_pixels(s_img))
            tgt.append(image_to_pixels(t_img))
            instr.append(text)
            langs.append(lang)
            options.append(record["instruction"])
            src_images.append(s_img)
        return Batch(
            [r.id for r, _ in raw],
            torch.stack(src),
            torch.stack(tgt),
            torch.stack(masks),
            instr,
            langs,
            options,
            src_images,
        )


def _image(sample: dict, role: str) -> Image.Image:
    for ext in ("jpg", "png", "jpeg", "webp"):
        data = sample.get(f"{role}.{ext}")
        if data is not None:
            return Image.open(io.BytesIO(data)).convert("RGB")
    raise KeyError(f"sample {sample['__key__']} has no {role} image")
