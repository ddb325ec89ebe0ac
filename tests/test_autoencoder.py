"""The basic autoencoder: it learns (against PCA), its seeds, and the scikit-learn contract."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aekit import Autoencoder, DataError, ParameterError
from aekit.metrics import evaluate_reconstruction, reconstruction_errors

from .helpers import make_fitted, row_entropy, tiny_X

# --- it learns --------------------------------------------------------------------------------


def test_linear_autoencoder_reaches_pca(digits):
    """A linear autoencoder (no hidden layer, linear activations, MSE) learns the principal
    subspace, so its test error matches PCA's at the same code size (Baldi and Hornik 1989).

    Measured (seeds 0, 1, 2; 200 epochs, lr 1e-2, cosine): ratio to PCA-10 0.9990, 0.9980,
    0.9984 (slightly below 1: PCA is optimal on the training rows, not the test rows). The bound
    1.02 is the issue's; an autoencoder stuck away from the subspace gives 1.1 and more.
    """
    lin = Autoencoder(
        latent_dim=10,
        hidden=(),
        activation="linear",
        lr=1e-2,
        lr_schedule="cosine",
        max_epochs=200,
        validation_fraction=0,
        random_state=0,
    ).fit(digits.X_train)
    m = evaluate_reconstruction(lin, digits.X_train, digits.X_test)
    ratio = m["model"]["squared_error_per_sample"] / m["pca"]["squared_error_per_sample"]
    assert ratio <= 1.02, m


def _nonlinear_2d_stats(digits, seed):
    """One seed of the claim below: the autoencoder's test error over PCA-2's, and its 5-NN
    accuracy minus PCA-2's."""
    ae = Autoencoder(latent_dim=2, hidden=(64, 32), lr=3e-3, max_epochs=100, random_state=seed)
    ae.fit(digits.X_train)
    m = evaluate_reconstruction(ae, digits.X_train, digits.X_test, digits.y_train, digits.y_test)
    model, pca = m["model"], m["pca"]
    return {
        "error_ratio": model["squared_error_per_sample"] / pca["squared_error_per_sample"],
        "knn5_gain": model["knn5_accuracy"] - pca["knn5_accuracy"],
    }


def test_nonlinear_2d_code_beats_pca(digits):
    """With a 2-D code a nonlinear autoencoder beats PCA-2 on reconstruction and on the 5-NN
    accuracy of its test codes, each the median over seeds 0-2.

    Measured (seeds 0-2 at 1 and 2 threads, identical; seeds 3, 4 at 1 thread) on a 2-core
    machine: test squared error per image over PCA-2's 0.688, 0.655, 0.679, 0.708, 0.706 (median
    0.679; bound 0.85); 5-NN accuracy minus PCA-2's 0.189, 0.219, 0.153, 0.133, 0.189 (median
    0.189; bound 0.05). The bounds are under half of the measured gaps.
    """
    stats = [_nonlinear_2d_stats(digits, seed) for seed in range(3)]
    assert np.median([s["error_ratio"] for s in stats]) < 0.85, stats
    assert np.median([s["knn5_gain"] for s in stats]) > 0.05, stats


def test_bce_autoencoder_learns_and_beats_pca_bce(digits):
    """Binary cross-entropy with a sigmoid output (from logits) learns on [0, 1] data.

    Measured (seeds 0, 1, 2): test BCE per pixel 0.329, 0.332, 0.330 vs PCA-2 (clipped to
    [1e-7, 1 - 1e-7]) 0.383; the untrained model is at 0.69 (log 2).
    """
    ae = Autoencoder(
        latent_dim=2, hidden=(64, 32), loss="bce", lr=3e-3, max_epochs=100, random_state=0
    )
    ae.fit(digits.X_train)
    m = evaluate_reconstruction(ae, digits.X_train, digits.X_test)
    assert m["model"]["bce_per_feature"] < m["pca"]["bce_per_feature"] - 0.025
    recon = ae.reconstruct(digits.X_test)
    assert recon.min() >= 0 and recon.max() <= 1  # a sigmoid output
    # the loss in history is per sample: summed over the 64 pixels
    assert ae.history_[-1]["loss"] == pytest.approx(64 * 0.33, rel=0.15)


def test_bce_refuses_data_outside_unit_interval():
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    with pytest.raises(
        DataError, match=r"loss='bce' needs values in \[0, 1\].*row \d+, column \d+"
    ):
        Autoencoder(loss="bce", max_epochs=1).fit(X)


def test_score_refuses_out_of_range_data_for_bce():
    model, X = make_fitted(loss="bce")
    with pytest.raises(DataError, match="MinMaxScaler"):
        model.score(X + 2)


