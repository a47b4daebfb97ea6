"""The dataset card of a release: README.md in the Hugging Face format (YAML metadata, then Markdown).

Everything in it is computed from the released samples' own records and the runs' run.json and view.json:
counts per category and language, score distributions, the sources' licences, the tools and models that
made and judged the pairs with their licences, and the limitations that follow from how it was made.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines.run_contents import RunContents

try:
    import datasets
    import jinja2
    from huggingface_hub import DatasetCardData
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the release needs jinja2, huggingface_hub and datasets: pip install 'step1x-data[report]'"
    ) from error

TEMPLATES = Path(__file__).with_name("templates")
CATEGORY_COUNT = 11  # the GEdit-Bench categories (tasks.registry.GEDIT_KEYS)

# What made or judged a pair, by a lower-case fragment of its backend or model name: what it is, its licence.
# Classical backends have no weights; model backends name the upstream weights' licence.
TOOL_LICENCES = [
    ("labels", "object labels supplied with the source photos", "the labels' own licence"),
    (
        "saliency_grabcut",
        "OpenCV fine-grained saliency + GrabCut (classical, no weights)",
        "Apache-2.0 (OpenCV)",
    ),
    (
        "opencv_telea",
        "OpenCV Telea inpainting with matched grain (classical, no weights)",
        "Apache-2.0 (OpenCV)",
    ),
    ("heuristic", "step1x-data's pixel-measurement judge (no weights)", "Apache-2.0"),
    ("templates", "step1x-data's bilingual instruction templates", "Apache-2.0"),
    ("offline backend", "step1x-data's own edit code for the category (no weights)", "Apache-2.0"),
    ("florence-2", "Microsoft Florence-2 (grounding)", "MIT"),
    ("sam2", "Meta SAM 2 (segmentation)", "Apache-2.0"),
    ("sam-2", "Meta SAM 2 (segmentation)", "Apache-2.0"),
    (
        "flux.1-fill",
        "Black Forest Labs FLUX.1 Fill [dev] (inpainting)",
        "FLUX.1 [dev] Non-Commercial License",
    ),
    ("qwen2.5-vl-72b", "Qwen2.5-VL-72B-Instruct", "Qwen licence"),
    ("qwen2.5-vl", "Qwen2.5-VL (7B/3B) Instruct", "Apache-2.0"),
]


def tool_licence(name: str) -> tuple[str, str]:
    lowered = name.lower()
    for fragment, what, licence in TOOL_LICENCES:
        if fragment in lowered:
            return what, licence
    return "not in step1x-data's list", "unknown: check the model's own card"


def size_category(count: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for bound, label in bounds:
        if count < bound:
            return label
    return "1M<n<10M" if count < 10_000_000 else "n>10M"


def _score_table(records: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    judged = records.dropna(subset=["o"])
    for task, group in judged.groupby("task"):
        for score in ("sc", "pq", "o"):
            values = group[score].astype(float)
            rows.append(
                {
                    "task": task,
                    "score": score.upper(),
                    **{
                        name: round(float(value), 2)
                        for name, value in (
                            ("min", values.min()),
                            ("p10", values.quantile(0.1)),
                            ("median", values.median()),
                            ("p90", values.quantile(0.9)),
                            ("max", values.max()),
                        )
                    },
                }
            )
    return rows


def _tools(records: list[dict[str, Any]], contents: RunContents) -> list[dict[str, Any]]:
    """Each tool or model once: role, name, version, the samples it touched, what it is, its licence."""
    used: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        used[("edit", f"{record['task']} ({record.get('backend', '?')} backend)", "")] += 1
        for role, annotator in record.get("annotators", {}).items():
            # {backend, name, version}; records before tools had names carry the tool as `backend`
            name = annotator.get("name") or annotator.get("backend", "?")
            if annotator.get("backend") == "labels":
                name = "labels"  # objects given by COCO labels, not found by a tool
            used[(role, name, annotator.get("version", "?"))] += 1
        judge = (record.get("judge") or {}).get("judge")
        if judge:
            used[("judge", judge, "")] += 1
    for info in contents.runs:
        config = info.run_json.get("config", {})
        writer = config.get("instruction_writer", "templates")
        name = config.get("writer_model") if writer == "openai" else "templates"
        used.setdefault(("instructions", name or "?", ""), 0)  # recorded per run, not per sample
    rows = []
    for (role, name, version), count in sorted(used.items()):
        what, licence = tool_licence(name)
        rows.append(
            {
                "role": role,
                "name": name,
                "version": version,
                "samples": count,
                "what": what,
                "licence": licence,
            }
        )
    return rows


def _limitations(records: pd.DataFrame, contents: RunContents, tools: list[dict[str, Any]]) -> list[str]:
    train = records[records["split"] == "train"]
    notes = []
    backends = sorted(set(train["backend"]))
    if "offline" in backends:
        notes.append(
            "Pairs made by the offline backend use classical methods (OpenCV inpainting, algorithmic "
            "filters, masks from labels or saliency): they are correct examples of each edit but simpler "
            "than edits made by generative models."
        )
    judges = {t["name"] for t in tools if t["role"] == "judge"}
    if any("heuristic" in j for j in judges):
        notes.append(
            "The heuristic judge reads the kind and direction of each edit from its instruction and "
            "measures pixels (the edit region changed as asked, the rest was preserved, the output is not "
            "degenerate); "
            "no model looked at the pairs, and its agreement with people is that of its calibration "
            "(bench/RESULTS.md), not a model's reading of the instruction."
        )
    if any("heuristic" not in j for j in judges):
        notes.append(
            "MLLM judge scores (VIEScore) are a model's opinion and can be wrong in both directions."
        )
    english = train["instruction_en"]
    if any(t["role"] == "instructions" and t["name"] == "templates" for t in tools):
        notes.append(
            f"Instructions come from templates: {english.nunique()} distinct English instructions for "
            f"{len(train)} samples, so phrasing is less varied than human or MLLM-written instructions."
        )
    tasks = sorted(set(train["task"]))
    if len(tasks) < CATEGORY_COUNT:
        present = ", ".join(tasks)
        notes.append(
            f"Only {len(tasks)} of the {CATEGORY_COUNT} GEdit-Bench categories are present: {present}."
        )
    sources = train["source_sha256"].nunique()
    notes.append(
        f"{len(train)} samples come from {sources} source images; one source yields several samples "
        "(variants and inverse pairs), so split by source when holding data out."
    )
    if "negatives" in set(records["split"]):
        notes.append(
            "Negatives are samples below the release's thresholds (or flagged near-duplicates); a low score "
            "is not proof that a pair is wrong."
        )
    return notes


def dataset_features(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The columns of one config in the card's `dataset_info`, so `load_dataset(DIR)` types every sample's
    json from all of them. (Without it, datasets infers the json's structure from the first 5 samples of
    the first tar and silently drops fields that only other categories have, such as their edit params.)"""
    first = records[0]
    json_schema = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "split"} for r in records]).schema
    features = datasets.Features(
        {
            "__key__": datasets.Value("string"),
            f"src.{first['src_ext']}": datasets.Image(),
            f"tgt.{first['tgt_ext']}": datasets.Image(),
            "mask.png": datasets.Image(),
            "json": datasets.Features.from_arrow_schema(json_schema),
        }
    )
    return datasets.DatasetInfo(features=features)._to_yaml_dict()


