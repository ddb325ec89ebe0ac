"""Issue 15, experiment tracking: the epoch log of every run folder (``epochs.jsonl``), the
TensorBoard callback (read back from its event files) and the MLflow callback (against a fake
``mlflow`` module that records its calls)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

import aekit
from aekit.callbacks import Checkpoint, EpochLog, MLflow, TensorBoard, read_epoch_log
from aekit.cli import main
from aekit.errors import FolderError
from tests.helpers import tiny_X

WALL_TIMES = ("seconds", "samples_per_second")


def ae(**params):
    return aekit.Autoencoder(latent_dim=2, hidden=(8,), max_epochs=3, random_state=0,
                             verbose=0, **params)  # fmt: skip


def test_epoch_log_holds_the_history_and_is_in_the_manifest(tmp_path):
    model = ae().fit(tiny_X(), callbacks=[EpochLog(tmp_path)])
    assert read_epoch_log(tmp_path / "epochs.jsonl") == model.history_
    lines = (tmp_path / "epochs.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert "epochs.jsonl" in aekit.io.read_manifest(tmp_path)
    assert not aekit.runs.has_model(tmp_path)  # not a save generation


def test_a_continued_fit_cuts_the_log_back_to_its_checkpoint(tmp_path):
    """A checkpoint every 2 epochs: after 3 epochs, the log holds an epoch the checkpoint does
    not; the continued fit rewrites the log from its history, then appends."""
    X = tiny_X()
    ae().fit(X, callbacks=[Checkpoint(tmp_path, every=2), EpochLog(tmp_path)])
    assert len(read_epoch_log(tmp_path / "epochs.jsonl")) == 3
    with open(tmp_path / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 4, "lo')  # a kill in the middle of an append
    assert len(read_epoch_log(tmp_path / "epochs.jsonl")) == 3  # the cut line is skipped
    checkpoint = aekit.load(tmp_path)
    assert checkpoint.n_epochs_ == 2
    resumed = checkpoint.set_params(max_epochs=4).continue_fit(X, callbacks=[EpochLog(tmp_path)])
    assert [e["epoch"] for e in read_epoch_log(tmp_path / "epochs.jsonl")] == [1, 2, 3, 4]
    assert read_epoch_log(tmp_path / "epochs.jsonl") == json.loads(json.dumps(resumed.history_))


def test_a_broken_line_inside_the_log_is_an_error(tmp_path):
    (tmp_path / "epochs.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_epoch_log(tmp_path / "epochs.jsonl")


def test_the_epoch_log_never_touches_a_file_aekit_did_not_write(tmp_path):
    (tmp_path / "epochs.jsonl").write_text("the user's own\n")
    with pytest.raises(FolderError):
        ae().fit(tiny_X(), callbacks=[EpochLog(tmp_path)])
    assert (tmp_path / "epochs.jsonl").read_text() == "the user's own\n"


def test_a_link_put_in_the_log_s_place_is_not_followed(tmp_path):
    """Replaced by a symbolic link during training: the link is not written through; the run
    goes on, with one warning."""
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("someone else's\n")
    folder = tmp_path / "run"

    class Swap(EpochLog):
        def on_epoch_end(self, trainer, estimator, logs):
            if logs["epoch"] == 2:
                self.path.unlink()
                self.path.symlink_to(theirs)
            super().on_epoch_end(trainer, estimator, logs)

    with pytest.warns(RuntimeWarning, match="cannot append"):
        model = ae().fit(tiny_X(), callbacks=[Swap(folder)])
    assert model.n_epochs_ == 3
    assert theirs.read_text() == "someone else's\n"


def test_aekit_train_writes_the_epoch_log_and_overwrite_replaces_it(tmp_path, capsys):
    data = tmp_path / "data.npy"
    np.save(data, tiny_X(120))
    run = tmp_path / "run"
    argv = ["train", "ae", "--data", str(data), "--latent", "2", "--hidden", "8", "--seed", "0",
            "--out", str(run), "--no-plots", "-q"]  # fmt: skip
    assert main([*argv, "--epochs", "3"]) == 0
    assert read_epoch_log(run / "epochs.jsonl") == aekit.load(run).history_
    assert main([*argv, "--epochs", "2", "--overwrite"]) == 0
    assert [e["epoch"] for e in read_epoch_log(run / "epochs.jsonl")] == [1, 2]
    assert not (run / "staging").exists()
    capsys.readouterr()


def test_aekit_train_refuses_a_run_folder_with_someone_elses_epoch_log(tmp_path, capsys):
    data = tmp_path / "data.npy"
    np.save(data, tiny_X(120))
    run = tmp_path / "run"
    run.mkdir()
    (run / "epochs.jsonl").write_text("mine\n")
    code = main(["train", "ae", "--data", str(data), "--epochs", "1", "--out", str(run), "-q"])
    assert code == 2
    assert (run / "epochs.jsonl").read_text() == "mine\n"
    capsys.readouterr()


# --- TensorBoard --------------------------------------------------------------------------------


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc, {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_tensorboard_scalars_read_back_equal_the_history(tmp_path):
    pytest.importorskip("tensorboard")
    board = TensorBoard(tmp_path / "tb")
    model = ae().fit(tiny_X(), callbacks=[board])
    board.close()
    acc, found = scalars(tmp_path / "tb")
    expected = {
        "loss/train": "loss",
        "loss/val": "val_loss",
        "train/lr": "lr",
        "train/best_epoch": "best_epoch",
        "time/seconds": "seconds",
    }
    for tag, key in expected.items():
        assert found[tag] == [(h["epoch"], pytest.approx(h[key], rel=1e-6)) for h in model.history_]
    numeric = {k for h in model.history_ for k, v in h.items() if k != "epoch"
               and isinstance(v, int | float)}  # fmt: skip
    assert len(found) == len(numeric)  # every number, once
    assert acc.Tags()["images"] == ["figures/learning_curves"]


def test_a_continued_fit_replaces_the_killed_run_s_later_epochs_in_tensorboard(tmp_path):
    """A checkpoint at epoch 2, events up to epoch 3: continued from the checkpoint, the new
    events of epoch 3 and 4 replace the old (SummaryWriter's purge_step)."""
    pytest.importorskip("tensorboard")
    X, tb = tiny_X(), tmp_path / "tb"
    board = TensorBoard(tb, figures=False)
    ae().fit(X, callbacks=[Checkpoint(tmp_path / "run", every=2), board])
    board.close()
    board = TensorBoard(tb, figures=False)
    resumed = aekit.load(tmp_path / "run").set_params(max_epochs=4)
    resumed.continue_fit(X, callbacks=[board])
    board.close()
    _, found = scalars(tb)
    assert found["loss/train"] == [(h["epoch"], pytest.approx(h["loss"])) for h in resumed.history_]


def test_tensorboard_groups_a_vae_s_terms(tmp_path):
    pytest.importorskip("tensorboard")
    board = TensorBoard(tmp_path / "tb", figures=False)
    model = aekit.VAE(latent_dim=2, hidden=(8,), max_epochs=2, random_state=0, verbose=0)
    model.fit(tiny_X(), callbacks=[board])
    board.close()
    acc, found = scalars(tmp_path / "tb")
    for key in model.history_[-1]:
        if key.startswith("val_"):
            assert f"{key[4:]}/val" in found and f"{key[4:]}/train" in found
    assert acc.Tags()["images"] == []


def test_aekit_train_log_dir_writes_scalars_and_the_run_figures(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    data = tmp_path / "data.npy"
    np.save(data, tiny_X(120))
    run, tb = tmp_path / "run", tmp_path / "tb"
    code = main(["train", "ae", "--data", str(data), "--latent", "2", "--hidden", "8", "--epochs",
                 "2", "--seed", "0", "--out", str(run), "--log-dir", str(tb), "-q"])  # fmt: skip
    assert code == 0
    acc, found = scalars(tb)
    history = aekit.load(run).history_
    assert found["loss/val"] == [(h["epoch"], pytest.approx(h["val_loss"])) for h in history]
    pngs = {f"figures/{p.stem}" for p in run.glob("*.png")}
    assert pngs and set(acc.Tags()["images"]) == pngs
    capsys.readouterr()


def test_a_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match=r"aekit\[tensorboard\]"):
        ae().fit(tiny_X(), callbacks=[TensorBoard(tmp_path / "tb")])


def test_aekit_train_log_dir_without_tensorboard_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run = tmp_path / "run"
    code = main(["train", "ae", "--data", "digits", "--out", str(run), "--log-dir",
                 str(tmp_path / "tb")])  # fmt: skip
    assert code == 2
    assert "aekit[tensorboard]" in capsys.readouterr().err
    assert not run.exists()  # before any work


# --- MLflow (a fake module records the calls of mlflow's documented API) -------------------------


@pytest.fixture
def fake_mlflow(monkeypatch):
    calls = []
    active = []
    mlflow = types.ModuleType("mlflow")

    def record(name, result=None):
        def fn(*args, **kwargs):
            calls.append((name, args, kwargs))
            return result() if callable(result) else result

        return fn

    def start_run(**kwargs):
        calls.append(("start_run", (), kwargs))
        active.append(object())
        return active[-1]

    def end_run(**kwargs):
        calls.append(("end_run", (), kwargs))
        active.pop()

    mlflow.start_run, mlflow.end_run = start_run, end_run
    mlflow.active_run = lambda: active[-1] if active else None
    for name in ("set_tracking_uri", "set_experiment", "log_params", "log_metrics", "set_tag",
                 "log_artifacts"):  # fmt: skip
        setattr(mlflow, name, record(name))
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    return calls


def test_mlflow_logs_params_once_metrics_per_epoch_and_the_model_folder(tmp_path, fake_mlflow):
    folder = tmp_path / "model"
    model = ae()
    model.fit(tiny_X(), callbacks=[Checkpoint(folder),
                                   MLflow(experiment="digits", run_name="ae", tracking_uri="file:x",
                                          artifact_folder=folder)])  # fmt: skip
    names = [c[0] for c in fake_mlflow]
    assert names[:4] == ["set_tracking_uri", "set_experiment", "start_run", "log_params"]
    assert names[4:7] == ["log_metrics"] * 3
    assert names[7:] == ["set_tag", "log_artifacts", "end_run"]
    assert fake_mlflow[2][2] == {"run_name": "ae"}
    params = fake_mlflow[3][1][0]
    assert params["model"] == "Autoencoder" and params["latent_dim"] == 2
    for (_, args, kwargs), h in zip(fake_mlflow[4:7], model.history_, strict=True):
        assert kwargs == {"step": h["epoch"]}
        assert args[0] == {k: v for k, v in h.items() if k != "epoch"}
    assert fake_mlflow[7][1] == ("stop_reason", "max_epochs")
    assert fake_mlflow[8][1] == (str(folder),)


def test_mlflow_logs_into_an_active_run_without_ending_it(fake_mlflow):
    import mlflow

    mlflow.start_run()
    ae().fit(tiny_X(), callbacks=[MLflow(log_params=False)])
    names = [c[0] for c in fake_mlflow]
    assert names.count("start_run") == 1 and "end_run" not in names and "log_params" not in names
    assert mlflow.active_run() is not None


def test_a_missing_mlflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"aekit\[mlflow\]"):
        ae().fit(tiny_X(), callbacks=[MLflow()])