@pytest.mark.parametrize(
    "params",
    [
        dict(optimizer="sgd", lr=0.05),
        dict(optimizer="adamw", weight_decay=1e-4),
        dict(loss="mse", output_activation="sigmoid"),
        dict(lr_schedule="step", lr=3e-3),
        dict(lr_schedule="plateau"),
        dict(lr_schedule="cosine", lr=3e-3),
        dict(lr_schedule="auto"),
        dict(activation="tanh"),
        dict(tied=True),
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_variants_learn(small_digits, params):
    """Every optimiser, schedule and output learns: the last epoch's loss is well below the
    first's (15 epochs on 500 rows, the BCE loss "auto" chooses unless the variant sets MSE), the
    median over seeds 0-2 of last/first under 0.8. A variant changes one thing from a constant
    rate (``lr_schedule="none"``), not from the default ``"auto"`` schedule.

    Measured (seeds 0-2 at 1 and 2 threads, identical) on a 2-core machine: sgd 0.586, 0.600,
    0.555; adamw 0.709, 0.687, 0.683; sigmoid output (MSE) 0.507, 0.479, 0.470; step (lr 3e-3)
    0.728, 0.701, 0.695; plateau 0.709, 0.687, 0.683; cosine (lr 3e-3) 0.642, 0.632, 0.629;
    auto (the default, lr 1e-3) 0.737, 0.711, 0.705; tanh 0.690, 0.710, 0.710; tied 0.746,
    0.767, 0.743. The cosine at the default lr 1e-3 (an average rate of half of it) gave
    0.904, 0.884, 0.876, over the bound in 15 epochs: it starts at 3e-3, as the step schedule
    does.
    """
    X, _ = small_digits
    ratios = []
    params = {"lr_schedule": "none", **params}
    for seed in range(3):
        ae = Autoencoder(latent_dim=4, hidden=(32,), max_epochs=15, random_state=seed, **params)
        ae.fit(X)
        ratios.append(ae.history_[-1]["loss"] / ae.history_[0]["loss"])
    assert np.median(ratios) < 0.8, ratios


def test_conv_autoencoder_learns_image_shape_from_4d_input(digits):
    """4-D input (n, 1, 8, 8) is flattened and its shape learned; the conv model learns.

    Measured: test squared error per image 1.7 after 40 epochs (PCA-8: 1.7; mean image: 4.3).
    """
    X4 = digits.X_train.reshape(-1, 1, 8, 8)
    ae = Autoencoder(
        latent_dim=8,
        hidden=(16, 32),
        architecture="conv",
        lr=3e-3,
        max_epochs=40,
        loss="mse",
        random_state=0,
    ).fit(X4)
    assert ae.input_shape_ == (1, 8, 8)
    assert ae.transform(digits.X_test.reshape(-1, 1, 8, 8)).shape == (360, 8)
    err = -ae.score(digits.X_test)
    mean_image_err = reconstruction_errors(
        digits.X_test, np.broadcast_to(digits.X_train.mean(0), digits.X_test.shape)
    )["squared_error_per_sample"]
    assert err < 0.6 * mean_image_err


def test_conv_needs_an_image_shape():
    X = np.random.default_rng(0).random((20, 16), dtype=np.float32)
    with pytest.raises(ParameterError, match=r"input_shape=\(channels, height, width\)"):
        Autoencoder(architecture="conv", max_epochs=1).fit(X)
    ae = Autoencoder(architecture="conv", input_shape=(1, 4, 4), hidden=(4,), max_epochs=1)
    assert ae.fit(X).transform(X).shape == (20, 2)


def test_tied_decoder_uses_the_transposed_encoder_weights():
    model, X = make_fitted(tied=True, hidden=(6,), latent_dim=2)
    enc = [m for m in model.encoder_ if isinstance(m, torch.nn.Linear)]
    dec = list(model.decoder_)
    assert dec[0].source is enc[-1] and dec[-1].source is enc[0]
    x = torch.from_numpy(X).to(model.device_)
    h = torch.nn.Sequential(*list(model.encoder_)[:2])(x)  # first hidden layer
    assert torch.allclose(dec[-1](h), h @ enc[0].weight + dec[-1].bias)
    # the shared weight is stored once
    keys = list(model.module_.state_dict())
    assert sum("weight" in k for k in keys) == 2, keys


# --- seeds (same seed, same model; global generators untouched: test_common.py) ----------------


def _weights(model):
    return [p.detach().clone() for p in model.module_.parameters()]


def test_validation_split_is_a_seeded_permutation_not_the_last_rows():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    ae = Autoencoder(validation_fraction=0.2, random_state=0)
    train, val = ae._split_validation(len(X), seed=0)
    assert len(val) == 20 and len(train) == 80
    assert sorted(val.tolist()) != list(range(80, 100))
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    _, val2 = ae._split_validation(len(X), seed=0)
    assert np.array_equal(val, val2)
    assert ae._split_validation(4, seed=0) == (None, None)  # too few rows to hold any out


# --- training control ---------------------------------------------------------------------------


def test_early_stopping_stops_and_restores_the_best_epoch(digits):
    """With a large learning rate the validation loss stalls; training stops after `patience`
    epochs without improvement and the best epoch's weights are restored."""
    X_val = digits.X_test
    ae = Autoencoder(
        latent_dim=2,
        hidden=(32,),
        lr=0.02,
        max_epochs=300,
        early_stopping=True,
        patience=3,
        random_state=0,
    )
    ae.fit(digits.X_train, validation_data=X_val)
    assert ae.stop_reason_ == "early_stopping"
    assert ae.n_epochs_ < 300
    best = min(h["val_loss"] for h in ae.history_)
    assert ae.history_[-1]["best_epoch"] == ae.n_epochs_ - 3
    # score is minus the deviance: the BCE less each row's own entropy
    assert -ae.score(X_val) == pytest.approx(best - row_entropy(X_val).mean(), rel=1e-5)


def test_cosine_schedule_decays_to_zero():
    model, _ = make_fitted(lr_schedule="cosine", max_epochs=10, lr=0.01)
    lrs = [h["lr"] for h in model.history_]
    assert lrs[0] == pytest.approx(0.01) and all(a >= b for a, b in itertools.pairwise(lrs))
    assert lrs[-1] < 1e-3


def test_history_records_per_epoch_dicts():
    model, _ = make_fitted(max_epochs=4)
    assert [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    for h in model.history_:
        assert {"loss", "val_loss", "seconds", "lr", "best_epoch"} <= set(h)
    assert model.n_epochs_ == 4 and model.stop_reason_ == "max_epochs"


def test_partial_fit_continues_without_reinitialising():
    model, X = make_fitted(max_epochs=2)
    before = _weights(model)
    model.partial_fit(X)
    assert model.n_epochs_ == 3 and len(model.history_) == 3
    assert model.history_[-1]["epoch"] == 3
    assert not all(torch.equal(p, q) for p, q in zip(before, _weights(model), strict=True))
    # an unfitted model's first partial_fit initialises it
    fresh = Autoencoder(latent_dim=2, hidden=(8,), random_state=0).partial_fit(X)
    assert fresh.n_epochs_ == 1


def test_non_finite_loss_stops_with_epoch_step_lr_and_keeps_best_weights():
    """Huge values and a large learning rate make the loss overflow: the error names the epoch,
    the step and the learning rate, and the model keeps the weights from before the blow-up."""
    from aekit import TrainingDivergedError

    X = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32) * 1e18
    ae = Autoencoder(latent_dim=2, hidden=(16,), lr=10.0, max_epochs=5, random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+, step \d+ \(learning rate 10\)"):
        ae.fit(X)
    # the best weights so far: those before the blow-up (here the initial ones, epoch 0)
    initial = Autoencoder(latent_dim=2, hidden=(16,), max_epochs=0, random_state=0).fit(X)
    assert all(torch.equal(p, q) for p, q in zip(_weights(ae), _weights(initial), strict=True))
    assert np.isfinite(ae.transform(X[:5])).all()


def test_ctrl_c_stops_cleanly_keeping_history_and_best_weights():
    class Interrupt:
        def on_epoch_end(self, trainer, estimator, logs):
            if logs["epoch"] == 3:
                raise KeyboardInterrupt

    X = np.random.default_rng(0).random((100, 6), dtype=np.float32)
    ae = Autoencoder(latent_dim=2, hidden=(8,), max_epochs=50, random_state=0)
    ae.fit(X, callbacks=[Interrupt()])
    assert ae.stop_reason_ == "interrupted"
    assert len(ae.history_) == 3 and ae.n_epochs_ == 3
    best = min(h["val_loss"] for h in ae.history_)
    val = X[ae._split_validation(len(X), seed=0)[1]]
    assert -ae.score(val) == pytest.approx(best - row_entropy(val).mean(), rel=1e-5)


# --- input checks -------------------------------------------------------------------------------


def test_nan_error_names_first_row_and_column():
    X = np.zeros((10, 4), dtype=np.float32)
    X[7, 2] = np.nan
    X[8, 0] = np.inf
    with pytest.raises(DataError, match=r"NaN at row 7, column 2 \(2 non-finite"):
        Autoencoder(max_epochs=1).fit(X)


def test_wrong_number_of_features_at_transform(fitted_ae):
    with pytest.raises(DataError, match=r"X has 5 features, but Autoencoder is expecting 64"):
        fitted_ae.transform(np.zeros((3, 5), dtype=np.float32))


def test_empty_and_one_dimensional_input():
    with pytest.raises(ValueError, match="0 sample"):
        Autoencoder().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="2D array"):
        Autoencoder().fit(np.zeros(5))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(latent_dim=0), "latent_dim=0 is invalid"),
        (dict(hidden=64), "hidden=64 is invalid"),
        (dict(activation="swish"), "activation='swish' is invalid; expected one of"),
        (dict(loss="l1"), "loss='l1'"),
        (dict(optimizer="rmsprop"), "optimizer='rmsprop'"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(device="cuda:0") if not torch.cuda.is_available() else dict(device="tpu"), "device"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X = np.zeros((10, 3), dtype=np.float32)
    with pytest.raises(ParameterError, match=match):
        Autoencoder(max_epochs=1, **params).fit(X)


# --- scikit-learn contract ---------------------------------------------------------------------


def test_outputs_are_2d_float32(fitted_ae, small_digits):
    _, X_test = small_digits
    Z = fitted_ae.transform(X_test.astype(np.float64))
    assert Z.dtype == np.float32 and Z.shape == (len(X_test), 3)
    X_hat = fitted_ae.inverse_transform(Z)
    assert X_hat.dtype == np.float32 and X_hat.shape == X_test.shape
    np.testing.assert_allclose(X_hat, fitted_ae.reconstruct(X_test), atol=1e-6)
    s = fitted_ae.score_samples(X_test)
    assert s.shape == (len(X_test),) and fitted_ae.score(X_test) == pytest.approx(s.mean())
    assert list(fitted_ae.get_feature_names_out()) == [f"autoencoder{i}" for i in range(3)]


def test_set_output_pandas(fitted_ae, small_digits):
    pd = pytest.importorskip("pandas")
    model = clone(fitted_ae).set_output(transform="pandas")
    model.fit(small_digits[0][:100])
    out = model.transform(small_digits[1][:5])
    assert isinstance(out, pd.DataFrame) and out.columns[0] == "autoencoder0"


def test_pickle_in_memory_round_trip(fitted_ae, small_digits):
    copy = pickle.loads(pickle.dumps(fitted_ae))
    X = small_digits[1]
    assert np.array_equal(copy.transform(X), fitted_ae.transform(X))


def test_in_a_pipeline_with_gridsearch(digits):
    pipe = make_pipeline(
        StandardScaler(),
        Autoencoder(hidden=(32,), max_epochs=5, random_state=0),
        LogisticRegression(max_iter=200),
    )
    grid = GridSearchCV(pipe, {"autoencoder__latent_dim": [2, 8]}, cv=2)
    grid.fit(digits.X_train[:400], digits.y_train[:400])
    assert grid.best_params_["autoencoder__latent_dim"] in (2, 8)
    assert grid.score(digits.X_test, digits.y_test) > 0.3


def test_finite_check_with_values_whose_sum_overflows():
    """The finite check's fast path sums the data; huge finite values overflow that sum but are
    not an error here (they reach training, whose own check reports divergence)."""
    from aekit._validation import check_finite

    check_finite(np.full((4, 3), 3e38, dtype=np.float32))
    X = np.full((4, 3), 3e38, dtype=np.float32)
    X[2, 1] = -np.inf
    with pytest.raises(DataError, match=r"infinite value \(inf\) at row 2, column 1"):
        check_finite(X)


def test_training_continues_after_a_divergence():
    """After a non-finite loss, the best epoch's optimiser state is restored with its weights:
    lowering the learning rate and continuing trains every weight again (Adam's moments would
    otherwise hold inf and freeze them)."""
    from aekit import TrainingDivergedError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8)).astype(np.float32)
    ae = Autoencoder(latent_dim=2, hidden=(16,), lr=1e-3, max_epochs=3, random_state=0).fit(X)
    ae.set_params(lr=10.0)
    with pytest.raises(TrainingDivergedError):
        ae.partial_fit(X * 1e18)
    before = _weights(ae)
    ae.set_params(lr=1e-3)
    ae.partial_fit(X)
    changed = [not torch.equal(p, q) for p, q in zip(before, _weights(ae), strict=True)]
    assert all(changed)
    assert np.isfinite(ae.history_[-1]["loss"])


