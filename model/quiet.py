"""The known, harmless start-up messages of the libraries behind `step1x-edit` and `step1x-train`, silenced.

Each entry names the logger that emits a message and a fragment of the message's text; everything else those
loggers say still shows. Filters sit on the emitting loggers themselves (a parent's filter would not see a
child's records), so they must be installed before the libraries are imported.
"""

from __future__ import annotations

import logging

KNOWN_MESSAGES: dict[str, tuple[str, ...]] = {
    # torchao registers its enums as pytree constants, which torch 2.14 calls deprecated: once per enum
    "torch.utils._pytree": ("is an Enum subclass and is now natively supported",),
    # torchao's compiled kernels built for another torch version; the Python paths used here do not need them
    "torchao": ("Skipping import of cpp extensions", "Failed to load "),
    # diffusers probes torchao's tensor classes for unpickling torchao checkpoints, which are never read here
    "diffusers.quantizers.torchao.torchao_quantizer": ("Unable to import `torchao` Tensor objects",),
    # without torchvision, transformers uses its PIL image processors (the same algorithm)
    "transformers.utils.import_utils": ("`Qwen2VLImageProcessor` requires torchvision",),
    "transformers.models.auto.image_processing_auto": ("Requested torchvision backend is not available",),
}


class _DropKnown(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def silence_known_messages() -> None:
    """Install the filters (idempotent)."""
    for name, fragments in KNOWN_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) for f in logger.filters):
            logger.addFilter(_DropKnown(fragments))
