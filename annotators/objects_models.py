"""The `objects` annotator's models backend: Florence-2 finds and names the objects, SAM-2 cuts their masks.

1. Florence-2 (transformers' native ``Florence2ForConditionalGeneration``) runs ``<OD>`` on a batch of
   photos: boxes with free-text names.
2. Each name is mapped onto the bilingual vocabulary (tasks/vocabulary.py). A name of something no removal
   can take away whole (a face, a wheel, a wall: vocabulary.UNREMOVABLE) drops its box; a box whose name maps
   to nothing else is asked about again with ``<REGION_TO_CATEGORY>`` (Florence-2's region caption: what is
   in this box), and dropped if that gives no vocabulary name either: every label has an English and a
   Chinese name.
3. SAM-2 (transformers' ``Sam2Model``), prompted with the named boxes, gives one mask per box; a mask SAM-2
   itself scores low, that mostly lies outside its box, or that fills too little of it, is dropped.

Sources that come with labels (COCO-style files) keep them and are not looked at: human labels win.
Why each object was dropped is counted per source and recorded with the samples (``dropped``).

Weights load from --models-dir in their upstream layout: florence-community/Florence-2-{large,base}[-ft]
and facebook/sam2.1-hiera-{large,base-plus,small,tiny} (or sam2-hiera-*), safetensors only, bf16 on a GPU.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotators.accelerator_memory import releasing_memory_on_oom
from annotators.pretrained import device, inference_dtype, local_pretrained
from annotators.registry import Annotator, PluginUnavailable, Resources
from tasks.masks import bbox_of
from tasks.records import ObjectLabel, SourceSample
from tasks.vocabulary import UNREMOVABLE, vocabulary_key

FLORENCE_FOLDERS = ("Florence-2-large", "Florence-2-large-ft", "Florence-2-base", "Florence-2-base-ft")
SAM2_FOLDERS = (
    "sam2.1-hiera-large",
    "sam2.1-hiera-base-plus",
    "sam2.1-hiera-small",
    "sam2.1-hiera-tiny",
    "sam2-hiera-large",
    "sam2-hiera-base-plus",
    "sam2-hiera-small",
    "sam2-hiera-tiny",
)
LABEL_SOURCE = "florence2_sam2"
_LOCATION_TOKEN = re.compile(r"<loc_\d+>")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class Detection:
    name: str  # Florence-2's words for it
    box: Box


def _pil(image: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(image)


def _refuse_remote_code(path: str) -> None:
    with open(os.path.join(path, "config.json")) as handle:
        config = json.load(handle)
    if "auto_map" in config:
        raise PluginUnavailable(
            f"{path} holds the remote-code release of Florence-2 (microsoft/...), which transformers' "
            "Florence2ForConditionalGeneration does not load: use florence-community/"
            f"{os.path.basename(path)}"
        )


class Florence2:
    """Florence-2 and its processor, loaded once; one task prompt over a batch of photos per call."""

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 1024, num_beams: int = 3) -> None:
        self.model = model
        self.processor = processor
        self.max_new_tokens = max_new_tokens  # <OD> lists every object: its answers run long
        self.num_beams = num_beams  # Florence-2's published decoding

    @classmethod
    def load(cls, path: str, on: str, dtype: Any) -> Florence2:
        from transformers import Florence2ForConditionalGeneration, Florence2Processor

        _refuse_remote_code(path)
        model = local_pretrained(Florence2ForConditionalGeneration, path, dtype=dtype).to(on).eval()
        return cls(model, Florence2Processor.from_pretrained(path, local_files_only=True))

    def generate(self, images: list[Any], prompts: list[str], max_new_tokens: int) -> list[str]:
        """The decoded answer (special and location tokens kept) for each (image, prompt)."""
        import torch

        inputs = self.processor(text=prompts, images=images, return_tensors="pt")
        parameter = next(self.model.parameters())
        # The decoder has learned positions up to this: an answer cannot run longer.
        longest = self.model.config.text_config.max_position_embeddings - 2
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=inputs["input_ids"].to(parameter.device),
                pixel_values=inputs["pixel_values"].to(parameter.device, parameter.dtype),
                max_new_tokens=min(max_new_tokens, longest),
                num_beams=self.num_beams,
                do_sample=False,
            )
        return self.processor.batch_decode(generated, skip_special_tokens=False)

    def detect(self, images: list[Any]) -> list[list[Detection]]:
        """``<OD>``: every object Florence-2 sees, with its name and box."""
        answers = self.generate(images, ["<OD>"] * len(images), self.max_new_tokens)
        found = []
        for image, answer in zip(images, answers, strict=True):
            parsed = self.processor.post_process_generation(answer, task="<OD>", image_size=image.size)[
                "<OD>"
            ]
            found.append(
                [
                    Detection(name, tuple(float(v) for v in box))
                    for name, box in zip(parsed["labels"], parsed["bboxes"], strict=True)
                ]
            )
        return found

    def region_names(self, images: list[Any], boxes: list[Box], batch_size: int = 16) -> list[str]:
        """``<REGION_TO_CATEGORY>``: what is in each box (one box per image entry; images may repeat)."""
        import torch

        names: list[str] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            prompts = []
            for image, box in zip(chunk, boxes[start : start + batch_size], strict=True):
                bins = self.processor.post_processor.quantize(torch.tensor([box]), image.size)[0].tolist()
                prompts.append("<REGION_TO_CATEGORY>" + "".join(f"<loc_{int(b)}>" for b in bins))
            for answer in self.generate(chunk, prompts, max_new_tokens=20):
                text = answer.replace("<s>", "").replace("</s>", "").replace("<pad>", "")
                names.append(_LOCATION_TOKEN.sub("", text).strip())
        return names


class Sam2Boxes:
    """SAM-2 prompted with boxes: one mask and SAM-2's own quality score (predicted IoU) per box."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model
        self.processor = processor

    @classmethod
    def load(cls, path: str, on: str, dtype: Any) -> Sam2Boxes:
        from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

        model = local_pretrained(Sam2Model, path, dtype=dtype).to(on).eval()
        has_processor = any(
            os.path.isfile(os.path.join(path, name))
            for name in ("processor_config.json", "preprocessor_config.json")
        )
        # Some facebook/*-hf releases ship no processor files; SAM-2's defaults are those of all of them.
        processor = (
            Sam2Processor.from_pretrained(path, local_files_only=True)
            if has_processor
            else Sam2Processor(image_processor=Sam2ImageProcessor())
        )
        return cls(model, processor)

    def segment(self, images: list[Any], boxes: list[list[Box]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each image, (masks N x H x W bool, scores N) for its N >= 1 boxes, in one batched forward."""
        import torch

        most = max(len(b) for b in boxes)
        # SAM-2 takes the same number of boxes per image: repeat the first, drop the repeats' masks after.
        padded = [list(b) + [b[0]] * (most - len(b)) for b in boxes]
        inputs = self.processor(
            images=images, input_boxes=[[list(box) for box in b] for b in padded], return_tensors="pt"
        )
        parameter = next(self.model.parameters())
        with torch.inference_mode():
            outputs = self.model(
                pixel_values=inputs["pixel_values"].to(parameter.device, parameter.dtype),
                input_boxes=inputs["input_boxes"].to(parameter.device),
                multimask_output=False,
            )
        masks = self.processor.post_process_masks(outputs.pred_masks.float().cpu(), inputs["original_sizes"])
        scores = outputs.iou_scores.float().cpu().numpy()
        return [
            (masks[i][: len(b), 0].numpy().astype(bool), scores[i, : len(b), 0]) for i, b in enumerate(boxes)
        ]


@dataclass(frozen=True)
class MaskGate:
    """When a SAM-2 mask is the object its box was drawn around."""

    min_score: float = 0.6  # SAM-2's predicted IoU; real box-prompted objects score 0.8-1.0
    box_margin: float = 0.1  # the box grown by this fraction of its size on each side
    max_outside: float = 0.25  # of the mask, outside the grown box: SAM-2 followed something else
    min_fill: float = 0.1  # of the box, covered by the mask: less is a sliver, not the object

    def problem(self, mask: np.ndarray, score: float, box: Box) -> str | None:
        """Why this mask is not the object (a reason code), or None when it is."""
        area = int(mask.sum())
        if area == 0:
            return "mask_empty"
        if score < self.min_score:
            return "mask_low_score"
        inside = self.grown(box, mask.shape)
        inner = int(mask[inside].sum())
        if inner == 0 or (area - inner) / area > self.max_outside:
            return "mask_outside_box"
        x0, y0, x1, y1 = box
        if inner / max((x1 - x0) * (y1 - y0), 1.0) < self.min_fill:
            return "mask_fills_little_of_box"
        return None

    def grown(self, box: Box, shape: tuple[int, ...]) -> tuple[slice, slice]:
        x0, y0, x1, y1 = box
        dx, dy = (x1 - x0) * self.box_margin, (y1 - y0) * self.box_margin
        height, width = shape[:2]
        return (
            slice(max(0, int(y0 - dy)), min(height, int(np.ceil(y1 + dy)))),
            slice(max(0, int(x0 - dx)), min(width, int(np.ceil(x1 + dx)))),
        )


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FlorenceSam2Objects(Annotator):
    """Named object masks from Florence-2 + SAM-2; labels from files keep priority."""

    name = "objects"
    backend = "models"
    version = "florence2-od+region-category/sam2-box/1"
    # Florence-2-large (0.8 B) and SAM-2.1-large (0.2 B) in bf16 take ~3 GB with a batch of 8 photos; the
    # rest of the GPU is the inpainter's (annotators/inpaint_models.py declares 0.8).
    resources = Resources(num_cpus=1.0, num_gpus=0.2, batch_size=8)
    models = (FLORENCE_FOLDERS, SAM2_FOLDERS)
    packages = (("torch", "models"), ("transformers", "models"))

    def __init__(
        self,
        models_dir: str | None = None,
        florence: Florence2 | None = None,
        sam: Sam2Boxes | None = None,
        gate: MaskGate = MaskGate(),
        max_objects: int = 12,
        min_box_area: float = 0.002,
    ) -> None:
        super().__init__(models_dir)
        on = device()
        dtype = inference_dtype(on)
        self.florence = florence or Florence2.load(self.model_path(*FLORENCE_FOLDERS), on, dtype)
        self.sam = sam or Sam2Boxes.load(self.model_path(*SAM2_FOLDERS), on, dtype)
        self.gate = gate
        self.max_objects = max_objects  # per photo, largest first: the tasks use the few largest
        self.min_box_area = min_box_area  # of the photo; smaller boxes make no edit anyone can see
        self.model_names = (
            "+".join(os.path.basename(self.model_path(*f)) for f in (FLORENCE_FOLDERS, SAM2_FOLDERS))
            if models_dir
            else "built"
        )
        self._dropped: dict[str, Counter[str]] = {}

    def describe_source(self, source: SourceSample) -> dict[str, str]:
        if source.labels and all(label.source == "labels" for label in source.labels):
            return {"backend": "labels", "name": "coco", "version": "coco"}
        dropped = self._dropped.get(source.sha256, Counter())
        return {
            "backend": self.backend,
            "name": LABEL_SOURCE,
            "version": f"{self.version} {self.model_names}",
            "dropped": ",".join(f"{reason}:{n}" for reason, n in sorted(dropped.items())),
        }

    def annotate(self, sources: list[SourceSample]) -> None:
        todo = [source for source in sources if not source.labels]
        self._dropped = {source.sha256: Counter() for source in todo}
        if todo:
            releasing_memory_on_oom(lambda: self._annotate(todo))

    def _annotate(self, sources: list[SourceSample]) -> None:
        images = [_pil(source.image) for source in sources]
        named = self._named_detections(sources, images)
        with_boxes = [i for i, found in enumerate(named) if found]
        if not with_boxes:
            return
        segmented = self.sam.segment(
            [images[i] for i in with_boxes], [[box for _, box in named[i]] for i in with_boxes]
        )
        for i, (masks, scores) in zip(with_boxes, segmented, strict=True):
            source = sources[i]
            for (key, box), mask, score in zip(named[i], masks, scores, strict=True):
                problem = self.gate.problem(mask, float(score), box)
                if problem is not None:
                    self._dropped[source.sha256][problem] += 1
                    continue
                rows, cols = self.gate.grown(box, mask.shape)
                kept = np.zeros_like(mask)
                kept[rows, cols] = mask[rows, cols]  # what leaked past the grown box is not this object
                source.labels.append(
                    ObjectLabel(
                        category=key, bbox=bbox_of(kept), mask=kept, score=float(score), source=LABEL_SOURCE
                    )
                )

    def _named_detections(
        self, sources: list[SourceSample], images: list[Any]
    ) -> list[list[tuple[str, Box]]]:
        """Per photo, (vocabulary key, box) of the objects worth segmenting, largest first."""
        detections = self.florence.detect(images)
        unnamed: list[tuple[int, Detection]] = []
        named: list[list[tuple[str, Box]]] = [[] for _ in sources]
        for i, (source, found) in enumerate(zip(sources, detections, strict=True)):
            dropped = self._dropped[source.sha256]
            area = source.width * source.height
            for detection in sorted(found, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1])):
                x0, y0, x1, y1 = detection.box
                if (x1 - x0) * (y1 - y0) < self.min_box_area * area:
                    dropped["box_too_small"] += 1
                    continue
                key = vocabulary_key(detection.name)
                if key is not None:
                    named[i].append((key, detection.box))
                elif " ".join(detection.name.lower().split()) in UNREMOVABLE:
                    dropped["not_removable"] += 1
                elif sum(j == i for j, _ in unnamed) < self.max_objects:  # largest first
                    unnamed.append((i, detection))
                else:
                    dropped["unnamed"] += 1
        if unnamed:
            answers = self.florence.region_names([images[i] for i, _ in unnamed], [d.box for _, d in unnamed])
            for (i, detection), answer in zip(unnamed, answers, strict=True):
                key = vocabulary_key(answer)
                if key is None:
                    self._dropped[sources[i].sha256]["unnamed"] += 1
                else:
                    named[i].append((key, detection.box))
        return [self._distinct(source, found) for source, found in zip(sources, named, strict=True)]

    def _distinct(self, source: SourceSample, found: list[tuple[str, Box]]) -> list[tuple[str, Box]]:
        """Largest first, without a second box on the same object (Florence-2 can name one thing twice)."""
        found = sorted(found, key=lambda f: -(f[1][2] - f[1][0]) * (f[1][3] - f[1][1]))
        kept: list[tuple[str, Box]] = []
        for key, box in found:
            if any(_iou(box, other) > 0.8 for _, other in kept):
                self._dropped[source.sha256]["duplicate_box"] += 1
            elif len(kept) == self.max_objects:
                self._dropped[source.sha256]["over_max_objects"] += 1
            else:
                kept.append((key, box))
        return kept
