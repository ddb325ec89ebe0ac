"""Adversarial autoencoders (Makhzani et al. 2015, *Adversarial autoencoders*, arXiv 1511.05644).

* :class:`AdversarialAutoencoder` (``adversarial.py``): any prior, deterministic or Gaussian
  encoder, supervised (label to the decoder) and label-conditioned prior variants;
* :class:`SemiSupervisedAAE` and :class:`AAEClustering` (``categorical.py``): the encoder also
  outputs a categorical variable matched to a categorical prior, for semi-supervised
  classification and unsupervised clustering;
* ``common.py``: the discriminator, its losses, and the regularisation phase's parameters.

Every variant trains through :class:`aekit.training.Trainer` as a list of phases (reconstruction,
discriminator, generator, and for the semi-supervised model classification), each with its own
optimiser.
"""

from .adversarial import AAEModule, AdversarialAutoencoder
from .categorical import AAEClustering, CategoricalAAEModule, SemiSupervisedAAE

__all__ = [
    "AAEClustering",
    "AAEModule",
    "AdversarialAutoencoder",
    "CategoricalAAEModule",
    "SemiSupervisedAAE",
]
