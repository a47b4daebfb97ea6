"""Model-backend object edits at 1024 px on one GPU: Florence-2-large + SAM-2.1-large + FLUX.1-Fill-dev at
full size with random weights (fine for speed and memory), through the engine's real Ray graph (issues 11,
13). `--task` picks the edit: subject_removal (the default), subject_replacement or background_change.

    # on one GPU (an H200): full-size models built directly on the GPU from their configs
    python bench/model_backend_edits.py --sources 60 --out /tmp/bench-models
    python bench/model_backend_edits.py --task subject_replacement --sources 60 --out /tmp/bench-replace
    # the CPU dry run with tiny models (tests/model_backends/test_bench_model_backend.py runs it)
    python bench/model_backend_edits.py --tiny --sources 3 --out /tmp/bench-tiny

The sources are the shipped example photos scaled to 1024 px on the long side (flipped and brightened a
little per round, so each is distinct), with their COCO masks. The two model plug-ins are the engine's own
(annotators/objects_models.py, annotators/inpaint_models.py), announced through the `step1x_data.plugins`
entry points with their models built here instead of loaded: the objects annotator runs Florence-2's
<OD> (a fixed --od-tokens per answer, as random weights never stop on their own), region captions for a
third of the boxes and SAM-2 on the labelled boxes, exactly the production work; the labelled masks are then
kept as the objects (random SAM-2 masks are noise), so the inpainter sees real object sizes.
subject_replacement adds the `grounding` tool (annotators/grounding_models.py): Florence-2's open-vocabulary
detection of the new object's name on every painted target, answered at a fixed --ground-tokens; the box
where the object was painted is then returned as what it found (random weights find nothing, and the task
would reject every pair). background_change paints the whole background around the subject's matte.
Random weights paint noise, which no gate of these tasks refuses once the fill checks are off (below).

Reported: pairs per GPU-hour (the whole run, and steady state from the first pair written to the last), the
GPU's busy fraction in steady state (nvidia-smi's utilization.gpu sampled every 200 ms), the peak memory of
each actor (torch.cuda.max_memory_allocated / reserved), and each model plug-in's busy time (its calls,
synchronised) as a share of the steady window and of the two plug-ins' time; all in OUT/results.json.
`--executor local` runs the same steps in one process without Ray (nothing overlaps: a lower bound).

Packages: the engine's own (pyproject.toml) with the `models` extra; `--check` prints what is missing. On the
device machine (Python 3.12, transformers 5.17) carry, as tested here: diffusers 0.42.1, importlib_metadata
10.2.0, lazy-importer 0.1.0, transformers 5.23.0, regex, webdataset 1.0.2, braceexpand, pycocotools 2.0.11,
openai 3.57.0 with httpx2, httpcore2, truststore, jiter, pydantic 2.14.4, pydantic-core, annotated-types,
typing-inspection, typing-extensions 4.16, sniffio; and for Ray: ray 2.60.0 (a 79 MB wheel), jsonschema,
jsonschema-specifications, referencing, rpds-py, packaging >= 24.2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from random_models import florence_parts, flux_fill, sam2_parts  # noqa: E402

from annotators.grounding_models import Florence2Grounding  # noqa: E402
from annotators.inpaint_models import DiffusionInpainter, FluxFill  # noqa: E402
from annotators.objects_models import Box, Florence2, FlorenceSam2Objects, Sam2Boxes  # noqa: E402
from annotators.pretrained import compiling, device, inference_dtype  # noqa: E402
from annotators.registry import Resources  # noqa: E402
from model.random_init import built_on  # noqa: E402
from tasks.records import SourceSample  # noqa: E402
from tasks.tools import Found  # noqa: E402

PHOTOS = ROOT / "examples" / "photos"
SIZE_ENV = "STEP1X_BENCH_SIZE"  # "full" or "tiny": which models the bench plug-ins build
STATS_ENV = "STEP1X_BENCH_STATS"  # folder the plug-ins write their timings and memory into
OD_TOKENS_ENV = "STEP1X_BENCH_OD_TOKENS"
INPAINT_GPUS_ENV = "STEP1X_BENCH_INPAINT_GPUS"
STEPS_ENV = "STEP1X_BENCH_STEPS"
GROUND_TOKENS_ENV = "STEP1X_BENCH_GROUND_TOKENS"
# What each edit measures, and its task parameters. Random weights paint noise: the removal fill's checks
# would refuse it (their measurements still run on every fill, in the figures; only the verdict is off).
TASKS: dict[str, dict[str, Any]] = {
    "subject_removal": {"check_fill": False},
    "subject_replacement": {"check_fill": False},
    "background_change": {},
}
ENGINE_MODULES = ("webdataset", "pycocotools", "openai", "diffusers", "transformers", "pyarrow", "cv2")
# Read when the engine imports this module as the plug-ins' home (`model_backend_edits`, after main() set
# the variable; the script itself runs as __main__): it sizes the models and the plug-ins' resources.
TINY = os.environ.get(SIZE_ENV) == "tiny"


def _grey_guided_filter(guide: Any, source: Any, radius: int, eps: float) -> Any:
    """He et al.'s guided filter with the guide's grey level, from box filters: stands in for
    cv2.ximgproc.guidedFilter where OpenCV lacks its contrib modules (the GPU machine's OpenCV; the
    project installs opencv-contrib). Its cost is of the same order; only background_change's matte
    refinement calls it, and random weights make its output meaningless anyway."""
    import cv2

    grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY) if guide.ndim == 3 else guide
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(values: Any) -> Any:
        return cv2.boxFilter(values, -1, size)

    mean_i, mean_p = mean(grey), mean(source)
    a = (mean(grey * source) - mean_i * mean_p) / (mean(grey * grey) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return mean(a) * grey + mean(b)


def _without_opencv_contrib() -> None:
    import cv2

    if not hasattr(cv2, "ximgproc"):
        cv2.ximgproc = SimpleNamespace(guidedFilter=_grey_guided_filter)


_without_opencv_contrib()  # in every process that loads these plug-ins, the edit actor's included

# The entry points name these: each plug-in module is an object with BACKENDS.
OBJECTS_PLUGIN = SimpleNamespace(
    BACKENDS={"offline": "annotators.objects:OfflineObjects", "models": "model_backend_edits:RandomObjects"}
)
INPAINT_PLUGIN = SimpleNamespace(
    BACKENDS={
        "offline": "annotators.inpaint:ClassicalInpainter",
        "models": "model_backend_edits:RandomFluxFill",
    }
)
GROUNDING_PLUGIN = SimpleNamespace(
    BACKENDS={
        "offline": "annotators.grounding:DistinctGrounding",
        "models": "model_backend_edits:RandomGrounding",
    }
)


# --- models with random weights, built where they run ---------------------------------------------------


def build_florence(on: str, dtype: Any) -> Florence2:
    from transformers import Florence2ForConditionalGeneration

    config, processor = florence_parts(TINY)
    with built_on(on, dtype):
        model = Florence2ForConditionalGeneration(config).eval()
    return FixedLengthFlorence(model, processor, max_new_tokens=int(os.environ.get(OD_TOKENS_ENV, "64")))


class FixedLengthFlorence(Florence2):
    """Random weights never emit the end token: every answer runs exactly its token budget, the length of a
    real one (an <OD> answer is ~7 tokens per object; a region caption a few words)."""

    def generate(self, images: list[Any], prompts: list[str], max_new_tokens: int) -> list[str]:
        self.model.generation_config.min_new_tokens = max_new_tokens
        return super().generate(images, prompts, max_new_tokens)


def build_sam2(on: str, dtype: Any) -> Sam2Boxes:
    from transformers import Sam2Config, Sam2Model, Sam2Processor

    configs, images = sam2_parts(TINY)
    with built_on(on, dtype):
        model = Sam2Model(Sam2Config(**configs)).eval()
    return Sam2Boxes(model, Sam2Processor(image_processor=images, target_size=configs["image_size"]))


# --- the bench plug-ins: the production classes with these models, timed --------------------------------


class Stats:
    """Each timed call's start, end and the process's peak memory, appended to a file in STATS_ENV."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.path = Path(os.environ[STATS_ENV]) / f"{role}-{os.getpid()}.jsonl"

    @contextlib.contextmanager
    def timed(self, **extra: Any) -> Iterator[None]:
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.synchronize()
        start = time.time()
        yield
        if cuda:
            torch.cuda.synchronize()
        row = {"role": self.role, "pid": os.getpid(), "start": start, "end": time.time(), **extra}
        if cuda:
            row["peak_allocated"] = torch.cuda.max_memory_allocated()
            row["peak_reserved"] = torch.cuda.max_memory_reserved()
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