def render_card(
    manifest: dict[str, Any],
    records: list[dict[str, Any]],
    contents: RunContents,
    figures: dict[str, str],
    licence: str,
) -> str:
    frame = pd.DataFrame(
        [
            {
                "split": r["split"],
                "task": r["task"],
                "gedit_key": r["gedit_key"],
                "instruction_en": (r.get("instruction") or {}).get("en") or "",
                "instruction_zh": (r.get("instruction") or {}).get("zh") or "",
                "source_sha256": r["source"]["sha256"],
                "source_licence": r["source"].get("licence") or "unknown",
                "backend": r.get("backend", "?"),
                **{s: (r.get("judge") or {}).get(s) for s in ("sc", "pq", "o")},
            }
            for r in records
        ]
    )
    counts = []
    for (split, task, key), group in frame.groupby(["split", "task", "gedit_key"]):
        counts.append(
            {
                "split": split,
                "task": task,
                "gedit_key": key,
                "samples": len(group),
                "en": int((group["instruction_en"] != "").sum()),
                "zh": int((group["instruction_zh"] != "").sum()),
            }
        )
    sources = frame.drop_duplicates("source_sha256").groupby("source_licence").size()
    languages = [lang for lang in ("en", "zh") if (frame[f"instruction_{lang}"] != "").any()]
    tools = _tools(records, contents)
    train_count = manifest["splits"].get("train", 0)
    configs, infos = [], []
    for split, config_name in (("train", "default"), ("negatives", "negatives")):
        if split in manifest["splits"]:
            configs.append(
                {
                    "config_name": config_name,
                    "data_files": [{"split": "train", "path": f"data/{split}/*.tar"}],
                }
            )
            split_records = [r for r in records if r["split"] == split]
            infos.append({"config_name": config_name, **dataset_features(split_records)})
    card_data = DatasetCardData(
        license=licence,
        language=languages,
        task_categories=["image-to-image"],
        size_categories=[size_category(train_count)],
        pretty_name=manifest["name"],
        tags=["image-editing", "instruction-based-image-editing", "step1x-data", *sorted(set(frame["task"]))],
        configs=configs,
        dataset_info=infos,
    )
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("dataset_card.md.j2").render(
        card_data=card_data.to_yaml(),
        manifest=manifest,
        counts=counts,
        scores=_score_table(frame[frame["split"] == "train"]),
        source_licences=[{"licence": k, "sources": int(v)} for k, v in sources.items()],
        tools=tools,
        limitations=_limitations(frame, contents, tools),
        figures=figures,
        licence=licence,
    )
