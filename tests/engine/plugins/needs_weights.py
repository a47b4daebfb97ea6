"""A plug-in whose `models` backend loads weights from the models folder, as FLUX-Fill's does."""

from __future__ import annotations

from annotators.inpaint import ClassicalInpainter

BACKENDS = {"offline": "needs_weights:Offline", "models": "needs_weights:NeedsWeights"}


class Offline(ClassicalInpainter):
    name = "offline_fill"


class NeedsWeights(ClassicalInpainter):
    name = "flux_fill_stand_in"
    backend = "models"
    models = ("FLUX.1-Fill-dev",)
