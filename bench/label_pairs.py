"""Write the labels a person gave a run's pairs as bench/labels/<category>.csv (format in bench/labels/).

Every pair of the run is listed; those named with --reject are rejects (with why), the rest accepts. Look at
the pairs first (../shared/tools/contact_sheet.py RUN OUT.png), then name what a person would reject.

usage: python bench/label_pairs.py RUN OUT.csv [--reject ID_PREFIX=why ...]
"""

from __future__ import annotations

import argparse
import csv
import posixpath
from pathlib import Path

import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--reject", action="append", default=[], metavar="ID_PREFIX=WHY")
    args = parser.parse_args()
    rejects = dict(entry.split("=", 1) for entry in args.reject)
    rows = [
        row
        for path in sorted(Path(args.run, "shards").glob("shard-*.parquet"))
        for row in pq.read_table(path, columns=["id", "task", "variant", "source_uri"]).to_pylist()
    ]
    unknown = [prefix for prefix in rejects if not any(row["id"].startswith(prefix) for row in rows)]
    if unknown:
        raise SystemExit(f"no pair of {args.run} has an id starting with {', '.join(unknown)}")
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "task", "variant", "source", "label", "why", "o"])
        for row in rows:
            why = next((text for prefix, text in rejects.items() if row["id"].startswith(prefix)), None)
            label = "reject" if why is not None else "accept"
            writer.writerow(
                [
                    row["id"],
                    row["task"],
                    row["variant"],
                    posixpath.basename(row["source_uri"]),
                    label,
                    why or "",
                    0 if why is not None else 10,
                ]
            )
    print(f"{len(rows)} pairs, {len(rejects)} rejected -> {args.out}")


if __name__ == "__main__":
    main()
