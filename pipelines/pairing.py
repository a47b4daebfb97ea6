"""The pairing step of `image+partner` tasks: each source is handed other photos of the same run.

Partners are chosen from content hashes, not paths, so the same photos pair the same way whatever they are
called or wherever they lie, and a run's seed picks another pairing. Every photo is ordered by
sha256(seed | its hash); a photo's partners are the next ones in that ring. Hashing needs the bytes, so the
run reads its sources once more before the main graph (in parallel, on Ray, when the run uses Ray).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.decode import DecodeError, DecodeLimits
from pipelines.load import read_source


def content_hash(ref: dict[str, Any]) -> dict[str, Any]:
    """The ref with its content's sha256 (None when the bytes cannot be read: its load step will say why)."""
    try:
        sha = hashlib.sha256(read_source(ref, DecodeLimits().max_bytes)).hexdigest()
    except DecodeError:
        sha = None
    return {**ref, "sha256": sha}


def hash_refs_local(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [content_hash(ref) for ref in refs]


def hash_refs_ray(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import ray.data

    dataset = ray.data.from_items([{"ref": ref} for ref in refs])
    rows = dataset.map(lambda row: {"ref": content_hash(row["ref"])})
    by_uri = {row["ref"]["uri"]: row["ref"] for row in rows.iter_rows()}
    return [by_uri[ref["uri"]] for ref in refs]  # the listing's order, whatever order Ray finished in


def assign_partners(
    refs: list[dict[str, Any]],
    count: int,
    seed: int,
    hash_refs: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = hash_refs_local,
) -> list[dict[str, Any]]:
    """Every ref with `partners`: the refs of `count` other photos of the run (fewer when the run has fewer
    distinct photos)."""
    hashed = hash_refs(refs)
    distinct: dict[str, dict[str, Any]] = {}
    for ref in hashed:
        if ref["sha256"] is not None:
            distinct.setdefault(ref["sha256"], ref)
    ring = sorted(distinct, key=lambda sha: hashlib.sha256(f"{seed}|{sha}".encode()).hexdigest())
    position = {sha: i for i, sha in enumerate(ring)}
    paired = []
    for ref in hashed:
        partners: Iterable[str] = ()
        if ref["sha256"] in position:
            start = position[ref["sha256"]]
            partners = (ring[(start + k) % len(ring)] for k in range(1, min(count, len(ring) - 1) + 1))
        paired.append({**ref, "partners": [_partner_ref(distinct[sha]) for sha in partners]})
    return paired


def _partner_ref(ref: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in ref.items() if key != "partners"}
