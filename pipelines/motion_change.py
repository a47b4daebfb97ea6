"""Entry module for `ray job submit ... -- python -m pipelines.motion_change --source ... --out ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("motion_change")