def test_non_finite_validation_loss_is_an_error():
    from aekit import TrainingDivergedError

    X = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    X_val = np.full((10, 4), 3e38, dtype=np.float32)  # squared error overflows float32
    ae = Autoencoder(hidden=(8,), max_epochs=5, early_stopping=True, patience=2, random_state=0)
    with pytest.raises(TrainingDivergedError, match="validation loss is inf at epoch 1"):
        ae.fit(X, validation_data=X_val)


def test_set_params_takes_effect_in_partial_fit():
    model, X = make_fitted(lr=0.01, batch_size=128)
    model.set_params(lr=1e-5, batch_size=7)
    model.partial_fit(X)
    assert model.history_[-1]["lr"] == pytest.approx(1e-5)
    assert model._trainer.config.batch_size == 7
    model.set_params(optimizer="sgd")
    with pytest.raises(ParameterError, match="cannot change once training has started"):
        model.partial_fit(X)


def test_cosine_stays_at_zero_and_step_decays_at_thirds():
    model, X = make_fitted(lr_schedule="cosine", max_epochs=4, lr=0.01)
    for _ in range(3):
        model.partial_fit(X)
    lrs = [h["lr"] for h in model.history_]
    assert lrs[3] > 0 and lrs[4:] == [0.0, 0.0, 0.0]  # held at 0, not climbing back
    step, _ = make_fitted(lr_schedule="step", max_epochs=9, lr=0.01)
    assert [round(h["lr"], 6) for h in step.history_] == [0.01] * 3 + [0.001] * 3 + [0.0001] * 3


