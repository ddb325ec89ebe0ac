"""Speed settings of the training loop: ``precision="bf16"`` and ``cuda_graphs=True``.

On the CPU: bf16 autocast trains with float32 weights, and ``cuda_graphs=True`` falls back to
eager training with a warning that says why. On a CUDA device (skipped elsewhere; run by
``benchmarks/gpu.sh``): captured steps follow eager training, a new learning rate is captured
anew, restored weights are not overwritten by a stale graph, and a step that cannot be captured
trains eagerly with the reason.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import aekit

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL = dict(latent_dim=4, hidden=(32,), batch_size=64, random_state=0)


def _losses(model) -> np.ndarray:
    return np.array([e["loss"] for e in model.history_])


def test_bf16_trains_with_float32_weights_and_follows_fp32(small_digits):
    """bf16 autocast on the CPU: the weights and optimiser state stay float32, and the training
    curve stays within 2 % of float32's (measured: 0.3 % apart after 10 epochs)."""
    X, _ = small_digits
    kw = dict(SMALL, max_epochs=10, device="cpu", validation_fraction=0.0)
    fp32 = aekit.Autoencoder(**kw).fit(X)
    bf16 = aekit.Autoencoder(precision="bf16", **kw).fit(X)
    assert all(p.dtype == torch.float32 for p in bf16.module_.parameters())
    a, b = _losses(fp32), _losses(bf16)
    assert b[-1] < 0.8 * b[0]  # it learns
    np.testing.assert_allclose(b, a, rtol=0.02)
    assert bf16.transform(X).dtype == np.float32


