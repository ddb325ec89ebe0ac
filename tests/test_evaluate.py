"""The evaluation layer (issue 7, first part): metrics against direct computations, the
model-kind numbers, anomaly detection, and `aekit evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aekit import (
    AAEClustering,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    StackedClassifier,
)
from aekit.cli import main
from aekit.metrics import (
    anomaly_detection,
    cluster_accuracy,
    code_quality,
    evaluate_model,
    family_metrics,
    knn_accuracy,
    labelled_rows,
    probe_accuracy,
    trustworthiness,
)


class PCAModel:
    """PCA behind the estimator methods: scored as a model, it must equal the baseline."""

    def __init__(self, X, k):
        self.p = PCA(k, random_state=0).fit(X)

    def transform(self, X):
        return self.p.transform(X)

    def reconstruct(self, X):
        return self.p.inverse_transform(self.p.transform(X))


def test_metrics_agree_with_direct_computations(digits):
    X, Xt, y, yt = digits.X_train, digits.X_test, digits.y_train, digits.y_test
    assert trustworthiness(Xt, Xt[:, :5], k=5, max_rows=None) == pytest.approx(
        sk_trustworthiness(Xt, Xt[:, :5], n_neighbors=5)
    )
    sub = trustworthiness(Xt, Xt[:, :5], k=5, max_rows=100)  # a seeded subsample of 100 rows
    idx = np.sort(np.random.default_rng(0).choice(len(Xt), 100, replace=False))
    assert sub == pytest.approx(sk_trustworthiness(Xt[idx], Xt[idx, :5], n_neighbors=5))
    direct = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    assert probe_accuracy(X, y, Xt, yt) == pytest.approx(direct.score(Xt, yt))
    q = code_quality(X, y, Xt, yt)
    for k in (1, 5):
        knn = KNeighborsClassifier(n_neighbors=k).fit(X, y)
        assert q[f"knn{k}_accuracy"] == pytest.approx(knn.score(Xt, yt))


def test_evaluate_model_puts_the_model_next_to_pca_and_raw_inputs(digits):
    X, Xt, y, yt = digits.X_train, digits.X_test, digits.y_train, digits.y_test
    messages = []
    r = evaluate_model(PCAModel(X, 4), X, Xt, y, yt, trust_rows=300, progress=messages.append)
    keys = ("squared_error_per_sample", "mse_per_feature", "bce_per_feature", "knn1_accuracy",
            "knn5_accuracy", "logistic_accuracy", "trustworthiness")  # fmt: skip
    for key in keys:
        assert r["model"][key] == pytest.approx(r["pca"][key], rel=1e-4, abs=1e-6), key
    assert set(r["raw"]) == {"knn1_accuracy", "knn5_accuracy", "logistic_accuracy"}
    assert r["raw"]["knn5_accuracy"] > r["pca"]["knn5_accuracy"]  # 64-D pixels beat 4 PCs
    assert r["latent_dim"] == 4 and r["trust_rows"] == 300
    assert set(r["timings"]) >= {"codes", "pca", "model trustworthiness"} and messages
    json.dumps(r)  # JSON-able


def test_model_kind_metrics(digits):
    X, Xt, y, yt = digits.X_train[:300], digits.X_test, digits.y_train[:300], digits.y_test
    kw = dict(latent_dim=4, hidden=(16,), max_epochs=3, random_state=0)
    dae = family_metrics(DenoisingAutoencoder(**kw).fit(X), Xt)
    assert {"denoised_squared_error_per_sample", "corrupted_squared_error_per_sample"} <= set(dae)
    sparse = family_metrics(SparseAutoencoder(**kw).fit(X), Xt)
    assert sparse["mean_code_activation"] >= 0 and 0 <= sparse["hoyer_sparsity"] <= 1
    cae = ContractiveAutoencoder(**kw).fit(X)
    assert family_metrics(cae, Xt)["jacobian_sq_frobenius_norm"] == pytest.approx(
        cae.jacobian_norm(Xt).mean()
    )
    clf = StackedClassifier(hidden=(16,), pretrain_epochs=1, max_epochs=2, random_state=0)
    clf.fit(X, y)
    assert family_metrics(clf, Xt, yt)["accuracy"] == pytest.approx(clf.score(Xt, yt))
    clu = AAEClustering(n_clusters=5, **kw).fit(X)
    assert 0 < family_metrics(clu, Xt, yt)["cluster_accuracy"] <= 1


def unlabel(y, every: int):
    """``y`` with every ``every``-th row unlabelled (-1, the data layer's empty label cell)."""
    y = np.array(y, copy=True)
    y[::every] = -1
    return y


def test_accuracies_are_fitted_and_scored_on_labelled_rows_only(digits):
    """Found in review: the probes counted the data layer's -1 (an empty label cell) as a
    class, fitted on it and scored against it. They now leave unlabelled rows out of both."""
    X, Xt = digits.X_train[:400], digits.X_test[:150]
    y, yt = unlabel(digits.y_train[:400], 3), unlabel(digits.y_test[:150], 4)
    keep, keep_t = y >= 0, yt >= 0
    assert labelled_rows(yt).tolist() == keep_t.tolist()
    assert code_quality(X, y, Xt, yt) == code_quality(X[keep], y[keep], Xt[keep_t], yt[keep_t])
    direct = KNeighborsClassifier(5).fit(X[keep], y[keep]).score(Xt[keep_t], yt[keep_t])
    assert knn_accuracy(X, y, Xt, yt) == direct
    direct = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    assert probe_accuracy(X, y, Xt, yt) == pytest.approx(
        direct.fit(X[keep], y[keep]).score(Xt[keep_t], yt[keep_t])
    )
    # no labelled test row: no accuracies, rather than a crash or a meaningless number
    assert code_quality(X, y, Xt, np.full(len(Xt), -1)) == {}
    with pytest.raises(ValueError, match="no labelled test rows"):
        knn_accuracy(X, y, Xt, np.full(len(Xt), -1))
    one_class = np.where(y == 0, 0, -1)  # a logistic probe needs two classes: left out
    assert set(code_quality(X, one_class, Xt, yt)) == {"knn1_accuracy", "knn5_accuracy"}
    # another marker (an estimator's own unlabeled_label), and None: every row labelled
    strings = np.where(keep, y.astype(str), "?")
    assert labelled_rows(strings, "?").tolist() == keep.tolist()
    assert labelled_rows(strings).all() and labelled_rows(y, None).all()


def test_cluster_and_classifier_accuracy_leave_out_unlabelled_rows(digits):
    """cluster_accuracy took -1 for a class (a cluster of unlabelled rows scored as right), and
    a classifier's accuracy counted every unlabelled row as a miss."""
    y = np.array([0, 0, 1, -1, -1, -1])
    assert cluster_accuracy(y, [0, 0, 1, 1, 1, 1]) == 1.0  # was 5/6: cluster 1 "is" class -1
    assert cluster_accuracy(y, [0, 0, 1, 1, 1, 1], unlabeled_label=None) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="no labelled"):
        cluster_accuracy([-1, -1], [0, 1])
    X, Xt = digits.X_train[:400], digits.X_test[:150]
    yt = unlabel(digits.y_test[:150], 2)
    keep = yt >= 0
    clf = KNeighborsClassifier(3).fit(X, digits.y_train[:400])  # any scikit-learn classifier
    assert family_metrics(clf, Xt, yt)["accuracy"] == clf.score(Xt[keep], yt[keep])
    assert "accuracy" not in family_metrics(clf, Xt, np.full(len(Xt), -1))
    clu = KMeans(5, n_init=1, random_state=0).fit(X)  # and any clusterer
    assert family_metrics(clu, Xt, yt)["cluster_accuracy"] == cluster_accuracy(
        yt[keep], clu.predict(Xt[keep])
    )
    assert "cluster_accuracy" not in family_metrics(clu, Xt, np.full(len(Xt), -1))


