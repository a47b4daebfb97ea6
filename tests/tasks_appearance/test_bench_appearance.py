"""bench/appearance_models.py runs at its test size on the CPU (the lead runs it at full size on a GPU)."""

from __future__ import annotations

from appearance_models_folder import bench_module


def test_the_model_backend_benchmark_runs_small(models: str, capsys) -> None:
    rows = bench_module().main(
        ["--size", "tiny", "--side", "192", "--photos", "2", "--steps", "2", "--models", models]
    )
    assert [row["task"] for row in rows] == ["color_alteration", "material_modification", "style_transfer"]
    for row in rows:
        assert row["edits"] > 0 and row["s_per_edit"] > 0 and row["edits_per_gpu_hour"] > 0, row
    assert rows[0]["depth_calls"] > 0 and rows[2]["depth_calls"] == 0  # the style edit needs no depth
    table = capsys.readouterr().out
    assert "| color_alteration |" in table and "edits_per_gpu_hour" in table
