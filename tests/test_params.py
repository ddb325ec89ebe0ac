"""Parameters declared once (issue 12): every field's constraint, checked once per fit, and the
errors the declarations fixed (non-finite numbers, networks too big for memory, overcomplete
codes, the command line's --threads and --set)."""

from __future__ import annotations

import pytest

import aekit
from aekit import Autoencoder
from aekit.cli import main, parse_value
from aekit.models.catalog import FAMILIES, cli_class

CLASSES = sorted({cli_class(name) for name in FAMILIES}, key=lambda c: c.__name__)
FAST = ["--epochs", "1", "--hidden", "8", "--no-plots", "-q", "--seed", "0"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, message):
    assert code == 2, err
    assert err.startswith("aekit: error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


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
