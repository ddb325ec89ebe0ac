"""Parameters declared once (issue 12): every field's constraint, checked once per fit, and the
errors the declarations fixed (non-finite numbers, networks too big for memory, overcomplete
codes, the command line's --threads and --set)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

import aekit
from aekit import (
    VAE,
    AdversarialAutoencoder,
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    ParameterError,
    SparseAutoencoder,
    StackedAutoencoder,
    _params,
)
from aekit.cli import main, parse_value
from aekit.models.catalog import FAMILIES, cli_class

CLASSES = sorted({cli_class(name) for name in FAMILIES}, key=lambda c: c.__name__)
# The families on which the "auto" learning-rate schedule is the default (issue 16)
COOLED = (Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder, SparseAutoencoder, VAE)
FAST = ["--epochs", "1", "--hidden", "8", "--no-plots", "-q", "--seed", "0"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    assert code == 2, err
    assert err.startswith("aekit: error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# -- declarations ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_parameter_declares_its_constraint(cls):
    from aekit._params import constraints_of

    undeclared = [f.name for f in dataclasses.fields(cls) if constraints_of(f) is None]
    assert not undeclared, f"{cls.__name__}: declare these with param(...): {undeclared}"
    assert set(cls().get_params(deep=False)) == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_default_meets_its_own_constraint(cls):
    cls()._check_params()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_trainer_settings_are_the_parameters_declared_for_it(cls):
    """TrainerConfig is built from the parameters declared ``trainer=True``, by name; its only
    other field is SGD's momentum, which is not an estimator parameter. The defaults agree,
    but for the schedule, which the plain autoencoders and the VAE redeclare ("auto")."""
    from aekit._params import TRAINER
    from aekit.training import TrainerConfig

    declared = {f.name for f in dataclasses.fields(cls) if f.metadata.get(TRAINER)}
    assert {f.name for f in dataclasses.fields(TrainerConfig)} - declared == {"momentum"}
    assert declared <= {f.name for f in dataclasses.fields(TrainerConfig)}
    schedule = cls().lr_schedule
    assert schedule == ("auto" if cls in COOLED else "none")
    assert cls()._trainer_config() == TrainerConfig(momentum=0.9, lr_schedule=schedule)


def test_the_trainer_settings_are_plain_python_values():
    model = Autoencoder(lr=np.float32(0.5), batch_size=np.int64(7), early_stopping=np.bool_(True))
    config = model._trainer_config()
    assert (config.lr, config.batch_size, config.early_stopping) == (0.5, 7, True)
    assert type(config.lr) is float and type(config.batch_size) is int
    assert type(config.early_stopping) is bool


def test_parameters_are_checked_once_per_fit(monkeypatch):
    """fit and continue_fit check once; partial_fit on every call (set_params may change the
    parameters between calls)."""
    calls = []
    original = Autoencoder._check_params

    def counting(self):
        calls.append(type(self).__name__)
        return original(self)

    monkeypatch.setattr(Autoencoder, "_check_params", counting)
    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    model = Autoencoder(latent_dim=2, hidden=(4,), max_epochs=2, random_state=0).fit(X)
    assert len(calls) == 1
    model.partial_fit(X)
    model.partial_fit(X)
    assert len(calls) == 3
    model.set_params(max_epochs=3)
    model.continue_fit(X)
    assert len(calls) == 4


# -- non-finite numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "cls, param",
    [
        (Autoencoder, "lr"),
        (Autoencoder, "weight_decay"),
        (Autoencoder, "min_delta"),
        (VAE, "beta"),
        (VAE, "free_bits"),
        (SparseAutoencoder, "sparsity_weight"),
        (DenoisingAutoencoder, "noise_level"),
        (ContractiveAutoencoder, "contraction_weight"),
        (AdversarialAutoencoder, "gradient_penalty"),
        (AdversarialAutoencoder, "discriminator_lr"),
    ],
)
def test_non_finite_numbers_are_refused(cls, param, value):
    with pytest.raises(ParameterError, match=rf"^{cls.__name__}: {param}={value!r} is invalid; "
                       "expected (None or )?a finite number"):  # fmt: skip
        cls(**{param: value})._check_params()


def test_bools_and_floats_are_not_integers_and_strings_not_numbers():
    for params, message in [
        (dict(batch_size=True), "batch_size=True is invalid; expected an integer >= 1"),
        (dict(max_epochs=2.0), "max_epochs=2.0 is invalid; expected an integer >= 0"),
        (dict(lr="0.1"), "lr='0.1' is invalid; expected a finite number > 0"),
        (dict(hidden=(8, True)), "hidden=(8, True) is invalid"),
        (dict(input_shape=(8,)), "input_shape=(8,) is invalid; expected None or (channels"),
        (dict(random_state="0"), "random_state='0' is invalid; expected None, an integer or"),
    ]:
        with pytest.raises(ParameterError, match=f"^Autoencoder: {re.escape(message)}"):
            Autoencoder(**params)._check_params()


def test_cli_lr_inf_exits_2_before_writing_the_run(tmp_path, capsys):
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--lr", "inf",
                        "--out", tmp_path / "r"], capsys)  # fmt: skip
    one_line_error(code, err, "lr=inf is invalid; expected a finite number > 0")
    assert not (tmp_path / "r").exists()


# -- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_threads_must_be_positive(threads, tmp_path, capsys):
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--threads", threads,
                        "--out", tmp_path / "r"], capsys)  # fmt: skip
    one_line_error(code, err, f"--threads {threads}: give a number of CPU threads >= 1")
    assert not (tmp_path / "r").exists()


def test_set_takes_json_objects_and_arrays():
    assert parse_value('{"radius": 4.0}') == {"radius": 4.0}
    assert parse_value("[64, 32]") == (64, 32)
    assert parse_value("[64]") == (64,) and parse_value("(64, 32)") == (64, 32)
    assert parse_value('["a", "b"]') == ("a", "b")
    assert parse_value("") == ""


def test_set_prior_params_as_json_reaches_the_prior(tmp_path, capsys):
    code, _, err = run(["train", "aae", "--data", "digits", *FAST, "--latent", "2",
                        "--prior", "mixture", "--set", 'prior_params={"radius": 6.0, "std": 0.1}',
                        "--out", tmp_path / "r"], capsys)  # fmt: skip
    assert code == 0, err
    model = aekit.load(tmp_path / "r")
    assert model.prior_params == {"radius": 6.0, "std": 0.1}
    assert float(model.module_.prior.radius) == 6.0


def test_set_invalid_json_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(["train", "aae", "--data", "digits", *FAST, "--set",
                        "prior_params={radius: 4}", "--out", tmp_path / "r"], capsys)  # fmt: skip
    one_line_error(code, err, "--set prior_params={radius: 4}: not valid JSON")


def test_set_without_a_value_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--set", "lr=",
                        "--out", tmp_path / "r"], capsys)  # fmt: skip
    one_line_error(code, err, "--set lr=: no value")
    assert not (tmp_path / "r").exists()


def test_set_an_empty_sequence_means_no_layers():
    import argparse

    from aekit.cli.common import resolve_params
    from aekit.cli.train import add_parsers

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    args = parser.parse_args(["train", "ae", "--set", "hidden=", "--set", "decoder_hidden=",
                              "--out", "x"])  # fmt: skip
    params, _ = resolve_params(Autoencoder, args)
    assert params["hidden"] == () and params["decoder_hidden"] == ()


# -- networks too big for memory -------------------------------------------------------------


def test_a_network_too_big_for_memory_is_refused_before_it_is_built(monkeypatch):
    from aekit import estimator

    X = np.random.default_rng(0).random((20, 64), dtype=np.float32)
    model = Autoencoder(hidden=(100_000_000,), max_epochs=1)
    with pytest.raises(ParameterError, match=r"^Autoencoder: hidden=\(100000000,\) makes a "
                       r"network of 13,400,000,066 parameters.* needs at least 268\.0 GB .* "
                       r"has [\d.]+ [kMGT]?B available"):  # fmt: skip
        model.fit(X)
    assert not hasattr(model, "module_")
    monkeypatch.setattr(estimator, "available_memory", lambda device: (10**5, "this test"))
    small = Autoencoder(latent_dim=2, hidden=(100,), optimizer="sgd", max_epochs=1)
    # 64*100+100 + 100*2+2 + 2*100+100 + 100*64+64 = 13,466 parameters x 4 copies x 4 bytes
    with pytest.raises(ParameterError, match=r"^Autoencoder: hidden=\(100,\) makes") as refused:
        small.fit(X)
    assert "13,466 parameters" in str(refused.value) and "215.5 kB" in str(refused.value)
    assert "this test has 100.0 kB available" in str(refused.value)
    with pytest.raises(ParameterError, match="13,466 parameters"):
        small.preflight(X)
    monkeypatch.setattr(estimator, "available_memory", lambda device: (None, "nowhere"))
    Autoencoder(latent_dim=2, hidden=(100,), max_epochs=1).fit(X)  # unknown memory: not checked


@pytest.mark.parametrize(
    "model",
    [
        Autoencoder(architecture="conv", input_shape=(1, 8, 8), hidden=(4, 8), latent_dim=3),
        VAE(hidden=(5,), latent_dim=3),
        AdversarialAutoencoder(hidden=(5,), posterior="gaussian", discriminator_hidden=(7,)),
        StackedAutoencoder(hidden=(5, 4), latent_dim=3),
    ],
    ids=lambda m: type(m).__name__,
)
def test_the_memory_check_counts_the_network_that_fit_builds(model):
    """The network built on the meta device (shapes, no memory) is the one fit builds."""
    X = np.random.default_rng(0).random((4, 64), dtype=np.float32)
    model.set_params(max_epochs=0, random_state=0)
    if hasattr(model, "pretrain_epochs"):
        model.set_params(pretrain_epochs=0)
    model.fit(X)
    meta = model._network_on_meta()
    assert {k: v.shape for k, v in meta.state_dict().items()} == {
        k: v.shape for k, v in model.module_.state_dict().items()
    }


@dataclasses.dataclass(kw_only=True, repr=False, eq=False)
class ReadsValuesWhileBuilding(Autoencoder):
    def _build_module(self):
        torch.ones(1).item()  # fails on the meta device
        return super()._build_module()


def test_a_network_the_meta_device_cannot_build_is_built_for_real():
    X = np.random.default_rng(0).random((20, 6), dtype=np.float32)
    model = ReadsValuesWhileBuilding(latent_dim=2, hidden=(4,), max_epochs=1)
    assert model._network_on_meta() is None
    model.preflight(X)
    model.fit(X)
    with pytest.raises(ParameterError, match="latent_dim=9 with"):
        ReadsValuesWhileBuilding(latent_dim=9, hidden=(), max_epochs=1).preflight(X)


@pytest.mark.parametrize("flag", ["--latent", "--hidden"])
def test_cli_refuses_a_network_too_big_for_memory_with_exit_2(flag, tmp_path, capsys, monkeypatch):
    from aekit import estimator

    monkeypatch.setattr(estimator, "available_memory", lambda device: (8 * 10**9, "this test"))
    argv = ["train", "denoising", "--data", "digits", *FAST, flag, "100000000",
            "--out", tmp_path / "r"]  # fmt: skip
    code, _, err = run(argv, capsys)
    param = "latent_dim=100000000" if flag == "--latent" else "hidden=(100000000,)"
    one_line_error(code, err, f"DenoisingAutoencoder: {param} makes a network of")
    assert "this test has 8.0 GB available" in err and not (tmp_path / "r").exists()


# -- overcomplete codes -----------------------------------------------------------------------


def test_a_plain_autoencoder_refuses_a_code_wider_than_its_input():
    X = np.random.default_rng(0).random((30, 6), dtype=np.float32)
    with pytest.raises(ParameterError, match=r"^Autoencoder: latent_dim=8 with hidden=\(16,\) "
                       r"gives a code wider than the input \(n_features=6\)"):  # fmt: skip
        Autoencoder(latent_dim=8, hidden=(16,), max_epochs=1).fit(X)
    with pytest.raises(ParameterError, match=r"wider than the input \(n_features=6\)"):
        Autoencoder(latent_dim=8, hidden=(16,), max_epochs=1).preflight(X)
    # a narrower hidden layer is the bottleneck; a code as wide as the input is allowed
    Autoencoder(latent_dim=8, hidden=(4,), max_epochs=1).fit(X)
    Autoencoder(latent_dim=6, hidden=(16,), max_epochs=1).fit(X)
    Autoencoder(latent_dim=8, hidden=(16,), decoder_hidden=(3,), max_epochs=1).fit(X)


@pytest.mark.parametrize(
    "cls, params",
    [
        (SparseAutoencoder, {}),
        (DenoisingAutoencoder, {}),
        (ContractiveAutoencoder, {"jacobian": "hutchinson"}),
        (VAE, {}),
        (AdversarialAutoencoder, {}),
        (StackedAutoencoder, {"layer_model": "autoencoder", "pretrain_epochs": 1}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_the_regularised_families_take_overcomplete_codes(cls, params):
    X = np.random.default_rng(0).random((30, 6), dtype=np.float32)
    model = cls(latent_dim=8, hidden=(16,), max_epochs=1, random_state=0, **params).fit(X)
    assert model.transform(X).shape == (30, 8)


def test_cli_overcomplete_plain_autoencoder_exits_2(tmp_path, capsys):
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--latent", "100",
                        "--hidden", "128", "--out", tmp_path / "r"], capsys)  # fmt: skip
    wider = "latent_dim=100 with hidden=(128,) gives a code wider than the input (n_features=64)"
    one_line_error(code, err, wider)
    assert not (tmp_path / "r").exists()


# --- what the declarations tell the files and the command line ------------------------------


def user_hook(n, generator):
    """A user's function, named in a saved config as ``tests.test_params:user_hook``."""


