"""Reading one source item in a worker: bytes → content hash → normalised photo → object labels."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import fsspec
import numpy as np
from pycocotools import mask as coco_mask

from pipelines.decode import DecodeError, DecodeLimits, decode_image
from tasks.masks import bbox_of
from tasks.records import ObjectLabel, SourceSample


def read_bytes(uri: str) -> bytes:
    """A whole file (a video: its decoder bounds what it keeps)."""
    try:
        with fsspec.open(uri, "rb") as handle:
            return handle.read()
    except (OSError, ValueError) as error:  # fsspec raises ValueError for malformed chained URLs
        raise DecodeError("unreadable", f"{type(error).__name__}: {error}") from None


def _size(handle: Any) -> int | None:
    """A file's size by seeking to its end (local files and object stores know it without reading)."""
    try:
        size = handle.seek(0, io.SEEK_END)
        handle.seek(0)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return size


def read_source(ref: dict[str, Any], max_bytes: int) -> bytes:
    """A source photo's bytes, never more than ``max_bytes``: a tar member's size is checked from its header
    before anything is read, and a file is read no further than one byte past the limit."""
    member = ref.get("tar")
    try:
        if member is not None:
            if member["size"] > max_bytes:
                raise DecodeError(
                    "file_too_large", f"{member['size']} bytes (tar header) > limit {max_bytes}; not read"
                )
            with fsspec.open(member["archive"], "rb", compression=member["compression"]) as handle:
                handle.seek(member["offset"])
                data = handle.read(member["size"])
            if len(data) != member["size"]:
                short = f"{len(data)} of {member['size']} bytes"
                raise DecodeError("unreadable", f"the tar ends inside this member ({short})")
            return data
        with fsspec.open(ref["uri"], "rb") as handle:
            size = _size(handle)
            if size is not None and size > max_bytes:
                raise DecodeError("file_too_large", f"{size} bytes > limit {max_bytes}; not read")
            data = handle.read(max_bytes + 1)  # for a file whose size could not be told beforehand
    except (OSError, ValueError) as error:  # fsspec raises ValueError for malformed chained URLs
        raise DecodeError("unreadable", f"{type(error).__name__}: {error}") from None
    if len(data) > max_bytes:
        raise DecodeError("file_too_large", f"more than the limit of {max_bytes} bytes; read no further")
    return data


def annotation_mask(annotation: dict[str, Any], height: int, width: int) -> np.ndarray:
    """A COCO annotation's segmentation (polygons, RLE or compressed RLE; else its box) as a bool mask."""
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list) and segmentation:
        rles = coco_mask.frPyObjects(segmentation, height, width)
        rle = coco_mask.merge(rles)
    elif isinstance(segmentation, dict) and "counts" in segmentation:
        rle = segmentation
        if isinstance(rle["counts"], list):
            rle = coco_mask.frPyObjects(rle, height, width)
    else:
        x, y, w, h = annotation["bbox"]
        mask = np.zeros((height, width), bool)
        mask[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))] = True
        return mask
    return coco_mask.decode(rle).astype(bool)


def labels_from_annotations(annotations: list[dict[str, Any]], height: int, width: int) -> list[ObjectLabel]:
    labels = []
    for annotation in annotations:
        if annotation.get("iscrowd"):
            continue  # a crowd region is not one object that can be removed or recoloured
        mask = annotation_mask(annotation, height, width)
        box = bbox_of(mask)
        if box is not None:
            labels.append(ObjectLabel(category=annotation["category"], bbox=box, mask=mask, source="labels"))
    return labels


def load_source(ref: dict[str, Any], limits: DecodeLimits) -> SourceSample:
    """Raises DecodeError (with a reject reason) for anything that is not a usable photo."""
    data = read_source(ref, limits.max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        image, notes = decode_image(data, limits)
    except DecodeError as error:
        error.sha256 = sha256
        raise
    height, width = image.shape[:2]
    labels: list[ObjectLabel] = []
    if ref.get("annotations"):
        expected = tuple(ref["label_size"]) if ref.get("label_size") else (width, height)
        if expected == (width, height):
            labels = labels_from_annotations(ref["annotations"], height, width)
        else:
            notes.append(f"labels_ignored_size_mismatch_{expected[0]}x{expected[1]}")
    return SourceSample(
        uri=ref["uri"],
        sha256=sha256,
        image=image,
        licence=ref.get("licence", "unknown"),
        labels=labels,
        notes=notes,
    )
