"""ONNX export: the files run in onnxruntime and give what PyTorch gives (transform,
inverse_transform) within 1e-5, on batch sizes other than the traced one; ``aekit export RUN``
bakes the run's scaling in; aekit's file rules hold. onnx and onnxruntime are in the test
extra: a missing package fails these tests rather than skipping them."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.errors import ExportError, FolderError
from aekit.export import EXAMPLE_BATCH
from tests import usernets

TOL = 1e-5
FAST = dict(max_epochs=2, random_state=0)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path, **feed):
    return session(path).run(None, {k: np.asarray(v, np.float32) for k, v in feed.items()})[0]


@pytest.fixture(scope="module")
def rows(small_digits):
    X, X_test = small_digits
    return X[:200], X_test[: EXAMPLE_BATCH + 9]  # a batch size the export did not trace


MODELS = {
    "ae-mlp": lambda: aekit.Autoencoder(latent_dim=3, hidden=(16,), **FAST),
    "ae-conv": lambda: aekit.Autoencoder(latent_dim=3, architecture="conv", hidden=(4, 8), **FAST),
    "ae-mse": lambda: aekit.Autoencoder(latent_dim=3, hidden=(16,), loss="mse", **FAST),
    "vae": lambda: aekit.VAE(latent_dim=3, hidden=(16,), **FAST),
    "aae": lambda: aekit.AdversarialAutoencoder(latent_dim=2, hidden=(16,), **FAST),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_export_matches_pytorch(name, rows, tmp_path):
    X, X_new = rows
    fit_X = X.reshape(-1, 1, 8, 8) if name == "ae-conv" else X  # images: input_shape_ learned
    model = MODELS[name]().fit(fit_X)
    files = model.export(tmp_path / "onnx")
    assert sorted(files) == ["decoder.onnx", "encoder.onnx"]
    codes = model.transform(X_new)
    got = run_onnx(files["encoder.onnx"], x=X_new)
    assert got.shape == codes.shape == (len(X_new), model.latent_dim)
    np.testing.assert_allclose(got, codes, atol=TOL, rtol=TOL)
    decoded = run_onnx(files["decoder.onnx"], code=codes)
    np.testing.assert_allclose(decoded, model.inverse_transform(codes), atol=TOL, rtol=TOL)
    if name != "ae-mse":  # BCE / Bernoulli: the sigmoid is in the graph
        assert decoded.min() >= 0 and decoded.max() <= 1
    manifest = json.loads((tmp_path / "onnx" / "aekit-manifest.json").read_text())
    assert {"encoder.onnx", "decoder.onnx"} <= set(manifest["files"])
    for f in files.values():  # no temp file left behind
        assert not list(f.parent.glob(".*.tmp"))


def test_export_labelled_decoders_and_classifiers(digits, tmp_path):
    X, y = digits.X_train[:150], digits.y_train[:150]
    sup = aekit.AdversarialAutoencoder(latent_dim=2, hidden=(16,), supervised=True, **FAST)
    sup.fit(X, y)
    files = sup.export(tmp_path / "sup")
    Z, labels = sup.transform(X[:7]), y[:7]
    one_hot = (labels[:, None] == sup.classes_[None, :]).astype(np.float32)
    np.testing.assert_allclose(
        run_onnx(files["decoder.onnx"], code=Z, label=one_hot),
        sup.inverse_transform(Z, labels), atol=TOL, rtol=TOL,
    )  # fmt: skip
    semi = aekit.SemiSupervisedAAE(latent_dim=2, hidden=(16,), **FAST).fit(X, y)
    files = semi.export(tmp_path / "semi")
    np.testing.assert_allclose(run_onnx(files["encoder.onnx"], x=X[:7]), semi.transform(X[:7]),
                               atol=TOL, rtol=TOL)  # fmt: skip
    one_hot = (labels[:, None] == semi.classes_[None, :]).astype(np.float32)
    np.testing.assert_allclose(
        run_onnx(files["decoder.onnx"], code=semi.transform(X[:7]), label=one_hot),
        semi.inverse_transform(semi.transform(X[:7]), labels), atol=TOL, rtol=TOL,
    )  # fmt: skip
    clf = aekit.StackedClassifier(hidden=(16,), pretrain_epochs=1, **FAST).fit(X, y)
    files = clf.export(tmp_path / "clf")
    assert sorted(files) == ["encoder.onnx"]  # a classifier has no decoder
    np.testing.assert_allclose(run_onnx(files["encoder.onnx"], x=X[:7]), clf.transform(X[:7]),
                               atol=TOL, rtol=TOL)  # fmt: skip


def test_user_networks_export_or_say_why_not(rows, tmp_path):
    X, X_new = rows
    model = aekit.Autoencoder(encoder=usernets.Encoder, decoder=usernets.SigmoidDecoder,
                              loss="mse", latent_dim=3, **FAST).fit(X)  # fmt: skip
    files = model.export(tmp_path / "ok")
    np.testing.assert_allclose(run_onnx(files["encoder.onnx"], x=X_new), model.transform(X_new),
                               atol=TOL, rtol=TOL)  # fmt: skip
    codes = model.transform(X_new)
    np.testing.assert_allclose(run_onnx(files["decoder.onnx"], code=codes),
                               model.inverse_transform(codes), atol=TOL, rtol=TOL)  # fmt: skip
    # usernets.Decoder reshapes with len(z): tracing freezes the batch size; refused, unwritten
    frozen = aekit.Autoencoder(encoder=usernets.Encoder, decoder=usernets.Decoder, latent_dim=3,
                               **FAST).fit(X)  # fmt: skip
    with pytest.raises(ExportError, match=r"(?s)decoder.*batch of 1 rows.*len\(x\)"):
        frozen.export(tmp_path / "frozen")
    assert not (tmp_path / "frozen").exists()


def test_export_follows_the_file_rules(fitted_ae, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(FolderError, match="did not write"):
        fitted_ae.export(theirs)
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
    out = tmp_path / "out"
    fitted_ae.export(out)
    first = (out / "encoder.onnx").read_bytes()
    fitted_ae.export(out)  # aekit's folder: replaced
    assert (out / "encoder.onnx").read_bytes() == first
    with pytest.raises(ValueError, match="exports to onnx"):
        fitted_ae.export(out, format="tflite")
    state = torch.random.get_rng_state()
    fitted_ae.export(out)
    assert torch.equal(state, torch.random.get_rng_state())


def test_cli_export_bakes_in_the_runs_scaling(tmp_path, capsys):
    raw = np.random.default_rng(0).normal(3.0, 2.0, size=(120, 6)) * [1, 10, 100, 1, 1, 0.1]
    np.save(tmp_path / "raw.npy", raw)
    run_dir = tmp_path / "run"
    assert main(["train", "vae", "--data", str(tmp_path / "raw.npy"), "--scale", "standard",
                 "--latent", "2", "--hidden", "8", "--epochs", "2", "--seed", "0", "--no-plots",
                 "-q", "--out", str(run_dir)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["export", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "encoder.onnx" in out and "scaling baked in" in out
    assert main(["encode", str(run_dir), "--data", str(tmp_path / "raw.npy"), "--out",
                 str(tmp_path / "codes.npy")]) == 0  # fmt: skip
    codes = np.load(tmp_path / "codes.npy")
    onnx_dir = run_dir / "onnx"
    np.testing.assert_allclose(run_onnx(onnx_dir / "encoder.onnx", x=raw), codes, atol=TOL,
                               rtol=TOL)  # fmt: skip
    # decoder.onnx: raw units, as `aekit reconstruct` writes them
    assert main(["reconstruct", str(run_dir), "--data", str(tmp_path / "raw.npy"), "--out",
                 str(tmp_path / "recon.npy")]) == 0  # fmt: skip
    recon = np.load(tmp_path / "recon.npy")
    got = run_onnx(onnx_dir / "decoder.onnx", code=codes)
    np.testing.assert_allclose(got, recon, rtol=TOL, atol=TOL * np.abs(recon).max())
    # --out elsewhere, and a folder aekit may not write: exit 2, nothing written
    capsys.readouterr()
    assert main(["export", str(run_dir), "--out", str(tmp_path / "x"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(tmp_path / "x")
    assert main(["export", str(run_dir), "--out", str(tmp_path)]) == 2
    assert "did not write" in capsys.readouterr().err


def test_a_missing_package_names_the_extra(fitted_ae, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'aekit\[onnx\]'"):
        fitted_ae.export(tmp_path / "x")
    assert not (tmp_path / "x").exists()
    fitted_ae.save(tmp_path / "saved")
    assert main(["export", str(tmp_path / "saved")]) == 2
    assert "aekit[onnx]" in capsys.readouterr().err


def test_a_python_saved_model_exports_unscaled_and_stale_files_go(
    fitted_ae, digits, tmp_path, capsys
):
    fitted_ae.save(tmp_path / "saved")  # no data.json: the scaling is unknown
    assert main(["export", str(tmp_path / "saved"), "--out", str(tmp_path / "o")]) == 0
    _, err = capsys.readouterr()
    assert "no data.json" in err
    X = digits.X_test[:5]
    np.testing.assert_allclose(run_onnx(tmp_path / "o" / "encoder.onnx", x=X),
                               fitted_ae.transform(X), atol=TOL, rtol=TOL)  # fmt: skip
    # a model without a decoder exported into the same folder: no decoder.onnx of another model
    clf = aekit.StackedClassifier(hidden=(8,), pretrain_epochs=1, **FAST)
    clf.fit(digits.X_train[:100], digits.y_train[:100])
    assert sorted(clf.export(tmp_path / "o")) == ["encoder.onnx"]
    assert not (tmp_path / "o" / "decoder.onnx").exists()


def test_train_overwrite_removes_the_old_models_onnx_files(tmp_path, capsys):
    """RUN/onnx holds the old model's networks: a new model in RUN must not leave them to be
    mistaken for its own. A file of the user's in RUN/onnx stays, and with it the folder, where
    a later export still writes."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 5)).astype(np.float32))
    train = ["train", "ae", "--data", str(tmp_path / "x.npy"), "--latent", "2", "--hidden", "4",
             "--epochs", "1", "--seed", "0", "--no-plots", "-q",
             "--out", str(tmp_path / "run")]  # fmt: skip
    onnx_dir = tmp_path / "run" / "onnx"
    assert main(train) == 0 and main(["export", str(tmp_path / "run")]) == 0
    assert (onnx_dir / "encoder.onnx").is_file()
    assert main([*train, "--overwrite"]) == 0
    assert not onnx_dir.exists()
    assert main(["export", str(tmp_path / "run")]) == 0
    (onnx_dir / "notes.txt").write_text("mine")
    assert main([*train, "--overwrite"]) == 0
    assert not (onnx_dir / "encoder.onnx").exists()
    assert (onnx_dir / "notes.txt").read_text() == "mine"
    assert main(["export", str(tmp_path / "run")]) == 0  # next to the user's file, as before
    assert (onnx_dir / "encoder.onnx").is_file() and (onnx_dir / "notes.txt").read_text() == "mine"
