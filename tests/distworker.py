"""A worker for the data-parallel tests (tests/test_distributed.py), run under torchrun: it joins
the gloo process group that torchrun describes and does what its first argument names.

``fit OUT``: fits each model of :data:`MODELS` on the digits and saves, from every rank, its
weights and losses to ``OUT.<rank>.npz`` (numpy, not aekit's save: each rank's own result).
Without a process group (plain ``python``), it writes ``OUT.npz``: the one-process reference.
``save DIR``: fits the AE, then every rank calls ``save(DIR)`` and ``save(DIR-rank<r>)``.
``mismatch``: rank 1 passes fewer rows than rank 0 (an error on both); ``valmismatch``: the
same with the validation rows. ``interrupt``: rank 1 alone gets SIGINT after epoch 2 (every rank
stops there). ``val1025``: 1025 validation rows (chunks that 2 processes can share).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

import aekit

COMMON = dict(max_epochs=2, batch_size=64, random_state=0, device="cpu")
MODELS = {
    "ae": lambda: aekit.Autoencoder(latent_dim=4, hidden=(32,), **COMMON),
    "vae": lambda: aekit.VAE(latent_dim=4, hidden=(32,), free_bits=0.1, **COMMON),
    "aae": lambda: aekit.AdversarialAutoencoder(latent_dim=2, hidden=(32,), **COMMON),
    "dae": lambda: aekit.DenoisingAutoencoder(latent_dim=4, hidden=(32,), **COMMON),
    "sparse": lambda: aekit.SparseAutoencoder(latent_dim=4, hidden=(32,), penalty="kl", **COMMON),
    "contractive": lambda: aekit.ContractiveAutoencoder(
        latent_dim=4, hidden=(32,), jacobian="hutchinson", **COMMON
    ),
    "stacked": lambda: aekit.StackedAutoencoder(hidden=(32, 8), pretrain_epochs=1, **COMMON),
    "semi": lambda: aekit.SemiSupervisedAAE(latent_dim=2, hidden=(32,), **COMMON),
    "batchnorm": lambda: aekit.Autoencoder(
        latent_dim=4,
        architecture="conv",
        norm="batch",
        input_shape=(1, 8, 8),
        hidden=(8, 16),
        **COMMON,
    ),
}


def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().data / 16).astype(np.float32)  # 1797 rows: uneven last batches


def labels() -> np.ndarray:
    """The digits' labels with 100 kept (the rest -1, unlabelled): for the semi-supervised AAE."""
    from sklearn.datasets import load_digits

    y = load_digits().target.copy()
    y[np.random.default_rng(1).permutation(len(y))[100:]] = -1  # (seed 0: the split's own)
    return y


def fit_all(names=None) -> dict[str, np.ndarray]:
    X = digits()
    out = {}
    for name in names or MODELS:
        model = MODELS[name]().fit(X, labels() if name == "semi" else None)
        for key, t in model.module_.state_dict().items():
            out[f"{name}/{key}"] = t.numpy()
        keys = sorted({k for e in model.history_ for k in e if k.endswith("loss")})
        out[f"{name}/history"] = np.array(
            [[e.get(k, np.nan) for k in keys] for e in model.history_]
        )
        out[f"{name}/world_size"] = np.array(model.world_size_)
        out[f"{name}/codes"] = model.transform(X[:300])
    return out


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    what, target = argv[0], argv[1] if len(argv) > 1 else ""
    rank = 0
    if "RANK" in os.environ:
        torch.distributed.init_process_group("gloo")
        rank = torch.distributed.get_rank()
    if what == "fit":
        suffix = f".{rank}" if "RANK" in os.environ else ""
        np.savez(target + suffix + ".npz", **fit_all(argv[2:] or None))
    elif what == "save":
        model = MODELS["ae"]().fit(digits())
        model.save(target)
        model.save(f"{target}-rank{rank}")
    elif what in ("mismatch", "valmismatch"):
        X = digits()
        mine = X if rank == 0 else X[:-100]
        try:
            if what == "mismatch":
                MODELS["ae"]().fit(mine)
            else:
                MODELS["ae"]().fit(X, validation_data=mine)
        except aekit.errors.DataError as e:
            print(f"rank {rank}: DataError: {e}")
            return
        print(f"rank {rank}: no error")
    elif what == "interrupt":
        import signal

        class SigintOnRank1(aekit.Callback):
            def on_epoch_end(self, trainer, estimator, logs):
                if rank == 1 and trainer.epoch == 2:
                    os.kill(os.getpid(), signal.SIGINT)

        model = aekit.Autoencoder(latent_dim=4, hidden=(32,), max_epochs=50, batch_size=64,
                                  random_state=0, device="cpu")  # fmt: skip
        model.fit(digits(), callbacks=[SigintOnRank1()])
        print(f"rank {rank}: {model.stop_reason_} after {model.n_epochs_} epochs")
    elif what == "val1025":
        X = digits()
        model = MODELS["ae"]().fit(X, validation_data=np.concatenate([X, X])[:1025])
        print(f"rank {rank}: val_loss {model.history_[-1]['val_loss']:.6f}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    # Leave without the interpreter's finalisation. Gloo's run-loop thread drops its reference to
    # a finished collective's tensors a moment after the caller's wait returns; when the process
    # exits right after a collective (the mismatch cases: every rank raises just after the
    # all-reduce that compares the row counts) and that moment falls inside Py_FinalizeEx, the
    # thread's decref of the tensor's Python object cannot take the GIL and the process aborts
    # ("terminate called without an active exception", seen about 1 run in 15 with the CPU
    # loaded; gdb shows ProcessGroupGloo::runLoop -> ~AsyncAllreduceWork -> take_gil ->
    # pthread_exit). A torch bug (pytorch/pytorch PR 179291), not aekit's behaviour under test.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
