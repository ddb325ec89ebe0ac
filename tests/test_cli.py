"""The command line, mostly in-process (``main(argv)``), a few real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.cli import main, parse_value
from aekit.datasets import Scaler

FAST = ["--epochs", "3", "--hidden", "16", "--no-plots", "-q", "--seed", "0"]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """One real CLI run on digits with figures, shared by the read-only tests below."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    code = main(
        ["train", "ae", "--data", "digits", "--latent", "2", "--hidden", "32", "--epochs", "15",
         "--seed", "0", "--out", str(out), "-q", "--json"]
    )  # fmt: skip
    assert code == 0
    return out


def test_train_writes_a_complete_run(digits_run):
    files = sorted(p.name for p in digits_run.iterdir())
    assert files == [
        ".aekit.lock", "aekit-manifest.json", "config.json", "data.json", "epochs.jsonl",
        "history.json", "latent.png", "learning_curves.png", "metrics.json", "model.safetensors",
        "optimizer.json", "optimizer.safetensors", "reconstructions.png",
    ]  # fmt: skip
    manifest = json.loads((digits_run / "aekit-manifest.json").read_text())
    assert set(files) - {"aekit-manifest.json"} <= set(manifest["files"])
    config = json.loads((digits_run / "config.json").read_text())
    assert config["params"]["loss"] == "auto"
    assert config["fitted"]["loss_"] == "bce"  # chosen for data in [0, 1]
    assert config["params"]["input_shape"] == [1, 8, 8]
    assert config["metadata"]["label_names"][:2] == ["0", "1"]
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert set(metrics["model"]) >= {"squared_error_per_sample", "knn5_accuracy"}
    assert metrics["pca"]["knn5_accuracy"] > 0.5
    data = json.loads((digits_run / "data.json").read_text())
    assert data["scaling"] == {"kind": "divide", "divisor": 16.0, "offset": None, "scale": None}


def test_train_output_and_bce_note(tmp_path, capsys):
    loud = [a for a in FAST if a != "-q"]  # -q silences notes and progress
    code, out, err = run(
        ["train", "ae", "--data", "digits", *loud, "--out", tmp_path / "r"], capsys
    )
    assert code == 0
    assert out.startswith("trained Autoencoder on digits: 1437 train / 360 test rows, 64 features")
    assert "PCA-2" in out and f"wrote {tmp_path / 'r'}/" in out
    assert "loss='bce'" in err
    code, out, _ = run(
        ["train", "ae", "--data", "digits", *FAST, "--out", tmp_path / "r", "--overwrite",
         "--loss", "mse", "--json"], capsys,
    )  # fmt: skip
    result = json.loads(out)
    assert result["epochs"] == 3 and result["stop_reason"] == "max_epochs"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["params"]["loss"] == "mse"


def test_progress_goes_to_stderr_results_to_stdout(tmp_path, capsys):
    argv = ["train", "ae", "--data", "digits", "--epochs", "2", "--hidden", "8", "--no-plots"]
    code, out, err = run([*argv, "--out", tmp_path / "r"], capsys)
    assert code == 0
    assert "epoch 1/2" in err and "epoch 1/2" not in out


def test_encode_applies_the_runs_scaling(digits_run, tmp_path, capsys):
    model = aekit.load(digits_run)
    ds = aekit.load_dataset("digits")
    code, out, _ = run(
        ["encode", digits_run, "--split", "test", "--out", tmp_path / "c.npy"], capsys
    )
    assert code == 0 and "(360, 2)" in out
    assert np.array_equal(np.load(tmp_path / "c.npy"), model.transform(ds.X_test))
    code, _, _ = run(["encode", digits_run, "--out", tmp_path / "all.csv"], capsys)
    assert code == 0 and np.loadtxt(tmp_path / "all.csv", delimiter=",").shape == (1797, 2)
    # raw digits (0..16) from a file: the run's divide-by-16 is applied
    from sklearn.datasets import load_digits

    raw = load_digits().data[:7]
    np.save(tmp_path / "raw.npy", raw)
    code, _, _ = run(
        ["encode", digits_run, "--data", tmp_path / "raw.npy", "--out", tmp_path / "r.npy"], capsys
    )
    assert code == 0
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), model.transform(raw / 16), atol=1e-6)