def test_auto_schedule_cools_down_in_fit_and_keeps_the_base_rate_in_partial_fit(tmp_path):
    """lr_schedule="auto", Autoencoder's default: in fit, the constant rate, then a half cosine
    to 0 over the last fifth of max_epochs (at least one epoch); partial_fit, after fit, after a
    save and load, or on a fresh model, trains at ``lr`` (a rate held at 0 would silently stop
    a stream from learning), and takes a new ``lr`` from set_params."""
    import aekit

    assert Autoencoder().lr_schedule == "auto"
    auto, X = make_fitted(lr_schedule="auto", max_epochs=10, lr=0.01)
    cooldown = [1, 1, 1, 1, 1, 1, 1, 1, 0.75, 0.25]  # epochs 9 and 10: (1 + cos(pi k / 3)) / 2
    assert [h["lr"] for h in auto.history_] == pytest.approx([0.01 * f for f in cooldown])
    auto.save(tmp_path / "m")
    before = auto.transform(X)
    auto.partial_fit(X)
    assert auto.history_[-1]["lr"] == 0.01 and not np.allclose(auto.transform(X), before)
    auto.set_params(lr=0.02).partial_fit(X)
    assert auto.history_[-1]["lr"] == 0.02
    back = aekit.load(tmp_path / "m").partial_fit(X)
    assert [h["lr"] for h in back.history_[10:]] == [0.01]
    stream = Autoencoder(latent_dim=2, hidden=(8,), max_epochs=2, lr=0.01, random_state=0)
    for _ in range(4):
        stream.partial_fit(X)
    assert [h["lr"] for h in stream.history_] == [0.01] * 4


