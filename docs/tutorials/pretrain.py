"""Pre-train a classifier with few labels: greedy layer-wise pre-training on all the digits, 50
of them labelled, then fine-tuning (Bengio et al. 2007; Vincent et al. 2010).

    python docs/tutorials/pretrain.py [--smoke]

Prints the test accuracy of the same network trained on the 50 labelled digits alone and after
pre-training on all 1437 (unlabelled rows carry the label -1).
"""

from __future__ import annotations

import numpy as np
from _common import digits, options

import aekit

args = options(__doc__.splitlines()[0])
data = digits()
X, Xt, y, yt = data.X_train, data.X_test, data.y_train, data.y_test
few = np.full(len(y), -1)
keep = np.random.default_rng(0).permutation(len(y))[:50]
few[keep] = y[keep]

kw = dict(hidden=(128, 64), max_epochs=20 if args.smoke else 200,
          pretrain_epochs=5 if args.smoke else 50, random_state=0)  # fmt: skip
for pretrain in (False, True):
    model = aekit.StackedClassifier(pretrain=pretrain, **kw).fit(X, few)
    name = "pre-trained, then fine-tuned" if pretrain else "trained on the labels alone"
    print(f"{name:<30} test accuracy {model.score(Xt, yt):.3f}")
