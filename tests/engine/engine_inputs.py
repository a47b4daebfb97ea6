"""Inputs for the engine tests: the shipped photos, bad or unusual files made from them, and the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "photos"
PLUGINS = Path(__file__).parent / "plugins"
CLIP = REPO / "examples" / "video" / "vtest_walkers.mp4"


def clip_frames(indices: tuple[int, ...]) -> list[np.ndarray]:
    """Frames of the example clip (walkers from opencv-doc's vtest.avi), by index."""
    wanted, frames = set(indices), {}
    with av.open(str(CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if len(frames) == len(wanted):
                break
    return [frames[i] for i in indices]


def photo(name: str = "coffee.png") -> Image.Image:
    return Image.open(PHOTOS / name).convert("RGB")


def jpeg_bytes(image: Image.Image, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, **kwargs)
    return buffer.getvalue()


def write_bad_files(folder: Path) -> dict[str, str]:
    """Files that must each become a reject; returns file name -> expected reason."""
    folder.mkdir(parents=True, exist_ok=True)
    good = jpeg_bytes(photo())
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    png = io.BytesIO()
    photo().save(png, format="PNG")
    corrupt = bytearray(png.getvalue())
    middle = len(corrupt) // 2  # inside the compressed pixel data: the header still identifies a PNG
    corrupt[middle : middle + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    (folder / "corrupt.png").write_bytes(bytes(corrupt))
    (folder / "notes.txt").write_text("this is a text file, not a photo\n")
    (folder / "drawing.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">'
        '<circle cx="100" cy="100" r="80"/></svg>'
    )
    photo().resize((48, 32)).save(folder / "tiny.png")
    # 100 megapixels of zeros compress to a small PNG: a decompression bomb.
    Image.new("L", (10_000, 10_000)).save(folder / "bomb.png")
    return {
        "zero.jpg": "empty_file",
        "truncated.jpg": "truncated",
        "corrupt.png": "decode_error",
        "notes.txt": "not_an_image",
        "drawing.svg": "not_an_image",
        "tiny.png": "too_small",
        "bomb.png": "decompression_bomb",
    }


def write_odd_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Valid but unusual images that must be converted and processed; returns name -> (width, height)
    the normalised photo must have."""
    folder.mkdir(parents=True, exist_ok=True)
    base = photo("coffee.png")  # 600x400
    base.convert("CMYK").save(folder / "cmyk.jpg", quality=92)
    grey16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "sixteen_bit.png")
    base.convert("L").save(folder / "greyscale.png")
    base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(folder / "palette.png")
    rgba = base.convert("RGBA")
    alpha = np.full((400, 600), 255, np.uint8)
    alpha[:, :150] = 0  # a transparent strip: composited onto grey, not black
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(folder / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    base.save(folder / "exif_rotated.jpg", quality=92, exif=exif.tobytes())
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (folder / "really_a_jpeg.png").write_bytes(jpeg_bytes(base.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    return {
        "cmyk.jpg": (600, 400),
        "sixteen_bit.png": (600, 400),
        "greyscale.png": (600, 400),
        "palette.png": (600, 400),
        "alpha.png": (600, 400),
        "exif_rotated.jpg": (400, 600),
        "animated.gif": (600, 400),
        "really_a_jpeg.png": (600, 400),
    }


def write_variants(folder: Path, count: int) -> list[str]:
    """`count` distinct real photos (crops and flips of the shipped ones), for runs with many sources."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    written = []
    for i in range(count):
        image = photo(names[i % len(names)])
        width, height = image.size
        shift = 8 * (i // len(names))
        image = image.crop((shift, shift, width - shift, height - shift))
        if (i // len(names)) % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        name = f"variant_{i:03d}.jpg"
        image.save(folder / name, quality=90)
        written.append(name)
    return written


def cli(
    *args: str, timeout: float = 300, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `step1x-data ARGS` in a fresh process, as a user would."""
    command = [sys.executable, "-m", "pipelines.cli", *args]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def manifest_rows(run: Path) -> list[dict]:
    """Every manifest row of a run folder, shard by shard."""
    return [
        row
        for path in sorted((run / "shards").glob("shard-*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]


def reject_rows(run: Path) -> list[dict]:
    return [
        row
        for path in sorted((run / "rejects").glob("rejects-*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]


def plugin_env(tmp_path: Path, **plugins: str) -> dict[str, str]:
    """An installed distribution (a dist-info on PYTHONPATH) announcing `name = module` plug-ins."""
    site = tmp_path / "site"
    info = site / "step1x_test_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: step1x-test-plugins\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in plugins.items())
    (info / "entry_points.txt").write_text(f"[step1x_data.plugins]\n{lines}")
    return {"PYTHONPATH": f"{site}:{PLUGINS}"}
