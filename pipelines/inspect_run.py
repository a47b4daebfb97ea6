"""`step1x-data inspect PATH`: the samples of a shard, a shard folder or a run, read back with webdataset."""

from __future__ import annotations

import json
import posixpath
from collections import Counter

import click
import fsspec
import webdataset as wds

from pipelines.sources import uri_of


def shard_urls(path: str) -> list[str]:
    """Tars named by PATH: a .tar itself, a folder of them, or a run folder (its shards/)."""
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.exists(root):
        raise click.ClickException(f"{path} does not exist")
    if fs.isfile(root):
        return [path]
    folder = posixpath.join(root, "shards") if fs.isdir(posixpath.join(root, "shards")) else root
    tars = sorted(
        p
        for p in fs.ls(folder, detail=False)
        if p.endswith(".tar") and not posixpath.basename(p).startswith(".")
    )
    if not tars:
        raise click.ClickException(f"no shards (.tar) under {path}")
    return [uri_of(fs, p) for p in tars]


@click.command("inspect")
@click.argument("path")
@click.option("--limit", type=int, default=20, show_default=True, help="Samples to print (0: only totals).")
@click.option("--as-json", "as_json", is_flag=True, help="One JSON record per line.")
def inspect_command(path: str, limit: int, as_json: bool) -> None:
    """Print the samples of a shard, a folder of shards or a run folder."""
    urls = shard_urls(path)
    tasks: Counter[str] = Counter()
    total = 0
    dataset = wds.WebDataset(urls, shardshuffle=False, handler=wds.reraise_exception, empty_check=False)
    for sample in dataset:
        record = json.loads(sample["json"])
        total += 1
        tasks[record["task"]] += 1
        if total > limit:
            continue
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        members = sorted(k for k in sample if not k.startswith("__"))
        edit = record["edit"]
        click.echo(
            f"{record['id']}  {record['task']}/{record['variant']}  {record['width']}x{record['height']}  "
            f"changed={edit['changed_ratio']:.3f}  bbox={edit['bbox']}  [{', '.join(members)}]\n"
            f"    en: {record['instruction']['en']}\n    zh: {record['instruction']['zh']}\n"
            f"    source: {record['source']['uri']} ({record['source']['licence']})"
        )
    if not as_json:
        click.echo(
            f"{total} samples in {len(urls)} shard(s): "
            + ", ".join(f"{k}={v}" for k, v in sorted(tasks.items()))
        )
