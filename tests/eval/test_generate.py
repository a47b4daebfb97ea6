"""`step1x-eval generate` with the tiny model: layout, recorded settings, resume, rejects, two processes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from gedit_inputs import GENERATE, SCHEMA, bench_records, eval_cli
from PIL import Image

from model.eval.bench import Bench, output_path
from model.eval.cli import main


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _log(out: Path, rank: int = 0) -> list[dict]:
    path = out / "logs" / f"generate-{rank}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_outputs_named_by_key_and_language_with_settings(generated: Path, gedit_bench: Path) -> None:
    bench = Bench(str(gedit_bench))
    record = json.loads((generated / "generation.json").read_text())
    assert record["settings"] | {"ckpt": None} == {
        "version": "v1.1",
        "ckpt": None,
        "lora_scale": 1.0,
        "tiny": True,
        "size_level": 64,
        "steps": 2,
        "cfg": 6.0,
        "seed": 42,
    }
    assert record["bench"]["fingerprint"] == bench.fingerprint() and record["sampler"]["batch_size"] == 2
    for row in bench.rows:
        path = output_path(generated, row)
        with Image.open(path) as image:
            source = Image.open(io.BytesIO(bench.image(row)))
            assert image.size == source.size  # the sampler resizes back to the input size
            meta = json.loads(image.text["step1x-eval"])
        assert (meta["key"], meta["language"], meta["instruction"]) == (
            row.key,
            row.language,
            row.instruction,
        )
        assert meta["seed"] == 42 and meta["steps"] == 2 and meta["tiny"] is True
    log = _log(generated)
    assert sorted((e["key"], e["language"]) for e in log) == sorted(r.id for r in bench.rows)
    # Rows edited at the same size share a batch (the sampler batches equal sizes only).
    assert max(e["batch"] for e in log) == 2


def test_resume_redoes_only_missing_rows(eval_dir: Path, gedit_bench: Path) -> None:
    bench = Bench(str(gedit_bench))
    lost = output_path(eval_dir, bench.rows[0])
    before = _pixels(lost)
    lost.unlink()
    kept = {output_path(eval_dir, r): output_path(eval_dir, r).stat().st_mtime_ns for r in bench.rows[1:]}
    output = eval_cli("generate", "--bench", str(gedit_bench), "--out", str(eval_dir), *GENERATE)
    assert "9 rows: 8 done before, 1 generated now, 0 rejected" in output
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing else was written again
    # The same seed and settings give the same edit, whatever the batch it ran in (2 rows then, 1 now).
    assert np.abs(_pixels(lost) - before).max() <= 1


def test_other_settings_are_refused(eval_dir: Path, gedit_bench: Path) -> None:
    args = ["generate", "--bench", str(gedit_bench), "--out", str(eval_dir), *GENERATE, "--steps", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert (
        "generated with other settings {'steps': (2, 3)}" in result.output
        and "another --out" in result.output
    )


def test_unreadable_input_image_is_a_reject(tmp_path: Path) -> None:
    records = [r for r in bench_records() if r["key"] == "rm1" and r["instruction_language"] == "en"]
    records[0]["input_image_raw"] = {"bytes": b"\x89PNG truncated", "path": "broken.png"}
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), tmp_path / "bench.parquet")
    out = tmp_path / "out"
    # Nothing left to edit once the bad row is set aside: the model is not even built.
    output = eval_cli("generate", "--bench", str(tmp_path / "bench.parquet"), "--out", str(out), *GENERATE)
    assert "1 rows: 0 done before, 0 generated now, 1 rejected" in output
    assert "rejected rm1/en: UnidentifiedImageError" in output
    assert not (out / "fullset").exists() and not (out / "logs" / "generate-0.jsonl").exists()
    reject = json.loads((out / "logs" / "rejects-0.jsonl").read_text())
    assert (reject["key"], reject["language"], reject["category"]) == ("rm1", "en", "subject-remove")


def test_two_processes_split_the_rows(generated: Path, gedit_bench: Path, tmp_path: Path) -> None:
    """--gpus 2 on the CPU: two processes, each every other row of one order, the same edits as one."""
    out = tmp_path / "two"
    args = ["--limit", "2", "--gpus", "2"]
    output = eval_cli("generate", "--bench", str(gedit_bench), "--out", str(out), *GENERATE, *args)
    assert "2 rows: 0 done before, 2 generated now" in output
    first, second = _log(out, 0), _log(out, 1)
    assert len(first) == len(second) == 1
    assert (first[0]["key"], first[0]["language"]) != (second[0]["key"], second[0]["language"])
    for entry in first + second:
        name = f"fullset/{entry['category']}/{entry['language']}/{entry['key']}.png"
        assert np.abs(_pixels(out / name) - _pixels(generated / name)).max() <= 1
