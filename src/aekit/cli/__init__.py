"""The ``aekit`` command: train, encode, reconstruct, denoise, detect, generate, evaluate,
report, compare, info, plot.

Results go to stdout (``--json`` for machine-readable output), progress and notes to stderr.
Exit codes: 0 ok, 1 a failure while running (the loss diverged), 2 bad input or usage (one line,
no traceback; set ``AEKIT_DEBUG=1`` for the traceback), 130 after Ctrl-C and 143 after SIGTERM.
torch is imported only by the commands that need it, so ``aekit --help`` is fast.

One module per group of commands: :mod:`.train` (train, ``--resume``), :mod:`.apply` (encode,
reconstruct, denoise, detect, generate, plot), :mod:`.inspect` (info, evaluate, report, compare);
:mod:`.common` holds what they share. The work itself lives in the library: a run folder is
:class:`aekit.runs.Run`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from .._version import __version__
from ..errors import AekitError, DataError, TrainingDivergedError
from . import apply, inspect, train
from .common import SIGNALS, UsageError, interrupted_code, on_sigterm, parse_value, say

__all__ = ["UsageError", "build_parser", "main", "parse_value"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aekit",
        description="Autoencoders from the shell: train, encode, reconstruct, inspect and plot.",
    )
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (train, apply, inspect):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure while running, 2 bad input,
    130 after Ctrl-C and 143 after SIGTERM, each of which stops training as Ctrl-C does: the run
    is saved first)."""
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc-per-node` re-runs it
    SIGNALS.clear()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        code = _run_command(args)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
        return code
    except BrokenPipeError:
        # The reader of stdout is gone (`aekit info RUN | head -1`): not an error to report.
        # Later writes (the interpreter's own flush at exit) go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _threads(threads: int | None):
    """``--threads N``: torch's CPU threads for the command, training included (a positive
    number; without it, torch's default, and aekit's choice for training:
    :func:`aekit.runtime.default_training_threads`). Put back when the command ends."""
    if threads is None:
        return contextlib.nullcontext()
    if threads < 1:
        raise UsageError(f"--threads {threads}: give a number of CPU threads >= 1")
    from ..runtime import using_threads

    return using_threads(threads)


def _run_command(args: argparse.Namespace) -> int:
    try:
        with _threads(getattr(args, "threads", None)):
            return int(args.func(args))
    except TrainingDivergedError as e:
        say(f"aekit: error: {e}")
        return 1
    except BrokenPipeError:
        raise  # main's: the reader of stdout is gone
    except (AekitError, DataError, OSError) as e:
        if os.environ.get("AEKIT_DEBUG"):
            raise
        if isinstance(e, OSError) and e.filename is not None:  # one line: what, and which file
            e = f"{e.strerror or e}: {e.filename}"
        say(f"aekit: error: {e}")
        return 2
    except KeyboardInterrupt:
        say("aekit: interrupted")
        return interrupted_code()
