"""Saving and loading: exact round trips, exact continuation, and clear errors for bad files."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

import aekit
from aekit import Autoencoder, Checkpoint, ModelFileError
from aekit.io import atomic_write_bytes, join_tensors, split_tensors

from .helpers import make_fitted


def _weights(model):
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def test_round_trip_gives_identical_outputs_and_state(fitted_ae, small_digits, tmp_path):
    X = small_digits[1]
    fitted_ae.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    assert type(loaded) is Autoencoder
    assert loaded.get_params() == fitted_ae.get_params()
    assert np.array_equal(loaded.transform(X), fitted_ae.transform(X))
    assert np.array_equal(loaded.reconstruct(X), fitted_ae.reconstruct(X))
    assert loaded.history_ == json.loads(json.dumps(fitted_ae.history_))
    assert loaded.n_epochs_ == fitted_ae.n_epochs_ == 20
    assert loaded.n_features_in_ == 64
    assert sorted(os.listdir(tmp_path / "m")) == [
        ".aekit.lock",  # the folder's lock (empty while no process holds it)
        "aekit-manifest.json",  # what aekit wrote here, and so may replace
        "config.json",
        "history.json",
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
    ]


def test_partial_fit_after_load_continues_exactly(tmp_path):
    """fit, save, load, partial_fit gives bit-identical weights to fit, partial_fit: the optimiser
    state, learning-rate schedule, epoch count and random generators all survive the files."""
    a, X = make_fitted(max_epochs=3, lr_schedule="cosine", optimizer="adam")
    a.save(tmp_path / "a")
    b = aekit.load(tmp_path / "a")
    a.partial_fit(X)
    b.partial_fit(X)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.history_[-1]["lr"] == b.history_[-1]["lr"] and b.n_epochs_ == 4


def test_tied_and_conv_models_round_trip(tmp_path):
    tied, X = make_fitted(tied=True)
    tied.save(tmp_path / "t")
    assert np.array_equal(aekit.load(tmp_path / "t").transform(X), tied.transform(X))
    Xi = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    conv = Autoencoder(architecture="conv", hidden=(4,), max_epochs=1, random_state=0).fit(Xi)
    conv.save(tmp_path / "c")
    loaded = aekit.load(tmp_path / "c")
    assert loaded.input_shape_ == (1, 8, 8)
    assert np.array_equal(loaded.transform(Xi), conv.transform(Xi))


def test_load_to_an_explicit_device_and_from_a_file_path(tmp_path):
    model, X = make_fitted()
    model.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m" / "config.json", device="cpu")
    assert loaded.device_ == torch.device("cpu") and loaded.device == "cpu"
    if model.device_.type == "cpu":
        assert np.array_equal(loaded.transform(X), model.transform(X))
    else:  # trained on a GPU: the same weights, float32 kernels of another device
        np.testing.assert_allclose(loaded.transform(X), model.transform(X), rtol=1e-4, atol=1e-5)


def test_weights_saved_from_a_gpu_load_on_the_cpu(tmp_path):
    """A model whose saved device is unavailable here loads on the CPU (device=None)."""
    model, X = make_fitted()
    model.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["params"]["device"] = "cuda"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    loaded = aekit.load(tmp_path / "m")
    assert loaded.device_.type == "cpu"
    assert np.array_equal(loaded.transform(X), model.transform(X))
    with pytest.raises(ValueError, match="CUDA is not available"):
        aekit.load(tmp_path / "m", device="cuda")


def test_no_pickle_on_disk(fitted_ae, tmp_path):
    fitted_ae.save(tmp_path / "m")
    for f in (tmp_path / "m").iterdir():
        data = f.read_bytes()
        if f.name == ".aekit.lock":
            assert data == b""  # empty while no process holds the lock
            continue
        assert not data.startswith(b"\x80"), f"{f.name} looks like a pickle"
        if f.suffix == ".json":
            json.loads(data)
        else:  # safetensors: 8-byte little-endian header length, then a JSON header
            n = int.from_bytes(data[:8], "little")
            json.loads(data[8 : 8 + n])


def reseal(folder, name):
    """Record the edited file ``name``'s checksum in config.json, as a save of it would."""
    from aekit.io import sha256_file

    config = json.loads((folder / "config.json").read_text())
    config["checksums"][name] = sha256_file(folder / name)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture
def saved(tmp_path):
    model, X = make_fitted()
    path = model.save(tmp_path / "m")
    return path, model, X


def test_truncated_weights_file(saved):
    path, _, _ = saved
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match=r"model.safetensors: not a readable safetensors file"):
        aekit.load(path)


def test_missing_files(saved, tmp_path):
    path, _, _ = saved
    with pytest.raises(ModelFileError, match="no such model folder"):
        aekit.load(tmp_path / "nowhere")
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match=r"model.safetensors.*not found"):
        aekit.load(path)
    (path / "config.json").unlink()
    with pytest.raises(ModelFileError, match=r"config.json: model config \(config.json\) not"):
        aekit.load(path)


def test_foreign_and_corrupt_config(saved):
    path, _, _ = saved
    (path / "config.json").write_text('{"model": "something else"}')
    with pytest.raises(ModelFileError, match="not an aekit model config"):
        aekit.load(path)
    (path / "config.json").write_text('{"format": "aekit-model", "schema_versi')
    with pytest.raises(ModelFileError, match=r"not valid JSON \(line 1"):
        aekit.load(path)


def test_newer_schema_version(saved):
    path, _, _ = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["schema_version"] = 99
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="schema version 99 was written by a newer aekit"):
        aekit.load(path)


