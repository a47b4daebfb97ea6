"""Copy the held-out real photos and videos into a folder: the inputs on which pairs are looked at and
labelled by eye (bench/labels/), and which no test uses.

They come from packages installed here, nothing is downloaded: Debian's opencv-doc (examples/data),
scikit-learn's two sample photos and matplotlib's portrait; the video set adds held-out segments of
opencv-doc's vtest.avi (walking people), cut and re-encoded with PyAV. Their licences are written beside
them.

usage: python bench/heldout_photos.py OUT_FOLDER [--set photos|text|video|all]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
# Real photographs with objects, people, animals, streets and scenes (no calibration charts, no drawings).
OPENCV_PHOTOS = (
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "board.jpg",
    "box_in_scene.png",
    "building.jpg",
    "butterfly.jpg",
    "chicky_512.png",
    "fruits.jpg",
    "home.jpg",
    "leuvenA.jpg",
    "licenseplate_motion.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "smarties.png",
    "squirrel_cls.jpg",
    "stuff.jpg",
    "left01.jpg",
    "aero3.jpg",
)
# Pictures with text (signs, packaging, pages, a newspaper puzzle, a hand-lettered logo). box.png is left out:
# the tests' cookie_box.png is made from it.
OPENCV_TEXT = (
    "ela_original.jpg",
    "text_motion.jpg",
    "text_defocus.jpg",
    "imageTextR.png",
    "imageTextN.png",
    "licenseplate_motion.jpg",
    "sudoku.png",
    "LinuxLogo.jpg",
    "cards.png",
    "board.jpg",
    "box_in_scene.png",  # also in OPENCV_PHOTOS: a circuit board's labels, a box's print
    "messi5.jpg",  # also in OPENCV_PHOTOS: a shirt's sponsor and a banner behind the players
    "graf3.png",  # lettering on a wall
)
# scikit-image's photographed page of its own docs and handwritten formulas on a board (saved under these
# names: skimage's own names are too generic to tell apart in a folder).
SKIMAGE_TEXT = (
    ("page.png", "skimage_page.png"),
    ("text.png", "skimage_text.png"),
    ("motorcycle_left.png", "skimage_motorcycle_left.png"),  # a make's name on a motorcycle
)
OPENCV_VIDEO = ("Megamind.avi", "tree.avi")
# Segments of vtest.avi (a fixed camera over walking people, 795 frames at 10 fps) that no test uses: the
# tests' example clip is frames 100-139. Each is re-encoded on its own (start, end frame; end excluded).
VTEST_SEGMENTS = ((0, 100), (140, 300), (300, 700), (700, 795))
LICENCES = {
    "opencv-doc": "OpenCV sample data (Debian opencv-doc, BSD-3-Clause/Apache-2.0 OpenCV distribution)",
    "sklearn": "CC BY 2.0 (Flickr), see sklearn/datasets/images/README.txt",
    "matplotlib": "matplotlib sample data (US Navy portrait of Grace Hopper, public domain)",
    "skimage": "scikit-image sample data (BSD-3-Clause; text.png public domain, from Wikipedia; "
    "motorcycle_left.png from the Middlebury 2014 stereo benchmark, Scharstein et al., GCPR 2014)",
}


def package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.joinpath(*parts)
    return path if path.exists() else None


def heldout(kind: str) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    names = {"photos": OPENCV_PHOTOS, "text": OPENCV_TEXT, "video": OPENCV_VIDEO}
    for name in names[kind] if kind != "all" else sum(names.values(), ()):
        files.append((OPENCV_DATA / name, "opencv-doc"))
    if kind in ("photos", "all"):
        for name in ("china.jpg", "flower.jpg"):
            path = package_file("sklearn", "datasets", "images", name)
            if path:
                files.append((path, "sklearn"))
        portrait = package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
        if portrait:
            files.append((portrait, "matplotlib"))
    return [(path, origin) for path, origin in files if path.exists()]


def heldout_renamed(kind: str) -> list[tuple[Path, str, str]]:
    """Held-out files copied under another name: (path, origin, name)."""
    if kind not in ("text", "all"):
        return []
    found = [(package_file("skimage", "data", name), "skimage", new) for name, new in SKIMAGE_TEXT]
    return [(path, origin, new) for path, origin, new in found if path is not None]


def cut_vtest(out: Path) -> list[str]:
    """The held-out segments of vtest.avi as H.264 files (one encoder thread, so the bytes, and the sample ids
    made from them, are the same on every run)."""
    import av

    frames = []
    with av.open(str(OPENCV_DATA / "vtest.avi")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    names = []
    for start, end in VTEST_SEGMENTS:
        name = f"vtest_frames_{start}_{end}.mp4"
        with av.open(str(out / name), "w") as container:
            stream = container.add_stream("libx264", rate=10, options={"threads": "1", "crf": "18"})
            stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
            stream.pix_fmt = "yuv420p"
            for image in frames[start:end]:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--set", default="photos", choices=["photos", "text", "video", "all"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for path, origin in heldout(args.set):
        shutil.copy(path, out / path.name)
        lines.append(f"- {path.name}: {LICENCES[origin]}")
    for path, origin, name in heldout_renamed(args.set):
        shutil.copy(path, out / name)
        lines.append(f"- {name}: {LICENCES[origin]} ({path.name})")
    if args.set in ("video", "all") and (OPENCV_DATA / "vtest.avi").exists():
        for name in cut_vtest(out):
            lines.append(f"- {name}: {LICENCES['opencv-doc']} (frames of vtest.avi)")
    (out / "LICENSES.md").write_text("# Held-out photos\n\n" + "\n".join(lines) + "\n")
    print(f"{len(lines)} files in {out}")


if __name__ == "__main__":
    main()