def test_detect_writes_scores_and_flags_with_the_runs_scaling(digits_run, tmp_path, capsys):
    """`aekit detect`: a CSV of decision_function and +1/-1 flags, on raw data scaled as the run
    was; --contamination sets the threshold from the run's training rows; the CSV is not
    overwritten without --overwrite."""
    model = aekit.load(digits_run)
    from sklearn.datasets import load_digits

    raw = load_digits().data[:40]
    np.save(tmp_path / "raw.npy", raw)
    out = tmp_path / "flags.csv"
    code, text, _ = run(["detect", digits_run, "--data", tmp_path / "raw.npy", "--out", out],
                        capsys)  # fmt: skip
    assert code == 0 and "40 rows" in text
    assert out.read_text().splitlines()[0] == "score,flag"
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 0], model.decision_function(raw / 16), rtol=1e-5,
                               atol=1e-4)  # fmt: skip
    assert np.array_equal(table[:, 1], model.predict(raw / 16))
    code, _, _ = run(["detect", digits_run, "--data", tmp_path / "raw.npy", "--out", out], capsys)
    assert code == 2  # exists, not replaced
    code, _, _ = run(["detect", digits_run, "--split", "train", "--contamination", "0.2",
                      "--out", out, "--overwrite"], capsys)  # fmt: skip
    assert code == 0
    flags = np.loadtxt(out, delimiter=",", skiprows=1)[:, 1]
    assert abs((flags == -1).mean() - 0.2) < 0.01
    code, _, _ = run(["detect", digits_run, "--contamination", "0.9", "--out", tmp_path / "x.csv"],
                     capsys)  # fmt: skip
    assert code == 2 and not (tmp_path / "x.csv").exists()


def test_detect_thresholds_a_classifier_on_its_training_rows(tmp_path, capsys):
    """A classifier keeps its predict: `aekit detect` thresholds its score_samples on the run's
    training rows (--contamination 0.1 flags a tenth of them)."""
    out = tmp_path / "c"
    code, _, _ = run(["train", "stacked-classifier", "--data", "digits", *FAST, "--set",
                      "pretrain_epochs=1", "--out", out], capsys)  # fmt: skip
    assert code == 0
    code, text, _ = run(["detect", out, "--split", "train", "--contamination", "0.1", "--out",
                         tmp_path / "f.csv", "--json"], capsys)  # fmt: skip
    assert code == 0
    flags = np.loadtxt(tmp_path / "f.csv", delimiter=",", skiprows=1)[:, 1]
    assert abs((flags == -1).mean() - 0.1) < 0.01 and json.loads(text)["rows"] == len(flags)


def test_reconstruct_returns_original_units(digits_run, tmp_path, capsys):
    model = aekit.load(digits_run)
    ds = aekit.load_dataset("digits")
    code, out, _ = run(
        ["reconstruct", digits_run, "--split", "test", "--out", tmp_path / "r.npy"], capsys
    )
    assert code == 0 and "original units" in out
    recon = np.load(tmp_path / "r.npy")
    np.testing.assert_allclose(recon, 16 * model.reconstruct(ds.X_test), rtol=1e-6)


def test_tabular_csv_run_standardises_and_reapplies(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(loc=100, scale=20, size=(200, 5))
    header = "a,b,c,d,e,label"
    rows = [",".join(f"{v:.6f}" for v in r) + f",{'yes' if r[0] > 100 else 'no'}" for r in X]
    (tmp_path / "t.csv").write_text("\n".join([header, *rows]) + "\n")
    code, _, _ = run(
        ["train", "ae", "--data", tmp_path / "t.csv", "--label-column", "label", *FAST, "--out",
         tmp_path / "run"], capsys,
    )  # fmt: skip
    assert code == 0
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["scaling"]["kind"] == "standard" and data["label_names"] == ["no", "yes"]
    new = X[:10] + 1.0
    (tmp_path / "new.csv").write_text(
        "\n".join([header, *[",".join(f"{v:.6f}" for v in r) + ",no" for r in new]]) + "\n"
    )
    code, _, _ = run(
        ["encode", tmp_path / "run", "--data", tmp_path / "new.csv", "--out", tmp_path / "z.npy"],
        capsys,
    )
    assert code == 0
    model = aekit.load(tmp_path / "run")
    scaler = Scaler.from_dict(data["scaling"])
    expected = model.transform(scaler.transform(new.astype(np.float32)))
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, atol=1e-5)


