"""One module per model family; importing this package registers every estimator class for
:func:`aekit.load`."""

from .autoencoder import Autoencoder, AutoencoderModule

__all__ = ["Autoencoder", "AutoencoderModule"]
