"""The 11 edit categories of Step1X-Edit, their GEdit-Bench keys, and the task modules that exist."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from tasks.contract import contract_problems

# category -> GEdit-Bench key (stored with every sample).
GEDIT_KEYS: dict[str, str] = {
    "subject_addition": "subject-add",
    "subject_removal": "subject-remove",
    "subject_replacement": "subject-replace",
    "background_change": "background_change",
    "color_alteration": "color_alter",
    "material_modification": "material_alter",
    "text_modification": "text_change",
    "motion_change": "motion_change",
    "portrait_beautification": "ps_human",
    "style_transfer": "style_change",
    "tone_transformation": "tone_transfer",
}


def available_tasks() -> list[str]:
    """Categories with a task module in this package."""
    return [name for name in GEDIT_KEYS if importlib.util.find_spec(f"tasks.{name}") is not None]


def load_task(name: str) -> ModuleType:
    """The task module for a category; a clear error for unknown or not yet built categories."""
    if name not in GEDIT_KEYS:
        raise ValueError(f"unknown task {name!r}; the categories are: {', '.join(GEDIT_KEYS)}")
    if name not in available_tasks():
        raise ValueError(
            f"task {name!r} has no implementation yet; available: {', '.join(available_tasks())}"
        )
    module = importlib.import_module(f"tasks.{name}")
    problems = contract_problems(module, name, GEDIT_KEYS[name])
    if problems:
        raise TypeError(f"tasks.{name} breaks the task contract (tasks/contract.py): {'; '.join(problems)}")
    return module
