"""Make bench/labels/heldout.coco.json: object masks for some held-out photos (bench/heldout_photos.py), so
that the object-edit categories can be looked at on photos no test uses.

How each mask was made, so the file can be checked and extended: the box of each object was chosen by eye on
a gridded view of the photo; GrabCut (OpenCV, 6 iterations) cut the silhouette inside the box, with strokes
chosen by eye where it needed them (sure foreground / sure background); candies on the white table of
smarties.png are OpenCV's Hough circles; the orange of orange.jpg (half in shadow, as dark there as the
backdrop) and the ball of messi5.jpg (whose dark prints GrabCut took for background) are the ellipses of
their boxes; the flower pot of aloeL.jpg is a polygon placed point by point on a gridded view. Every mask
was then looked at as an overlay and kept only when it follows the object's outline. The masks are stored
as polygons.

usage: python bench/labels/heldout_labels.py [--out bench/labels/heldout.coco.json] [--overlay SHEET.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heldout_photos import heldout  # noqa: E402

Box = tuple[int, int, int, int]  # x0, y0, x1, y1
Stroke = tuple[tuple[int, int], ...]  # a polyline, drawn 7 px wide


@dataclass(frozen=True)
class Drawn:
    file: str
    category: str
    box: Box
    foreground: tuple[Stroke, ...] = ()
    background: tuple[Stroke, ...] = ()
    method: str = "grabcut"  # grabcut | round_candies | ellipse | polygon
    points: tuple[tuple[int, int], ...] = ()  # polygon: the outline, point by point
    notes: str = field(default="", compare=False)


OBJECTS: tuple[Drawn, ...] = (
    Drawn("apple.jpg", "apple", (38, 42, 468, 497)),
    Drawn("orange.jpg", "orange", (28, 46, 458, 497), method="ellipse"),
    Drawn("flower.jpg", "flower", (156, 74, 452, 368)),
    Drawn("smarties.png", "candy", (0, 0, 413, 356), method="round_candies"),
    Drawn("stuff.jpg", "lighter", (312, 312, 358, 462)),
    Drawn(
        "aloeL.jpg",
        "flower pot",
        (700, 790, 1075, 1085),
        method="polygon",  # GrabCut mixed the terracotta with the backdrop's pattern
        points=(
            (788, 811),
            (1062, 809),
            (1061, 885),
            (1055, 893),
            (1040, 960),
            (1020, 1040),
            (1005, 1067),
            (920, 1080),
            (825, 1083),
            (760, 1071),
            (735, 1000),
            (716, 910),
            (710, 887),
            (750, 845),
        ),
    ),
    Drawn("rubberwhale1.png", "toy whale", (212, 86, 322, 188)),
    Drawn("rubberwhale1.png", "seashell", (58, 138, 152, 182)),
    Drawn("licenseplate_motion.jpg", "car", (0, 15, 600, 415)),
    Drawn("butterfly.jpg", "butterfly", (3, 22, 490, 318)),
    Drawn("messi5.jpg", "sports ball", (335, 287, 391, 337), method="ellipse"),  # prints split GrabCut
    Drawn("grace_hopper.jpg", "hat", (150, 15, 375, 140)),
    Drawn(
        "squirrel_cls.jpg",
        "squirrel",
        (128, 100, 362, 368),
        foreground=(((195, 160), (215, 130), (240, 115)),),  # the top of its tail
        background=(((292, 368), (322, 322), (362, 272)), ((318, 282), (322, 320), (318, 362))),  # branch
    ),
)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled > 0


def grabcut(image: np.ndarray, drawn: Drawn) -> list[np.ndarray]:
    x0, y0, x1, y1 = drawn.box
    seeds = np.full(image.shape[:2], cv2.GC_BGD, np.uint8)
    seeds[y0:y1, x0:x1] = cv2.GC_PR_FGD
    for strokes, value in ((drawn.foreground, cv2.GC_FGD), (drawn.background, cv2.GC_BGD)):
        for stroke in strokes:
            cv2.polylines(seeds, [np.array(stroke, np.int32)], False, int(value), thickness=7)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), seeds, None, bgd, fgd, 6, cv2.GC_INIT_WITH_MASK)
    mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    return [_fill_holes(_largest_component(mask))]


def round_candies(image: np.ndarray, drawn: Drawn) -> list[np.ndarray]:
    """Round coloured objects on a white table: OpenCV's Hough circles, each trimmed to its saturated (or
    dark) pixels so the shadow beside it stays out."""
    grey = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 5)
    circles = cv2.HoughCircles(
        grey, cv2.HOUGH_GRADIENT, dp=1, minDist=35, param1=100, param2=25, minRadius=18, maxRadius=34
    )
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    coloured = (hsv[..., 1] > 70) | (hsv[..., 2] < 90)
    masks = []
    for x, y, r in [] if circles is None else circles[0]:
        disc, core = np.zeros(grey.shape, np.uint8), np.zeros(grey.shape, np.uint8)
        cv2.circle(disc, (round(x), round(y)), round(r) + 1, 1, thickness=cv2.FILLED)
        cv2.circle(core, (round(x), round(y)), round(r) - 4, 1, thickness=cv2.FILLED)
        masks.append(_fill_holes((disc > 0) & (coloured | (core > 0))))
    return masks


def polygon(image: np.ndarray, drawn: Drawn) -> list[np.ndarray]:
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.array(drawn.points, np.int32)], 1)
    return [mask > 0]


def ellipse(image: np.ndarray, drawn: Drawn) -> list[np.ndarray]:
    x0, y0, x1, y1 = drawn.box
    mask = np.zeros(image.shape[:2], np.uint8)
    centre, axes = ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=cv2.FILLED)
    return [mask > 0]


def polygons(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = []
    for contour in contours:
        approx = cv2.approxPolyDP(contour, 0.8, True).reshape(-1, 2)
        if len(approx) >= 3:
            out.append([float(v) for point in approx for v in point])
    return out


def build() -> tuple[dict, dict[str, np.ndarray], list[tuple[str, str, np.ndarray]]]:
    files = {path.name: path for path, _ in heldout("photos")}
    categories: dict[str, int] = {}
    images: dict[str, dict] = {}
    annotations = []
    overlays = []
    pixels: dict[str, np.ndarray] = {}
    for drawn in OBJECTS:
        image = np.asarray(Image.open(files[drawn.file]).convert("RGB"))
        pixels[drawn.file] = image
        if drawn.file not in images:
            images[drawn.file] = {
                "id": len(images) + 1,
                "file_name": drawn.file,
                "width": image.shape[1],
                "height": image.shape[0],
            }
        category_id = categories.setdefault(drawn.category, len(categories) + 1)
        masks = {"grabcut": grabcut, "round_candies": round_candies, "ellipse": ellipse, "polygon": polygon}[
            drawn.method
        ](image, drawn)
        for mask in masks:
            segmentation = polygons(mask)
            ys, xs = np.nonzero(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": images[drawn.file]["id"],
                    "category_id": category_id,
                    "segmentation": segmentation,
                    "bbox": [
                        int(xs.min()),
                        int(ys.min()),
                        int(xs.max() - xs.min() + 1),
                        int(ys.max() - ys.min() + 1),
                    ],
                    "area": int(mask.sum()),
                    "iscrowd": 0,
                }
            )
            overlays.append((drawn.file, drawn.category, mask))
    coco = {
        "info": {
            "description": "hand-checked object masks for held-out photos (bench/labels/heldout_labels.py)"
        },
        "licenses": [],
        "categories": [{"id": i, "name": name, "supercategory": "object"} for name, i in categories.items()],
        "images": list(images.values()),
        "annotations": annotations,
    }
    return coco, pixels, overlays


def overlay_sheet(
    pixels: dict[str, np.ndarray], overlays: list[tuple[str, str, np.ndarray]], out: str
) -> None:
    tiles = []
    for file, category, mask in overlays:
        image = pixels[file].copy()
        image[~mask] = (image[~mask] * 0.3).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, (255, 255, 0), 1)
        tile = Image.fromarray(image)
        tile.thumbnail((320, 320))
        canvas = Image.new("RGB", (320, 336), "white")
        canvas.paste(tile, (0, 0))
        from PIL import ImageDraw

        ImageDraw.Draw(canvas).text((2, 322), f"{file} {category}", fill="black")
        tiles.append(canvas)
    columns = 6
    sheet = Image.new("RGB", (columns * 320, -(-len(tiles) // columns) * 336), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * 320, (i // columns) * 336))
    sheet.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("heldout.coco.json")))
    parser.add_argument("--overlay", help="also draw every mask over its photo into this PNG")
    args = parser.parse_args()
    coco, pixels, overlays = build()
    Path(args.out).write_text(json.dumps(coco) + "\n")
    if args.overlay:
        overlay_sheet(pixels, overlays, args.overlay)
    print(f"{len(coco['annotations'])} objects on {len(coco['images'])} photos -> {args.out}")


if __name__ == "__main__":
    main()
