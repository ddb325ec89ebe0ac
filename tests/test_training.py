"""The shared training loop, on its own: phases, batches, callbacks, progress, its saved state."""

from __future__ import annotations

import copy
import io as _io
import sys

import numpy as np
import pytest
import torch
from torch import nn

from aekit.callbacks import Callback
from aekit.errors import ParameterError, TrainingDivergedError
from aekit.nn import reset_parameters
from aekit.training import ArrayBatches, Phase, Trainer, TrainerConfig, make_optimizer


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


def test_a_phase_minimises_the_sum_it_names_and_logs_its_terms():
    """``Phase(minimise="total")``: the optimiser follows ``total`` (here ``(a - 3)^2 + 3 (a +
    1)^2``, minimum at a = 0), while the history keeps ``loss`` (the first term, minimum at
    a = 3) and the other term, and not the sum."""
    m = TwoParams()

    def objective(x, generator):
        loss, other = ((m.a - x.mean()) ** 2).sum(), ((m.a + 1) ** 2).sum()
        return {"loss": loss, "other": other, "total": loss + 3.0 * other}

    trainer = Trainer(m, [Phase("only", objective, [m.a], minimise="total")],
                      TrainerConfig(lr=0.05, batch_size=10), device=torch.device("cpu"),
                      seed=0)  # fmt: skip
    history: list = []
    trainer.run(np.full((50, 1), 3.0, dtype=np.float32), epochs=60, history=history)
    assert m.a.item() == pytest.approx(0.0, abs=0.05)
    assert history[-1]["loss"] == pytest.approx(9.0, abs=0.5)
    assert history[-1]["other"] == pytest.approx(1.0, abs=0.2)
    assert "total" not in history[-1]

    def diverging(x, generator):  # the term the sum adds becomes infinite
        loss = ((m.a - x.mean()) ** 2).sum()
        return {"loss": loss, "total": loss + torch.tensor(float("inf"))}

    trainer = Trainer(m, [Phase("only", diverging, [m.a], minimise="total")],
                      TrainerConfig(batch_size=10), device=torch.device("cpu"), seed=0)  # fmt: skip
    with pytest.raises(TrainingDivergedError, match="the only loss became inf"):
        trainer.run(np.full((50, 1), 3.0, dtype=np.float32), epochs=1, history=[])


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


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizers_are_fused_where_torch_supports_it(name):
    """Fused kernels for floating-point parameters on the CPU (any float dtype in torch 2.13);
    the multi-tensor implementation where they are not supported (complex parameters here);
    a phase's own ``fused``/``foreach`` option wins."""
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        opt = make_optimizer(name, [nn.Parameter(torch.zeros(3, dtype=dtype))], 0.1, 0.0, 0.9)
        assert opt.defaults["fused"] is True and not opt.defaults["foreach"], dtype
    opt = make_optimizer(name, [nn.Parameter(torch.zeros(3, dtype=torch.complex64))], 0.1, 0, 0.9)
    assert opt.defaults["foreach"] is True and not opt.defaults["fused"]
    opt = make_optimizer(name, [nn.Parameter(torch.zeros(3))], 0.1, 0.0, 0.9, foreach=True)
    assert opt.defaults["foreach"] is True and not opt.defaults["fused"]
    m = TwoParams()
    trainer = Trainer(
        m, [Phase("p", m.pull_a, [m.a])], TrainerConfig(optimizer=name), device=torch.device("cpu"),
        seed=0,
    )  # fmt: skip
    assert trainer.optimizers["p"].defaults["fused"] is True