class RandomObjects(FlorenceSam2Objects):
    resources = Resources(num_cpus=1.0, num_gpus=0.0 if TINY else 0.2, batch_size=8)
    models = ()

    def __init__(self, models_dir: str | None = None) -> None:
        on = device()
        dtype = inference_dtype(on)
        super().__init__(None, florence=build_florence(on, dtype), sam=build_sam2(on, dtype))
        self.stats = Stats("objects")
        self._truth: dict[str, list] = {}

    def annotate(self, sources: list[SourceSample]) -> None:
        self._truth = {source.sha256: source.labels for source in sources}
        for source in sources:
            source.labels = []  # so the production path looks at every photo
        with self.stats.timed(sources=len(sources)):
            super().annotate(sources)
        for source in sources:
            source.labels = self._truth[source.sha256]

    def _named_detections(
        self, sources: list[SourceSample], images: list[Any]
    ) -> list[list[tuple[str, Box]]]:
        self.florence.detect(images)
        named = [
            [(label.category, tuple(float(v) for v in label.bbox)) for label in self._truth[source.sha256]]
            for source in sources
        ]
        asked = [(i, box) for i, found in enumerate(named) for _, box in found[::3]]
        if asked:
            self.florence.region_names([images[i] for i, _ in asked], [box for _, box in asked])
        return named


