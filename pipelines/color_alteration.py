"""Entry module for `ray job submit ... -- python -m pipelines.color_alteration --source ... --out ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("color_alteration")