def test_a_foreach_optimizer_state_loads_into_the_fused_optimizer_and_continues_identically():
    """Checkpoints written before the optimisers were fused hold a foreach Adam's state: the same
    tensors (two moments and a float32 ``step`` per parameter), but param groups that say
    ``foreach=True``. Loaded into today's fused Adam, it stays fused, and it continues exactly as
    from the same numbers saved by a fused Adam; it also continues a foreach run to rounding."""
    from aekit.io import join_tensors, split_tensors

    def make(**options):
        net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 3))
        reset_parameters(net, torch.Generator().manual_seed(0))

        def obj(x, g):
            return {"loss": (net(x + torch.randn(x.shape, generator=g)) - x).pow(2).sum(1).mean()}

        cfg = TrainerConfig(lr=0.01, batch_size=4)
        phase = Phase("p", obj, list(net.parameters()), optimizer_options=options)
        return net, Trainer(net, [phase], cfg, device=torch.device("cpu"), seed=5)

    def saved(trainer):  # through the same split/join as optimizer.safetensors + .json
        return join_tensors(*split_tensors(trainer.state_dict()))

    def resumed(net, state, **options):
        net2, t2 = make(**options)
        net2.load_state_dict(net.state_dict())
        t2.load_state_dict(state)
        return net2, t2

    X = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    net_old, old = make(foreach=True)  # the optimiser as it was
    old.run(X, epochs=3, history=[])
    state_old = saved(old)
    assert state_old["optimizers"]["p"]["param_groups"][0]["foreach"] is True
    net_new, new = make()
    new.run(X, epochs=3, history=[])
    state_new = saved(new)
    assert new.optimizers["p"].param_groups[0]["fused"] is True

    # the same format: the same tensors, names, shapes and dtypes
    def flat(state):
        per_param = state["optimizers"]["p"]["state"].items()
        return {(i, k): (v.shape, v.dtype) for i, d in per_param for k, v in d.items()}

    assert flat(state_old) == flat(state_new)

    # the fused run's numbers, in a foreach checkpoint's clothes
    as_foreach = copy.deepcopy(state_new)
    as_foreach["optimizers"]["p"]["param_groups"] = state_old["optimizers"]["p"]["param_groups"]
    net_a, a = resumed(net_new, state_new)
    net_b, b = resumed(net_new, as_foreach)
    assert b.optimizers["p"].param_groups[0]["fused"] is True
    assert not b.optimizers["p"].param_groups[0]["foreach"]
    for t in (new, a, b):
        t.run(X, epochs=2, history=[])
    for p_new, p_a, p_b in zip(
        net_new.parameters(), net_a.parameters(), net_b.parameters(), strict=True
    ):
        assert torch.equal(p_new, p_a) and torch.equal(p_new, p_b)

    # the real old checkpoint continues the old run (fused and foreach round differently)
    net_c, c = resumed(net_old, state_old)
    assert c.optimizers["p"].param_groups[0]["fused"] is True
    old.run(X, epochs=2, history=[])
    c.run(X, epochs=2, history=[])
    for p_old, p_c in zip(net_old.parameters(), net_c.parameters(), strict=True):
        torch.testing.assert_close(p_c, p_old, rtol=1e-5, atol=1e-6)
    # and a fused state loads into a foreach optimiser (a device without fused kernels)
    _, d = resumed(net_new, state_new, foreach=True)
    assert d.optimizers["p"].param_groups[0]["foreach"] is True
    d.run(X, epochs=1, history=[])


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