def test_config_file_set_and_flags_precedence(tmp_path, capsys):
    (tmp_path / "c.toml").write_text("latent_dim = 3\nhidden = [16]\nlr = 0.01\nmax_epochs = 2\n")
    code, _, _ = run(
        ["train", "ae", "--data", "digits", "--config", tmp_path / "c.toml",
         "--set", "latent_dim=4", "--set", "lr_schedule=cosine", "--latent", "5",
         "--no-plots", "-q", "--out", tmp_path / "r"], capsys,
    )  # fmt: skip
    assert code == 0
    params = json.loads((tmp_path / "r" / "config.json").read_text())["params"]
    assert params["latent_dim"] == 5  # flag beats --set beats the file
    assert params["hidden"] == [16] and params["lr"] == 0.01 and params["max_epochs"] == 2
    assert params["lr_schedule"] == "cosine"


def test_set_none_means_the_option_named_none_where_there_is_one(tmp_path, capsys):
    """``--set lr_schedule=none`` and ``--set norm=none`` choose the option "none"; where no
    option has that name, none is Python's None (``--set decoder_hidden=none``)."""
    code, _, err = run(
        ["train", "ae", "--data", "digits", "--hidden", "8", "--epochs", "1",
         "--set", "lr_schedule=none", "--set", "norm=None", "--set", "decoder_hidden=none",
         "--no-plots", "-q", "--out", tmp_path / "r"], capsys,
    )  # fmt: skip
    assert code == 0, err
    params = json.loads((tmp_path / "r" / "config.json").read_text())["params"]
    assert params["lr_schedule"] == "none" and params["norm"] == "none"
    assert params["decoder_hidden"] is None
    # A config file likewise (TOML has no null): the AAE's separate generator phase
    (tmp_path / "c.toml").write_text('generator_weight = "none"\nlr_schedule = "None"\n'
                                     "hidden = [8]\nmax_epochs = 1\n")  # fmt: skip
    code, _, err = run(["train", "aae", "--data", "digits", "--config", tmp_path / "c.toml",
                        "--no-plots", "-q", "--out", tmp_path / "a"], capsys)  # fmt: skip
    assert code == 0, err
    params = json.loads((tmp_path / "a" / "config.json").read_text())["params"]
    assert params["generator_weight"] is None and params["lr_schedule"] == "none"


def test_info_and_plot(digits_run, tmp_path, capsys):
    code, out, _ = run(["info", digits_run], capsys)
    assert code == 0 and "Autoencoder" in out and "15 epochs" in out and "PCA-2" in out
    code, out, _ = run(["info", digits_run, "--json"], capsys)
    info = json.loads(out)
    assert info["class"] == "Autoencoder" and info["fitted"]["n_epochs_"] == 15
    code, out, _ = run(["plot", digits_run, "--out-dir", tmp_path / "figs"], capsys)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        ".aekit.lock", "aekit-manifest.json", "latent.png", "learning_curves.png",
        "reconstructions.png",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "nosuchset"], "unknown dataset 'nosuchset'; known names: digits"),
        (["--data", "digits", "--set", "nosuch=1"], "unknown parameter 'nosuch' (--set)"),
        (["--data", "digits", "--set", "lr"], "expected key=value"),
        (["--data", "digits", "--set", "latent_dim=0"], "latent_dim=0 is invalid"),
        (["--data", "digits", "--config", "missing.toml"], "missing.toml: config file not found"),
        (["--data", "TABLE", "--loss", "bce", "--scale", "standard"], "needs values in [0, 1]"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "table.npy", np.random.default_rng(0).normal(size=(30, 3)))
    argv = [a.replace("TABLE", str(tmp_path / "table.npy")) for a in argv]
    code, _, err = run(["train", "ae", *argv, *FAST, "--out", tmp_path / "r"], capsys)
    assert code == 2, err
    assert message in err and err.startswith("aekit: error: ")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,2\n3,x\n", "line 3"),
        ("a,b\n1,2\n3,4,5\n", "line 3"),
        ("a,b\n", "no data rows"),
        ("a,b\n1,2\nnan,4\n", "NaN"),
    ],
    ids=["non-numeric", "ragged", "empty", "nan"],
)
def test_bad_csv_exits_2_naming_the_file_and_line(content, message, tmp_path, capsys):
    (tmp_path / "bad.csv").write_text(content)
    code, _, err = run(
        ["train", "ae", "--data", tmp_path / "bad.csv", *FAST, "--out", tmp_path / "r"], capsys
    )
    assert code == 2 and message in err and "bad.csv" in err and "Traceback" not in err


