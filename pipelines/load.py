"""Reading one source item in a worker: bytes → content hash → normalised photo → object labels."""

from __future__ import annotations

import hashlib
from typing import Any

import fsspec
import numpy as np
from pycocotools import mask as coco_mask

from pipelines.decode import DecodeError, DecodeLimits, decode_image
from tasks.masks import bbox_of
from tasks.records import ObjectLabel, SourceSample


def read_bytes(uri: str) -> bytes:
    try:
        with fsspec.open(uri, "rb") as handle:
            return handle.read()
    except (OSError, ValueError) as error:  # fsspec raises ValueError for malformed chained URLs
        raise DecodeError("unreadable", f"{type(error).__name__}: {error}") from None


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
    data = read_bytes(ref["uri"])
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
