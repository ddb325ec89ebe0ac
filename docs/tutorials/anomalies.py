"""Detect anomalies: an autoencoder trained on ordinary rows reconstructs unusual ones badly.

    python docs/tutorials/anomalies.py [--smoke]

Trains on the digits 0 to 4 only, then scores the test digits: the digits 5 to 9 play the
anomalies. Prints the ROC-AUC of the anomaly score (minus ``score_samples``, the reconstruction
error; 0.5 is chance, 1 perfect) and, at a threshold flagging 5 % of the training digits, the
share of each kind flagged.
"""

from __future__ import annotations

import numpy as np
from _common import digits, options
from sklearn.metrics import roc_auc_score

import aekit

args = options(__doc__.splitlines()[0])
data = digits()
normal = data.X_train[data.y_train < 5]
Xt, is_anomaly = data.X_test, data.y_test >= 5

ae = aekit.Autoencoder(latent_dim=8, hidden=(64,), lr=3e-3,
                       max_epochs=10 if args.smoke else 200, random_state=0)  # fmt: skip
ae.fit(normal)
anomaly_score = -ae.score_samples(Xt)  # the reconstruction error
print(f"ROC-AUC of the reconstruction error {roc_auc_score(is_anomaly, anomaly_score):.3f}")
threshold = np.percentile(-ae.score_samples(normal), 95)
flagged = anomaly_score > threshold
print(f"flagged: {flagged[is_anomaly].mean():.0%} of the digits 5-9, "
      f"{flagged[~is_anomaly].mean():.0%} of the test digits 0-4")  # fmt: skip
