"""Entry module for `ray job submit ... -- python -m pipelines.style_transfer --source ... --out ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("style_transfer")