def test_mixed_image_sizes_exit_2(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "imgs" / "a.png")
    Image.new("L", (9, 8)).save(tmp_path / "imgs" / "b.png")
    code, _, err = run(
        ["train", "ae", "--data", tmp_path / "imgs", *FAST, "--out", tmp_path / "r"], capsys
    )
    assert code == 2 and "a.png" in err and "b.png" in err and "--image-size 64" in err


def test_a_run_is_usable_from_python(digits_run, tmp_path):
    """Issue 12: aekit.Run.open(path).encode(raw) applies the run's scaling, as the CLI does."""
    from sklearn.datasets import load_digits

    run = aekit.Run.open(digits_run)
    raw = load_digits().data[:7]  # 0..16, the run divided by 16
    codes = run.encode(raw)
    assert np.array_equal(codes, run.model.transform(raw / 16.0))
    np.save(tmp_path / "raw.npy", raw)
    assert main(["encode", str(digits_run), "--data", str(tmp_path / "raw.npy"),
                 "--out", str(tmp_path / "c.npy")]) == 0  # fmt: skip
    assert np.array_equal(np.load(tmp_path / "c.npy"), codes)
    recon = run.reconstruct(raw)  # back in the data's own units
    assert recon.max() > 2 and np.allclose(recon / 16.0, run.reconstruct(raw, scaled=True))
    X_test, y_test = run.rows("test")
    assert X_test.shape == (360, 64) and len(y_test) == 360
    assert run.metrics() == json.loads((digits_run / "metrics.json").read_text())
    assert {"config.json", "data.json", "metrics.json"} <= set(run.files())
    with pytest.raises(aekit.DataError, match=r"no data\.json"):
        aekit.Run(tmp_path, run.model, None).encode(raw)


def test_wrong_feature_count_at_encode_exits_2(digits_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((4, 10)))
    code, _, err = run(
        ["encode", digits_run, "--data", tmp_path / "x.npy", "--out", tmp_path / "c.npy"], capsys
    )
    assert code == 2 and "x.npy: X has 10 features, but Autoencoder is expecting 64" in err


def test_existing_run_is_not_overwritten_without_flag(digits_run, capsys):
    before = (digits_run / "model.safetensors").read_bytes()
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--out", digits_run], capsys)
    assert code == 2 and "--overwrite" in err
    assert (digits_run / "model.safetensors").read_bytes() == before


def test_missing_run_and_bad_output_suffix(digits_run, tmp_path, capsys):
    code, _, err = run(["encode", tmp_path / "nope", "--out", tmp_path / "c.npy"], capsys)
    assert code == 2 and "no such model folder" in err
    code, _, err = run(["encode", digits_run, "--out", tmp_path / "c.txt"], capsys)
    assert code == 2 and ".npy or .csv" in err


def test_divergence_exits_1_and_keeps_the_best_weights(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(256, 8)) * 1e18
    np.save(tmp_path / "huge.npy", X)
    code, _, err = run(
        ["train", "ae", "--data", tmp_path / "huge.npy", "--scale", "none", "--lr", "10",
         "--epochs", "5", "--hidden", "16", "-q", "--out", tmp_path / "r"], capsys,
    )  # fmt: skip
    assert code == 1
    assert "learning rate 10" in err and "saved the best so far, the initial, untrained" in err
    assert aekit.load(tmp_path / "r").n_features_in_ == 8


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "nosuchmodel", "--data", "digits", "--out", "x"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_parse_value():
    assert parse_value("64,32") == (64, 32)
    assert parse_value("(64, 32)") == (64, 32)
    assert parse_value("[8]") == (8,)
    assert parse_value("0.001") == 0.001 and parse_value("1e-3") == 0.001
    assert parse_value("true") is True and parse_value("None") is None
    assert parse_value("cosine") == "cosine"


