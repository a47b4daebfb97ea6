"""Entry module for `ray job submit ... -- python -m pipelines.subject_replacement --source ... --out ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("subject_replacement")
