"""Shared by the tutorials: the command line (``--smoke`` for the test suite's quick run) and the
bundled digits (8x8 images in [0, 1], 1437 training and 360 test rows)."""

from __future__ import annotations

import argparse

import torch

from aekit.datasets import load_dataset


def options(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="a quick run (fewer epochs)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--figures", metavar="DIR", help="also draw the figures into DIR")
    args, _ = parser.parse_known_args()
    torch.set_num_threads(args.threads)
    return args


def digits():
    """The digits, split 80/20 (seeded), scaled to [0, 1]."""
    return load_dataset("digits")


def save(fig, args: argparse.Namespace, name: str) -> None:
    """Write ``fig`` as DIR/name with ``--figures DIR`` (nothing without it)."""
    if args.figures:
        from pathlib import Path

        from aekit.plotting import save_figure

        path = save_figure(fig, Path(args.figures) / name)
        print(f"drew {path}")