@pytest.mark.parametrize(
    ("schedule", "last", "then"),
    [
        # cosine over 4 epochs, then over 6: (1 + cos(pi t / T)) / 2
        ("cosine", (1 - math.sqrt(0.5)) / 2, [0.25, (1 - math.sqrt(0.75)) / 2]),
        # auto: 4 epochs cool down over the last one, 6 over the last two
        ("auto", 0.5, [0.75, 0.25]),
    ],
)
def test_raising_max_epochs_stretches_the_schedule_instead_of_training_at_zero(
    schedule, last, then
):
    """continue_fit after max_epochs is raised from 4 to 6 (``aekit train --resume --epochs 6``):
    epochs 5 and 6 follow the schedule over 6 epochs, from where it stands at epoch 4."""
    model, X = make_fitted(lr_schedule=schedule, max_epochs=4, lr=0.01)
    assert model.history_[-1]["lr"] == pytest.approx(0.01 * last)
    model.set_params(max_epochs=6).continue_fit(X)
    assert [h["lr"] for h in model.history_[4:]] == pytest.approx([0.01 * f for f in then])


def _cooldown(k: int, n: int) -> float:
    """The "auto" factor k epochs into a cooldown of n epochs: (1 + cos(pi k / (n + 1))) / 2."""
    return (1 + math.cos(math.pi * k / (n + 1))) / 2


