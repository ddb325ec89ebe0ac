"""The one list of aekit's model families.

Each entry names a family's CLI name, its public estimator class and the module that defines it.
It feeds the command line's model names, ``aekit``'s public names and :func:`aekit.load`, which
builds only these classes (or classes the caller passes): a notebook's own
``class Autoencoder(aekit.Autoencoder)`` never stands in for aekit's.

Adding a family is its module and one line here: the line makes it a public name of
``aekit``, a model of ``aekit train``, a class :func:`aekit.load` builds, and a family the tests
check (tests/helpers.py gives a family without an entry of its own a tiny test configuration,
so tests/test_common.py's battery and tests/test_tags.py's checks run on it with no test
edited). Nothing here imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# CLI name -> (module, estimator class name)
FAMILIES: dict[str, tuple[str, str]] = {
    "ae": ("aekit.models.autoencoder", "Autoencoder"),
    "sparse": ("aekit.models.sparse", "SparseAutoencoder"),
    "denoising": ("aekit.models.denoising", "DenoisingAutoencoder"),
    "contractive": ("aekit.models.contractive", "ContractiveAutoencoder"),
    "stacked": ("aekit.models.stacked", "StackedAutoencoder"),
    "stacked-classifier": ("aekit.models.stacked", "StackedClassifier"),
    "vae": ("aekit.models.vae", "VAE"),
    "aae": ("aekit.models.aae", "AdversarialAutoencoder"),
    "aae-semi": ("aekit.models.aae", "SemiSupervisedAAE"),
    "aae-cluster": ("aekit.models.aae", "AAEClustering"),
}

# estimator class name -> its module
CLASS_MODULES: dict[str, str] = {name: module for module, name in FAMILIES.values()}


def family_class(name: str) -> Any:
    """The estimator class of the family whose class is called ``name`` (KeyError if none)."""
    return getattr(importlib.import_module(CLASS_MODULES[name]), name)


def cli_class(cli_name: str) -> Any:
    """The estimator class behind a CLI model name (``"ae"``, ``"vae"``, ...)."""
    module, name = FAMILIES[cli_name]
    return getattr(importlib.import_module(module), name)