class RandomFluxFill(DiffusionInpainter):
    # The production plug-in's share unless --inpaint-gpus says otherwise (0.3 puts two inpainter actors
    # on one GPU).
    share = os.environ.get(INPAINT_GPUS_ENV, str(DiffusionInpainter.resources.num_gpus))
    resources = Resources(num_cpus=1.0, num_gpus=0.0 if TINY else float(share))
    models = ()

    def __init__(self, models_dir: str | None = None) -> None:
        on = device()
        engine = FluxFill(
            flux_fill(on, inference_dtype(on), TINY),
            steps=int(os.environ.get(STEPS_ENV, "28")),
            compile_blocks=compiling(on),
        )
        super().__init__(None, engine=engine)
        self.stats = Stats("inpaint")

    def _paint(self, window: Any, hole: Any, prompt: str | None, seed: int) -> Any:
        with self.stats.timed(canvas=f"{window.shape[1]}x{window.shape[0]}"):
            return super()._paint(window, hole, prompt, seed)


class RandomGrounding(Florence2Grounding):
    resources = Resources(num_cpus=1.0, num_gpus=0.0 if TINY else 0.15, memory_gb=4)
    models = ()

    def __init__(self, models_dir: str | None = None) -> None:
        on = device()
        tokens = int(os.environ.get(GROUND_TOKENS_ENV, "12"))
        super().__init__(None, florence=build_florence(on, inference_dtype(on)), max_new_tokens=tokens)
        self.stats = Stats("grounding")

    def __call__(self, image: Any, phrase: str, region: tuple[int, int, int, int]) -> list[Found]:
        with self.stats.timed():
            super().__call__(image, phrase, region)
        return [Found(region, 1.0, phrase)]


# --- sources, GPU sampling, the run ---------------------------------------------------------------------


def make_sources(folder: Path, count: int, side: int) -> None:
    """`count` distinct photos `side` px on the long side with their COCO masks (labels.coco.json)."""
    import numpy as np
    from PIL import Image, ImageEnhance
    from pycocotools import mask as coco_mask

    folder.mkdir(parents=True, exist_ok=True)
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    names = {c["id"]: c for c in coco["categories"]}
    images, annotations = [], []
    for i in range(count):
        entry = coco["images"][i % len(coco["images"])]
        round_ = i // len(coco["images"])
        photo = Image.open(PHOTOS / entry["file_name"]).convert("RGB")
        scale = side / max(photo.size)
        size = (round(photo.width * scale), round(photo.height * scale))
        photo = ImageEnhance.Brightness(photo.resize(size, Image.Resampling.LANCZOS)).enhance(
            1 + 0.01 * round_
        )
        flip = round_ % 2 == 1
        if flip:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        name = f"src_{i:03d}.jpg"
        photo.save(folder / name, quality=95)
        images.append({"id": i + 1, "file_name": name, "width": size[0], "height": size[1]})
        for annotation in coco["annotations"]:
            if annotation["image_id"] != entry["id"]:
                continue
            rles = coco_mask.frPyObjects(annotation["segmentation"], entry["height"], entry["width"])
            mask = Image.fromarray(coco_mask.decode(coco_mask.merge(rles)) * 255).resize(
                size, Image.Resampling.NEAREST
            )
            mask = np.asarray(mask) > 127
            if flip:
                mask = mask[:, ::-1]
            rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode()
            x, y, w, h = coco_mask.toBbox(rle).tolist()
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": annotation["category_id"],
                    "segmentation": rle,
                    "bbox": [x, y, w, h],
                    "area": float(mask.sum()),
                    "iscrowd": 0,
                }
            )
    labels = {"images": images, "annotations": annotations, "categories": list(names.values())}
    (folder / "labels.coco.json").write_text(json.dumps(labels))


