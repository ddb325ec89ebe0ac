"""Data-parallel training (:mod:`aekit.distributed`): N processes train exactly like one with the
same global batch, rank 0 alone writes, and a run resumes under another number of processes.

The multi-process tests start real ``torchrun`` groups of 2 CPU processes (gloo), through
``tests/distworker.py`` or ``aekit train --nproc-per-node 2``: about 5-10 s each, for the
imports of torch in every process.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit import distributed as dist
from aekit.errors import DataError

HERE = Path(__file__).parent
WORKER = HERE / "distworker.py"


def _env() -> dict[str, str]:
    src = str(HERE.parent / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([src, str(HERE.parent), env.get("PYTHONPATH", "")])
    return env


def torchrun(*args: str, n: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={n}", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=timeout)


def aekit_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "aekit", *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=timeout)


# -- the pieces, in one process -----------------------------------------------------------------


def test_parts_cover_every_row_of_a_batch_once():
    for total in (2, 3, 7, 64, 65):
        for size in (1, 2, 3):
            if total < size:
                continue
            parts = [dist.part(total, dist.World(r, size)) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == total
            assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_a_batch_smaller_than_the_world_is_refused_with_the_fix():
    with pytest.raises(DataError, match=r"batch of 1 row.*2 processes.*batch_size"):
        dist.part(1, dist.World(1, 2))


@pytest.mark.parametrize("draw", ["randn", "rand", "randint", "bernoulli", "rows_dim"])
def test_each_rank_draws_its_rows_of_the_global_batch_draw(draw):
    """Inside ``shard``, rank r's draw is rows part(r) of the one-process draw, from the same
    generator state: the noise does not depend on the number of processes."""
    total, size = 7, 3
    p = torch.rand(total, 5, generator=torch.Generator().manual_seed(3))

    def sample(rows, lo=0, hi=total):
        g = torch.Generator().manual_seed(0)
        if draw == "randn":
            return dist.randn((rows, 5), generator=g)
        if draw == "rand":
            return dist.rand((rows, 5), generator=g)
        if draw == "randint":
            return dist.randint(10, (rows,), generator=g)
        if draw == "bernoulli":
            return dist.bernoulli(p[lo:hi], generator=g)
        return dist.randn((4, rows, 2), generator=g, rows_dim=1)

    whole = sample(total)
    pieces = []
    for r in range(size):
        w = dist.World(r, size)
        lo, hi = dist.part(total, w)
        with dist.shard(total, w):
            pieces.append(sample(hi - lo, lo, hi))
            assert dist.share() == pytest.approx((hi - lo) * size / total)
    joined = torch.cat(pieces, dim=1 if draw == "rows_dim" else 0)
    assert torch.equal(joined, whole)


def test_a_draw_that_is_not_one_per_row_is_an_error_inside_a_shard():
    with dist.shard(8, dist.World(0, 2)), pytest.raises(RuntimeError, match="one entry per row"):
        dist.randn((3, 2), generator=torch.Generator())


def test_alone_the_draws_are_torchs_own():
    a = dist.randn((4, 3), generator=torch.Generator().manual_seed(1))
    b = torch.randn((4, 3), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and dist.share() == 1.0 and dist.world() == dist.ALONE


# -- real process groups ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_and_one(tmp_path_factory):
    """Every model of distworker.MODELS fitted in 2 gloo processes, and in this process."""
    from tests import distworker

    out = tmp_path_factory.mktemp("dist") / "fit"
    done = torchrun(str(WORKER), "fit", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [dict(np.load(f"{out}.{r}.npz")) for r in range(2)]
    return ranks, distworker.fit_all()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "model", ["ae", "vae", "aae", "dae", "sparse", "contractive", "stacked", "semi", "batchnorm"]
)
def test_two_processes_train_as_one_with_the_same_global_batch(two_and_one, model):
    """2 processes (32 + 32 rows of each batch of 64, and uneven last batches: 1617 training
    rows) give the weights and losses of 1 process within 1e-5: the noise (VAE samples, masks,
    prior draws) is drawn for the global batch, free bits' and the sparsity target's batch
    means are all-reduced, batch normalisation uses the global batch's statistics, and the
    gradients are averaged with each rank weighted by its rows.
    Measured: at most 2e-7 apart in the weights, 1.2e-7 relative in the losses (the order of
    float32 sums), so 1e-5 leaves a 50x margin."""
    (rank0, rank1), one = two_and_one
    keys = [k for k in one if k.startswith(model + "/") and not k.endswith("world_size")]
    if model == "batchnorm":
        # A convolution's bias just before batch normalisation has no effect in training and a
        # zero gradient; Adam scales its float noise (1e-7, not the same in 1 and 2 processes)
        # to steps of the learning rate, and in eval mode the running mean lags behind it, so
        # the validation losses and codes differ by about 0.2 %. The gradients agree within
        # 5e-6 (measured), and so do the training losses, which per-process statistics would
        # move by far more than 1e-5: those are compared.
        np.testing.assert_allclose(rank0[f"{model}/history"][:, 0],
                                   one[f"{model}/history"][:, 0], rtol=1e-5)  # fmt: skip
        keys = []
    for k in keys:
        assert np.array_equal(rank0[k], rank1[k]), f"{k}: the ranks drifted apart"
        np.testing.assert_allclose(rank0[k], one[k], rtol=1e-5, atol=1e-5, err_msg=k,
                                   equal_nan=True)  # fmt: skip
    assert int(rank0[f"{model}/world_size"]) == 2 and int(one[f"{model}/world_size"]) == 1


@pytest.mark.slow
@pytest.mark.subprocess
def test_rank_0_alone_writes(tmp_path):
    done = torchrun(str(WORKER), "save", str(tmp_path / "model"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model-rank0"]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["fitted"]["world_size"] == 2


@pytest.mark.slow
@pytest.mark.subprocess
def test_ranks_given_different_data_stop_with_an_error_on_every_rank():
    done = torchrun(str(WORKER), "mismatch")
    assert done.returncode == 0, done.stderr[-3000:]
    for r in (0, 1):
        assert f"rank {r}: DataError: the 2 training processes were given different" in done.stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_different_validation_rows_are_refused_on_every_rank():
    done = torchrun(str(WORKER), "valmismatch")
    assert done.returncode == 0, done.stderr[-3000:]
    for r in (0, 1):
        assert f"rank {r}: DataError: the 2 training processes were given different numbers " \
            "of validation rows" in done.stdout  # fmt: skip


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_epoch():
    """Ctrl-C (or SIGTERM) reaching one rank only: the ranks agree on it, so none is left
    waiting in a collective, and every rank (rank 0, which saves, included) stops after epoch
    2 with the best weights."""
    done = torchrun(str(WORKER), "interrupt")
    assert done.returncode == 0, done.stderr[-3000:]
    for r in (0, 1):
        assert f"rank {r}: interrupted after 2 epochs" in done.stdout, done.stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_validation_rows_that_leave_one_row_over_are_cut_into_chunks_two_ranks_share():
    """1025 validation rows: one process validates them in chunks of 1024 and 1; two cut them
    into 513 and 512, since a chunk of 1 row cannot be shared."""
    done = torchrun(str(WORKER), "val1025")
    assert done.returncode == 0, done.stderr[-3000:]
    losses = {line.split()[-1] for line in done.stdout.splitlines() if "val_loss" in line}
    assert len(losses) == 1  # both ranks report the same


@pytest.mark.slow
@pytest.mark.subprocess
def test_cli_nproc_per_node_trains_one_run_and_resumes_under_another_world_size(tmp_path):
    """``aekit train --nproc-per-node 2`` writes one run folder (rank 0), recording
    world_size 2; ``--resume`` continues it in 1 process, and the result matches 4 epochs in 1
    process within 1e-5. A constant rate: a schedule over ``max_epochs`` (the VAE's default
    cooldown) cannot make 2 epochs planned for 2, then 2 more, equal 4 planned for 4."""
    import aekit

    data = tmp_path / "digits.npy"
    np.save(data, (__import__("sklearn.datasets").datasets.load_digits().data / 16).astype("f4"))
    common = ["vae", "--data", str(data), "--latent", "2", "--hidden", "32", "--batch-size",
              "64", "--seed", "0", "--no-plots", "-q", "--set", "lr_schedule=none"]  # fmt: skip
    two = aekit_cli("train", *common, "--epochs", "2", "--out", str(tmp_path / "two"),
                    "--nproc-per-node", "2")  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert "wrote" in two.stdout and two.stdout.count("wrote") == 1  # one rank prints
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["fitted"]["world_size"] == 2
    resumed = aekit_cli("train", "--resume", "--epochs", "4", "--out", str(tmp_path / "two"),
                        "-q", "--threads", "1")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    one = aekit_cli("train", *common, "--epochs", "4", "--out", str(tmp_path / "one"),
                    "--threads", "1")  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = aekit.load(tmp_path / "two"), aekit.load(tmp_path / "one")
    assert a.n_epochs_ == b.n_epochs_ == 4 and a.world_size_ == b.world_size_ == 1
    for (k, v), w in zip(a.module_.state_dict().items(), b.module_.state_dict().values(),
                         strict=True):  # fmt: skip
        torch.testing.assert_close(v, w, rtol=1e-5, atol=1e-5, msg=k)
