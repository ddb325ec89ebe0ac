"""Files on disk: atomic writes, JSON, and safetensors, with errors that say what is wrong.

Every file aekit writes goes through :func:`atomic_write_bytes`: the bytes go to a temporary file in
the same directory, are flushed to disk, and the temporary file is renamed over the target. A
reader (or a crash, or Ctrl-C) sees either the old file or the new one, never half of one.

Nothing here uses pickle: models are safetensors (tensors) plus JSON (everything else), and nested
state such as an optimiser's ``state_dict`` is split into the two by :func:`split_tensors`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file readable by its owner only; give it the permissions an
        # ordinary open() would (0o666 less the umask), so shared runs and reports stay readable
        if hasattr(os, "fchmod"):  # a file replaced keeps its mode (a user's chmod 600 stays)
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process's umask: read from /proc where it can be (setting it to read it, the only
    portable way, briefly changes it for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def json_bytes(obj: Any) -> bytes:
    """Indented JSON. NaN and infinity are written as JSON extensions (``NaN``, ``Infinity``),
    which Python's ``json`` reads back exactly."""
    return (json.dumps(obj, indent=2, default=_json_default) + "\n").encode()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_bytes(path, json_bytes(obj))


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file; on failure raise :class:`~aekit.errors.ModelFileError` naming it."""
    from .errors import ModelFileError

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: {what} not found") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the {what} ({e.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(
            f"{path}: the {what} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
            "the file is truncated or was edited by hand"
        ) from None


def tensors_bytes(tensors: dict, metadata: dict[str, str] | None = None) -> bytes:
    """A dict of tensors as safetensors bytes (copied to contiguous CPU tensors)."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return save(flat, metadata=metadata)


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None):
    """Write a dict of tensors as safetensors, atomically."""
    return atomic_write_bytes(path, tensors_bytes(tensors, metadata))


def load_tensors(path: str | os.PathLike, what: str = "weights") -> tuple[dict, dict[str, str]]:
    """Read a safetensors file onto the CPU; returns ``(tensors, metadata)``.

    Raises :class:`~aekit.errors.ModelFileError` for a missing, truncated or foreign file.
    """
    from safetensors import safe_open

    from .errors import ModelFileError

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as e:  # safetensors raises its own error types, and OSError
        raise ModelFileError(
            f"{path}: not a readable safetensors file ({e}). The file is truncated, corrupted or "
            "not an aekit file: save the model again, or copy the whole folder again"
        ) from None
    return tensors, metadata


# --- sets of files that belong together ------------------------------------------------------

PREVIOUS = ".prev"


def file_save_id(path: Path) -> str | None:
    """The ``save_id`` an aekit file carries (safetensors metadata, or a JSON object's key);
    None when the file is missing, unreadable or has none."""
    try:
        if path.name.endswith((".safetensors", ".safetensors" + PREVIOUS)):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as f:
                return (f.metadata() or {}).get("save_id")
        obj = json.loads(path.read_text())
        return obj.get("save_id") if isinstance(obj, dict) else None
    except Exception:  # missing, truncated, foreign: no id
        return None


def resolve_generation(folder: Path, names: list[str]) -> dict[str, Path] | None:
    """The files of the last complete save in ``folder``.

    ``names[-1]`` is the commit file, written last (the config). Each file is taken as ``NAME``
    or, after an interrupted save, as ``NAME.prev``: whichever carries the commit file's
    ``save_id``. Files that are absent stay absent from the result. Returns None when there is no
    commit file.
    """
    commit = folder / names[-1]
    if file_save_id(commit) is None and file_save_id(_prev(commit)) is not None:
        commit = _prev(commit)  # interrupted between moving the old config and writing the new
    if not commit.exists():
        return None
    want = file_save_id(commit)
    found = {names[-1]: commit}
    for name in names[:-1]:
        path = folder / name
        if want is not None and file_save_id(path) != want and file_save_id(_prev(path)) == want:
            path = _prev(path)
        if path.exists():
            found[name] = path
    return found


def _prev(path: Path) -> Path:
    return path.with_name(path.name + PREVIOUS)


def write_generation(folder: str | os.PathLike, files: list[tuple[str, bytes]]) -> Path:
    """Replace a set of files that belong together (all carrying one ``save_id``; the last one
    commits the set), so that an interruption at any moment leaves one complete set on disk.

    Each file is written atomically, and the version it replaces is kept as ``NAME.prev`` until
    the whole set is written; :func:`resolve_generation` picks the complete set. A folder left
    half-written by an interrupted save is first rolled back to its last complete set.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in files]
    current = resolve_generation(folder, names) or {}
    for name, path in current.items():  # roll back an interrupted save
        if path.name.endswith(PREVIOUS):
            os.replace(path, folder / name)
    for name in names:
        _prev(folder / name).unlink(missing_ok=True)
    for name, data in files:
        target = folder / name
        if target.exists():
            os.replace(target, _prev(target))
        atomic_write_bytes(target, data)
    for name in names:
        _prev(folder / name).unlink(missing_ok=True)
    return folder


# --- nested state (optimiser and scheduler state_dicts) as JSON + tensors ----------------------

_TENSOR = "__tensor__"
_ITEMS = "__items__"
_FLOAT = "__float__"


def split_tensors(obj: Any, prefix: str = "") -> tuple[Any, dict]:
    """Split nested dicts/lists holding tensors into a JSON-able structure and a flat tensor dict.

    Tensors are replaced by ``{"__tensor__": key}``; dicts with non-string keys (an optimiser's
    ``state`` is keyed by parameter index) become ``{"__items__": [[key, value], ...]}`` so the
    keys come back with their types; non-finite floats are kept exactly. The inverse is
    :func:`join_tensors`.
    """
    import torch

    tensors: dict[str, Any] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            tensors[path] = x
            return {_TENSOR: path}
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x):
                return {k: walk(v, f"{path}.{k}") for k, v in x.items()}
            return {_ITEMS: [[k, walk(v, f"{path}.{k}")] for k, v in x.items()]}
        if isinstance(x, list | tuple):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
        if isinstance(x, float) and not math.isfinite(x):
            return {_FLOAT: repr(x)}
        if x is None or isinstance(x, bool | int | float | str):
            return x
        raise TypeError(f"cannot store {type(x).__name__} at {path!r} without pickle")

    return walk(obj, prefix), tensors


def join_tensors(obj: Any, tensors: dict) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _ITEMS in obj:
            return {k: join_tensors(v, tensors) for k, v in obj[_ITEMS]}
        if _FLOAT in obj:
            return float(obj[_FLOAT])
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj
