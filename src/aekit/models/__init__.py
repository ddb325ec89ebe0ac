"""One module per model family; importing this package registers every estimator class for
:func:`aekit.load`."""

from .autoencoder import Autoencoder, AutoencoderModule
from .contractive import ContractiveAutoencoder, ContractiveModule
from .denoising import DenoisingAutoencoder, DenoisingModule
from .sparse import SparseAutoencoder, SparseModule
from .stacked import ClassifierModule, StackedAutoencoder, StackedClassifier

__all__ = [
    "Autoencoder",
    "AutoencoderModule",
    "ClassifierModule",
    "ContractiveAutoencoder",
    "ContractiveModule",
    "DenoisingAutoencoder",
    "DenoisingModule",
    "SparseAutoencoder",
    "SparseModule",
    "StackedAutoencoder",
    "StackedClassifier",
]
