"""`step1x-data report` on real runs: what it counts, the files it writes, its pages in a real Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import make_run, step1x_data
from PIL import Image

from pipelines.report import pick_gallery
from pipelines.run_contents import read_runs


def manifest_rows(run: Path) -> list[dict]:
    return [r for m in sorted((run / "shards").glob("*.parquet")) for r in pq.read_table(m).to_pylist()]


def view_ids(run: Path, name: str = "kept") -> set[str]:
    return set(pq.read_table(run / "views" / name / "ids.parquet").column("id").to_pylist())


def broken_images(page) -> list[str]:
    """Loads every <img> of the page (the gallery's are lazy) and returns those that did not resolve."""
    return page.evaluate(
        """async () => {
            const images = Array.from(document.images);
            await Promise.all(images.map((img) => { img.loading = "eager";
                return img.decode().catch(() => null); }));
            return images.filter((img) => !(img.complete && img.naturalWidth > 0)).map((img) => img.src);
        }"""
    )


@pytest.fixture(scope="module")
def report(removal_run: Path, tone_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    result = step1x_data("report", removal_run, tone_run, "--out", out, "--per-task", 12)
    assert str(out / "index.html") in result.stdout
    return out


def test_counts_cover_every_sample_and_reject(report: Path, removal_run: Path, tone_run: Path) -> None:
    summary = json.loads((report / "report.json").read_text())
    rows = manifest_rows(removal_run) + manifest_rows(tone_run)
    kept = view_ids(removal_run) | view_ids(tone_run)
    assert summary["samples"] == len(rows)
    assert summary["by_status"] == {"kept": len(kept), "rejected": len(rows) - len(kept), "unjudged": 0}
    assert summary["by_status"]["rejected"] > 0  # the tone run's threshold rejects some
    source_rejects = [
        r
        for run in (removal_run, tone_run)
        for f in (run / "rejects").glob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    ]
    assert summary["source_rejects"] == len(source_rejects) > 0
    reasons = {}
    for r in source_rejects:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    assert summary["source_reject_reasons"] == reasons
    assert summary["judge_reject_reasons"] == {"below_min_o": summary["by_status"]["rejected"]}
    for task in ("subject_removal", "tone_transformation"):
        task_rows = [r for r in rows if r["task"] == task]
        assert summary["per_task"][task]["samples"] == len(task_rows)
        assert summary["per_task"][task]["mean_o"] == pytest.approx(
            np.mean([r["o"] for r in task_rows]), abs=0.01
        )
    assert summary["gallery"] == {"subject_removal": 4, "tone_transformation": 12}
    assert len(summary["plots"]) == 7  # every statistic has data in these runs (throughput from run.json)
    for plot in summary["plots"]:
        with Image.open(report / plot) as image:
            assert image.size[0] > 400 and image.size[1] > 200


def test_thumbnails_match_the_shards(report: Path, removal_run: Path) -> None:
    """Each thumbnail is its sample's image, downscaled; the overlay is the sample's mask."""
    tar = next((removal_run / "shards").glob("*.tar"))
    for sample in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False).decode("rgb8"):
        key = sample["__key__"]
        target = sample["tgt.jpg"]
        thumb = np.asarray(Image.open(report / "thumbs" / f"{key}.tgt.jpg").convert("RGB"))
        assert max(thumb.shape[:2]) == 256
        assert thumb.shape[0] / thumb.shape[1] == pytest.approx(target.shape[0] / target.shape[1], abs=0.01)
        reduced = np.asarray(Image.fromarray(target).resize(thumb.shape[1::-1], Image.Resampling.BOX))
        assert np.abs(reduced.astype(int) - thumb.astype(int)).mean() < 6
        overlay = np.asarray(Image.open(report / "thumbs" / f"{key}.mask.png"))
        mask = np.asarray(
            Image.fromarray(sample["mask.png"][..., 0]).resize(thumb.shape[1::-1], Image.NEAREST)
        )
        assert overlay.shape[:2] == thumb.shape[:2]
        assert ((overlay[..., 3] > 0) == (mask >= 128)).mean() > 0.99
        assert 0 < (overlay[..., 3] > 0).mean() < 0.5


def test_gallery_spans_the_score_range_and_includes_rejects(tone_run: Path) -> None:
    samples = read_runs([str(tone_run)]).samples
    picked = samples.set_index("id").loc[pick_gallery(samples, 9)]
    assert len(picked) == 9
    assert (picked["status"] == "rejected").sum() == 3  # a third of the gallery when enough are rejected
    assert picked["o"].min() == samples["o"].min()
    assert picked["o"].max() == samples["o"].max()


def test_page_in_chromium(report: Path, page, tmp_path: Path) -> None:
    page.goto((report / "index.html").as_uri())
    page.wait_for_load_state("load")
    # Every thumbnail and plot resolves: each <img> is loaded eagerly and checked for real pixels.
    assert broken_images(page) == []
    image_count = page.evaluate("document.images.length")
    assert image_count >= 16 * 2 + 4 + 7  # two thumbnails per card, masks of the removals, the plots

    def shown() -> list[dict]:
        return page.evaluate(
            """Array.from(document.querySelectorAll('#gallery .card')).filter((c) => !c.hidden)
                 .map((c) => ({task: c.dataset.task, status: c.dataset.status, o: Number(c.dataset.o)}))"""
        )

    everything = shown()
    assert len(everything) == 16
    page.select_option("#f-task", "subject_removal")
    assert {c["task"] for c in shown()} == {"subject_removal"} and len(shown()) == 4
    page.select_option("#f-task", "all")
    page.select_option("#f-status", "rejected")
    rejected = [c for c in everything if c["status"] == "rejected"]
    assert rejected and shown() == rejected
    page.select_option("#f-status", "all")
    page.fill("#f-min", "9.5")
    page.dispatch_event("#f-min", "change")
    high = [c for c in everything if c["o"] >= 9.5]
    assert 0 < len(high) < len(everything) and shown() == high
    assert page.inner_text("#f-count") == f"{len(high)} of 16 shown"
    # The filter state is in the URL, so a reload (what `serve` does on new data) keeps it.
    page.reload()
    page.wait_for_load_state("load")
    assert shown() == high
    page.fill("#f-min", "0")
    page.dispatch_event("#f-min", "change")

    mask = "#gallery .card[data-task=subject_removal] img.mask"
    opacity = f"getComputedStyle(document.querySelector('{mask}')).opacity"
    assert page.evaluate(opacity) == "0"
    page.check("#f-masks")
    page.wait_for_timeout(300)  # the CSS transition
    assert float(page.evaluate(opacity)) == pytest.approx(0.55)
    # only the mask's pixels tint the target: the overlay has no background of its own
    background = f"getComputedStyle(document.querySelector('{mask}')).backgroundColor"
    assert page.evaluate(background) == "rgba(0, 0, 0, 0)"
    page.uncheck("#f-masks")
    page.hover("#gallery .card[data-task=subject_removal] figure.target")
    page.wait_for_timeout(300)
    assert float(page.evaluate(opacity)) == pytest.approx(0.55)

    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 50_000
    assert page.problems == []


def test_rejects_page_groups_by_reason(report: Path, page) -> None:
    page.goto((report / "rejects.html").as_uri())
    page.wait_for_load_state("load")
    assert broken_images(page) == []
    groups = page.evaluate(
        """Array.from(document.querySelectorAll('section.reject-group')).map((s) => ({
             reason: s.dataset.reason, examples: s.querySelectorAll('.card').length,
             images: Array.from(s.querySelectorAll('img'))
                       .filter((i) => i.complete && i.naturalWidth > 0).length}))"""
    )
    by_reason = {g["reason"]: g for g in groups}
    assert set(by_reason) == {"below_min_o", "mask_cut_by_border", "mask_too_large"}
    summary = json.loads((report / "report.json").read_text())
    assert by_reason["below_min_o"]["examples"] == min(6, summary["by_status"]["rejected"])
    # a rejected source that decodes is shown (chelsea.png: a fine photo whose only label is too large)
    assert by_reason["mask_too_large"]["images"] == 1
    assert page.problems == []


def test_unjudged_run_and_bad_folders(tmp_path: Path) -> None:
    run = make_run("subject_removal", tmp_path / "run", min_o=None)  # never filtered
    step1x_data("report", run)  # the default output folder: RUN/report
    summary = json.loads((run / "report" / "report.json").read_text())
    assert summary["by_status"]["unjudged"] == summary["samples"] == 4
    assert not any("survival" in p or "histograms" in p for p in summary["plots"])  # nothing judged to plot

    for args, message in (
        ([tmp_path], "is not a run folder"),
        ([run, "--view", "strict"], "no view 'strict'"),
    ):
        result = step1x_data("report", *args, exit_code=1)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
