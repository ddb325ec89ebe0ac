"""Export a fitted model's networks to ONNX: ``encoder.onnx`` and ``decoder.onnx``.

The estimator says what its two graphs compute (:meth:`BaseAutoencoder.export` hands this
module plain ``torch.nn.Module``s); this module traces them, checks the files in onnxruntime,
and writes them by aekit's file rules (a new or empty folder, or one aekit wrote; each file
written atomically).

Design choices:

- **The TorchScript exporter** (``torch.onnx.export(..., dynamo=False)``): it needs neither
  ``onnxscript`` nor ``torch.export``'s restrictions on user code, and it exports every
  built-in network (MLP, conv, GRU). Torch warns that it is deprecated; the warnings are
  silenced here, and the check below is what guards the files.
- **Checked before written.** Tracing turns Python values into constants: a user network that
  reads ``len(x)`` or ``x.shape[0]`` as a Python int exports with its batch size frozen. Every
  graph is therefore run in onnxruntime on batch sizes other than the example's and compared
  with PyTorch; a graph that fails or differs is refused with an :class:`ExportError` that
  says why, and nothing is written.
- **Optional packages.** ``onnx`` and ``onnxruntime`` are the ``aekit[onnx]`` extra, imported
  only here, only when exporting.
"""

from __future__ import annotations

import io as _io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import io
from .errors import ExportError

__all__ = ["ExportError", "Graph", "write"]

FORMATS = ("onnx",)
OPSET = 17
ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
EXAMPLE_BATCH = 2  # the traced batch; the check runs other sizes
CHECK_BATCHES = (1, 5)
TOLERANCE = 1e-5  # float32: onnxruntime's kernels sum in another order than torch's


@dataclass
class Graph:
    """One graph to export: ``module`` maps float32 inputs ``(batch, width)`` to one output.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode, on the CPU.
    inputs : dict of str to int
        Each input's name and width (columns), in the order ``module`` takes them.
    output : str
        The output's name.
    one_hot : tuple of str
        Inputs that hold one-hot rows (the check feeds them one-hot rows, not noise).
    """

    module: torch.nn.Module
    inputs: dict[str, int]
    output: str
    one_hot: tuple[str, ...] = ()


