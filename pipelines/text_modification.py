"""Entry module for `ray job submit ... -- python -m pipelines.text_modification --source ... --out ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("text_modification")