# --- real processes (each pays for importing torch) ---------------------------------------------


def _aekit(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True, **kw
    )


@pytest.mark.subprocess
def test_help_is_fast_because_torch_is_not_imported():
    code = "import sys, aekit.cli; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
    res = _aekit("--help")
    assert res.returncode == 0 and "train" in res.stdout and "encode" in res.stdout


@pytest.mark.subprocess
def test_real_process_train_encode_and_exit_codes(tmp_path):
    res = _aekit("train", "ae", "--data", "digits", *FAST, "--out", tmp_path / "r")
    assert res.returncode == 0, res.stderr
    assert "trained Autoencoder" in res.stdout
    res = _aekit("encode", tmp_path / "r", "--out", tmp_path / "c.npy")
    assert res.returncode == 0 and np.load(tmp_path / "c.npy").shape == (1797, 2)
    res = _aekit("train", "ae", "--data", "nosuch", "--out", tmp_path / "x")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


@pytest.mark.subprocess
def test_console_script_is_installed():
    script = Path(sys.executable).parent / "aekit"
    if not script.exists():
        pytest.skip("aekit is not installed as a package in this environment (PYTHONPATH run)")
    res = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("aekit ")


def test_ctrl_c_during_training_saves_the_run_and_exits_130(tmp_path, capsys, ctrl_c_in_epoch_3):
    code, out, err = run(
        ["train", "ae", "--data", "digits", "--epochs", "20", "--hidden", "8", "-q", "--no-plots",
         "--out", tmp_path / "r"], capsys,
    )  # fmt: skip
    assert code == 130 and "interrupted" in err and "2 epochs" in out
    model = aekit.load(tmp_path / "r")
    assert model.n_epochs_ == 2 and model.stop_reason_ == "interrupted"


