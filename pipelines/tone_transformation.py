"""Entry module for `ray job submit ... -- python -m pipelines.tone_transformation --source ... --out ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("tone_transformation")
