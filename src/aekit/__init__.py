"""aekit: the autoencoder family as scikit-learn estimators and a command-line tool, on PyTorch.

The public names are listed here explicitly, the model families through their catalogue
(:mod:`aekit.models.catalog`). They are imported lazily (PEP 562), so that
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
    "load": "aekit.persist",
    "OutlierDetector": "aekit.anomaly",
    "Callback": "aekit.callbacks",
    "Checkpoint": "aekit.callbacks",
    "TimeLimit": "aekit.callbacks",
    "EpochLog": "aekit.callbacks",
    "TensorBoard": "aekit.callbacks",
    "MLflow": "aekit.callbacks",
    "Run": "aekit.runs",
    "load_dataset": "aekit.datasets",
    "AekitError": "aekit.errors",
    "DataError": "aekit.errors",
    "ModelFileError": "aekit.errors",
    "ParameterError": "aekit.errors",
    "TrainingDivergedError": "aekit.errors",
    "FolderError": "aekit.errors",
    "FolderLockedError": "aekit.errors",
    "UntrustedCodeError": "aekit.errors",
    "ExportError": "aekit.errors",
}

# The families come from the catalogue (aekit.models.catalog), so a family added there is a
# public name here with no edit of this file.
__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .anomaly import OutlierDetector  # noqa: F401
    from .callbacks import (  # noqa: F401
        Callback,
        Checkpoint,
        EpochLog,
        MLflow,
        TensorBoard,
        TimeLimit,
    )
    from .datasets import load_dataset  # noqa: F401
    from .errors import (  # noqa: F401
        AekitError,
        DataError,
        ExportError,
        FolderError,
        FolderLockedError,
        ModelFileError,
        ParameterError,
        TrainingDivergedError,
        UntrustedCodeError,
    )
    from .models.aae import AAEClustering, AdversarialAutoencoder, SemiSupervisedAAE  # noqa: F401
    from .models.autoencoder import Autoencoder  # noqa: F401
    from .models.contractive import ContractiveAutoencoder  # noqa: F401
    from .models.denoising import DenoisingAutoencoder  # noqa: F401
    from .models.sparse import SparseAutoencoder  # noqa: F401
    from .models.stacked import StackedAutoencoder, StackedClassifier  # noqa: F401
    from .models.vae import VAE  # noqa: F401
    from .persist import load  # noqa: F401
    from .runs import Run  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # cache: later lookups skip this function
        return value
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