def test_continue_fit_after_partial_fits_still_ends_with_the_cooldown():
    """fit 10 epochs, 3 partial_fits (at the base rate, not counted by the schedule), then
    continue_fit to 20: the schedule ends with the run (7 epochs left: it spans 10 + 7 = 17,
    whose last fifth is 4 epochs), not at full rate."""
    model, X = make_fitted(max_epochs=10, lr=0.01)
    for _ in range(3):
        model.partial_fit(X)
    model.set_params(max_epochs=20).continue_fit(X)
    expected = [1, 1, 1] + [_cooldown(k, 4) for k in (1, 2, 3, 4)]
    assert [h["lr"] for h in model.history_[13:]] == pytest.approx([0.01 * f for f in expected])


class _CtrlC:
    """Ctrl-C at the end of epoch ``at``."""

    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, trainer, estimator, logs):
        if logs["epoch"] == self.at:
            raise KeyboardInterrupt


def test_resuming_after_ctrl_c_back_to_an_earlier_best_epoch_still_cools_down():
    """Ctrl-C at epoch 7 of 10 with the best epoch at 1 (min_delta so large that no later epoch
    improves) returns the schedule to epoch 1; continue_fit's 3 epochs then end with the
    cooldown of a schedule spanning 1 + 3 epochs, instead of running at full rate."""
    model = Autoencoder(latent_dim=2, hidden=(8,), max_epochs=10, lr=0.01, min_delta=1e9,
                        random_state=0)  # fmt: skip
    X = tiny_X()
    model.fit(X, callbacks=[_CtrlC(7)])
    assert model.stop_reason_ == "interrupted" and model.best_epoch_ == 1
    model.continue_fit(X)
    assert [h["lr"] for h in model.history_[7:]] == pytest.approx([0.01, 0.01, 0.005])


@pytest.mark.parametrize("schedule", ["auto", "none"])
def test_a_rate_set_after_the_best_epoch_survives_restoring_it(schedule):
    """set_params(lr=0.02) after a fit whose best epoch is its first, then a partial_fit cut by
    Ctrl-C (which restores the best epoch's optimiser state, saved at lr 0.01): the next
    partial_fit trains at 0.02, not at the rate of the restored state."""
    model = Autoencoder(latent_dim=2, hidden=(8,), max_epochs=3, lr=0.01, min_delta=1e9,
                        lr_schedule=schedule, random_state=0)  # fmt: skip
    X = tiny_X()
    model.fit(X).set_params(lr=0.02)
    model.partial_fit(X, callbacks=[_CtrlC(4)])
    assert model.stop_reason_ == "interrupted"
    model.partial_fit(X)
    assert model.history_[-1]["lr"] == 0.02


