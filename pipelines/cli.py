"""The `step1x-data` command line."""

from __future__ import annotations

import sys
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from pipelines.cli_publish import release_command, report_command, serve_command, verify_command
from pipelines.config import RunConfig
from pipelines.filter import filter_command
from pipelines.inspect_run import inspect_command
from pipelines.judge_agreement import judge_agreement_command
from pipelines.progress import RunProgress
from pipelines.runner import RunError, RunSummary, run
from pipelines.sources import SourceError, store_access
from tasks.registry import GEDIT_KEYS, available_tasks

console = Console(stderr=True)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--param key=value`; values are YAML scalars, and a comma makes a list (`operations=haze,rain`)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--param")
        params[key] = [yaml.safe_load(v) for v in value.split(",")] if "," in value else yaml.safe_load(value)
    return params


def print_summary(summary: RunSummary) -> None:
    table = Table(title=f"step1x-data run → {summary.out}", show_header=False)
    table.add_row("sources listed", str(summary.listed))
    table.add_row("already done (resumed)", str(summary.already_done))
    table.add_row("sources read", str(summary.read))
    table.add_row("sources kept", str(summary.kept_sources))
    table.add_row("samples written", str(summary.samples))
    if summary.errors:
        table.add_row("errors (see rejects: error:STEP)", str(summary.errors))
    for reason, count in sorted(summary.rejects.items()):
        table.add_row(f"rejected: {reason}", str(count))
    table.add_row("samples per second", f"{summary.samples_per_second:.2f}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("folder total", f"{summary.total_samples} samples, {summary.total_rejects} rejects")
    Console().print(table)
    click.echo(
        f"shards: {summary.out.rstrip('/')}/shards/  (manifests beside them; rejects in "
        f"{summary.out.rstrip('/')}/rejects/)"
    )


@click.group()
def main() -> None:
    """Generate, judge and inspect instruction-based image-editing data."""


@main.command("tasks")
def tasks_command() -> None:
    """List the edit categories, their GEdit-Bench keys and which have an implementation."""
    ready = set(available_tasks())
    for name, key in GEDIT_KEYS.items():
        click.echo(f"{name:26s} {key:18s} {'available' if name in ready else 'not yet built'}")


@main.command("run")
@click.argument("task", type=click.Choice(list(GEDIT_KEYS)))
@click.option("--source", required=True, help="Folder, list (.txt/.parquet), tar(s), glob or COCO json.")
@click.option("--out", required=True, help="Run folder (local path, s3://, gs://).")
@click.option(
    "--labels",
    default=None,
    help="COCO instances json for the source folder (default: labels.coco.json inside it, if present).",
)
@click.option("--licence", default="unknown", show_default=True, help="Licence of sources without one.")
@click.option(
    "--backend",
    type=click.Choice(["offline", "models"]),
    default="offline",
    show_default=True,
    help="offline: classical methods and models that ship with their packages; models: pretrained "
    "weights from --models-dir (Florence-2, SAM-2, FLUX-Fill, ...) where the task has them.",
)
@click.option(
    "--models-dir",
    envvar="STEP1X_MODELS",
    default=None,
    help="Local folder of pretrained weights, one subfolder per upstream repository (env STEP1X_MODELS).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--image-format", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True)
@click.option("--max-side", type=int, default=2048, show_default=True, help="Downscale larger sources.")
@click.option("--shard-max-samples", type=int, default=1000, show_default=True)
@click.option("--shard-max-bytes", type=int, default=1 << 30, show_default=True)
@click.option("--param", "params", multiple=True, help="Task parameter, key=value (repeatable).")
@click.option("--workers", type=int, default=None, help="Parallel workers per stage (default: all CPUs).")
@click.option("--address", default=None, help="Ray address (default: RAY_ADDRESS, else an embedded Ray).")
@click.option(
    "--executor",
    type=click.Choice(["ray", "local"]),
    default="ray",
    show_default=True,
    help="'local' runs the same steps in this process, without Ray.",
)
@click.option("--limit", type=int, default=None, help="Process at most this many new source items.")
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Go on past sources a step fails on (bugs, not rejects), recording them; exit non-zero if they "
    "exceed this fraction of the sources read. Default: the first failure stops the run.",
)
@click.option(
    "--instruction-writer",
    type=click.Choice(["templates", "openai"]),
    default="templates",
    show_default=True,
    help="'openai': an MLLM writes EN and ZH instructions from each pair.",
)
@click.option("--writer-url", default=None, help="OpenAI-compatible base URL (vLLM, SGLang, hosted).")
@click.option("--writer-model", default=None, help="Model name on that server.")
@click.option(
    "--writer-api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Name of the variable that holds the API key (the key itself is never written).",
)
@click.option("--writer-candidates", type=int, default=3, show_default=True, help="Candidates per language.")
@click.option(
    "--quiet",
    is_flag=True,
    help="No live table: a plain progress line every --log-every seconds (for logs; also off a terminal).",
)
@click.option(
    "--log-every",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds between progress lines when the live table is off (0: none).",
)
def run_command(
    task: str, params: tuple[str, ...], executor: str, quiet: bool, log_every: float, **options: Any
) -> None:
    """Make TASK pairs from --source into WebDataset shards under --out (resumes an existing --out)."""
    try:
        config = RunConfig(task=task, task_params=_parse_params(params), **options)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    # per stage: rows in/out, rejects, throughput, ETA; also written to OUT/progress.json
    live = False if quiet else None  # None: live on a terminal
    try:
        with store_access("--out", config.out):  # an object store without its extra is one line
            progress = RunProgress(config.out, task, console=console, live=live, log_every_s=log_every)
    except SourceError as error:
        raise click.ClickException(str(error)) from None
    summary = None
    try:
        summary = run(config, executor=executor, on_item=progress.observe)
    except RunError as error:
        raise click.ClickException(str(error)) from None
    finally:
        progress.finish(summary, "finished" if summary is not None else "failed")
    print_summary(summary)


def task_entry(task: str) -> None:
    """`python -m pipelines.<task> ARGS` is `step1x-data run <task> ARGS` (the `ray job submit` form)."""
    run_command.main(args=[task, *sys.argv[1:]], prog_name=f"python -m pipelines.{task}")


main.add_command(inspect_command)
main.add_command(filter_command)
main.add_command(judge_agreement_command)
main.add_command(report_command)
main.add_command(release_command)
main.add_command(verify_command)
main.add_command(serve_command)


if __name__ == "__main__":
    main()