def require_onnx():
    """Import ``onnx`` and ``onnxruntime``, or raise an ImportError naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            f"exporting to ONNX needs the packages onnx and onnxruntime ({e}); install them with "
            "`pip install 'aekit[onnx]'`"
        ) from e
    return onnx, onnxruntime


def _examples(graph: Graph, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, width in graph.inputs.items():
        if name in graph.one_hot:
            out[name] = np.eye(width, dtype=np.float32)[rng.integers(width, size=n)]
        else:
            out[name] = rng.uniform(0, 1, size=(n, width)).astype(np.float32)
    return out


def _to_bytes(graph: Graph, what: str) -> bytes:
    """The graph traced into ONNX bytes, with a dynamic batch axis on every input and output."""
    example = tuple(torch.from_numpy(a) for a in _examples(graph, EXAMPLE_BATCH, 0).values())
    names = list(graph.inputs)
    axes = {name: {0: "batch"} for name in [*names, graph.output]}
    buffer = _io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter's deprecation notes, and tracing's notes on Python values
            # (the check below catches what they warn of)
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph.module, example, buffer, dynamo=False, input_names=names,
                output_names=[graph.output], dynamic_axes=axes, opset_version=OPSET,
            )  # fmt: skip
    except Exception as e:
        raise ExportError(
            f"the {what} cannot be exported to ONNX: {type(e).__name__}: {e}. A network written "
            "in Python must be traceable by torch.jit.trace, with operations ONNX opset "
            f"{OPSET} has"
        ) from e
    return buffer.getvalue()


def check(graph: Graph, data: bytes, what: str) -> None:
    """Run the ONNX graph in onnxruntime on batch sizes other than the traced one and compare
    with PyTorch (:data:`TOLERANCE`, relative to the output's scale); raise :class:`ExportError`
    on a failure or a difference."""
    onnx, ort = require_onnx()
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 4  # a failure is raised below, not also logged
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"the {what}'s ONNX graph is not valid: {e}") from e
    for i, n in enumerate(CHECK_BATCHES):
        feed = _examples(graph, n, 1 + i)
        try:
            (got,) = session.run([graph.output], feed)
        except Exception as e:
            raise ExportError(
                f"the {what}'s ONNX graph fails on a batch of {n} rows (it was traced on "
                f"{EXAMPLE_BATCH}): {e}. The network probably reads the batch size as a Python "
                "number (len(x), x.shape[0], x.size(0) passed to reshape or view): tracing "
                "freezes it; use x.reshape(-1, ...) or torch.flatten instead"
            ) from e
        with torch.no_grad():
            want = graph.module(*(torch.from_numpy(a) for a in feed.values())).numpy()
        if got.shape != want.shape or not np.allclose(
            got, want, rtol=TOLERANCE, atol=TOLERANCE * max(1.0, float(np.abs(want).max()))
        ):
            diff = (
                f"shape {got.shape} instead of {want.shape}"
                if got.shape != want.shape
                else f"largest difference {float(np.abs(got - want).max()):.3g}"
            )
            raise ExportError(
                f"the {what}'s ONNX graph differs from PyTorch on a batch of {n} rows ({diff}): "
                "the network's Python code takes a path tracing cannot record (a branch or a "
                "size read from the data); it cannot be exported as is"
            )


def write(folder: str | os.PathLike, graphs: dict[str, Graph], format: str = "onnx") -> dict:
    """Export ``graphs`` (file name to :class:`Graph`) into ``folder``; returns name to path.

    Every graph is traced and checked first; then the folder is claimed (new, empty or
    aekit's, :func:`aekit.io.claim`) and each file written atomically. An exported file the
    new export does not hold (a ``decoder.onnx`` of an earlier model with a decoder) is
    removed, so the folder never pairs files of two models."""
    if format not in FORMATS:
        raise ValueError(f"format={format!r}: aekit exports to {', '.join(FORMATS)}")
    require_onnx()
    folder = Path(folder)
    io.check_claimable(folder, list(graphs))  # fail before the work
    files = {}
    for name, graph in graphs.items():
        what = name.removesuffix(".onnx")
        graph.module.eval()
        files[name] = _to_bytes(graph, what)
        check(graph, files[name], what)
    with io.folder_lock(io.claim(folder, list(files))):
        stale = {ENCODER_FILE, DECODER_FILE} - set(files)
        if stale and io.read_manifest(folder):
            io.remove_owned(folder, stale)
        return {name: io.atomic_write_bytes(folder / name, data) for name, data in files.items()}


class Affine(torch.nn.Module):
    """``(x - offset) / scale`` (``inverse``: ``x * scale + offset``) in float32, as
    :class:`aekit.datasets.Scaler` computes it; baked into a run's exported graphs."""

    def __init__(self, offset, scale, inverse: bool = False):
        super().__init__()
        self.register_buffer("offset", torch.as_tensor(np.asarray(offset, dtype=np.float32)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float32)))
        self.inverse = inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverse:
            return x * self.scale + self.offset
        return (x - self.offset) / self.scale


class Composed(torch.nn.Module):
    """``post(fn(*pre(inputs)))``: a model's encode or decode path, with the scaling around it.
    ``fn`` is called with the registered ``model`` and the inputs."""

    def __init__(self, model: torch.nn.Module, fn, pre=None, post=None):
        super().__init__()
        self.model, self.fn = model, fn
        self.pre = pre if pre is not None else torch.nn.Identity()
        self.post = post if post is not None else torch.nn.Identity()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.post(self.fn(self.model, self.pre(inputs[0]), *inputs[1:]))