def test_read_only_memory_map_input(tmp_path):
    X = np.random.default_rng(0).random((300, 6), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ae = Autoencoder(hidden=(8,), max_epochs=2, random_state=0).fit(mm)
    ref = Autoencoder(hidden=(8,), max_epochs=2, random_state=0).fit(X)
    assert np.array_equal(ae.transform(mm), ref.transform(X))


def test_more_input_errors():
    X = np.random.default_rng(0).random((20, 8, 8, 3), dtype=np.float32)
    with pytest.raises(DataError, match=r"channels-last.*X.transpose\(0, 3, 1, 2\)"):
        Autoencoder(max_epochs=1).fit(X)
    X2 = np.zeros((20, 4), dtype=np.float32)
    with pytest.raises(DataError, match="not a tuple"):
        Autoencoder(max_epochs=1).fit(X2, validation_data=(X2, X2))
    with pytest.raises(ParameterError, match="tied='no' is invalid; expected True or False"):
        Autoencoder(tied="no", max_epochs=1).fit(X2)


def test_every_default_initialisation_is_seeded():
    """Layers that reset_parameters does not know are seeded too (from random_state, not from
    the global generator)."""

    class WithExtra(Autoencoder):
        def _build_module(self):
            module = super()._build_module()
            module.extra = torch.nn.Parameter(torch.randn(5))
            return module

    X = np.random.default_rng(0).random((30, 4), dtype=np.float32)
    torch.manual_seed(1)
    a = WithExtra(hidden=(4,), max_epochs=0, random_state=0).fit(X)
    torch.manual_seed(2)
    b = WithExtra(hidden=(4,), max_epochs=0, random_state=0).fit(X)
    assert torch.equal(a.module_.extra, b.module_.extra)


def test_every_estimator_class_declares_its_parameters_as_dataclass_fields():
    """A family that forgot @dataclass(kw_only=True) would silently drop its own parameters from
    get_params, clone and save."""
    import dataclasses

    from aekit.models import catalog

    classes = [catalog.family_class(name) for name in catalog.CLASS_MODULES]
    assert len(classes) >= 4
    for cls in classes:
        own = {k for k, v in vars(cls).get("__annotations__", {}).items() if "ClassVar" not in v}
        assert own, f"{cls.__name__} declares no parameters of its own"
        assert own <= {f.name for f in dataclasses.fields(cls)}, f"{cls.__name__} not decorated"
        assert own <= set(cls().get_params()), cls


def test_restore_best_false_keeps_the_last_epoch(digits):
    params = dict(latent_dim=2, hidden=(32,), lr=0.02, max_epochs=300, early_stopping=True,
                  patience=3, random_state=0)  # fmt: skip
    ae = Autoencoder(restore_best=False, **params).fit(
        digits.X_train, validation_data=digits.X_test
    )
    assert ae.stop_reason_ == "early_stopping"
    last = ae.history_[-1]["val_loss"] - row_entropy(digits.X_test).mean()
    assert -ae.score(digits.X_test) == pytest.approx(last, rel=1e-5)
    assert ae.history_[-1]["val_loss"] > min(h["val_loss"] for h in ae.history_)


def test_min_delta_counts_small_improvements_as_none():
    """With min_delta larger than any improvement, training stops `patience` epochs after the
    first (which sets the baseline)."""
    model, _ = make_fitted(max_epochs=50, early_stopping=True, patience=2, min_delta=1e6)
    assert model.n_epochs_ == 3 and model.stop_reason_ == "early_stopping"
    assert model.history_[-1]["best_epoch"] == 1


def test_plateau_schedule_lowers_the_rate_when_the_loss_stalls(digits):
    ae = Autoencoder(latent_dim=2, hidden=(32,), lr=0.05, lr_schedule="plateau", patience=4,
                     max_epochs=40, random_state=0).fit(digits.X_train[:300])  # fmt: skip
    lrs = [h["lr"] for h in ae.history_]
    assert lrs[0] == 0.05 and min(lrs) <= 0.005


# --- inference chunks (issue 14) ----------------------------------------------------------------


def test_inference_chunk_rule_on_the_cpu():
    """A 16 MiB activation budget, rounded down to a power of two, at least one row, at most
    2**24 input values; the same for any length of data (the length is not an argument)."""
    from aekit.estimator import CPU_INFERENCE_BYTES, inference_chunk

    assert CPU_INFERENCE_BYTES == 2**24
    assert inference_chunk("cpu", 12756, 784) == (1024, 2**24)  # 784-400-20 score_samples
    assert inference_chunk("cpu", 6496, 784) == (2048, 2**24)  # its transform
    assert inference_chunk("cpu", 50 * 4 * 3216, 784)[0] == 16  # a VAE's 50 samples a row
    assert inference_chunk("cpu", 2**30, 784)[0] == 1  # one row over budget: still one row
    assert inference_chunk("cpu", 8, 2**20)[0] == 16  # wide rows: at most 2**24 values read


def test_inference_chunk_rule_on_cuda_follows_its_memory(monkeypatch):
    """On a CUDA device: min(free / 2, total / 8), as a power of two. While a quarter of the
    device is free the chunk is that of its total memory (the same at every call); below, it
    halves with the free memory."""
    from aekit.estimator import inference_chunk

    memory = {"free": 80 * 10**9, "total": 80 * 10**9}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (memory["free"], memory["total"]))
    k, sample = 5000, 4 * 3216  # log_likelihood's 5000 samples of a 784-400-20 VAE
    assert inference_chunk("cuda", k * sample, 784) == (128, 2**33)  # 8 GiB of 80 GB
    memory["free"] = 25 * 10**9  # still over a quarter free: the same chunk
    assert inference_chunk("cuda:0", k * sample, 784) == (128, 2**33)
    memory["free"] = 10 * 10**9
    assert inference_chunk("cuda", k * sample, 784) == (64, 2**32)
    memory["free"] = 3 * 10**9
    assert inference_chunk("cuda", k * sample, 784) == (16, 2**30)
    assert inference_chunk("cuda", 50 * sample, 784) == (1024, 2**30)  # k = 50: 100x the rows
    memory.update(free=140 * 10**9, total=140 * 10**9)  # small rows: 2**24 values read
    assert inference_chunk("cuda", 6496, 784) == (16384, 2**34)


