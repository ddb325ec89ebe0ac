"""Issue 14: ``kill -9`` in the middle of an epoch, then ``aekit train --resume RUN``: the same
model, bit for bit, as a run that was never stopped, with the same checkpoint schedule.

Real processes: the uninterrupted run, the killed run and the resumed run are each an ``aekit``
process. The killed run goes through a small wrapper (:data:`KILLED_AT`, this test's own code,
nothing in aekit) that makes the process SIGKILL itself as it draws batch ``batch`` of epoch
``epoch + 1``: the checkpoint of epoch ``epoch`` is on disk, and the kill falls in the middle of
the next epoch every time, not by luck of timing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.callbacks import Callback, Checkpoint, read_epoch_log
from tests.helpers import tiny_X

# The process SIGKILLs itself as it draws batch BATCH (1-based) of the epoch that follows EPOCH
# completed ones; the CLI runs as ``python -m aekit`` would run it.
KILLED_AT = """
import os, signal, sys
from aekit.training import Trainer

EPOCH, BATCH = int(sys.argv[1]), int(sys.argv[2])
train_epoch = Trainer._train_epoch


class KillAt:
    def __init__(self, batches):
        self.batches = batches

    def __getattr__(self, name):
        return getattr(self.batches, name)

    def __len__(self):
        return len(self.batches)

    def shards(self, generator, world):
        for step, batch in enumerate(self.batches.shards(generator, world), start=1):
            if step == BATCH and world.rank == world.size - 1:  # the last rank, under torchrun
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch


def killed_in_epoch(self, batches, *args, **kwargs):
    if self.epoch == EPOCH:
        batches = KillAt(batches)
    return train_epoch(self, batches, *args, **kwargs)


Trainer._train_epoch = killed_in_epoch
from aekit.cli import main

sys.argv = ["aekit", *sys.argv[3:]]
raise SystemExit(main())
"""

# 250 rows: 200 train (50 test), of which 20 validate; 180 / 32 = 6 batches (the last of 20).
OPTIONS = ["--latent", "2", "--hidden", "16", "--batch-size", "32", "--set", "random_state=0",
           "--threads", "1", "--no-plots", "-q"]  # fmt: skip
SCHEDULE = ["--checkpoint-every", "1", "--checkpoint-seconds", "0"]
# Measured: with these settings each family's validation loss is lowest at epoch 2 and training
# stops early after epoch 4, back at epoch 2; killed in epoch 4, the run resumes from the
# checkpoint of epoch 3, whose best epoch is an earlier one.
EARLY_STOPPING = ["--lr", "0.03", "--set", "early_stopping=true", "--set", "patience=2"]
WALL_TIMES = {"seconds", "samples_per_second"}


def aekit_process(*args, killed_at: tuple = ()) -> subprocess.CompletedProcess:
    """``python -m aekit ARGS``, or with ``killed_at=(epoch, batch)`` killed there."""
    start = ["-c", KILLED_AT, *map(str, killed_at)] if killed_at else ["-m", "aekit"]
    argv = [sys.executable, *start, *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def torchrun_killed(script: Path, *args, killed_at: tuple) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2`` of the killing wrapper: its last rank SIGKILLs itself,
    and torchrun stops the other one, as it does when any worker dies."""
    import os

    script.write_text(KILLED_AT)
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            str(script), *map(str, killed_at), *map(str, args)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


def assert_same_tensors(a: Path, b: Path) -> None:
    import torch

    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert torch.equal(ta[name], tb[name]), f"{a.name}: {name}"


def strip(epochs: list[dict]) -> list[dict]:
    return [{k: v for k, v in epoch.items() if k not in WALL_TIMES} for epoch in epochs]


