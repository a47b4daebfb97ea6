"""`step1x-data verify DIR`: a release checked against its manifest.json.

Every listed file is present with its size and SHA-256; no file is unlisted; each tar holds the listed
number of samples, each with a source, a target and its json (and the mask its json announces), keyed by
the json's id; each tar's parquet manifest lists exactly the tar's samples; the dataset card's front
matter parses and each of its data_files patterns matches released tars.
"""

from __future__ import annotations

import fnmatch
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml
from webdataset.tariterators import group_by_keys, tar_file_expander

from pipelines.release import RELEASE_FORMAT, sha256_of


def _check_tar(path: Path, expected: int | None) -> list[str]:
    problems = []
    ids = []
    try:
        with open(path, "rb") as stream:
            for sample in group_by_keys(tar_file_expander([{"url": str(path), "stream": stream}])):
                key = sample["__key__"]
                ids.append(key)
                for stem, what in (("src", "source"), ("tgt", "target")):
                    if f"{stem}.jpg" not in sample and f"{stem}.png" not in sample:
                        problems.append(f"{path.name}: {key} has no {what} image")
                if "json" not in sample:
                    problems.append(f"{path.name}: {key} has no json")
                    continue
                record = json.loads(sample["json"])
                if record.get("id") != key:
                    problems.append(f"{path.name}: {key}'s json names id {record.get('id')}")
                if record.get("edit", {}).get("has_mask") and "mask.png" not in sample:
                    problems.append(f"{path.name}: {key} announces a mask but has none")
    except (OSError, ValueError, tarfile.TarError) as error:
        return [f"{path.name}: unreadable tar ({type(error).__name__}: {error})"]
    if expected is not None and len(ids) != expected:
        problems.append(f"{path.name}: {len(ids)} samples, the manifest says {expected}")
    if len(set(ids)) != len(ids):
        problems.append(f"{path.name}: a sample id appears twice")
    beside = path.with_suffix(".parquet")
    if beside.exists():
        listed = pq.read_table(beside, columns=["id"]).column("id").to_pylist()
        if sorted(listed) != sorted(ids):
            problems.append(f"{beside.name}: its ids differ from {path.name}'s samples")
    return problems


def _front_matter(readme: Path) -> dict[str, Any]:
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError("no YAML front matter")
    block, sep, _ = text[4:].partition("\n---\n")
    if not sep:
        raise ValueError("the YAML front matter is not closed")
    return yaml.safe_load(block) or {}


def verify_release(root: Path) -> tuple[list[str], dict[str, int]]:
    """Returns (problems, totals). An empty problem list means the release is intact."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return [f"{root}: no manifest.json (not a step1x-data release)"], {}
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != RELEASE_FORMAT:
        return [f"manifest.json: format {manifest.get('format')!r}, expected {RELEASE_FORMAT!r}"], {}
    problems: list[str] = []
    listed = {entry["path"]: entry for entry in manifest["files"]}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    problems += [f"{path}: missing" for path in sorted(set(listed) - present)]
    problems += [f"{path}: not in manifest.json" for path in sorted(present - set(listed))]
    samples = 0
    for path, entry in sorted(listed.items()):
        file = root / path
        if not file.is_file():
            continue
        if file.stat().st_size != entry["bytes"]:
            problems.append(f"{path}: {file.stat().st_size} bytes, the manifest says {entry['bytes']}")
        elif sha256_of(file) != entry["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest")
        if path.endswith(".tar"):
            problems += _check_tar(file, entry.get("samples"))
            samples += entry.get("samples", 0)
    split_total = sum(manifest.get("splits", {}).values())
    if samples != split_total:
        problems.append(f"manifest.json: its tars hold {samples} samples, its splits say {split_total}")
    readme = root / "README.md"
    if readme.is_file():
        try:
            card = _front_matter(readme)
        except (ValueError, yaml.YAMLError) as error:
            problems.append(f"README.md: {error}")
        else:
            tars = [p for p in present if p.endswith(".tar")]
            for config in card.get("configs", []):
                for files in config.get("data_files", []):
                    if not fnmatch.filter(tars, files["path"]):
                        problems.append(f"README.md: {config['config_name']}/{files['split']} matches no tar")
    return problems, {"files": len(listed), "samples": samples}