@dataclasses.dataclass(kw_only=True, repr=False, eq=False)
class HookedAutoencoder(Autoencoder):
    """A user's family with parameters of its own: one that may hold code, one a sequence."""

    hook: object = _params.param("none", _params.Instance(str, "a name or an import path"),
                                 _params.Function(builtin=("none",)))  # fmt: skip
    widths: tuple[int, ...] = _params.param((2,), _params.Sizes())


def test_the_code_and_sequence_parameters_come_from_the_declarations(tmp_path):
    """aekit.load (and the command line's --set) learn which parameters hold code and which
    hold sequences from the field declarations, so a family that declares one is treated as
    the AAE's prior is, with no list of names to keep in step beside it."""
    networks = {"encoder": ("module", ()), "decoder": ("module", ())}
    assert _params.code_fields(AdversarialAutoencoder) == {
        **networks,
        "discriminator": ("module", ()),
        "prior": ("function", ("gaussian", "mixture", "swiss_roll", "uniform")),
    }
    assert _params.code_fields(Autoencoder) == networks
    assert _params.code_fields(HookedAutoencoder) == {**networks, "hook": ("function", ("none",))}
    assert _params.sequence_fields(Autoencoder) == (
        "hidden",
        "decoder_hidden",
        "input_shape",
        "strides",
    )
    assert "discriminator_hidden" in _params.sequence_fields(AdversarialAutoencoder)
    assert "widths" in _params.sequence_fields(HookedAutoencoder)
    X = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    hook = "tests.test_params:user_hook"
    model = HookedAutoencoder(latent_dim=2, hidden=(4,), max_epochs=1, widths=(3, 2), hook=hook,
                              random_state=0).fit(X)  # fmt: skip
    model.save(tmp_path / "m")
    with pytest.raises(aekit.UntrustedCodeError, match=r"params\.hook"):
        aekit.load(tmp_path / "m", classes=[HookedAutoencoder])
    loaded = aekit.load(tmp_path / "m", classes=[HookedAutoencoder], trust_code=True)
    assert loaded.hook is user_hook and loaded.widths == (3, 2)
