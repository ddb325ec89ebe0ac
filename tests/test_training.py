"""The shared training loop, on its own: phases, batches, callbacks, progress, its saved state."""

from __future__ import annotations

import io as _io
import sys

import numpy as np
import pytest
import torch
from torch import nn

from aekit.nn import reset_parameters
from aekit.training import ArrayBatches, Phase, Trainer, TrainerConfig


class TwoParams(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))

    def pull_a(self, x, generator):
        return {"loss": ((self.a - x.mean()) ** 2).sum(), "a": self.a.detach().sum()}

    def pull_b(self, x, generator):
        return {"loss": ((self.b + 2) ** 2).sum()}


def test_each_phase_updates_only_its_parameters_with_its_own_optimizer():
    """Two phases per batch, as the adversarial autoencoder will have: each phase's optimiser
    moves only its parameters, both objectives reach their optimum, both losses are logged."""
    m = TwoParams()
    phases = [
        Phase("first", m.pull_a, [m.a], loss_key="loss"),
        Phase("second", m.pull_b, [m.b], lr=0.1, loss_key="b_loss"),
    ]
    trainer = Trainer(
        m, phases, TrainerConfig(lr=0.05, batch_size=10), device=torch.device("cpu"), seed=0
    )
    X = np.full((50, 1), 3.0, dtype=np.float32)
    history: list = []
    trainer.run(X, epochs=60, history=history)
    assert m.a.item() == pytest.approx(3.0, abs=0.05)
    assert m.b.item() == pytest.approx(-2.0, abs=0.05)
    assert {"loss", "b_loss", "a"} <= set(history[-1])
    assert trainer.optimizers["first"].param_groups[0]["lr"] == 0.05
    assert trainer.optimizers["second"].param_groups[0]["lr"] == 0.1


def test_batches_cover_every_row_once_per_epoch_in_a_seeded_order():
    X = np.arange(23, dtype=np.float32).reshape(23, 1)
    batches = ArrayBatches(X, batch_size=5, device=torch.device("cpu"))
    assert len(batches) == 5
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    e1 = torch.cat(list(batches.epoch(g1)))[:, 0].tolist()
    e2 = torch.cat(list(batches.epoch(g2)))[:, 0].tolist()
    assert sorted(e1) == list(range(23)) and e1 == e2 and e1 != list(range(23))
    assert torch.cat(list(batches.epoch(None)))[:, 0].tolist() == list(range(23))


def test_batches_from_a_read_only_memory_map(tmp_path):
    """Memory-mapped arrays are batched without loading them whole, and read-only maps work."""
    X = np.random.default_rng(0).random((40, 3), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    batches = ArrayBatches(mm, batch_size=16, device=torch.device("cpu"))
    out = torch.cat(list(batches.epoch(None))).numpy()
    assert np.array_equal(out, X)


def test_callbacks_hooks_and_stop_training():
    calls = []

    class Recorder:
        def on_train_begin(self, trainer):
            calls.append("begin")

        def on_epoch_end(self, trainer, logs):
            calls.append(logs["epoch"])
            if logs["epoch"] == 2:
                trainer.stop_training = True

        def on_train_end(self, trainer, reason):
            calls.append(reason)

    m = TwoParams()
    trainer = Trainer(
        m, [Phase("p", m.pull_b, [m.b])], TrainerConfig(), device=torch.device("cpu"), seed=0
    )
    reason = trainer.run(
        np.zeros((4, 1), np.float32), epochs=10, history=[], callbacks=[Recorder()]
    )
    assert reason == "callback" and calls == ["begin", 1, 2, "callback"]


def test_progress_is_one_line_per_epoch_when_stderr_is_not_a_terminal(monkeypatch):
    buf = _io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    m = TwoParams()
    trainer = Trainer(
        m,
        [Phase("p", m.pull_b, [m.b])],
        TrainerConfig(verbose=1),
        device=torch.device("cpu"),
        seed=0,
    )
    trainer.run(np.zeros((4, 1), np.float32), epochs=3, history=[])
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3") and "samples/s" in lines[0]
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()


def test_silent_by_default(capsys):
    m = TwoParams()
    Trainer(
        m, [Phase("p", m.pull_b, [m.b])], TrainerConfig(), device=torch.device("cpu"), seed=0
    ).run(np.zeros((4, 1), np.float32), epochs=2, history=[])
    assert capsys.readouterr().err == ""


def test_state_dict_round_trip_continues_exactly():
    """Saving the trainer's state (optimisers, schedules, generators) and loading it into a fresh
    trainer continues with identical updates."""
    from aekit.io import join_tensors, split_tensors

    def make():
        net = nn.Linear(3, 3)
        reset_parameters(net, torch.Generator().manual_seed(0))
        obj = lambda x, g: {"loss": (net(x + torch.randn(x.shape, generator=g)) ** 2).sum(1).mean()}  # noqa: E731
        cfg = TrainerConfig(lr=0.01, lr_schedule="cosine", max_epochs=6, batch_size=4)
        return net, Trainer(
            net, [Phase("p", obj, list(net.parameters()))], cfg, device=torch.device("cpu"), seed=5
        )

    X = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    net1, t1 = make()
    t1.run(X, epochs=3, history=[])
    meta, tensors = split_tensors(t1.state_dict())
    net2, t2 = make()
    net2.load_state_dict(net1.state_dict())
    t2.load_state_dict(join_tensors(meta, tensors))
    t1.run(X, epochs=2, history=[])
    t2.run(X, epochs=2, history=[])
    assert torch.equal(net1.weight, net2.weight) and t2.epoch == 5


def test_progress_bar_on_a_terminal_overwrites_itself(monkeypatch):
    class Terminal(_io.StringIO):
        def isatty(self):
            return True

    buf = Terminal()
    monkeypatch.setattr(sys, "stderr", buf)
    m = TwoParams()
    trainer = Trainer(
        m,
        [Phase("p", m.pull_b, [m.b])],
        TrainerConfig(verbose=1, batch_size=2),
        device=torch.device("cpu"),
        seed=0,
    )
    trainer.run(np.zeros((4, 1), np.float32), epochs=2, history=[])
    text = buf.getvalue()
    assert "\repoch 1/2 [" in text and "samples/s" in text
    assert text.count("\n") == 2  # one finished line per epoch, the bar itself overwritten


def test_time_limit_stops_after_the_budget():
    from aekit import Autoencoder, ParameterError, TimeLimit

    X = np.zeros((20, 3), np.float32)
    model = Autoencoder(hidden=(), max_epochs=1000, random_state=0)
    model.fit(X, callbacks=[TimeLimit(1e-9)])
    assert model.stop_reason_ == "callback" and len(model.history_) == 1
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ParameterError, match="seconds"):
            TimeLimit(bad)
