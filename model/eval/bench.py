"""GEdit-Bench rows from a local copy: the parquet files of stepfun-ai/GEdit-Bench, or any rows in its schema.

Columns: `task_type` (the category), `key`, `instruction`, `instruction_language` (`en`/`cn`), `input_image`,
`input_image_raw`, `Intersection_exist` (bool: the prompt is in the subset every published method answered).
Images are Hugging Face `Image` structs {bytes, path}, plain bytes, or a path relative to the file. A bench is
a .parquet or .jsonl file, a folder of them (searched recursively, as the Hub's `data/train-*.parquet`), or a
glob. Rows without `Intersection_exist` belong to no intersection subset. Nothing is downloaded.

Only the small columns are read up front; an image column is read once per file, when a row of that file
first needs it.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

# GEdit-Bench's 11 task types, in the order of its tables (the reference's calculate_statistics).
GEDIT_CATEGORIES = (
    "background_change",
    "color_alter",
    "material_alter",
    "motion_change",
    "ps_human",
    "style_change",
    "subject-add",
    "subject-remove",
    "subject-replace",
    "text_change",
    "tone_transfer",
)
REQUIRED = ("task_type", "key", "instruction", "instruction_language")
IMAGE_COLUMNS = ("input_image_raw", "input_image")
# Output files are named by key; a key that could leave its folder is refused, not mangled.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BenchError(ValueError):
    """A bench that cannot be read as GEdit-Bench rows; the message is one line."""


@dataclass(frozen=True)
class BenchRow:
    key: str
    category: str  # task_type
    language: str  # instruction_language, as given ("en", "cn")
    instruction: str
    intersection: bool
    file: str  # the file the row comes from, and its index there, to read its image
    index: int

    @property
    def id(self) -> tuple[str, str]:
        return self.key, self.language


def bench_files(path: str) -> list[str]:
    """The .parquet/.jsonl files of a bench path; a clear error when there are none."""
    p = Path(path)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.suffix in (".parquet", ".jsonl"))
    elif p.is_file():
        files = [str(p)]
    else:
        files = sorted(glob.glob(path))
    if not files:
        raise BenchError(
            f"{path}: no such file or folder of .parquet/.jsonl rows (nothing is downloaded: point at a "
            "local copy of stepfun-ai/GEdit-Bench)"
        )
    return files


def _read(file: str, columns: list[str] | None = None) -> pa.Table:
    if file.endswith(".jsonl"):
        with open(file, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        table = pa.Table.from_pylist(records)
        return table.select(columns) if columns else table
    return pq.read_table(file, columns=columns)


def _columns(file: str) -> list[str]:
    if file.endswith(".jsonl"):
        return _read(file).column_names
    return pq.read_schema(file).names


class Bench:
    """The rows of a bench, and their images on demand (thread-safe)."""

    def __init__(self, path: str, image_column: str | None = None) -> None:
        self.path = path
        self.files = bench_files(path)
        self.rows: list[BenchRow] = []
        chosen: set[str] = set()
        for file in self.files:
            names = _columns(file)
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise BenchError(f"{file}: missing column(s) {', '.join(missing)} (GEdit-Bench schema)")
            column = image_column or next((c for c in IMAGE_COLUMNS if c in names), None)
            if column is None or column not in names:
                wanted = image_column or " or ".join(IMAGE_COLUMNS)
                raise BenchError(f"{file}: no image column {wanted}")
            chosen.add(column)
            wanted = [*REQUIRED] + (["Intersection_exist"] if "Intersection_exist" in names else [])
            for i, r in enumerate(_read(file, wanted).to_pylist()):
                self.rows.append(self._row(file, i, r))
        if len(chosen) > 1:
            raise BenchError(f"{path}: files differ in their image column ({', '.join(sorted(chosen))})")
        self.image_column = chosen.pop()
        seen: set[tuple[str, str]] = set()
        for row in self.rows:
            if row.id in seen:
                raise BenchError(f"{path}: key {row.key} appears twice in language {row.language}")
            seen.add(row.id)
        self._images: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _row(file: str, index: int, r: dict[str, Any]) -> BenchRow:
        for name in ("key", "task_type", "instruction_language"):
            value = r[name]
            if not isinstance(value, str) or not _SAFE_NAME.match(value):
                raise BenchError(f"{file} row {index}: {name} {value!r} is not a plain file name")
        if not isinstance(r["instruction"], str) or not r["instruction"].strip():
            raise BenchError(f"{file} row {index} (key {r['key']}): empty instruction")
        return BenchRow(
            key=r["key"],
            category=r["task_type"],
            language=r["instruction_language"],
            instruction=r["instruction"],
            intersection=bool(r.get("Intersection_exist")),
            file=file,
            index=index,
        )

    @property
    def has_intersection(self) -> bool:
        return any(row.intersection for row in self.rows)

    def fingerprint(self) -> str:
        """What identifies the rows (not their images): a resumed generation must see the same ones."""
        ids = sorted((r.key, r.language, r.category, r.instruction) for r in self.rows)
        return hashlib.sha256(json.dumps(ids, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]

    def image(self, row: BenchRow) -> bytes:
        """The row's input image as encoded bytes."""
        with self._lock:
            values = self._images.get(row.file)
            if values is None:
                values = self._images[row.file] = _read(row.file, [self.image_column]).column(0).to_pylist()
        value = values[row.index]
        if isinstance(value, dict):  # a Hugging Face Image feature
            if value.get("bytes"):
                return value["bytes"]
            value = value.get("path")
        if isinstance(value, bytes):
            return value
        if isinstance(value, str) and value:
            path = Path(value) if Path(value).is_absolute() else Path(row.file).parent / value
            try:
                return path.read_bytes()
            except OSError as err:
                raise BenchError(f"{row.file} row {row.index}: cannot read image {path}: {err}") from None
        raise BenchError(f"{row.file} row {row.index} (key {row.key}): no image in {self.image_column}")


def output_path(out: Path, row: BenchRow) -> Path:
    """Where a row's edited image goes: GEdit-Bench's own layout, so its scripts read our outputs too."""
    return out / "fullset" / row.category / row.language / f"{row.key}.png"


def decode_rgb(data: bytes) -> Image.Image:
    """Encoded image bytes -> an RGB PIL image (loaded, so the bytes can go)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")