def test_cuda_graphs_off_a_cuda_device_trains_eagerly_and_says_why(small_digits):
    """True asks for graphs: their absence is a warning. The default, "auto", is silent."""
    X, _ = small_digits
    kw = dict(SMALL, max_epochs=2, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager = aekit.VAE(**kw).fit(X)
    assert eager.cuda_graphs == "auto"
    with pytest.warns(UserWarning, match="cuda_graphs=True: training runs eagerly: CUDA graphs "
                      "need a CUDA device"):  # fmt: skip
        graphs = aekit.VAE(cuda_graphs=True, **kw).fit(X)
    for a, b in zip(eager.module_.parameters(), graphs.module_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_auto_leaves_steps_with_the_users_code_uncaptured():
    """A user's network or prior function may keep Python state, which a replay would skip:
    "auto" does not capture them (True does, on the user's word)."""
    from tests.usernets import Decoder, Encoder

    def config(**kw):
        return aekit.AdversarialAutoencoder(**kw)._trainer_config().cuda_graphs

    assert config() == "auto"
    assert config(encoder=Encoder, decoder=Decoder) is False
    assert config(prior="tests.test_aae:ring") is False
    assert config(prior="mixture") == "auto"
    assert config(encoder=Encoder, cuda_graphs=True) is True
    assert aekit.Autoencoder(cuda_graphs=False)._trainer_config().cuda_graphs is False


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision='fp16' is invalid"):
        aekit.Autoencoder(precision="fp16").fit(np.zeros((10, 3), np.float32))


# -- on a CUDA device ---------------------------------------------------------------------------


def _fit(cls, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning where graphs are expected
        return cls(**{**SMALL, "device": "cuda", **kw}).fit(X)


@cuda
def test_a_deterministic_step_replayed_from_a_graph_equals_eager_training(small_digits):
    """The AE draws no noise, so the captured step computes what the eager one does: weights
    within 1e-4 after 5 epochs with a cosine schedule (a new rate every epoch, so a new capture)
    and a smaller last batch (eager)."""
    X, _ = small_digits
    kw = dict(max_epochs=5, lr_schedule="cosine", validation_fraction=0.1)
    eager = _fit(aekit.Autoencoder, X, **kw)
    graphs = _fit(aekit.Autoencoder, X, cuda_graphs=True, **kw)
    assert graphs._trainer._graph is not None and graphs._trainer._graph_off is None
    for a, b in zip(eager.module_.parameters(), graphs.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_losses(graphs), _losses(eager), rtol=1e-4)


@cuda
@pytest.mark.parametrize("family", ["vae", "aae", "dae"])
def test_graphs_follow_eager_training_within_noise(small_digits, family):
    """With noise (VAE samples, AAE prior draws and its joint phase, denoising masks), the
    captured steps draw other noise than eager ones: the curves agree within 5 %."""
    X, _ = small_digits
    cls = {"vae": aekit.VAE, "aae": aekit.AdversarialAutoencoder,
           "dae": aekit.DenoisingAutoencoder}[family]  # fmt: skip
    eager = _fit(cls, X, max_epochs=8)
    graphs = _fit(cls, X, max_epochs=8, cuda_graphs=True)
    assert graphs._trainer._graph is not None
    a, b = _losses(eager), _losses(graphs)
    assert b[-1] < b[0]
    np.testing.assert_allclose(b[-3:], a[-3:], rtol=0.05)


@cuda
def test_restored_best_weights_are_not_overwritten_by_a_stale_graph(small_digits):
    """Early stopping restores the best epoch's weights and optimiser state (new tensors); the
    next partial_fit must capture again, not replay into the replaced state."""
    X, _ = small_digits
    kw = dict(max_epochs=6, early_stopping=True, patience=1, min_delta=1e9)  # stops at once
    eager = _fit(aekit.Autoencoder, X, **kw)
    graphs = _fit(aekit.Autoencoder, X, cuda_graphs=True, **kw)
    eager.partial_fit(X)
    graphs.partial_fit(X)
    for a, b in zip(eager.module_.parameters(), graphs.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


class HostSyncingEncoder(torch.nn.Module):
    """Reads a value back to the host in every forward (``.item()``), which a capture refuses."""

    def __init__(self, n_features: int, latent_dim: int):
        super().__init__()
        self.net = torch.nn.Linear(n_features, latent_dim)
        self.largest = 0.0

    def forward(self, x):
        self.largest = max(self.largest, float(x.abs().max().item()))
        return self.net(x)


@cuda
def test_a_step_that_cannot_be_captured_trains_eagerly_and_says_why(small_digits):
    """cuda_graphs=True with an encoder that synchronises: the capture fails, training goes on
    eagerly with a warning naming the reason, and learns. Under "auto" the user's encoder
    is never captured, and no warning is given."""
    X, _ = small_digits
    kw = dict(SMALL, encoder=HostSyncingEncoder, max_epochs=4, device="cuda")
    with pytest.warns(UserWarning, match="cannot be captured in a CUDA graph"):
        model = aekit.Autoencoder(cuda_graphs=True, **kw).fit(X)
    assert model._trainer._graph is None and model._trainer._graph_off
    assert _losses(model)[-1] < _losses(model)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = aekit.Autoencoder(**kw).fit(X)
    assert auto._trainer._graph is None


@cuda
def test_auto_captures_on_a_cuda_device(small_digits):
    X, _ = small_digits
    model = _fit(aekit.AdversarialAutoencoder, X, max_epochs=3, prior="mixture", latent_dim=2)
    assert model._trainer._graph is not None


@cuda
def test_bf16_with_graphs_on_cuda_learns(small_digits):
    X, _ = small_digits
    fp32 = _fit(aekit.VAE, X, max_epochs=8)
    bf16 = _fit(aekit.VAE, X, max_epochs=8, cuda_graphs=True, precision="bf16")
    a, b = _losses(fp32), _losses(bf16)
    assert b[-1] < b[0]
    np.testing.assert_allclose(b[-3:], a[-3:], rtol=0.05)


@cuda
def test_a_model_trained_with_graphs_pickles_and_trains_on(small_digits):
    """In-memory pickling (clone, joblib) leaves the CUDA graph behind; the copy captures anew."""
    import pickle

    X, _ = small_digits
    model = _fit(aekit.Autoencoder, X, max_epochs=5, cuda_graphs=True)
    copy = pickle.loads(pickle.dumps(model))
    assert copy._trainer._graph is None
    copy.partial_fit(X)
    model.partial_fit(X)
    for a, b in zip(model.module_.parameters(), copy.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@cuda
def test_eager_last_batches_between_replays_keep_the_graphs_gradients(small_digits):
    """Found on an H200: the smaller last batch of each epoch runs eagerly between replays of
    one graph (no schedule: no new capture); it used to set the gradients to None, freeing the
    tensors the graph writes into, which the allocator then gave to the next epoch's batch
    order (out-of-bounds gathers). Graph and eager training now give the same AE (no noise)."""
    X, _ = small_digits
    kw = dict(max_epochs=12, batch_size=32, validation_fraction=0.1)  # 450 rows: 14 full + 2
    eager = _fit(aekit.Autoencoder, X, cuda_graphs=False, **kw)
    graphs = _fit(aekit.Autoencoder, X, cuda_graphs=True, **kw)
    assert graphs._trainer._graph is not None
    for a, b in zip(eager.module_.parameters(), graphs.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
