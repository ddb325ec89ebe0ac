"""Compress and look at data: a 2-D code of the 8x8 digits, against PCA with 2 components.

    python docs/tutorials/compress.py [--smoke]

Prints the test reconstruction error of both (squared error per image, lower is better) and how
well each 2-D map keeps the classes apart (5-nearest-neighbour accuracy in the map); with
``--figures DIR``, draws the autoencoder's map of the test digits.
"""

from __future__ import annotations

from _common import digits, options, save
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

import aekit

args = options(__doc__.splitlines()[0])
data = digits()
X, Xt, y, yt = data.X_train, data.X_test, data.y_train, data.y_test

ae = aekit.Autoencoder(latent_dim=2, hidden=(64, 32), lr=3e-3, max_epochs=8 if args.smoke else 150,
                       random_state=0)  # fmt: skip
ae.fit(X)
pca = PCA(2).fit(X)


def report(name, codes_train, codes_test, reconstruction):
    error = ((reconstruction - Xt) ** 2).sum(1).mean()
    knn = KNeighborsClassifier(5).fit(codes_train, y).score(codes_test, yt)
    print(f"{name:<12} squared error per image {error:6.2f}   5-NN accuracy in 2-D {knn:.3f}")


report("autoencoder", ae.transform(X), ae.transform(Xt), ae.reconstruct(Xt))
report("PCA", pca.transform(X), pca.transform(Xt), pca.inverse_transform(pca.transform(Xt)))

from aekit.plotting import plot_latent  # noqa: E402

save(plot_latent(ae.transform(Xt), yt), args, "compress_map.png")
