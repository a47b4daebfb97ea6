"""Speed and memory of the appearance categories' model backends (color_alteration, material_modification,
style_transfer with --backend models): Depth Anything V2 through transformers, Stable Diffusion 1.5 with
the depth and canny ControlNets through diffusers.

Random weights in the real classes, built in the upstream folder layout and loaded by the real tools:
`--size full` has the released architectures (Depth-Anything-V2-Large, SD 1.5 UNet / VAE / CLIP text
encoder, ControlNet v1.1), `--size tiny` the test configurations (CPU, seconds). Each task runs on the
example photos upscaled to --side pixels; every call of a model tool is timed. Random weights make noise,
so the tasks' quality gates are opened (OPEN_GATES) and the figures are edits per GPU-hour (each a full
pipeline run at the model's 512 px working size), not pairs kept; with trained weights the gates drop some.

    python bench/appearance_models.py --size full --side 1024 --photos 5 --repeat 4 --steps 25   # on a GPU
    python bench/appearance_models.py --size tiny --side 256 --photos 1 --steps 2       # on a CPU

Needs torch, transformers, diffusers and OpenCV (and this repository's tasks/ and annotators/); not Ray,
webdataset or pycocotools.

Prints a markdown table (paste it into bench/RESULTS.md with the command, machine and date).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from annotators.appearance_models import ControlNetPainter
from annotators.registry import resolve
from tasks.masks import bbox_of
from tasks.records import ObjectLabel, SourceSample
from tasks.registry import load_task
from tasks.tools import Tools

PHOTOS = Path(__file__).resolve().parents[1] / "examples" / "photos"
TASKS = ("color_alteration", "material_modification", "style_transfer")

# (Depth Anything backbone, SD 1.5 UNet / ControlNet / VAE / CLIP text) sizes.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "dinov2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
        "depth_head": dict(
            reassemble_hidden_size=32,
            neck_hidden_sizes=[16, 32],
            reassemble_factors=[2, 1],
            fusion_hidden_size=16,
            head_hidden_size=8,
        ),
        "out_features": ["stage1", "stage2"],
        "processor_size": 56,
        "unet": dict(
            block_out_channels=(16, 32),
            layers_per_block=1,
            sample_size=16,
            cross_attention_dim=16,
            norm_num_groups=8,
            attention_head_dim=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        ),
        "controlnet": dict(
            block_out_channels=(16, 32),
            layers_per_block=1,
            cross_attention_dim=16,
            conditioning_embedding_out_channels=(8, 16),
            norm_num_groups=8,
            attention_head_dim=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        ),
        "vae": dict(
            block_out_channels=(16, 32),
            norm_num_groups=8,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
        ),
        "text": dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=16,
        ),
    },
    "full": {
        # Depth-Anything-V2-Large-hf: DINOv2 ViT-L/14 and its DPT head.
        "dinov2": dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
        ),
        "depth_head": dict(
            reassemble_hidden_size=1024,
            neck_hidden_sizes=[256, 512, 1024, 1024],
            reassemble_factors=[4, 2, 1, 0.5],
            fusion_hidden_size=256,
            head_hidden_size=32,
        ),
        "out_features": ["stage5", "stage12", "stage18", "stage24"],
        "processor_size": 518,
        # stable-diffusion-v1-5 and the ControlNet v1.1 models (control_v11f1p_sd15_depth, ..._canny).
        "unet": dict(
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            sample_size=64,
            cross_attention_dim=768,
            attention_head_dim=8,
        ),
        "controlnet": dict(
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            conditioning_embedding_out_channels=(16, 32, 96, 256),
        ),
        "vae": dict(
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            sample_size=512,
        ),
        "text": dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            projection_dim=768,
        ),
    },
}


def clip_tokenizer() -> Any:
    """A CLIPTokenizer with a byte-level vocabulary and no merges (every character is a token): prompts
    become ids without the released vocabulary (random weights make the ids meaningless anyway)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in bytes_to_unicode().values():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_models(folder: Path, size: str = "tiny", device: str = "cpu") -> Path:
    """Random-initialised models of ``size`` in the folders the model backends load, under ``folder``.
    With ``device="cuda"`` the weights are created on the GPU (seconds, not minutes, at full size)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    spec = SIZES[size]
    torch.manual_seed(0)
    with torch.device(device):
        backbone = Dinov2Config(
            **spec["dinov2"],
            image_size=spec["processor_size"],
            patch_size=14,
            out_features=spec["out_features"],
            reshape_hidden_states=False,
        )
        depth = DepthAnythingForDepthEstimation(
            DepthAnythingConfig(backbone_config=backbone, patch_size=14, **spec["depth_head"])
        )
        tokenizer = clip_tokenizer()
        text = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                max_position_embeddings=77,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
                **spec["text"],
            )
        )
        unet = UNet2DConditionModel(in_channels=4, out_channels=4, **spec["unet"])
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, **spec["vae"])
        controlnets = {
            name: ControlNetModel(in_channels=4, **spec["controlnet"])
            for name in ("control_v11f1p_sd15_depth", "control_v11p_sd15_canny")
        }
    if device != "cpu":  # the backends run bf16 on a GPU: half the bytes to write and read back
        for model in (depth, text, unet, vae, *controlnets.values()):
            model.to(torch.bfloat16)
    depth.save_pretrained(folder / "Depth-Anything-V2-Large-hf")
    side = spec["processor_size"]
    DPTImageProcessor(
        do_resize=True,
        size={"height": side, "width": side},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        do_pad=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder / "Depth-Anything-V2-Large-hf")
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1
    )
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder / "stable-diffusion-v1-5", safe_serialization=True)
    for name, model in controlnets.items():
        model.save_pretrained(folder / name, safe_serialization=True)
    return folder


def polygon_mask(segmentation: list[list[float]], height: int, width: int) -> np.ndarray:
    """A COCO polygon segmentation as a bool mask (the example labels are polygons)."""
    mask = np.zeros((height, width), np.uint8)
    for polygon in segmentation:
        cv2.fillPoly(mask, [np.round(np.array(polygon).reshape(-1, 2)).astype(np.int32)], 1)
    return mask > 0


def example_sources(side: int, count: int) -> list[SourceSample]:
    """The example photos (with their labels) scaled so their longer side is ``side``."""
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    sources = []
    for entry in coco["images"][:count]:
        image = cv2.cvtColor(cv2.imread(str(PHOTOS / entry["file_name"])), cv2.COLOR_BGR2RGB)
        scale = side / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        labels = []
        for annotation in (a for a in coco["annotations"] if a["image_id"] == entry["id"]):
            mask = polygon_mask(annotation["segmentation"], image.shape[0], image.shape[1])
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            if mask.any():
                box = bbox_of(mask)
                labels.append(ObjectLabel(category=names[annotation["category_id"]], bbox=box, mask=mask))
        sources.append(
            SourceSample(
                uri=entry["file_name"],
                sha256=f"{entry['id']:064d}",
                image=cv2.resize(image, size, interpolation=cv2.INTER_CUBIC),
                labels=labels,
            )
        )
    return sources


class Timed:
    """A tool whose calls are timed (CUDA synchronised, so the time is the GPU's)."""

    def __init__(self, tool: Any, seconds: dict[str, list[float]]) -> None:
        self.tool, self.seconds = tool, seconds
        self.name, self.version = tool.name, tool.version

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        start = time.perf_counter()
        result = self.tool(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds[self.name].append(time.perf_counter() - start)
        return result


# The tasks' quality gates, opened: the speed of an edit does not depend on whether it is kept, and with
# them open every labelled object of the examples is edited (random weights would fail the checks anyway).
OPEN_GATES: dict[str, dict[str, Any]] = {
    "color_alteration": dict(
        min_share=0.0, max_surround=1.0, min_seam_support=0.0, max_area=1.0, max_objects=4
    ),
    "material_modification": dict(
        max_pattern=100.0,
        min_outline_support=0.0,
        min_compactness=0.0,
        max_area=1.0,
        max_border_cut=1.0,
        max_objects=4,
    ),
    "style_transfer": dict(),
}


def bench_task(task_name: str, models: str, sources: list[SourceSample]) -> dict[str, Any]:
    import torch

    task = load_task(task_name)
    seconds: dict[str, list[float]] = defaultdict(list)
    load_start = time.perf_counter()
    tools = Tools(**{name: Timed(resolve(name, "models")(models), seconds) for name in task.TOOLS})
    load_seconds = time.perf_counter() - load_start
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    params = dataclasses.replace(task.Params(), **OPEN_GATES[task_name])
    results: dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    for index, source in enumerate(sources):
        result = task.make_pairs(source, params, tools, seed=index)
        results["pairs" if isinstance(result, list) else f"skip:{result.reason}"] += (
            len(result) if isinstance(result, list) else 1
        )
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    edit_tool = {
        "color_alteration": "controlnet_depth_recolour",
        "material_modification": "controlnet_depth_retexture",
        "style_transfer": "controlnet_canny_stylise",
    }[task_name]
    edits = len(seconds[edit_tool])
    return {
        "task": task_name,
        "sources": len(sources),
        "load_s": round(load_seconds, 1),
        "edits": edits,
        "s_per_edit": round(sum(seconds[edit_tool]) / max(edits, 1), 3),
        "depth_calls": len(seconds["depth_anything"]),
        "s_per_depth": round(sum(seconds["depth_anything"]) / max(len(seconds["depth_anything"]), 1), 3),
        "tool_share": round(sum(sum(v) for v in seconds.values()) / max(total, 1e-9), 3),
        "edits_per_gpu_hour": round(3600 * edits / max(total, 1e-9)),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if torch.cuda.is_available()
        else None,
        "outcomes": dict(results),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--side", type=int, default=1024, help="longer side of the sources")
    parser.add_argument("--photos", type=int, default=5, help="example photos used (at most 5)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="passes over the photos (more edits, steadier figures)"
    )
    parser.add_argument("--steps", type=int, default=25, help="denoising steps per ControlNet edit")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--models", help="a models folder to load instead of building random weights")
    args = parser.parse_args(argv)

    import torch

    steps, ControlNetPainter.steps = ControlNetPainter.steps, args.steps
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with tempfile.TemporaryDirectory(prefix="appearance-models-") as scratch:
            build_start = time.perf_counter()
            models = args.models or str(build_models(Path(scratch), args.size, device))
            build_seconds = time.perf_counter() - build_start
            sources = example_sources(args.side, args.photos) * args.repeat
            rows = [bench_task(task, models, sources) for task in args.tasks]
    finally:
        ControlNetPainter.steps = steps
    machine = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    print(
        f"machine: {machine}, torch {torch.__version__}, size {args.size}, {args.steps} steps, "
        f"sources {args.photos} at {args.side} px, models built in {build_seconds:.0f} s"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print(
            "| "
            + " | ".join(json.dumps(row[k]) if isinstance(row[k], dict) else str(row[k]) for k in keys)
            + " |"
        )
    return rows


if __name__ == "__main__":
    main()
