"""One module per model family; :mod:`aekit.models.catalog` lists the families.

The names below are imported lazily (PEP 562), so that importing the catalogue (which ``import
aekit`` and the command line do) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import CLASS_MODULES

# public name -> module that defines it: the estimators from the catalogue, then their modules
_PUBLIC = {
    **CLASS_MODULES,
    "AAEModule": "aekit.models.aae",
    "CategoricalAAEModule": "aekit.models.aae",
    "AutoencoderModule": "aekit.models.autoencoder",
    "ClassifierModule": "aekit.models.stacked",
    "ContractiveModule": "aekit.models.contractive",
    "DenoisingModule": "aekit.models.denoising",
    "SparseModule": "aekit.models.sparse",
    "VAEModule": "aekit.models.vae",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aekit.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