def _write_csv(path, X, labels=None):
    header = ",".join("abcde"[: X.shape[1]]) + (",label" if labels is not None else "")
    lines = [header]
    for i, row in enumerate(X):
        cells = [f"{v:.6f}" for v in row] + ([labels[i]] if labels is not None else [])
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def test_new_data_without_the_runs_label_column(tmp_path, capsys):
    """A run trained on a labelled CSV encodes new rows that have no label column (CSV or .npy),
    and new CSVs that have it (the column is dropped)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    _write_csv(tmp_path / "t.csv", X, ["x" if v > 0 else "y" for v in X[:, 0]])
    code, _, _ = run(
        ["train", "ae", "--data", tmp_path / "t.csv", "--label-column", "label", *FAST,
         "--out", tmp_path / "run"], capsys,
    )  # fmt: skip
    assert code == 0
    model = aekit.load(tmp_path / "run")
    scaler = Scaler.from_dict(json.loads((tmp_path / "run" / "data.json").read_text())["scaling"])
    expected = model.transform(scaler.transform(X[:5].astype(np.float32)))
    _write_csv(tmp_path / "nolabel.csv", X[:5])
    np.save(tmp_path / "new.npy", X[:5])
    _write_csv(tmp_path / "labelled.csv", X[:5], ["x"] * 5)
    for name in ("nolabel.csv", "new.npy", "labelled.csv"):
        code, out, err = run(
            ["encode", tmp_path / "run", "--data", tmp_path / name, "--out", tmp_path / "z.npy",
             "--json", "--overwrite"], capsys,
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["shape"] == [5, 2]
        np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, atol=1e-5)


def test_overwrite_fails_before_touching_the_old_run(digits_run, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(digits_run, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    np.save(tmp_path / "t.npy", np.random.default_rng(0).normal(size=(50, 5)))
    code, _, err = run(
        ["train", "ae", "--data", tmp_path / "t.npy", *FAST, "--set", "architecture=conv",
         "--out", run_dir, "--overwrite"], capsys,
    )  # fmt: skip
    assert code == 2 and "input_shape" in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    # a successful overwrite with tabular data leaves no image figure of the old run
    code, out, _ = run(
        ["train", "ae", "--data", tmp_path / "t.npy", *FAST, "--out", run_dir, "--overwrite"],
        capsys,
    )
    assert code == 0 and "reconstructions.png" not in out
    assert not (run_dir / "reconstructions.png").exists()
    assert json.loads((run_dir / "data.json").read_text())["n_features"] == 5


def test_file_system_errors_exit_2_with_one_line(digits_run, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, _, err = run(["encode", digits_run, "--out", tmp_path / "afile" / "c.npy"], capsys)
    assert code == 2 and err.startswith("aekit: error: ") and len(err.strip().splitlines()) == 1
    assert "afile" in err


def test_npy_rows_are_memory_mapped_for_training_and_for_encode(tmp_path):
    """Issue 11: the CLI's data path memory-maps a .npy and gathers the split, scaled rows into
    memory maps (never an in-memory copy of the file); encode --split test gets the same rows."""
    from aekit.runs import Run, data_spec, load_split, run_data

    X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    spec = data_spec(str(tmp_path / "x.npy"), test_fraction=0.25, split_seed=4)
    ds = load_split(spec)
    assert isinstance(ds.X_train, np.memmap) and isinstance(ds.X_test, np.memmap)
    run = Run(tmp_path, None, run_data(spec, ds))
    for split, expected in (("train", ds.X_train), ("test", ds.X_test)):
        rows, _ = run.rows(split)
        assert isinstance(rows, np.memmap)
        np.testing.assert_array_equal(rows, expected)
    everything, _ = run.rows("all")
    np.testing.assert_allclose(everything, run.scaler.transform(X), rtol=1e-6)
    assert isinstance(everything, np.memmap)


def test_too_many_importance_samples_exit_2_before_the_run_is_written(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    argv = ["train", "vae", "--data", tmp_path / "x.npy", *FAST, "--out", tmp_path / "r"]
    code, _, err = run([*argv, "--set", "n_importance_samples=1000000000"], capsys)
    assert code == 2
    assert "n_importance_samples=1000000000" in err and "smaller n_importance_samples" in err
    assert not (tmp_path / "r").exists()


def test_a_relative_data_path_works_from_another_directory(tmp_path, monkeypatch, capsys):
    """Issue 12: the run records --data as an absolute path, so encode, evaluate and plot work
    from any directory; the run's own data given relatively is still recognised as its own."""
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    (tmp_path / "work").mkdir()
    np.save(tmp_path / "work" / "x.npy", X)
    monkeypatch.chdir(tmp_path / "work")
    code, _, _ = run(["train", "ae", "--data", "x.npy", *FAST, "--out", "run"], capsys)
    assert code == 0
    spec = json.loads((tmp_path / "work" / "run" / "data.json").read_text())["spec"]
    assert spec["source"] == str(tmp_path / "work" / "x.npy")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["encode", "work/run", "--out", "codes.npy"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "codes.npy").shape == (60, 2)
    code, out, err = run(["evaluate", "work/run", "--data", "work/x.npy", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["n_rows"] == 12  # its own test split, not all 60 rows


def test_keep_labels_keeps_labelled_rows_only_and_minus_one_is_no_class():
    """Found in review: --labeled counted the data layer's -1 (an empty label cell) as a class
    and could keep -1 rows as "labels"; a marker of the model's other than -1 left the data's
    -1 rows as a class."""
    from aekit.cli import UsageError
    from aekit.cli.train import keep_labels

    y = np.random.default_rng(0).permutation(np.r_[np.arange(60) % 3, np.full(40, -1)])
    out = keep_labels(y, 30, 0, -1)
    kept = out != -1
    assert kept.sum() == 30 and (y[kept] >= 0).all() and np.array_equal(out[kept], y[kept])
    assert np.bincount(out[kept]).tolist() == [10, 10, 10]  # stratified among labelled rows
    with pytest.raises(UsageError, match=r"\(3 classes\)"):
        keep_labels(y, 2, 0, -1)
    assert np.array_equal(keep_labels(y, 80, 0, -1), y)  # more than there are: all of them
    for marker in (-2, "?"):  # the model's own marker: the data's -1 rows take it
        out = keep_labels(y, None, 0, marker)
        assert set(out[y == -1].tolist()) == {marker} and (out[y >= 0] == y[y >= 0]).all()
    with pytest.raises(UsageError, match="40 training rows have no label"):
        keep_labels(y, None, 0, None)  # None would make -1 a class
    with pytest.raises(UsageError, match="one of the classes"):
        keep_labels(y, 30, 0, 1)
    assert keep_labels(y[y >= 0], None, 0, None) is not None
    lone = np.r_[np.zeros(10, int), np.ones(10, int), 2, np.full(10, -1)]  # class 2: one row
    out = keep_labels(lone, 5, 0, -1)
    assert (out != -1).sum() == 5 and set(out[out != -1].tolist()) == {0, 1, 2}


def test_unlabelled_csv_rows_from_train_to_evaluate_and_report(tmp_path, capsys, digits):
    """End to end, rows with an empty label cell: aekit train aae-semi learns from the
    labelled rows; its test accuracy (summary, JSON, info) and aekit evaluate's accuracies
    count the labelled test rows only, and say how many they are."""
    from sklearn.neighbors import KNeighborsClassifier

    from aekit.runs import Run

    X, labels = digits.X_train[:500] * 16, digits.y_train[:500].astype(str)
    labels[::3] = ""  # a third of the rows unlabelled
    header = ",".join(f"p{j}" for j in range(64)) + ",label"
    lines = [",".join(f"{v:g}" for v in row) + f",{y}" for row, y in zip(X, labels, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join([header, *lines]) + "\n")
    out = tmp_path / "semi"
    code, text, err = run(["train", "aae-semi", "--data", tmp_path / "d.csv", "--label-column",
                           "label", "--hidden", "32", "--epochs", "3", "--seed", "0", "-q",
                           "--json", "--out", out], capsys)  # fmt: skip
    assert code == 0, err
    result, r = json.loads(text), Run.open(out)
    (X_train, y_train), (X_test, y_test) = r.rows("train"), r.rows("test")
    keep, keep_train = y_test >= 0, y_train >= 0
    assert 0 < keep.sum() < len(y_test) and result["labeled_train_rows"] == keep_train.sum()
    test = result["test"]
    assert test["labeled_test_rows"] == keep.sum() and test["n_test"] == len(y_test)
    assert test["test_accuracy"] == r.model.score(X_test[keep], y_test[keep])
    code, text, _ = run(["info", out], capsys)
    assert f"({keep.sum()} labelled of {len(y_test)} rows)" in text
    code, text, err = run(["evaluate", out, "--json", "--trust-rows", "50"], capsys)
    assert code == 0, err
    ev = json.loads(text)
    assert (ev["labeled_train_rows"], ev["labeled_test_rows"]) == (keep_train.sum(), keep.sum())
    assert ev["model"]["accuracy"] == r.model.score(X_test[keep], y_test[keep])
    Z, Z_test = r.model.transform(X_train), r.model.transform(X_test)
    knn = KNeighborsClassifier(5).fit(Z[keep_train], y_train[keep_train])
    assert ev["model"]["knn5_accuracy"] == knn.score(Z_test[keep], y_test[keep])
    code, text, _ = run(["evaluate", out, "--trust-rows", "50"], capsys)
    assert f"accuracies on the {keep.sum()} labelled rows" in text
    code, _, err = run(["report", out, "--trust-rows", "50"], capsys)
    assert code == 0, err
    assert "labelled test rows" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--checkpoint-every", "0"),
        ("--checkpoint-seconds", "-1"),
        ("--checkpoint-seconds", "nan"),
        ("--time-limit", "0"),
        ("--time-limit", "inf"),
        ("--labeled", "0"),
    ],
)
def test_bad_run_options_exit_2_before_the_run_folder_is_written(tmp_path, capsys, flag, value):
    code, _, err = run(["train", "ae", "--data", "digits", *FAST, "--out", tmp_path / "r",
                        flag, value], capsys)  # fmt: skip
    assert code == 2 and err.startswith(f"aekit: error: {flag} {value}"), err
    assert not (tmp_path / "r").exists()


def test_a_minmax_scaled_table_trains_with_mse_and_scores_its_held_out_rows(tmp_path, capsys):
    """Review finding: with --scale minmax, "auto" would pick BCE/Bernoulli from the training
    rows, and the held-out rows (scaled with the training rows' min and max) leave [0, 1], so
    the run failed after training. The CLI chooses MSE/Gaussian for such runs, and says so."""
    X = np.random.default_rng(0).normal(size=(100, 5)).astype(np.float32)
    np.save(tmp_path / "t.npy", X)
    for family, name, value in (("vae", "likelihood", "gaussian"), ("ae", "loss", "mse")):
        loud = [a for a in FAST if a != "-q"]
        code, out, err = run(["train", family, "--data", tmp_path / "t.npy", "--scale", "minmax",
                              *loud, "--out", tmp_path / family, "--json"], capsys)  # fmt: skip
        assert code == 0, err
        assert f"--scale minmax: held-out rows can leave [0, 1], so {name}='{value}'" in err
        assert "test" in json.loads(out)  # the test metrics were written
        assert aekit.load(tmp_path / family).get_params()[name] == value


def test_detect_gives_a_supervised_aae_each_rows_label(tmp_path, capsys):
    """A supervised AAE's decoder reads the label, so its score does: `aekit detect` passes the
    data's labels to the threshold and the scores, and asks for labels where the data has none."""
    out = tmp_path / "s"
    code, _, _ = run(["train", "aae", "--data", "digits", "--set", "supervised=true", *FAST,
                      "--out", out], capsys)  # fmt: skip
    assert code == 0
    code, _, _ = run(["detect", out, "--split", "test", "--out", tmp_path / "f.csv"], capsys)
    assert code == 0
    model, ds = aekit.load(out), aekit.load_dataset("digits")
    table = np.loadtxt(tmp_path / "f.csv", delimiter=",", skiprows=1)
    expected = model.decision_function(ds.X_test, ds.y_test)
    np.testing.assert_allclose(table[:, 0], expected, rtol=1e-5, atol=1e-4)
    assert np.array_equal(table[:, 1], model.predict(ds.X_test, ds.y_test))
    np.save(tmp_path / "raw.npy", load_digits_raw()[:10])
    code, _, err = run(["detect", out, "--data", tmp_path / "raw.npy", "--out",
                        tmp_path / "g.csv"], capsys)  # fmt: skip
    assert code == 2 and "label" in err and not (tmp_path / "g.csv").exists()
    # a CSV of the 3s and 7s only: its labels are the run's classes 3 and 7, not 0 and 1
    raw, labels = load_digits_raw(), load_digits_labels()
    keep = np.isin(labels, [3, 7])
    table = np.column_stack([raw[keep][:30], labels[keep][:30]])
    np.savetxt(tmp_path / "37.csv", table, delimiter=",", fmt="%g",
               header=",".join([f"p{j}" for j in range(64)] + ["digit"]), comments="")  # fmt: skip
    code, _, _ = run(["detect", out, "--data", tmp_path / "37.csv", "--label-column", "digit",
                      "--out", tmp_path / "h.csv"], capsys)  # fmt: skip
    assert code == 0
    got = np.loadtxt(tmp_path / "h.csv", delimiter=",", skiprows=1)[:, 0]
    expected = model.decision_function(raw[keep][:30] / 16, labels[keep][:30])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    # a label the model never saw is refused, naming it
    table[0, -1] = 12
    np.savetxt(tmp_path / "12.csv", table, delimiter=",", fmt="%g",
               header=",".join([f"p{j}" for j in range(64)] + ["digit"]), comments="")  # fmt: skip
    code, _, err = run(["detect", out, "--data", tmp_path / "12.csv", "--label-column", "digit",
                        "--out", tmp_path / "i.csv"], capsys)  # fmt: skip
    assert code == 2 and "12" in err and "not among the run's classes" in err


def load_digits_raw():
    from sklearn.datasets import load_digits

    return load_digits().data


def load_digits_labels():
    from sklearn.datasets import load_digits

    return load_digits().target
