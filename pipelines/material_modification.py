"""Entry module for `ray job submit ... -- python -m pipelines.material_modification --source S --out O`."""

from pipelines.cli import task_entry

if __name__ == "__main__":
    task_entry("material_modification")
