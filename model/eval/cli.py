"""`step1x-eval`: GEdit-Bench evaluation of a Step1X-Edit model, from a local copy of the benchmark.

step1x-eval generate --bench /data/GEdit-Bench --out eval/v11 --models-dir /models [--ckpt ckpt/] [--gpus 2]
step1x-eval score eval/v11 --judge openai --judge-url http://vllm:8000/v1        # VIEScore, cached
step1x-eval score eval/v11 --judge heuristic                                    # offline, not comparable
step1x-eval report eval/v11                                                     # the tables again
step1x-eval compare eval/v11 eval/mine                                          # per category, B - A
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from annotators.judge.spec import JUDGE_KINDS, JudgeSpec
from annotators.mllm.protocols import PROTOCOLS
from model.eval.aggregate import category_table, compare, compare_table, published_table
from model.eval.bench import Bench, BenchError
from model.eval.editor import EditSettings
from model.eval.score import edit_judge_scorer, heuristic_scorer, score_outputs, write_report


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for value in values for v in value.split(",") if v)


@click.group()
def main() -> None:
    """Evaluate a Step1X-Edit model on GEdit-Bench: generate the edits, score them, compare runs."""


@main.command("generate")
@click.option("--bench", required=True, help="Local GEdit-Bench: parquet/jsonl file, folder or glob.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Eval folder.")
@click.option("--models-dir", envvar="STEP1X_MODELS", help="Local models folder (official weights).")
@click.option("--version", "model_version", type=click.Choice(["v1.0", "v1.1"]), default="v1.1")
@click.option("--ckpt", help="A step1x-train output folder (transformer/ and/or lora/) to evaluate.")
@click.option("--lora-scale", default=1.0, show_default=True)
@click.option("--tiny", is_flag=True, help="Tiny random models: a smoke test of the pipeline, not an eval.")
@click.option("--size-level", default=512, show_default=True, help="Edit at about this side squared.")
@click.option("--steps", default=28, show_default=True)
@click.option("--cfg", default=6.0, show_default=True)
@click.option("--seed", default=42, show_default=True, help="The same seed for every row.")
@click.option("--image-column", help="Input image column [default: input_image_raw, else input_image].")
@click.option("--language", "languages", multiple=True, help="Only these (en, cn; repeatable or a,b).")
@click.option("--category", "categories", multiple=True, help="Only these task types.")
@click.option("--limit", type=int, help="Only the first N selected rows (a smoke run).")
@click.option("--batch-size", default=1, show_default=True, help="Edits per denoiser batch (same size).")
@click.option(
    "--device",
    default=None,
    help="cuda or cpu [default: cuda if available]; with --gpus N, process i uses cuda:i.",
)
@click.option("--gpus", default=1, show_default=True, help="Processes, one per GPU, each taking 1/N of rows.")
@click.option("--offload", is_flag=True, help="Keep components on the CPU until each runs.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the DiT blocks.")
def generate_command(
    bench: str,
    out: Path,
    models_dir: str | None,
    model_version: str,
    ckpt: str | None,
    lora_scale: float,
    tiny: bool,
    size_level: int,
    steps: int,
    cfg: float,
    seed: int,
    image_column: str | None,
    languages: tuple[str, ...],
    categories: tuple[str, ...],
    limit: int | None,
    batch_size: int,
    device: str | None,
    gpus: int,
    offload: bool,
    compile_: bool,
) -> None:
    """Edit every bench row with the model into OUT (resumes: rows with an image are skipped)."""
    from model.eval.generate import GenerateOptions, GenerationMismatch, generate  # torch: only here

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not tiny and not models_dir:
        raise click.UsageError("no model: pass --models-dir (or STEP1X_MODELS), or --tiny for a smoke run")
    if models_dir and not Path(models_dir).is_dir():
        raise click.UsageError(f"--models-dir {models_dir}: no such folder (nothing is downloaded)")
    settings = EditSettings(model_version, ckpt, lora_scale, tiny, size_level, steps, cfg, seed)
    options = GenerateOptions(
        device=device,
        gpus=gpus,
        batch_size=batch_size,
        models_dir=models_dir,
        offload=offload,
        compile=compile_,
        languages=_split(languages),
        categories=_split(categories),
        limit=limit,
    )
    try:
        summary = generate(bench, out, settings, options, image_column)
    except (BenchError, GenerationMismatch, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"{summary.rows} rows: {summary.done_before} done before, {summary.generated} generated now, "
        f"{len(summary.rejected)} rejected ({summary.seconds:.1f} s) -> {out}/fullset/"
    )
    for row_id, reason in sorted(summary.rejected.items()):
        click.echo(f"  rejected {row_id}: {reason}")


@main.command("score")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--bench", help="The bench the edits were made from [default: the one in generation.json].")
@click.option("--judge", "judge_kind", type=click.Choice(JUDGE_KINDS), default="openai", show_default=True)
@click.option(
    "--judge-url", envvar="STEP1X_JUDGE_URL", help="OpenAI-compatible server, e.g. http://vllm:8000/v1."
)
@click.option("--judge-model", envvar="STEP1X_JUDGE_MODEL", help="[default: the server's only model]")
@click.option(
    "--judge-protocol",
    type=click.Choice(PROTOCOLS),
    help="[default: gedit] gedit: GEdit-Bench's own prompt (comparable with published numbers); viescore: "
    "this project's bilingual wording; editscore: EditScore's prompt and sampling.",
)
@click.option("--judge-passes", type=int, help="Answers averaged per question (editscore).")
@click.option(
    "--editreward-dir", type=click.Path(exists=True, file_okay=False), help="EditReward checkpoint."
)
@click.option(
    "--editreward-base",
    type=click.Path(exists=True, file_okay=False),
    envvar="STEP1X_EDITREWARD_BASE",
    help="The Qwen2.5-VL-7B-Instruct folder EditReward was trained from.",
)
@click.option("--editreward-device", help="[default: cuda if available, else cpu]")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Variable holding the key.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds per request.")
@click.option("--max-retries", default=3, show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Judge answer cache [default: OUT/cache/judge].",
)
@click.option("--name", help="OUT/scores/NAME [default: from the judge, e.g. gedit-gpt-4.1].")
@click.option("--language", "languages", multiple=True, help="Only these languages.")
@click.option("--workers", default=None, type=int, help="Judge threads [default: --concurrency].")
@click.option("--rejudge", is_flag=True, help="Judge again rows this judge already scored.")
def score_command(
    out: Path,
    bench: str | None,
    judge_kind: str,
    judge_url: str | None,
    judge_model: str | None,
    judge_protocol: str | None,
    judge_passes: int | None,
    editreward_dir: str | None,
    editreward_base: str | None,
    editreward_device: str | None,
    api_key_env: str,
    concurrency: int,
    timeout: float,
    max_retries: int,
    cache_dir: Path | None,
    name: str | None,
    languages: tuple[str, ...],
    workers: int | None,
    rejudge: bool,
) -> None:
    """Judge the edited images of OUT; write OUT/scores/NAME/ and print the GEdit-Bench tables."""
    generation = _generation(out)
    bench_path = bench or (generation.get("bench") or {}).get("path")
    if not bench_path:
        raise click.UsageError(f"{out} has no generation.json naming its bench: pass --bench")
    try:
        loaded = Bench(bench_path, (generation.get("bench") or {}).get("image_column"))
    except BenchError as err:
        raise click.ClickException(str(err)) from None
    wanted = set(_split(languages))
    rows = [r for r in loaded.rows if not wanted or r.language in wanted]
    if judge_kind == "heuristic":
        scorer = heuristic_scorer()
    else:
        spec = JudgeSpec(
            judge_kind,  # type: ignore[arg-type]
            judge_url,
            judge_model,
            judge_protocol or ("gedit" if judge_kind == "openai" else None),
            judge_passes,
            api_key_env,
            concurrency,
            timeout,
            max_retries,
            str(cache_dir or out / "cache" / "judge"),
            editreward_dir,
            editreward_base,
            editreward_device,
        )
        try:
            spec.check()
            scorer = edit_judge_scorer(spec, sorted({r.language for r in rows}), name)
        except (ValueError, FileNotFoundError) as err:
            raise click.UsageError(str(err)) from None
    if name and judge_kind == "heuristic":
        scorer.name = name
    try:
        summary = score_outputs(out, loaded, scorer, rows, workers or concurrency, rejudge)
    finally:
        scorer.close()
    report = summary.report
    click.echo(f"> {report['note']}\n")
    click.echo(published_table(report["aggregate"], report["prefix"], report["label"]))
    click.echo(category_table(report["aggregate"], report["prefix"]))
    click.echo(
        f"{summary.rows} rows ({', '.join(f'{n} {s}' for s, n in sorted(summary.status.items()))}); "
        f"{summary.judged} judged now, {summary.reused} reused; {summary.seconds:.1f} s -> {summary.folder}"
    )


def _generation(out: Path) -> dict[str, Any]:
    path = out / "generation.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _scores_folder(path: Path, name: str | None) -> Path:
    """An eval folder (with its one scores/NAME, or --scores NAME) or a scores/NAME folder itself."""
    if (path / "report.json").exists():
        return path
    scores = path / "scores"
    if name:
        folder = scores / name
        if not (folder / "report.json").exists():
            raise click.ClickException(f"{folder}: no report.json (run `step1x-eval score` first)")
        return folder
    found = sorted(p.parent for p in scores.glob("*/report.json")) if scores.is_dir() else []
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise click.ClickException(f"{path}: {len(found)} scored judges ({names}): name one with --scores")
    return found[0]


@main.command("report")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--scores", "scores_name", help="Which OUT/scores/NAME [default: the only one].")
@click.option("--prefix", help="Column prefix [default: the judge's: G, Q, E, R or H].")
@click.option("--json", "as_json", is_flag=True, help="The aggregation as JSON.")
def report_command(path: Path, scores_name: str | None, prefix: str | None, as_json: bool) -> None:
    """The tables of a scored eval folder (written again from its scores)."""
    import pyarrow.parquet as pq

    folder = _scores_folder(path, scores_name)
    judge = json.loads((folder / "judge.json").read_text(encoding="utf-8"))
    records = pq.read_table(folder / "scores.parquet").to_pylist()
    report = write_report(folder.parent.parent, folder, records, judge, prefix)
    if as_json:
        click.echo(json.dumps(report["aggregate"], indent=2))
        return
    click.echo(f"> {report['note']}\n")
    click.echo(published_table(report["aggregate"], report["prefix"], report["label"]))
    click.echo(category_table(report["aggregate"], report["prefix"]))


@main.command("compare")
@click.argument("a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--scores", "scores_name", help="The OUT/scores/NAME to compare in both [default: the only one]."
)
@click.option("--json", "as_json", is_flag=True, help="The comparison as JSON.")
def compare_command(a: Path, b: Path, scores_name: str | None, as_json: bool) -> None:
    """Two scored runs side by side: per category and overall, A, B and B - A."""
    reports = []
    for path in (a, b):
        folder = _scores_folder(path, scores_name)
        reports.append(json.loads((folder / "report.json").read_text(encoding="utf-8")))
    ra, rb = reports
    diff = compare(ra["aggregate"], rb["aggregate"])
    if as_json:
        click.echo(json.dumps({"a": ra["label"], "b": rb["label"], "compare": diff}, indent=2))
        return
    if ra["judge"]["name"] != rb["judge"]["name"]:
        click.echo(
            f"warning: different judges ({ra['judge']['name']} / {rb['judge']['name']}): the differences "
            "mix the models' and the judges'",
            err=True,
        )
    prefix = ra["prefix"] if ra["prefix"] == rb["prefix"] else f"{ra['prefix']}/{rb['prefix']}"
    click.echo(f"A: {ra['label']}\nB: {rb['label']}\n")
    click.echo(compare_table(diff, prefix))


if __name__ == "__main__":
    main()
