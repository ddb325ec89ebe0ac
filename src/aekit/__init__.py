"""aekit: the autoencoder family as scikit-learn estimators and a command-line tool, on PyTorch.

The public names are listed here explicitly. They are imported lazily (PEP 562), so that
``import aekit`` and ``aekit --help`` stay fast: torch is imported only when a model is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .models.catalog import CLASS_MODULES

# public name -> module that defines it: the families from their catalogue, then the rest
_PUBLIC = {
    **CLASS_MODULES,
    "load": "aekit.base",
    "Checkpoint": "aekit.base",
    "load_dataset": "aekit.datasets",
    "AekitError": "aekit.errors",
    "DataError": "aekit.errors",
    "ModelFileError": "aekit.errors",
    "ParameterError": "aekit.errors",
    "TrainingDivergedError": "aekit.errors",
    "FolderError": "aekit.errors",
    "FolderLockedError": "aekit.errors",
    "UntrustedCodeError": "aekit.errors",
}

__all__ = [  # noqa: RUF022 (grouped by kind, not sorted)
    "__version__",
    "Autoencoder",
    "SparseAutoencoder",
    "DenoisingAutoencoder",
    "ContractiveAutoencoder",
    "StackedAutoencoder",
    "StackedClassifier",
    "VAE",
    "AdversarialAutoencoder",
    "SemiSupervisedAAE",
    "AAEClustering",
    "load",
    "Checkpoint",
    "load_dataset",
    "AekitError",
    "DataError",
    "ModelFileError",
    "ParameterError",
    "TrainingDivergedError",
    "FolderError",
    "FolderLockedError",
    "UntrustedCodeError",
]
assert set(__all__) == {"__version__", *_PUBLIC}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .base import Checkpoint, load
    from .datasets import load_dataset
    from .errors import (
        AekitError,
        DataError,
        FolderError,
        FolderLockedError,
        ModelFileError,
        ParameterError,
        TrainingDivergedError,
        UntrustedCodeError,
    )
    from .models.aae import AAEClustering, AdversarialAutoencoder, SemiSupervisedAAE
    from .models.autoencoder import Autoencoder
    from .models.contractive import ContractiveAutoencoder
    from .models.denoising import DenoisingAutoencoder
    from .models.sparse import SparseAutoencoder
    from .models.stacked import StackedAutoencoder, StackedClassifier
    from .models.vae import VAE


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # cache: later lookups skip this function
        return value
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