class GpuSampler:
    """nvidia-smi's utilization.gpu (the share of the last sample period a kernel ran) every 200 ms."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # time, utilization %, memory used MiB
        self.process: subprocess.Popen | None = None
        if shutil.which("nvidia-smi"):
            self.process = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "200",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            fields = [f.strip() for f in line.split(",")]
            with contextlib.suppress(ValueError):
                self.samples.append((time.time(), float(fields[0]), float(fields[1])))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()

    def busy(self, start: float, end: float) -> float | None:
        inside = [u for t, u, _ in self.samples if start <= t <= end]
        return statistics.fmean(inside) / 100 if inside else None


def announce_plugins(site: Path) -> None:
    """A dist-info on PYTHONPATH announcing this module as the `objects`, `inpaint` and `grounding`
    plug-ins; Ray's workers inherit the variable, so they resolve the same classes."""
    info = site / "step1x_bench_plugins-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: step1x-bench-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[step1x_data.plugins]\n"
        "objects = model_backend_edits:OBJECTS_PLUGIN\n"
        "inpaint = model_backend_edits:INPAINT_PLUGIN\n"
        "grounding = model_backend_edits:GROUNDING_PLUGIN\n"
    )
    paths = [str(site), str(ROOT / "bench"), str(ROOT)]
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    sys.path[:0] = paths


def missing_modules(executor: str) -> list[str]:
    missing = []
    for module in (*ENGINE_MODULES, *(("ray.data",) if executor == "ray" else ())):
        try:
            importlib.import_module(module)
        except ImportError as error:
            missing.append(f"{module}: {error}")
    return missing


ROLES = ("objects", "inpaint", "grounding")  # the timed plug-ins (Stats roles)


