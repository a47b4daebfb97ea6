"""Throughput of text_modification, portrait_beautification and motion_change.

offline: each task's make_pairs with its offline tools on real inputs, in one process held to one CPU
thread (OpenCV, onnxruntime and LiteRT each told so), so the figure is per CPU core. Decoding and shard
writing are not included (bench/engine_throughput.py measures the engine around a task).

    python bench/text_portrait_motion.py offline --text DIR --photos DIR --video FILE [--limit N]

raft: the models backend of the `flow` tool, torchvision's RAFT with random full-size weights written to a
models folder and loaded as a run would load them; frame pairs per second at a given size and device.

    python bench/text_portrait_motion.py raft --size 1280x720 --pairs 20            # on a GPU
    python bench/text_portrait_motion.py raft --size 160x128 --pairs 2 --arch raft_small  # tiny, CPU

Prints a markdown table (paste it into bench/RESULTS.md with the command, machine and date).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy, onnxruntime and torch start their pools

import cv2  # noqa: E402
import numpy as np  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _images(folder: Path, limit: int) -> list[np.ndarray]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def _frame_pairs(video: Path, limit: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    import av

    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    starts = np.linspace(0, len(frames) - gap - 1, limit).round().astype(int)
    return [(frames[i], frames[i + gap]) for i in starts]


def _time_task(name: str, sources: list, tools: object) -> tuple[int, int, float]:
    """(sources, pairs kept, seconds) for one task's make_pairs over its sources."""
    from tasks.records import Skip, SourceSample
    from tasks.registry import load_task

    task = load_task(name)
    params = task.Params()
    kept = 0
    start = time.perf_counter()
    for index, item in enumerate(sources):
        if isinstance(item, tuple):
            source = SourceSample(uri=f"pair{index}", sha256=f"{index}", image=item[0])
            source.partners = [SourceSample(uri=f"pair{index}b", sha256=f"{index}", image=item[1])]
        else:
            source = SourceSample(uri=f"photo{index}", sha256=f"{index}", image=item)
        result = task.make_pairs(source, params, tools, seed=index)
        kept += 0 if isinstance(result, Skip) else len(result)
    return len(sources), kept, time.perf_counter() - start


def offline(args: argparse.Namespace) -> None:
    from annotators.faces import MediaPipeFaces
    from annotators.flow import DISFlow
    from annotators.ocr import RapidOCRText
    from annotators.persons import MediaPipePersons
    from annotators.pose import MediaPipePose
    from annotators.text_render import PillowTextRenderer
    from tasks.tools import Tools

    cv2.setNumThreads(1)
    faces, persons = MediaPipeFaces(), MediaPipePersons()
    runs = []
    if args.text:
        tools = Tools(ocr=RapidOCRText(threads=1), text_render=PillowTextRenderer())
        runs.append(
            ("text_modification", _time_task("text_modification", _images(args.text, args.limit), tools))
        )
    if args.photos:
        tools = Tools(faces=faces, persons=persons)
        photos = _images(args.photos, args.limit)
        runs.append(("portrait_beautification", _time_task("portrait_beautification", photos, tools)))
    if args.video:
        tools = Tools(flow=DISFlow(), persons=persons, pose=MediaPipePose(), faces=faces)
        pairs = _frame_pairs(args.video, args.limit, args.gap)
        runs.append(("motion_change", _time_task("motion_change", pairs, tools)))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; one thread per task"
    )
    print("| task | sources | pairs kept | seconds | sources / s / core | pairs / s / core |")
    print("|---|---|---|---|---|---|")
    for name, (count, kept, seconds) in runs:
        print(f"| {name} | {count} | {kept} | {seconds:.1f} | {count / seconds:.2f} | {kept / seconds:.2f} |")


def raft(args: argparse.Namespace) -> None:
    import torch
    from safetensors.torch import save_file
    from torchvision.models import optical_flow

    from annotators.flow_models import RAFTFlow

    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as models:
        folder = Path(models) / args.arch
        folder.mkdir()
        weights = getattr(optical_flow, args.arch)(weights=None).state_dict()
        save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "model.safetensors"))
        tool = RAFTFlow(models, max_side=max(width, height), iterations=args.iterations)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    moved = np.roll(frame, 3, axis=1)
    tool(frame, moved)  # warm-up: kernels chosen, memory allocated
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.pairs):
        flow = tool(frame, moved)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assert flow.shape == (height, width, 2)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print("| arch | size | iterations | device | pairs | seconds | pairs / s | pairs / GPU-hour | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    rate = args.pairs / seconds
    print(
        f"| {args.arch} | {width}x{height} | {args.iterations} | {device} | {args.pairs} | {seconds:.2f} | "
        f"{rate:.2f} | {rate * 3600:.0f} | {peak:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    off = sub.add_parser("offline")
    off.add_argument("--text", type=Path)
    off.add_argument("--photos", type=Path)
    off.add_argument("--video", type=Path)
    off.add_argument("--limit", type=int, default=24)
    off.add_argument("--gap", type=int, default=10, help="frames between the two frames of a pair")
    flow = sub.add_parser("raft")
    flow.add_argument("--size", default="1280x720")
    flow.add_argument("--pairs", type=int, default=20)
    flow.add_argument("--iterations", type=int, default=12)
    flow.add_argument("--arch", default="raft_large", choices=["raft_large", "raft_small"])
    args = parser.parse_args()
    offline(args) if args.command == "offline" else raft(args)


if __name__ == "__main__":
    main()