def test_inference_is_cut_by_the_rule_for_the_bytes_one_row_costs(monkeypatch):
    """transform's chunk comes from the layer outputs of one probe row of zeros (drawing no
    random numbers), and a budget of 16 rows' worth gives chunks of 16 rows."""
    X = np.random.default_rng(0).random((150, 6), dtype=np.float32)
    ae = Autoencoder(latent_dim=2, hidden=(8,), max_epochs=1, random_state=0, device="cpu").fit(X)
    per_row = ae._bytes_per_row(ae.module_.encode, 6)
    assert per_row == 4 * (6 + 8 + 8 + 2 + 2)  # input, Linear, ReLU, Linear, the code
    monkeypatch.setattr("aekit.estimator.CPU_INFERENCE_BYTES", 16 * per_row + 1)
    sizes, encode = [], ae.module_.encode
    monkeypatch.setattr(ae.module_, "encode", lambda x: sizes.append(len(x)) or encode(x))
    rng = torch.get_rng_state()
    codes = ae.transform(X)
    assert torch.equal(torch.get_rng_state(), rng)
    assert sizes == [1] + [16] * 9 + [6]  # the probe, then the chunks
    monkeypatch.undo()
    np.testing.assert_allclose(codes, ae.transform(X), rtol=1e-6, atol=1e-6)  # one chunk


def test_log_likelihood_chunks_hold_k_samples_a_row(monkeypatch):
    """The VAE's importance-sampled paths size their chunks for k samples a row: k times the
    rows' cost, fewer rows for more samples, and the samples of one row split into passes
    only where even one row's k samples exceed the budget."""
    from aekit import VAE
    from aekit.models import vae as vae_module

    X = np.random.default_rng(0).random((40, 7), dtype=np.float32)
    vae = VAE(latent_dim=3, hidden=(16,), likelihood="bernoulli", max_epochs=1,
              random_state=0, device="cpu").fit(X)  # the CPU's budget  # fmt: skip
    _, peak = vae.module_.values_per_sample()
    monkeypatch.setattr("aekit.estimator.CPU_INFERENCE_BYTES", 4 * peak * 80)
    calls, original = [], vae_module.VAEModule.iwae_bound_chunked

    def spy(self, x, k, chunk, *args, **kw):
        calls.append((len(x), chunk))
        return original(self, x, k, chunk, *args, **kw)

    monkeypatch.setattr(vae_module.VAEModule, "iwae_bound_chunked", spy)
    for k, rows, per_pass in [(10, 8, 10), (20, 4, 20), (80, 1, 80), (200, 1, 80)]:
        calls.clear()
        assert np.isfinite(vae.log_likelihood(X, n_samples=k))
        assert set(calls) == {(rows, per_pass)} and len(calls) == len(X) // rows, k


# -- the default widths ---------------------------------------------------------------------------


def _linear_widths(module: torch.nn.Module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_default_hidden_is_the_wide_mlp_and_256_128_for_other_architectures(small_digits):
    """hidden=None: 512-256 for the MLP (issue 16's choice on Fashion-MNIST), 256-128 channels
    for a conv network; an explicit value is used as given; the adversarial, variational and
    stacked families keep 256-128."""
    from aekit import VAE, AdversarialAutoencoder, DenoisingAutoencoder, StackedAutoencoder
    from aekit.models.autoencoder import MLP_HIDDEN

    X, _ = small_digits
    assert MLP_HIDDEN == (512, 256)
    mlp = Autoencoder(max_epochs=1, random_state=0).fit(X)
    assert mlp.get_params()["hidden"] is None
    assert _linear_widths(mlp.encoder_) == [512, 256, 2]
    assert _linear_widths(mlp.decoder_) == [256, 512, 64]
    dae = DenoisingAutoencoder(max_epochs=1, random_state=0).fit(X)
    assert _linear_widths(dae.encoder_) == [512, 256, 2]
    conv = Autoencoder(architecture="conv", input_shape=(1, 8, 8), max_epochs=1).fit(X)
    channels = [m.out_channels for m in conv.encoder_.modules() if isinstance(m, torch.nn.Conv2d)]
    assert channels == [256, 128]
    given = Autoencoder(hidden=(256, 128), max_epochs=1).fit(X)
    assert _linear_widths(given.encoder_) == [256, 128, 2]
    for cls in (VAE, AdversarialAutoencoder, StackedAutoencoder):
        assert cls().hidden == (256, 128), cls


def test_a_model_with_the_default_widths_saves_and_loads_as_it_was(small_digits, tmp_path):
    import aekit

    X, X_test = small_digits
    model = Autoencoder(max_epochs=2, random_state=0).fit(X)
    model.save(tmp_path / "m")
    back = aekit.load(tmp_path / "m")
    assert back.hidden is None and _linear_widths(back.encoder_) == [512, 256, 2]
    assert np.array_equal(back.transform(X_test), model.transform(X_test))


def test_errors_name_the_widths_in_use_not_none(small_digits):
    X, _ = small_digits
    with pytest.raises(ParameterError, match=r"hidden=\(512, 256\) gives a code wider"):
        Autoencoder(latent_dim=100).fit(X)
