"""Detect anomalies: an autoencoder trained on ordinary rows reconstructs unusual ones badly.

    python docs/tutorials/anomalies.py [--smoke]

Trains on the digits 0 to 4 only, then scores the test digits: the digits 5 to 9 play the
anomalies. The model is a scikit-learn outlier detector: ``decision_function`` is negative for
anomalies, and ``predict`` gives -1 for them, at the threshold that flags ``contamination`` (5 %)
of the training digits. Prints the ROC-AUC of the reconstruction error (0.5 is chance, 1
perfect) and the share of each kind flagged.
"""

from __future__ import annotations

from _common import digits, options
from sklearn.metrics import roc_auc_score

import aekit

args = options(__doc__.splitlines()[0])
data = digits()
normal = data.X_train[data.y_train < 5]
Xt, is_anomaly = data.X_test, data.y_test >= 5

ae = aekit.Autoencoder(latent_dim=8, hidden=(64,), lr=3e-3, contamination=0.05,
                       max_epochs=10 if args.smoke else 200, random_state=0)  # fmt: skip
ae.fit(normal)
anomaly_score = -ae.decision_function(Xt)  # the reconstruction error, less the threshold
print(f"ROC-AUC of the reconstruction error {roc_auc_score(is_anomaly, anomaly_score):.3f}")
flagged = ae.predict(Xt) == -1
print(f"flagged: {flagged[is_anomaly].mean():.0%} of the digits 5-9, "
      f"{flagged[~is_anomaly].mean():.0%} of the test digits 0-4")  # fmt: skip