def history(folder: Path) -> list[dict]:
    return strip(json.loads((folder / "history.json").read_text())["history"])


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("model", "settings", "epoch", "stop_reason"),
    [
        ("ae", ["--epochs", "4"], 2, "max_epochs"),
        ("vae", ["--epochs", "4"], 2, "max_epochs"),
        ("aae", ["--epochs", "4"], 2, "max_epochs"),
        ("ae", ["--epochs", "10", *EARLY_STOPPING], 3, "early_stopping"),
    ],
    ids=["ae", "vae", "aae", "ae-early-stopping"],
)
def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_model(
    model, settings, epoch, stop_reason, tmp_path
):
    """About 13 s a case on an idle two-core machine, 20 s on a busy one: three processes, each
    importing torch for about 4 s of it."""
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).normal(size=(250, 12)).astype(np.float32))
    train = ["train", model, "--data", data, *OPTIONS, *settings, *SCHEDULE]
    whole, killed = tmp_path / "A", tmp_path / "B"

    res = aekit_process(*train, "--out", whole)
    assert res.returncode == 0, res.stderr
    uninterrupted = aekit.load(whole)
    assert uninterrupted.stop_reason_ == stop_reason
    assert epoch < uninterrupted.n_epochs_  # killed before the end
    if stop_reason == "early_stopping":  # resumed from a checkpoint after the best epoch
        assert uninterrupted.best_epoch_ < epoch
    res = aekit_process(*train, "--out", killed, killed_at=(epoch, 4))
    assert res.returncode == -signal.SIGKILL, res.stderr

    # What the kill left: the complete checkpoint of epoch `epoch`, no half-written file.
    left = files(killed)
    assert not [n for n in left if n.endswith((".tmp", ".prev"))], sorted(left)
    checkpoint = aekit.load(killed)  # checksums verified
    assert checkpoint.n_epochs_ == epoch and len(checkpoint.history_) == epoch
    assert strip(read_epoch_log(killed / "epochs.jsonl")) == history(killed)[:epoch]
    # A checkpoint every few epochs (or seconds) leaves log lines after the checkpoint's epoch,
    # and a kill mid-append a cut last line: as if this process had.
    with open(killed / "epochs.jsonl", "a") as f:
        f.write(f'{{"epoch": {epoch + 1}, "loss": 1.0}}\n{{"epoch": {epoch + 2}, "lo')
    (killed / "notes.txt").write_text("the user's own file\n")
    notes = (killed / "notes.txt").stat()

    res = aekit_process("train", "--resume", killed, *SCHEDULE, "--threads", "1", "--no-plots",
                        "-q")  # fmt: skip
    assert res.returncode == 0, res.stderr
    # The epoch log was cut back to the checkpoint, then continued: the history's epochs, once.
    assert strip(read_epoch_log(killed / "epochs.jsonl")) == history(killed)

    assert_same_tensors(whole / "model.safetensors", killed / "model.safetensors")
    assert_same_tensors(whole / "optimizer.safetensors", killed / "optimizer.safetensors")
    assert history(killed) == history(whole)
    resumed = aekit.load(killed)
    assert (resumed.n_epochs_, resumed.best_epoch_, resumed.stop_reason_) == (
        uninterrupted.n_epochs_, uninterrupted.best_epoch_, stop_reason)  # fmt: skip
    # The resumed run wrote what the uninterrupted one wrote, and left the user's file alone.
    assert set(files(killed)) == set(files(whole)) | {"notes.txt"}
    assert (killed / "notes.txt").read_text() == "the user's own file\n"
    assert (killed / "notes.txt").stat().st_mtime_ns == notes.st_mtime_ns


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_two_process_run_killed_mid_epoch_resumes_to_the_uninterrupted_model(tmp_path):
    """torchrun, 2 gloo processes: one is SIGKILLed in the middle of epoch 3, torchrun stops the
    other, and ``aekit train --resume RUN --nproc-per-node 2`` gives the uninterrupted 2-process
    run's weights, optimiser state and history, bit for bit."""
    data = tmp_path / "data.npy"
    np.save(data, np.random.default_rng(0).normal(size=(250, 12)).astype(np.float32))
    train = ["train", "vae", "--data", data, *OPTIONS, "--epochs", "4", *SCHEDULE]
    whole, killed = tmp_path / "A", tmp_path / "B"
    res = aekit_process(*train, "--out", whole, "--nproc-per-node", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    res = torchrun_killed(tmp_path / "killed.py", *train, "--out", killed, killed_at=(2, 4))
    assert res.returncode != 0 and "SIGKILL" in res.stderr, res.stderr[-3000:]
    checkpoint = aekit.load(killed)
    assert checkpoint.n_epochs_ == 2 and checkpoint.world_size_ == 2
    res = aekit_process("train", "--resume", killed, *SCHEDULE, "--no-plots", "-q",
                        "--nproc-per-node", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert_same_tensors(whole / "model.safetensors", killed / "model.safetensors")
    assert_same_tensors(whole / "optimizer.safetensors", killed / "optimizer.safetensors")
    assert history(killed) == history(whole)
    # rank 0 alone wrote the epoch log: each epoch once
    assert strip(read_epoch_log(killed / "epochs.jsonl")) == history(killed)


class Die(Callback):
    """Stops the process's fit without any of aekit's clean-up, as a kill would: after the
    checkpoint of epoch ``epoch`` (place it after the :class:`Checkpoint`)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, estimator, logs):
        if trainer.epoch == self.epoch:
            raise SystemExit("killed")


def test_a_checkpoint_after_the_best_epoch_keeps_its_weights_for_early_stopping(tmp_path):
    """Found by the test above: a checkpoint held the weights of its own epoch only, so a run
    resumed after the best epoch and then stopped early went back to the checkpoint's weights,
    not to the best epoch's. The checkpoint now holds the best epoch's weights and optimiser
    state too, when the best epoch is an earlier one. (min_delta=1e6: epoch 1 is the best, and
    patience=3 stops after epoch 4.)"""
    params = dict(latent_dim=2, hidden=(8,), random_state=0, max_epochs=20, early_stopping=True,
                  patience=3, min_delta=1e6)  # fmt: skip
    X = tiny_X()
    whole = aekit.Autoencoder(**params).fit(X)
    assert (whole.n_epochs_, whole.best_epoch_, whole.stop_reason_) == (4, 1, "early_stopping")
    with pytest.raises(SystemExit):
        aekit.Autoencoder(**params).fit(X, callbacks=[Checkpoint(tmp_path / "run"), Die(2)])
    assert "best_state" in trainer_state(tmp_path / "run")
    resumed = aekit.load(tmp_path / "run").continue_fit(X)
    assert (resumed.n_epochs_, resumed.best_epoch_) == (4, 1)
    assert np.array_equal(resumed.transform(X), whole.transform(X))
    # Once restored, the best epoch's weights are the current ones, saved once.
    resumed.save(tmp_path / "run")
    assert "best_state" not in trainer_state(tmp_path / "run")


def trainer_state(folder: Path) -> dict:
    return json.loads((folder / "optimizer.json").read_text())["state"]
