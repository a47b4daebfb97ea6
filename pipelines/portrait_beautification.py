"""Entry module for `ray job submit ... -- python -m pipelines.portrait_beautification --source ...`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("portrait_beautification")