def test_evaluate_model_counts_the_labelled_rows_and_leaves_out_the_rest(digits):
    X, Xt = digits.X_train[:400], digits.X_test[:150]
    y, yt = unlabel(digits.y_train[:400], 3), unlabel(digits.y_test[:150], 4)
    keep, keep_t = y >= 0, yt >= 0
    model = PCAModel(X, 4)
    r = evaluate_model(model, X, Xt, y, yt, trust_rows=None)
    assert r["labeled_train_rows"] == keep.sum() and r["labeled_test_rows"] == keep_t.sum()
    Z, Zt = model.transform(X), model.transform(Xt)
    for column, (A, B) in (("model", (Z, Zt)), ("raw", (X, Xt))):
        knn = KNeighborsClassifier(5).fit(A[keep], y[keep])
        assert r[column]["knn5_accuracy"] == knn.score(B[keep_t], yt[keep_t]), column
    none = evaluate_model(model, X, Xt, y, np.full(len(Xt), -1), trust_rows=None)
    assert none["labeled_test_rows"] == 0 and not any(
        k.endswith("accuracy") for c in ("model", "pca", "raw") for k in none[c]
    )
    json.dumps(r)


def test_anomaly_detection_scores():
    truth = np.array([0, 0, 0, 1, 1])
    assert anomaly_detection([0.1, 0.2, 0.3, 0.9, 0.8], truth) == {
        "roc_auc": 1.0,
        "average_precision": 1.0,
    }
    assert anomaly_detection([0.9, 0.8, 0.7, 0.1, 0.2], truth)["roc_auc"] == 0.0
    with pytest.raises(ValueError, match="both normal"):
        anomaly_detection([1, 2], [1, 1])


