"""The commands that show and ship a run: `report`, `serve`, `release`, `verify`.

Their heavy modules (matplotlib, jinja2, huggingface_hub) are imported when a command runs, so the rest of
`step1x-data` works without the `report` extra, and a missing extra is one line naming it.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
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


@click.command("release")
@click.argument("runs", nargs=-1, required=True)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Release folder."
)
@click.option("--view", default=None, help="Filter view whose kept samples are released [default: kept].")
@click.option("--negatives", is_flag=True, help="Also release the view's rejected samples (data/negatives).")
@click.option(
    "--name", default="step1x-data edits", show_default=True, help="The dataset's name in its card."
)
@click.option(
    "--licence",
    default="other",
    show_default=True,
    help="The dataset's licence id for the card (e.g. cc-by-4.0); each sample keeps its source's licence.",
)
@click.option("--shard-size", default=1000, show_default=True, help="Samples per tar.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
def release_command(
    runs: tuple[str, ...],
    out: Path,
    view: str | None,
    negatives: bool,
    name: str,
    licence: str,
    shard_size: int,
    overwrite: bool,
) -> None:
    """Write the kept samples of RUN folders as a dataset: shards, checksummed manifest, dataset card."""
    release = _module("pipelines.release")
    try:
        contents = read_runs(list(runs), view)
        manifest = release.build_release(
            contents,
            out,
            release.ReleaseOptions(
                name=name, licence=licence, negatives=negatives, shard_size=shard_size, overwrite=overwrite
            ),
        )
    except (RunReadError, release.ReleaseError) as error:
        raise click.ClickException(str(error)) from None
    splits = ", ".join(f"{split}: {n} samples" for split, n in manifest["splits"].items())
    click.echo(f"{out}: {splits}; {len(manifest['files'])} files (manifest.json, README.md)")


@click.command("verify")
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_command(release_dir: Path) -> None:
    """Check a release folder against its manifest.json (sizes, SHA-256, sample counts, the card)."""
    from pipelines.verify_release import verify_release

    problems, totals = verify_release(release_dir)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{release_dir}: {len(problems)} problem(s)")
    click.echo(f"{release_dir}: OK, {totals['files']} files, {totals['samples']} samples match manifest.json")


@click.command("serve")
@click.argument("runs", nargs=-1, required=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port (0: any free port).")
@click.option("--view", default=None, help="View deciding kept/rejected [default: kept, else the only one].")
@click.option("--per-task", default=48, show_default=True, help="Gallery samples per category.")
@click.option(
    "--poll", default=3.0, show_default=True, help="Seconds between the page's checks for new data."
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the pages and thumbnails are built [default: a temporary folder].",
)
def serve_command(
    runs: tuple[str, ...],
    host: str,
    port: int,
    view: str | None,
    per_task: int,
    poll: float,
    cache: Path | None,
) -> None:
    """Browse RUN folders live while they are written: the report, rebuilt as shards are committed."""
    report = _module("pipelines.report")
    serve = _module("pipelines.serve")
    out = cache or Path(tempfile.mkdtemp(prefix="step1x-serve-"))
    live = serve.LiveReport(
        list(runs), out, report.ReportOptions(view=view, per_task=per_task, live=True, poll_seconds=poll)
    )
    try:
        server = serve.make_server(live, host, port)
    except RunReadError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
    click.echo(f"serving {', '.join(runs)} at http://{host}:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