@pytest.fixture
def torch_default_threads(monkeypatch):
    """No thread count chosen by the user: torch's count, 2, is what torch picked itself (2
    usable CPUs, 2 physical cores, as at aekit's import). Torch's count is put back after."""
    from aekit import runtime

    for name in ("AEKIT_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(runtime, "_chosen_threads", None)
    monkeypatch.setattr(runtime, "_threads_at_import", 2)
    monkeypatch.setattr(runtime, "_usable_cpus", lambda: 2)
    monkeypatch.setattr(runtime, "_physical_cores", lambda: 2)
    monkeypatch.setattr(runtime, "busy_cpus", lambda: 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield runtime
    torch.set_num_threads(before)


class _ThreadsSeen(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, trainer, estimator, logs):
        self.seen.append(torch.get_num_threads())


def test_who_chose_the_thread_count(torch_default_threads, monkeypatch):
    """Torch's default is nobody's choice; a different torch.set_num_threads, $AEKIT_THREADS,
    $OMP_NUM_THREADS or aekit.runtime.set_threads (the CLI's --threads) is the user's."""
    runtime = torch_default_threads
    assert runtime.user_threads() is None
    torch.set_num_threads(1)
    assert runtime.user_threads() == 1
    torch.set_num_threads(2)
    assert runtime.user_threads() is None
    with runtime.using_threads(2):  # the same count as torch's default, chosen explicitly
        assert runtime.user_threads() == 2
    assert runtime.user_threads() is None and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert runtime.user_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("AEKIT_THREADS", "3")
    assert runtime.user_threads() == 3
    monkeypatch.setenv("AEKIT_THREADS", "none")
    with pytest.raises(ParameterError, match="AEKIT_THREADS='none'"):
        runtime.user_threads()


def test_the_default_thread_rule(torch_default_threads, monkeypatch):
    """One thread for models under ONE_THREAD_MFLOP per batch; above it, torch's count, but no
    more than the CPUs other processes leave free."""
    runtime = torch_default_threads
    small = runtime.ONE_THREAD_MFLOP / 2
    big = runtime.ONE_THREAD_MFLOP * 2
    assert runtime.default_training_threads(small) == 1
    assert runtime.default_training_threads(big) == 2
    monkeypatch.setattr(runtime, "busy_cpus", lambda: 1)
    assert runtime.default_training_threads(big) == 1
    monkeypatch.setattr(runtime, "busy_cpus", lambda: 5)
    assert runtime.default_training_threads(big) == 1


def test_the_free_cores_are_counted_again_after_each_epoch(torch_default_threads, monkeypatch):
    """A model above ONE_THREAD_MFLOP trains on the free cores: two while nothing else runs, one
    from the epoch after another process takes a core (at most one count a second)."""
    from types import SimpleNamespace

    from aekit import Autoencoder

    runtime = torch_default_threads
    monkeypatch.setattr(runtime, "ONE_THREAD_MFLOP", 0.0)  # this small model counts as big
    busy = iter([0, 0, 1, 1, 1])
    monkeypatch.setattr(runtime, "busy_cpus", lambda: next(busy))
    clock = iter(range(0, 100, 2))  # two seconds between counts
    monkeypatch.setattr(runtime, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    seen = _ThreadsSeen()
    X = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    Autoencoder(latent_dim=2, hidden=(4,), max_epochs=4, random_state=0, device="cpu").fit(
        X, callbacks=[seen]
    )
    # counted before epoch 1 and after each epoch; the user's callbacks see the epoch's count
    assert seen.seen == [2, 2, 1, 1] and torch.get_num_threads() == 2


def test_busy_cpus_reads_the_load_of_this_machine():
    from aekit.runtime import busy_cpus

    assert isinstance(busy_cpus(), int) and 0 <= busy_cpus() <= 100_000


def test_fit_trains_with_the_default_rule_and_puts_torch_threads_back(torch_default_threads):
    """With torch's default count (2 here), a small model trains on one thread, and torch's count
    is 2 again after fit, after a failed fit too; a count the user chose is used as is."""
    from aekit import Autoencoder
    from aekit.errors import TrainingDivergedError

    X = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    seen = _ThreadsSeen()
    model = Autoencoder(latent_dim=2, hidden=(4,), max_epochs=2, random_state=0)
    model.fit(X, callbacks=[seen])
    assert seen.seen == [1, 1] and torch.get_num_threads() == 2

    class Diverge(Callback):
        def on_epoch_end(self, trainer, estimator, logs):
            raise TrainingDivergedError("stop", epoch=1, step=1, lr=0.1)

    with pytest.raises(TrainingDivergedError):
        model.fit(X, callbacks=[Diverge()])
    assert torch.get_num_threads() == 2

    torch.set_num_threads(3)  # the user's choice wins, and stays
    seen = _ThreadsSeen()
    model.fit(X, callbacks=[seen])
    assert seen.seen == [3, 3] and torch.get_num_threads() == 3
    torch.set_num_threads(2)
    with torch_default_threads.using_threads(2):
        seen = _ThreadsSeen()
        model.partial_fit(X, callbacks=[seen])
    assert seen.seen == [2] and torch.get_num_threads() == 2
