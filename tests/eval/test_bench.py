"""Reading GEdit-Bench rows from local files: the Hub's parquet layout, jsonl with image paths, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from gedit_inputs import PHOTOS, ROWS, SCHEMA, bench_records, write_bench

from model.eval.bench import GEDIT_CATEGORIES, Bench, BenchError, output_path
from model.eval.cli import main
from tasks.registry import GEDIT_KEYS


def test_categories_are_the_pipelines_gedit_keys() -> None:
    assert sorted(GEDIT_CATEGORIES) == sorted(GEDIT_KEYS.values())


def test_hub_layout(gedit_bench: Path) -> None:
    bench = Bench(str(gedit_bench))
    assert len(bench.files) == 2 and bench.image_column == "input_image_raw"
    assert len(bench.rows) == 9 == sum(2 if zh else 1 for *_, zh, _ in ROWS)
    row = next(r for r in bench.rows if r.key == "rm1" and r.language == "cn")
    assert (row.category, row.instruction, row.intersection) == ("subject-remove", "移除猫。", True)
    assert bench.image(row) == (PHOTOS / "chelsea.png").read_bytes()
    out = Path("/eval")
    assert output_path(out, row) == out / "fullset" / "subject-remove" / "cn" / "rm1.png"
    assert Bench(str(gedit_bench / "data" / "*.parquet")).fingerprint() == bench.fingerprint()


def test_jsonl_rows_with_image_paths_and_no_intersection_flags(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "rocket.jpg").write_bytes((PHOTOS / "rocket.jpg").read_bytes())
    line = {
        "task_type": "my_category",
        "key": "r1",
        "instruction": "Make the sky purple.",
        "instruction_language": "en",
        "input_image": "images/rocket.jpg",
    }
    (tmp_path / "rows.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    bench = Bench(str(tmp_path / "rows.jsonl"))
    assert bench.image_column == "input_image" and not bench.has_intersection
    assert bench.image(bench.rows[0]) == (PHOTOS / "rocket.jpg").read_bytes()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("instruction_language"), "missing column(s) instruction_language"),
        (lambda r: r.update(key="../escape"), "key '../escape' is not a plain file name"),
        (lambda r: r.update(instruction=" "), "empty instruction"),
    ],
)
def test_bad_rows_are_one_line_errors(tmp_path: Path, change, message: str) -> None:
    records = bench_records()[:2]
    change(records[0])
    schema = pa.schema([f for f in SCHEMA if f.name in records[0]])
    pq.write_table(pa.Table.from_pylist(records, schema=schema), tmp_path / "rows.parquet")
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Bench(str(tmp_path / "rows.parquet"))


def test_duplicate_rows_missing_bench_and_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = bench_records()
    with pytest.raises(BenchError, match="key bg1 appears twice in language en"):
        Bench(str(write_bench(tmp_path / "dup", records + records[:1])))
    result = CliRunner().invoke(
        main, ["generate", "--bench", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--tiny"]
    )
    assert result.exit_code == 1
    assert "nowhere: no such file or folder" in result.output and "nothing is downloaded" in result.output
    assert not (tmp_path / "o").exists()
    monkeypatch.delenv("STEP1X_MODELS", raising=False)
    result = CliRunner().invoke(
        main, ["generate", "--bench", str(tmp_path / "dup"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "no model: pass --models-dir" in result.output
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--bench",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--models-dir",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2 and "m: no such folder (nothing is downloaded)" in result.output