def test_files_from_two_saves_are_detected(saved, tmp_path):
    path, _, _ = saved
    other, _ = make_fitted(random_state=9)
    other.save(tmp_path / "other")
    (path / "model.safetensors").write_bytes(
        (tmp_path / "other" / "model.safetensors").read_bytes()
    )
    with pytest.raises(ModelFileError, match="come from different saves"):
        aekit.load(path)


def test_weights_of_another_architecture(saved, tmp_path):
    path, _, _ = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["params"]["hidden"] = [5]
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="the weights do not fit the model"):
        aekit.load(path)


def test_model_without_optimizer_files_loads_for_inference(saved):
    path, model, X = saved
    (path / "optimizer.safetensors").unlink()
    (path / "optimizer.json").unlink()
    loaded = aekit.load(path)
    assert np.array_equal(loaded.transform(X), model.transform(X))
    loaded.partial_fit(X)  # continues with a fresh optimiser
    assert loaded.n_epochs_ == model.n_epochs_ + 1


def test_checkpoint_callback_saves_during_training(tmp_path):
    seen = []

    class Peek(aekit.Callback):
        def on_epoch_end(self, trainer, estimator, logs):
            assert estimator.n_epochs_ == trainer.epoch == logs["epoch"]  # brought up to date
            if (tmp_path / "ck" / "config.json").exists():
                seen.append(aekit.load(tmp_path / "ck").n_epochs_)

    X = np.random.default_rng(0).random((60, 5), dtype=np.float32)
    checkpoint = Checkpoint(tmp_path / "ck", every=2)
    Autoencoder(hidden=(4,), max_epochs=6, random_state=0).fit(X, callbacks=[checkpoint, Peek()])
    assert seen == [2, 2, 4, 4, 6]
    # Nothing binds the callback to the estimator: the same one serves another fit.
    other = Autoencoder(hidden=(4,), max_epochs=2, random_state=1).fit(X, callbacks=[checkpoint])
    assert aekit.load(tmp_path / "ck").transform(X[:3]).tolist() == other.transform(X[:3]).tolist()


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    target.write_text("old")

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.json"]  # no temporary file left behind


def test_split_and_join_tensors_round_trip():
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 2)}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}],
        "best": math.inf,
        "nan": None,
    }
    meta, tensors = split_tensors(state, "opt")
    text = json.dumps(meta)
    back = join_tensors(json.loads(text), tensors)
    assert back["state"][0]["step"] is tensors["opt.state.0.step"]
    assert list(back["state"]) == [0] and back["best"] == math.inf
    assert back["param_groups"][0]["betas"] == [0.9, 0.999]


@pytest.mark.parametrize("fail_at", range(1, 7))
def test_a_save_killed_at_any_moment_leaves_the_previous_save_loadable(
    fail_at, tmp_path, monkeypatch
):
    """Interrupt the second save at its k-th file operation (a write or a rename of the previous
    version): the folder still loads, as the first save; a third save then succeeds."""
    from aekit import io as aio

    a, X = make_fitted(max_epochs=2)
    a.save(tmp_path / "m")
    first = a.transform(X)
    a.partial_fit(X)
    calls = {"n": 0}
    real_write, real_replace = aio.atomic_write_bytes, os.replace

    def counting(real):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(aio, "atomic_write_bytes", counting(real_write))
    monkeypatch.setattr(aio.os, "replace", counting(real_replace))
    with pytest.raises(KeyboardInterrupt):
        a.save(tmp_path / "m")
    monkeypatch.undo()
    loaded = aekit.load(tmp_path / "m")
    assert np.array_equal(loaded.transform(X), first) and loaded.n_epochs_ == 2
    a.save(tmp_path / "m")
    again = aekit.load(tmp_path / "m")
    assert again.n_epochs_ == 3 and np.array_equal(again.transform(X), a.transform(X))
    assert not any(p.name.endswith(".prev") for p in (tmp_path / "m").iterdir())


def test_optimizer_state_saved_on_a_gpu_loads_on_the_cpu(tmp_path):
    """A CUDA generator state cannot seed a CPU generator: loading keeps the weights and the
    optimiser state, and reseeds the noise generator."""
    model, X = make_fitted()
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "optimizer.json").read_text())
    meta["state"]["device_type"] = "cuda"
    (tmp_path / "m" / "optimizer.json").write_text(json.dumps(meta))
    reseal(tmp_path / "m", "optimizer.json")
    loaded = aekit.load(tmp_path / "m")
    assert np.array_equal(loaded.transform(X), model.transform(X))
    loaded.partial_fit(X)
    assert loaded.n_epochs_ == model.n_epochs_ + 1


def test_feature_names_survive_save_and_load(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.default_rng(0).random((40, 3)), columns=["a", "b", "c"])
    model = Autoencoder(hidden=(4,), max_epochs=2, random_state=0).fit(X)
    model.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names"):
        loaded.transform(X[["c", "b", "a"]])


def test_saved_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through mkstemp (owner-only); the final files must be readable as an
    ordinary open() would make them (0o666 less the umask), for shared runs and reports."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        model, _ = make_fitted()
        model.save(tmp_path / "m")
    finally:
        os.umask(old)
    for f in (tmp_path / "m").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name
    report = atomic_write_bytes(tmp_path / "report.html", b"one")
    report.chmod(0o600)  # a user's own choice survives a rewrite of the file
    atomic_write_bytes(report, b"two")
    assert stat.S_IMODE(report.stat().st_mode) == 0o600 and report.read_bytes() == b"two"
