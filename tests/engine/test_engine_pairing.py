"""The pairing step: partners come from content hashes, so names and folders do not change them."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine_inputs import PHOTOS

from pipelines.config import RunConfig
from pipelines.items import WorkItem
from pipelines.pairing import assign_partners
from pipelines.sources import list_sources
from pipelines.stages import LoadStep


def partner_map(folder: Path, count: int, seed: int = 0) -> dict[str, list[str]]:
    paired = assign_partners(list_sources(str(folder)).refs, count, seed)
    by_uri = {ref["uri"]: ref["sha256"] for ref in paired}
    return {ref["sha256"]: [by_uri[p["uri"]] for p in ref["partners"]] for ref in paired}


def test_partners_follow_content_not_paths(tmp_path: Path) -> None:
    renamed = tmp_path / "renamed" / "deeper"
    renamed.mkdir(parents=True)
    for i, path in enumerate(sorted(PHOTOS.glob("*.*g"))):
        shutil.copy(path, renamed / f"z{9 - i}_{path.name}")
    original = partner_map(PHOTOS, 2)
    assert len(original) == 5 and original == partner_map(tmp_path / "renamed", 2)
    for sha, partners in original.items():
        assert len(partners) == 2 and sha not in partners and len(set(partners)) == 2
    assert partner_map(PHOTOS, 2, seed=1) != original  # the seed picks another pairing


def test_a_lone_photo_gets_no_partner(tmp_path: Path) -> None:
    shutil.copy(PHOTOS / "coffee.png", tmp_path / "a.png")
    shutil.copy(PHOTOS / "coffee.png", tmp_path / "b.png")  # the same content twice is one photo
    assert list(partner_map(tmp_path, 1).values()) == [[]]


def test_the_load_step_loads_partners_with_their_labels() -> None:
    paired = assign_partners(list_sources(str(PHOTOS)).refs, 4, 0)
    (ref,) = [r for r in paired if r["uri"].endswith("coffee.png")]
    config = RunConfig(task="subject_removal", source=str(PHOTOS), out="unused")
    item = LoadStep(config, frozenset())(WorkItem(ref=ref))
    partners = item.source.partners
    assert len(partners) == 4 and {p.sha256 for p in partners} == {p["sha256"] for p in ref["partners"]}
    assert all(p.labels for p in partners)  # every example photo is labelled in labels.coco.json