def test_cli_evaluate_table_json_metrics_file_and_anomalies(tmp_path, capsys, digits):
    run = tmp_path / "ae"
    argv = ["train", "ae", "--data", "digits", "--latent", "4", "--hidden", "32", "--epochs",
            "20", "--seed", "0", "-q", "--no-plots", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--trust-rows", "200"]) == 0
    out, err = capsys.readouterr()
    assert "PCA-4" in out and "raw" in out and "knn5_accuracy" in out
    assert "trustworthiness" in err  # progress on stderr
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["n_rows"] == 360 and saved["model"]["knn5_accuracy"] > 0.5
    # anomalies: the test digits with 40 rows replaced by uniform noise (in the data's units)
    rng = np.random.default_rng(0)
    X = digits.X_test * 16
    labels = np.zeros(len(X), dtype=np.int64)
    labels[rng.choice(len(X), 40, replace=False)] = 1
    X[labels == 1] = rng.uniform(0, 16, size=(40, 64))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "labels.npy", labels)
    assert main(["evaluate", str(run), "--data", str(tmp_path / "x.npy"), "--anomalies",
                 str(tmp_path / "labels.npy"), "--json", "--trust-rows", "200"]) == 0  # fmt: skip
    a = json.loads(capsys.readouterr().out)["anomalies"]
    assert a["n_anomalies"] == 40
    for key in ("model", "pca", "isolation_forest"):
        assert 0.9 < a[key]["roc_auc"] <= 1.0, key  # noise is easy to flag for all three
    np.save(tmp_path / "bad.npy", np.arange(10))
    assert main(["evaluate", str(run), "--anomalies", str(tmp_path / "bad.npy")]) == 2
    assert "10 labels for 360 evaluated rows" in capsys.readouterr().err
    np.save(tmp_path / "two.npy", np.full(360, 2))
    assert main(["evaluate", str(run), "--anomalies", str(tmp_path / "two.npy")]) == 2
    assert "labels are 0 (normal) or 1" in capsys.readouterr().err


def test_cli_evaluate_keeps_metrics_json_for_the_runs_test_split(tmp_path, capsys):
    """Found in review: --data naming the run's own data used every row, training rows
    included; a partial evaluation overwrote the test numbers that report and compare read;
    tiny row counts crashed trustworthiness; --overwrite left an old report behind."""
    run = tmp_path / "ae"
    argv = ["train", "ae", "--data", "digits", "--latent", "2", "--hidden", "16", "--epochs",
            "2", "--seed", "0", "-q", "--no-plots", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", "digits", "--json", "--trust-rows", "50"]) == 0
    assert json.loads(capsys.readouterr().out)["n_rows"] == 360  # the test rows, not all 1797
    full = json.loads((run / "metrics.json").read_text())
    assert full["split"] == "test"
    assert main(["evaluate", str(run), "--max-rows", "8", "--json"]) == 0
    small = json.loads(capsys.readouterr().out)
    assert small["n_rows"] == 8 and "trustworthiness" not in small["model"]
    assert json.loads((run / "metrics.json").read_text()) == full  # not overwritten
    assert main(["report", str(run), "--trust-rows", "50"]) == 0 and (run / "report.html").exists()
    assert main([*argv, "--overwrite"]) == 0
    assert not (run / "report.html").exists()
    none = tmp_path / "none"
    assert main(["train", "ae", "--data", "digits", "--hidden", "8", "--epochs", "1",
                 "--test-fraction", "0", "-q", "--no-plots", "--out", str(none)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", str(none)]) == 2
    assert "no test rows" in capsys.readouterr().err


def test_compare_shows_a_classifiers_accuracy_from_the_training_run(tmp_path, capsys):
    clf = tmp_path / "clf"
    assert main(["train", "stacked-classifier", "--data", "digits", "--hidden", "16",
                 "--epochs", "2", "--set", "pretrain_epochs=1", "-q", "--no-plots",
                 "--out", str(clf)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(clf)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_says_why_it_needs_the_runs_training_data(tmp_path, capsys, digits):
    table = tmp_path / "digits.npy"
    np.save(table, digits.X_train * 16)
    run = tmp_path / "r"
    assert main(["train", "ae", "--data", str(table), "--hidden", "8", "--epochs", "1", "-q",
                 "--no-plots", "--out", str(run)]) == 0  # fmt: skip
    np.save(tmp_path / "new.npy", digits.X_test * 16)
    table.unlink()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "new.npy")]) == 2
    err = capsys.readouterr().err
    assert "baselines" in err and "digits.npy" in err
