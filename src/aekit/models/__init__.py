"""One module per model family; importing this package registers every estimator class for
:func:`aekit.load`."""

from .aae import (
    AAEClustering,
    AAEModule,
    AdversarialAutoencoder,
    CategoricalAAEModule,
    SemiSupervisedAAE,
)
from .autoencoder import Autoencoder, AutoencoderModule
from .contractive import ContractiveAutoencoder, ContractiveModule
from .denoising import DenoisingAutoencoder, DenoisingModule
from .sparse import SparseAutoencoder, SparseModule
from .stacked import ClassifierModule, StackedAutoencoder, StackedClassifier
from .vae import VAE, VAEModule

__all__ = [
    "VAE",
    "AAEClustering",
    "AAEModule",
    "AdversarialAutoencoder",
    "Autoencoder",
    "AutoencoderModule",
    "CategoricalAAEModule",
    "ClassifierModule",
    "ContractiveAutoencoder",
    "ContractiveModule",
    "DenoisingAutoencoder",
    "DenoisingModule",
    "SemiSupervisedAAE",
    "SparseAutoencoder",
    "SparseModule",
    "StackedAutoencoder",
    "StackedClassifier",
    "VAEModule",
]
