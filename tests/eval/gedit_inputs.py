"""A small GEdit-Bench written by the tests: real photos, instructions in English and Chinese."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from model.eval.cli import main

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"
# (task_type, key, photo, English, Chinese or None, Intersection_exist)
ROWS = [
    (
        "background_change",
        "bg1",
        "astronaut.png",
        "Change the background to a beach.",
        "把背景换成海滩。",
        True,
    ),
    ("color_alter", "col1", "coffee.png", "Make the cup red.", "把杯子变成红色。", False),
    ("subject-remove", "rm1", "chelsea.png", "Remove the cat.", "移除猫。", True),
    ("subject-remove", "rm2", "camera.png", "Remove the camera.", None, True),
    ("tone_transfer", "tone1", "rocket.jpg", "Make it look like sunset.", "调成日落的效果。", False),
]
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # the Hugging Face Image feature
SCHEMA = pa.schema(
    [
        ("task_type", pa.string()),
        ("key", pa.string()),
        ("instruction", pa.string()),
        ("instruction_language", pa.string()),
        ("input_image", IMAGE),
        ("input_image_raw", IMAGE),
        ("Intersection_exist", pa.bool_()),
    ]
)
# Tiny random model at a small size: what is tested is the evaluation around the model, not the model.
GENERATE = ["--tiny", "--size-level", "64", "--steps", "2", "--device", "cpu"]


def bench_records() -> list[dict]:
    records = []
    for category, key, photo, en, zh, intersection in ROWS:
        data = (PHOTOS / photo).read_bytes()
        for language, text in (("en", en), ("cn", zh)):
            if text is None:
                continue
            image = {"bytes": data, "path": photo}
            records.append(
                {
                    "task_type": category,
                    "key": key,
                    "instruction": text,
                    "instruction_language": language,
                    "input_image": image,
                    "input_image_raw": image,
                    "Intersection_exist": intersection,
                }
            )
    return records


def write_bench(path: Path, records: list[dict] | None = None) -> Path:
    """As the Hub lays GEdit-Bench out: data/train-*.parquet, split over two files."""
    records = bench_records() if records is None else records
    (path / "data").mkdir(parents=True)
    half = len(records) // 2
    for i, part in enumerate((records[:half], records[half:])):
        pq.write_table(
            pa.Table.from_pylist(part, schema=SCHEMA), path / "data" / f"train-0000{i}-of-00002.parquet"
        )
    return path


def eval_cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output