def summarise(
    stats_dir: Path,
    marks: list[tuple[float, int]],
    started: float,
    ended: float,
    sampler: GpuSampler,
    summary: Any,
) -> dict[str, Any]:
    """The figures of a run, from the plug-ins' timings, the driver's progress marks and the GPU samples."""
    rows = [json.loads(line) for path in stats_dir.glob("*.jsonl") for line in path.read_text().splitlines()]
    written = [t for t, samples in marks if samples > 0]
    steady_start = min(written) if written else started
    steady_end = max(t for t, _ in marks) if marks else ended
    steady_pairs = summary.samples - min((s for t, s in marks if t == steady_start), default=0)
    steady = max(steady_end - steady_start, 1e-9)

    def busy(role: str, start: float, end: float) -> float:
        """Seconds of the window [start, end] that the plug-in spent inside its timed calls."""
        return sum(max(0.0, min(r["end"], end) - max(r["start"], start)) for r in rows if r["role"] == role)

    peaks = {}
    for role in ROLES:
        mine = [r for r in rows if r["role"] == role and "peak_reserved" in r]
        if mine:
            peaks[role] = {
                "allocated_gib": round(max(r["peak_allocated"] for r in mine) / 2**30, 2),
                "reserved_gib": round(max(r["peak_reserved"] for r in mine) / 2**30, 2),
            }
    inpaint_calls = [r for r in rows if r["role"] == "inpaint"]
    canvases: dict[str, int] = {}
    for r in inpaint_calls:
        canvases[r["canvas"]] = canvases.get(r["canvas"], 0) + 1
    totals = {role: busy(role, started, ended) for role in ROLES}
    gpu_busy = sampler.busy(steady_start, steady_end)
    return {
        "sources": summary.read,
        "pairs": summary.samples,
        "rejects": dict(summary.rejects),
        "run_seconds": round(ended - started, 1),
        "pairs_per_gpu_hour_whole_run": round(summary.samples / (ended - started) * 3600, 1),
        "steady_seconds": round(steady, 1),
        "steady_pairs": steady_pairs,
        # A run too short to have a steady state (pairs arriving together from one batch) has no such rate.
        "pairs_per_gpu_hour_steady": round(steady_pairs / steady * 3600, 1)
        if steady >= 1 and steady_pairs
        else None,
        "gpu_busy_steady": None if gpu_busy is None else round(gpu_busy, 3),
        "peak_memory": peaks,
        "inpaint_calls": len(inpaint_calls),
        "inpaint_seconds_per_call": round(statistics.fmean(r["end"] - r["start"] for r in inpaint_calls), 3)
        if inpaint_calls
        else None,
        "inpaint_canvases": canvases,
        "inpaint_busy_share_of_steady": round(busy("inpaint", steady_start, steady_end) / steady, 3),
        "objects_busy_share_of_steady": round(busy("objects", steady_start, steady_end) / steady, 3),
        "grounding_calls": sum(1 for r in rows if r["role"] == "grounding"),
        "grounding_busy_share_of_steady": round(busy("grounding", steady_start, steady_end) / steady, 3),
        # Over the whole run: of the time any model plug-in was working, the inpainter's part.
        "inpaint_share_of_model_time": round(totals["inpaint"] / max(sum(totals.values()), 1e-9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="subject_removal")
    parser.add_argument("--sources", type=int, default=60)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (the dry run)")
    parser.add_argument("--side", type=int, default=1024, help="long side of the source photos")
    parser.add_argument("--steps", type=int, default=28, help="FLUX.1-Fill denoising steps")
    parser.add_argument("--od-tokens", type=int, default=64, help="tokens of each <OD> answer")
    parser.add_argument(
        "--ground-tokens", type=int, default=12, help="tokens of each grounding answer (a name and a box)"
    )
    parser.add_argument("--executor", choices=("ray", "local"), default="ray")
    parser.add_argument(
        "--inpaint-gpus",
        type=float,
        help="GPU share each inpainter actor takes (default: the production plug-in's)",
    )
    parser.add_argument("--check", action="store_true", help="list the missing packages and stop")
    args = parser.parse_args()
    if args.inpaint_gpus is None:
        args.inpaint_gpus = DiffusionInpainter.resources.num_gpus
    missing = missing_modules(args.executor)
    if missing or args.check:
        print("\n".join(missing) or "every package the run imports is here")
        sys.exit(1 if missing else 0)

    os.environ.update(
        {
            SIZE_ENV: "tiny" if args.tiny else "full",
            OD_TOKENS_ENV: str(args.od_tokens),
            STEPS_ENV: str(args.steps),
            GROUND_TOKENS_ENV: str(args.ground_tokens),
            INPAINT_GPUS_ENV: str(args.inpaint_gpus),
        }
    )
    shutil.rmtree(args.out, ignore_errors=True)
    stats_dir = args.out / "stats"
    stats_dir.mkdir(parents=True)
    os.environ[STATS_ENV] = str(stats_dir)
    announce_plugins(Path(tempfile.mkdtemp(prefix="step1x-bench-site-")))
    make_sources(args.out / "sources", args.sources, args.side)

    from pipelines.config import RunConfig
    from pipelines.runner import RunSummary, run

    marks: list[tuple[float, int]] = []

    def mark(summary: RunSummary, _todo: int) -> None:
        marks.append((time.time(), summary.samples))

    config = RunConfig(
        task=args.task,
        source=str(args.out / "sources"),
        out=str(args.out / "run"),
        backend="models",
        max_side=args.side,
        task_params=TASKS[args.task],
    )
    sampler = GpuSampler()
    started = time.time()
    try:
        summary = run(config, executor=args.executor, on_progress=mark)
    finally:
        sampler.stop()
    result = summarise(stats_dir, marks, started, time.time(), sampler, summary)
    import torch

    result["machine"] = {
        "host": platform.node(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)",
        "torch": torch.__version__,
        "task": args.task,
        "size": "tiny" if args.tiny else "full",
        "steps": args.steps,
        "od_tokens": args.od_tokens,
        "ground_tokens": args.ground_tokens,
        "executor": args.executor,
        "inpaint_gpus": args.inpaint_gpus,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
