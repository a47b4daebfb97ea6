"""Annotators and tools as plug-ins, found by name.

A plug-in NAME (an annotator such as ``objects`` or a tool such as ``inpaint``) is the module
annotators/NAME.py, or a module another package announces under the ``step1x_data.plugins`` entry-point
group with the name NAME. That module declares its backends lazily, as import paths, so that planning a run
never imports torch:

    BACKENDS = {"offline": "annotators.objects:OfflineObjects", "models": "annotators.objects_models:..."}

Each class is a ``Plugin``: a name, a version, the resources one instance needs (CPUs, GPUs, fractions
allowed so several share one GPU, memory, batch size), and what it loads (subfolders of the models folder,
Python packages). The engine checks all of that on the driver before any work starts. A plug-in without a
``models`` backend runs its offline one under ``--backend models`` (its weights, if any, ship with it).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from tasks.records import SourceSample

BACKENDS = ("offline", "models")
ENTRY_POINT_GROUP = "step1x_data.plugins"


@dataclass(frozen=True)
class Resources:
    num_cpus: float = 1.0
    num_gpus: float = 0.0  # a fraction lets several actors share one GPU
    memory_gb: float = 0.0  # reserved per instance (Ray's `memory`); 0 = no reservation
    batch_size: int = 1  # sources per annotator call


class PluginUnavailable(Exception):
    """A plug-in that cannot run here (missing weights or package); the message is one line for the user."""


class Plugin:
    """What every annotator and tool declares."""

    name: ClassVar[str]
    version: ClassVar[str]
    backend: ClassVar[str] = "offline"
    resources: ClassVar[Resources] = Resources()
    # Subfolders of --models-dir it loads, named after their upstream repositories; a tuple entry lists
    # alternatives (any one will do).
    models: ClassVar[tuple[str | tuple[str, ...], ...]] = ()
    # (import name, extra that installs it)
    packages: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, models_dir: str | None = None) -> None:
        self.models_dir = models_dir

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        """Raise PluginUnavailable, naming what is missing, unless this plug-in can be built here."""
        for module, extra in cls.packages:
            if importlib.util.find_spec(module) is None:
                raise PluginUnavailable(
                    f"{cls.name} ({cls.backend} backend) needs the Python package {module!r}: "
                    f"pip install 'step1x-data[{extra}]'"
                )
        for entry in cls.models:
            options = (entry,) if isinstance(entry, str) else entry
            if models_dir is None:
                raise PluginUnavailable(
                    f"{cls.name} ({cls.backend} backend) loads {' or '.join(options)} from a models folder: "
                    "pass --models-dir DIR or set STEP1X_MODELS"
                )
            if not any(os.path.isdir(os.path.join(models_dir, option)) for option in options):
                raise PluginUnavailable(
                    f"{cls.name} ({cls.backend} backend) needs "
                    f"{' or '.join(os.path.join(models_dir, o) for o in options)}: no such folder"
                )

    def model_path(self, *options: str) -> str:
        """The first of ``options`` present in the models folder (check() has made sure one is)."""
        assert self.models_dir is not None
        for option in options:
            path = os.path.join(self.models_dir, option)
            if os.path.isdir(path):
                return path
        raise PluginUnavailable(f"{self.name}: none of {options} in {self.models_dir}")

    @classmethod
    def describe(cls) -> dict[str, str]:
        """What a sample records about this plug-in."""
        return {"backend": cls.backend, "name": cls.name, "version": cls.version}


class Annotator(Plugin):
    """Looks at sources and writes what it finds into them (labels, masks, landmarks, text boxes...)."""

    def annotate(self, sources: list[SourceSample]) -> None:
        raise NotImplementedError

    def describe_source(self, source: SourceSample) -> dict[str, str]:
        """What this annotator recorded for one source (may differ per source: labels from a file...)."""
        return self.describe()


def _plugin_module(name: str) -> Any:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            return entry.load()
    if importlib.util.find_spec(f"annotators.{name}") is None:
        raise ValueError(f"no annotator or tool named {name!r} (no module annotators/{name}.py)")
    return importlib.import_module(f"annotators.{name}")


def backend_path(name: str, backend: str) -> str:
    """The import path of plug-in ``name``'s class for ``backend`` (offline when it has no models one)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    declared = getattr(_plugin_module(name), "BACKENDS", None)
    if not isinstance(declared, dict) or "offline" not in declared:
        raise ValueError(f"plug-in {name!r} declares no BACKENDS with an 'offline' entry")
    return declared.get(backend, declared["offline"])


def resolve(name: str, backend: str) -> type[Plugin]:
    """The plug-in class for (name, backend); imports its module."""
    module_name, _, attribute = backend_path(name, backend).partition(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"{module_name}:{attribute} is not a Plugin")
    return cls


def combined_resources(resources: list[Resources]) -> Resources:
    """What one process hosting all of these needs (the edit step hosts a task's tools)."""
    if not resources:
        return Resources()
    return Resources(
        num_cpus=max(r.num_cpus for r in resources),
        num_gpus=sum(r.num_gpus for r in resources),
        memory_gb=sum(r.memory_gb for r in resources),
        batch_size=1,
    )
