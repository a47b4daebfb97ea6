"""CPU cost of the offline heuristic judge and of the near-duplicate signature, per sample.

    .venv/bin/python bench/judge_heuristic.py [--repeat 20]

Inputs are the real example photos with a warm grade (a global edit) and an inpainted box (a local edit),
at their own size and upscaled to 1024x1024 (the judge's working size bound); and a motion pair from the
example clip (a walker's region of a later frame pasted into the first, as motion_change makes it: the judge
segments and tracks the person there); a text edit on the text task's example photo (the number "8.8" of
"NET WT 8.8 OZ" mirrored, timed only: the judge reads a crop around the change with the OCR and compares the
word with its line) and a background change of that photo's border (the old-colour rim is measured).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from annotators.judge.heuristic import HeuristicJudge, Signature

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "examples" / "photos"
CLIP = REPO / "examples" / "video" / "vtest_walkers.mp4"
WARMER = {"en": "Make the colour temperature warmer.", "zh": "把色温调暖。"}
REMOVE = {"en": "Remove the object.", "zh": "移除这个物体。"}
WALK = {"en": "Make the person walk to the right.", "zh": "让人物向右走。"}
TEXT = {"en": 'Change the text "8.8" to "5.5".', "zh": "把文字“8.8”改为“5.5”。"}
BACKDROP = {
    "en": "Change the background to a plain navy blue studio backdrop.",
    "zh": "把背景换成纯藏青色影棚背景。",
}
BOX = REPO / "examples" / "text_modification" / "cookie_box.png"


def motion_pair() -> tuple[np.ndarray, np.ndarray]:
    """Frames 5 and 15 of the example clip; the target is frame 5 with a walker's region from frame 15."""
    with av.open(str(CLIP)) as container:
        decoded = zip(range(16), container.decode(video=0), strict=False)
        frames = [frame.to_ndarray(format="rgb24") for _, frame in decoded]
    first, second = frames[5], frames[15]
    target = first.copy()
    target[135:235, 595:650] = second[135:235, 595:650]
    return first, target


def timed_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    judge = HeuristicJudge()
    # One thread: the per-sample cost; the filter runs --workers of these in parallel (cv2 releases the GIL).
    cv2.setNumThreads(1)
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; cv2 threads: 1; "
        f"Python {platform.python_version()}; median of {args.repeat}\n"
    )
    print("| photo | size | global edit judge ms | local edit judge ms | signature ms |")
    print("|---|---|---|---|---|")
    for path in sorted(p for p in PHOTOS.iterdir() if p.suffix in {".png", ".jpg"}):
        original = np.asarray(Image.open(path).convert("RGB"))
        for src in (original, cv2.resize(original, (1024, 1024), interpolation=cv2.INTER_CUBIC)):
            h, w = src.shape[:2]
            warm = np.clip(src.astype(np.float32) * [1.08, 1.0, 0.88], 0, 255).astype(np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 : h // 2, w // 4 : w // 2] = 255
            local = cv2.inpaint(src, mask, 5, cv2.INPAINT_TELEA)
            g = timed_ms(lambda src=src, warm=warm: judge.judge(src, warm, WARMER), args.repeat)
            loc = timed_ms(lambda src=src, local=local: judge.judge(src, local, REMOVE), args.repeat)
            sig = timed_ms(lambda src=src, warm=warm: Signature.of(src, warm), args.repeat)
            print(f"| {path.name} | {w}x{h} | {g:.1f} | {loc:.1f} | {sig:.1f} |")
    first, target = motion_pair()
    judge.judge(first, target, WALK)  # loads the person segmenter once
    motion = timed_ms(lambda: judge.judge(first, target, WALK), args.repeat)
    h, w = first.shape[:2]
    print(f"\nmotion pair (example clip, frames 5 and 15, {w}x{h}): {motion:.1f} ms")
    box = np.asarray(Image.open(BOX).convert("RGB"))
    word = box.copy()
    word[599:616, 339:364] = word[599:616, 339:364][:, ::-1]
    judge.judge(box, word, TEXT)  # loads the OCR once
    text = timed_ms(lambda: judge.judge(box, word, TEXT), args.repeat)
    backdrop = np.full_like(box, (30, 40, 90))
    backdrop[40:-40, 40:-40] = box[40:-40, 40:-40]
    background = timed_ms(lambda: judge.judge(box, backdrop, BACKDROP), args.repeat)
    h, w = box.shape[:2]
    print(
        f"text edit (cookie_box.png, {w}x{h}): {text:.1f} ms; "
        f"background change (same photo): {background:.1f} ms"
    )


if __name__ == "__main__":
    main()
