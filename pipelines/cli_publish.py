"""The commands that show and ship a run: `report`, `serve`, `release`, `verify`.

Their heavy modules (matplotlib, jinja2, huggingface_hub) are imported when a command runs, so the rest of
`step1x-data` works without the `report` extra, and a missing extra is one line naming it.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from types import ModuleType

import click

from pipelines.run_contents import RunReadError, read_runs


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise click.ClickException(str(error)) from None


def _default_out(runs: tuple[str, ...]) -> Path:
    if len(runs) == 1 and "://" not in runs[0]:
        return Path(runs[0]) / "report"
    raise click.UsageError("--out is needed for several runs or a remote run")


@click.command("report")
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="[default: RUN/report]")
@click.option("--view", default=None, help="View deciding kept/rejected [default: kept, else the only one].")
@click.option("--per-task", default=48, show_default=True, help="Gallery samples per category.")
@click.option("--per-reason", default=6, show_default=True, help="Examples per reject reason.")
@click.option("--thumb-size", default=256, show_default=True, help="Longest side of a thumbnail (px).")
@click.option("--clean", is_flag=True, help="Remove OUT's old thumbnails and plots first.")
def report_command(
    runs: tuple[str, ...],
    out: Path | None,
    view: str | None,
    per_task: int,
    per_reason: int,
    thumb_size: int,
    clean: bool,
) -> None:
    """Write a static HTML report (gallery, rejects, statistics) of one or more RUN folders."""
    report = _module("pipelines.report")
    out = out or _default_out(runs)
    try:
        contents = read_runs(list(runs), view)
    except RunReadError as error:
        raise click.ClickException(str(error)) from None
    if clean:
        for sub in ("thumbs", "plots"):
            shutil.rmtree(out / sub, ignore_errors=True)
    options = report.ReportOptions(view=view, per_task=per_task, per_reason=per_reason, thumb_size=thumb_size)
    summary = report.build_report(contents, out, options)
    status = summary["by_status"]
    click.echo(
        f"{out / 'index.html'}: {summary['samples']} samples ({status['kept']} kept, {status['rejected']} "
        f"rejected, {status['unjudged']} unjudged), {summary['source_rejects']} rejected sources, "
        f"{sum(summary['gallery'].values())} in the gallery; {summary['seconds']:.1f} s"
    )
