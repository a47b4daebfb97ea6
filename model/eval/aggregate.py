"""GEdit-Bench aggregation, as the reference computes it, and its tables.

Per language and subset (the full set, and the intersection subset of rows with `Intersection_exist`): the
mean SC, PQ and O of each category over its scored rows, then the unweighted mean of the category means (a
macro average: a category of 40 rows weighs as much as one of 99). Rows whose judge failed or whose output
is missing are counted, never scored as 0 and never guessed: the reference draws a random score for an
unreadable answer, we leave the row out and say how many were left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from model.eval.bench import GEDIT_CATEGORIES

METRICS = ("sc", "pq", "o")
SUBSETS = ("intersection", "full")
LANGUAGE_TITLES = {"en": "GEdit-Bench-EN", "cn": "GEdit-Bench-CN"}


def category_order(categories: Iterable[str]) -> list[str]:
    """GEdit-Bench's order, then any other category alphabetically."""
    present = set(categories)
    return [c for c in GEDIT_CATEGORIES if c in present] + sorted(present - set(GEDIT_CATEGORIES))


def language_order(languages: Iterable[str]) -> list[str]:
    """English, then Chinese (the paper's table order), then any other language alphabetically."""
    present = set(languages)
    return [lang for lang in ("en", "cn") if lang in present] + sorted(present - {"en", "cn"})


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Score records (key, category, language, intersection, status, sc, pq, o) ->
    {language: {subset: {"categories": {category: {n, failed, missing, sc, pq, o}}, "overall": {sc, pq, o},
    "rows": n, "scored": n}}}. A subset with no row is left out (a bench without intersection flags)."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for language in language_order(r["language"] for r in records):
        in_language = [r for r in records if r["language"] == language]
        result[language] = {}
        for subset in SUBSETS:
            rows = [r for r in in_language if subset == "full" or r["intersection"]]
            if not rows:
                continue
            categories: dict[str, dict[str, Any]] = {}
            for category in category_order(r["category"] for r in rows):
                mine = [r for r in rows if r["category"] == category]
                ok = [r for r in mine if r["status"] == "ok"]
                entry: dict[str, Any] = {
                    "rows": len(mine),
                    "n": len(ok),
                    "failed": sum(r["status"] == "judge_failed" for r in mine),
                    "missing": sum(r["status"] == "missing_output" for r in mine),
                }
                entry |= {m: _mean([r[m] for r in ok]) for m in METRICS}
                categories[category] = entry
            scored = [c for c in categories.values() if c["n"]]
            result[language][subset] = {
                "categories": categories,
                "overall": {m: _mean([c[m] for c in scored]) for m in METRICS},
                "categories_scored": len(scored),
                "rows": len(rows),
                "scored": sum(c["n"] for c in categories.values()),
            }
    return result


def _f(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def _d(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def published_table(agg: dict[str, dict[str, dict[str, Any]]], prefix: str, label: str) -> str:
    """One markdown table per language in the paper's layout: intersection, then full set; SC, PQ, O."""
    out = []
    for language, subsets in agg.items():
        header = [LANGUAGE_TITLES.get(language, language)]
        cells = [label]
        for subset in SUBSETS:
            if subset not in subsets:
                continue
            tag = "IS" if subset == "intersection" else "Full"
            header += [f"{tag} {prefix}_{m.upper()}" for m in METRICS]
            cells += [_f(subsets[subset]["overall"][m]) for m in METRICS]
        out.append(_markdown(header, [cells]))
    return "\n".join(out)


def category_table(agg: dict[str, dict[str, dict[str, Any]]], prefix: str) -> str:
    """Per language and subset: each category's means, how many rows were scored, failed or missing."""
    out = []
    for language, subsets in agg.items():
        for subset, block in subsets.items():
            title = f"{LANGUAGE_TITLES.get(language, language)}, {subset} set"
            if block["categories_scored"] < len(block["categories"]) or block["scored"] < block["rows"]:
                title += f" ({block['scored']} of {block['rows']} rows scored)"
            header = ["category", "rows", "scored", "failed", "missing"]
            header += [f"{prefix}_{m.upper()}" for m in METRICS]
            body = [
                [c, str(v["rows"]), str(v["n"]), str(v["failed"]), str(v["missing"])]
                + [_f(v[m]) for m in METRICS]
                for c, v in block["categories"].items()
            ]
            body.append(["**mean of categories**", str(block["rows"]), str(block["scored"]), "", ""])
            body[-1] += [_f(block["overall"][m]) for m in METRICS]
            out.append(f"**{title}**\n\n" + _markdown(header, body))
    return "\n".join(out)


def compare(
    a: dict[str, dict[str, dict[str, Any]]], b: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, dict[str, dict[str, dict[str, float | None]]]]:
    """{language: {subset: {category or "overall": {sc_a, sc_b, sc_diff, ...}}}} over what both runs have."""
    result: dict[str, dict[str, dict[str, dict[str, float | None]]]] = {}
    for language in [lang for lang in a if lang in b]:
        for subset in [s for s in SUBSETS if s in a[language] and s in b[language]]:
            block_a, block_b = a[language][subset], b[language][subset]
            rows: dict[str, dict[str, float | None]] = {}
            names = category_order([*block_a["categories"], *block_b["categories"]])
            for name in [*names, "overall"]:
                va = block_a["overall"] if name == "overall" else block_a["categories"].get(name, {})
                vb = block_b["overall"] if name == "overall" else block_b["categories"].get(name, {})
                row: dict[str, float | None] = {}
                for m in METRICS:
                    x, y = va.get(m), vb.get(m)
                    row |= {f"{m}_a": x, f"{m}_b": y, f"{m}_diff": None if x is None or y is None else y - x}
                rows[name] = row
            result.setdefault(language, {})[subset] = rows
    return result


def compare_table(diff: dict[str, dict[str, dict[str, dict[str, float | None]]]], prefix: str) -> str:
    out = []
    for language, subsets in diff.items():
        for subset, rows in subsets.items():
            header = ["category"]
            for m in METRICS:
                header += [f"{prefix}_{m.upper()} A", "B", "B − A"]
            body = []
            for name, row in rows.items():
                cells = ["**mean of categories**" if name == "overall" else name]
                for m in METRICS:
                    cells += [_f(row[f"{m}_a"]), _f(row[f"{m}_b"]), _d(row[f"{m}_diff"])]
                body.append(cells)
            out.append(
                f"**{LANGUAGE_TITLES.get(language, language)}, {subset} set**\n\n" + _markdown(header, body)
            )
    return "\n".join(out)


def _markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"
