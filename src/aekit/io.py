"""Files on disk: atomic writes, JSON, and safetensors, with errors that say what is wrong.

Every file aekit writes goes through :func:`atomic_write_bytes`: the bytes go to a temporary file in
the same directory, are flushed to disk, and the temporary file is renamed over the target. A
reader (or a crash, or Ctrl-C) sees either the old file or the new one, never half of one.

Nothing here uses pickle: models are safetensors (tensors) plus JSON (everything else), and nested
state such as an optimiser's ``state_dict`` is split into the two by :func:`split_tensors`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no flock. Folders are not locked there (documented in the README)
    fcntl = None  # type: ignore[assignment]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    try:
        return _atomic_write(path, data)
    except OSError as e:  # a full disk, a read-only folder: name the file that was not written
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def _atomic_write(path: Path, data: bytes) -> Path:
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
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: {what} not found") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(
            f"{path}: the {what} is not UTF-8 text (byte {e.start}); the file is damaged or not "
            "aekit's"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(
            f"{path}: the {what} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
            "the file is truncated or was edited by hand"
        ) from None
    except RecursionError:
        raise ModelFileError(
            f"{path}: the {what} nests too deeply to be aekit's; the file is damaged"
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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _checksums(commit: Path) -> dict[str, str]:
    """The ``checksums`` the commit file records ({} for files written before aekit 0.x recorded
    them, or a commit file that is not JSON)."""
    try:
        obj = json.loads(commit.read_text())
    except Exception:
        return {}
    sums = obj.get("checksums") if isinstance(obj, dict) else None
    return sums if isinstance(sums, dict) else {}


def resolve_generation(folder: Path, names: list[str]) -> dict[str, Path] | None:
    """The files of the last complete save in ``folder``.

    ``names[-1]`` is the commit file, written last (the config). It records the SHA-256 of every
    other file of its save (``checksums``); a save written before checksums were recorded is
    matched by the ``save_id`` its files carry, over ``names[:-1]``. Each file is taken as
    ``NAME`` or, after an interrupted save, as ``NAME.prev``: whichever belongs to the commit
    file's save. Files that are absent stay absent from the result. Returns None when there is no
    commit file.
    """
    commit = folder / names[-1]
    mid_commit = file_save_id(commit) is None and file_save_id(_prev(commit)) is not None
    if mid_commit:  # interrupted between moving the old config and writing the new one:
        commit = _prev(commit)  # every NAME.prev there is then the old save's
    if not commit.exists():
        return None
    want = file_save_id(commit)
    sums = _checksums(commit)
    found = {names[-1]: commit}
    for name in sums or names[:-1]:
        path = folder / name
        if _prev(path).exists():  # an interrupted save: which of the two belongs to this one?
            if mid_commit:
                path = _prev(path)
            elif sums:
                if not path.exists() or sha256_file(path) != sums[name]:
                    path = _prev(path)
            elif file_save_id(path) != want and file_save_id(_prev(path)) == want:
                path = _prev(path)
        if path.exists():
            found[name] = path
    return found


def _prev(path: Path) -> Path:
    return path.with_name(path.name + PREVIOUS)


def write_generation(folder: str | os.PathLike, files: list[tuple[str, bytes]]) -> Path:
    """Replace a set of files that belong together (the last one commits the set and records the
    others' checksums), so that an interruption at any moment leaves one complete set on disk.

    ``folder`` must be empty, new, or aekit's own (:func:`claim`); it is locked while the set is
    written (:func:`folder_lock`), and Ctrl-C or SIGTERM arriving meanwhile take effect once the
    set is complete (:func:`signals_deferred`). Each file is written atomically, and the version
    it replaces is kept as ``NAME.prev`` until the whole set is written; :func:`resolve_generation`
    picks the complete set. A folder left half-written by an interrupted save (a kill -9) is first
    rolled back to its last complete set.
    """
    folder = Path(folder)
    names = [name for name, _ in files]
    with folder_lock(folder), signals_deferred():
        claim(folder, names + [n + PREVIOUS for n in names])
        current = resolve_generation(folder, names) or {}
        for name, path in current.items():  # roll back an interrupted save
            if path.name.endswith(PREVIOUS):
                os.replace(path, folder / name)
        for name in names:
            _prev(folder / name).unlink(missing_ok=True)
            for leftover in folder.glob(f".{glob.escape(name)}.*.tmp"):  # a killed write's
                leftover.unlink(missing_ok=True)  # temp file (atomic_write_bytes names them)
        for name, data in files:
            target = folder / name
            if target.exists():
                os.replace(target, _prev(target))
            atomic_write_bytes(target, data)
        for name in names:
            _prev(folder / name).unlink(missing_ok=True)
    return folder


@contextlib.contextmanager
def signals_deferred():
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block is done, so that a save in progress
    completes (a second Ctrl-C during the final save must not lose the run).

    A signal that arrives meanwhile is noted, and acted on as usual once the block exits: the
    handler that was in place runs (Ctrl-C raises KeyboardInterrupt), or, for a signal with the
    system's default action, it is sent again. Python runs signal handlers in the main thread
    only, so only the main thread can hold them; elsewhere the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), received[0])


# --- folders aekit owns: the manifest and the lock --------------------------------------------

MANIFEST = "aekit-manifest.json"
MANIFEST_FORMAT = "aekit-manifest"
LOCK_FILE = ".aekit.lock"

# What aekit wrote into run and model folders before folders carried a manifest. A folder holding
# an aekit model config and only names from this list is adopted as aekit's (its manifest is
# written); any other file makes it someone else's.
_LEGACY_NAMES = frozenset(
    name + suffix
    for name in (
        "config.json", "model.safetensors", "optimizer.safetensors", "optimizer.json",
        "history.json", "data.json", "metrics.json", "report.html", "samples.png",
        "interpolation.png", "manifold.png", "learning_curves.png", "latent.png",
        "reconstructions.png", "denoising.png", "filters.png", "prior.png",
        "samples_by_class.png", "code_histogram.png",
    )
    for suffix in ("", PREVIOUS)
)  # fmt: skip


def read_manifest(folder: Path) -> set[str] | None:
    """The names aekit recorded as written in ``folder``; None when the folder has no manifest
    (or one aekit cannot read, which then is not aekit's)."""
    try:
        obj = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(obj, dict) or obj.get("format") != MANIFEST_FORMAT:
        return None
    files = obj.get("files")
    if not isinstance(files, list):
        return None
    return {f for f in files if _plain_name(f)}  # never a path that leaves the folder


def _plain_name(name) -> bool:
    """A file name directly inside a folder: no separator, not ``.``/``..``, not absolute."""
    seps = {"/", "\\", os.sep, os.altsep} - {None}
    return (isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name
            and not any(sep in name for sep in seps))  # fmt: skip


def _write_manifest(folder: Path, names: set[str]) -> None:
    body = {"format": MANIFEST_FORMAT, "version": 1,
            "note": "files aekit wrote here; aekit deletes or replaces only these",
            "files": sorted({*names, LOCK_FILE})}  # fmt: skip
    atomic_write_bytes(folder / MANIFEST, json_bytes(body))


def _foreign(entries: list[str]) -> list[str]:
    """The entries that are not names aekit writes (its files, their ``.prev``, the lock, and
    the temp files of an interrupted write, ``.NAME.xxxx.tmp``)."""
    return [
        e for e in entries
        if e not in _LEGACY_NAMES | {LOCK_FILE}
        and not (e.startswith(".") and e.endswith(".tmp")
                 and e[1:].split(".tmp")[0].rsplit(".", 1)[0] in _LEGACY_NAMES)
    ]  # fmt: skip


def _is_legacy_aekit_folder(folder: Path, entries: list[str]) -> bool:
    config = folder / "config.json"
    if not config.is_file() or _foreign(entries):
        return False
    try:
        return json.loads(config.read_text()).get("format") == "aekit-model"
    except Exception:
        return False


def ownership(folder: str | os.PathLike) -> str:
    """Whether aekit may write into ``folder``: ``"new"`` (absent), ``"empty"``, ``"owned"``
    (it has aekit's manifest), ``"legacy"`` (an aekit run or model folder written before
    manifests). Raises :class:`~aekit.errors.FolderError` otherwise: a file, or a folder
    holding files aekit did not write."""
    from .errors import FolderError

    folder = Path(folder)
    if not folder.exists():
        return "new"
    if not folder.is_dir():
        raise FolderError(f"{folder} is a file, not a folder; give a folder for aekit to write in")
    if read_manifest(folder) is not None:
        return "owned"
    entries = sorted(os.listdir(folder))
    if not entries or entries == [LOCK_FILE]:
        return "empty"
    if _is_legacy_aekit_folder(folder, entries):
        return "legacy"
    foreign = _foreign(entries)
    shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
    raise FolderError(
        f"{folder} holds files that aekit did not write ({shown}); aekit writes only into a new "
        "or empty folder, or a folder it created (it holds aekit-manifest.json). Choose another "
        "folder, or move those files out"
    )


def claim(folder: str | os.PathLike, names: list[str] | set[str]) -> Path:
    """Record ``names`` in ``folder``'s manifest before they are written (creating the folder
    and the manifest as needed). ``folder`` must be new, empty or aekit's (:func:`ownership`).
    A name that is a file aekit did not write, in a folder aekit owns, is refused too."""
    folder = Path(folder)
    state, known = check_claimable(folder, names)
    folder.mkdir(parents=True, exist_ok=True)
    new = set(names) - known
    if new or state != "owned":
        _write_manifest(folder, known | new)
    return folder


def check_claimable(folder: str | os.PathLike, names) -> tuple[str, set[str]]:
    """Raise :class:`~aekit.errors.FolderError` now if :func:`claim` would refuse ``names`` in
    ``folder`` (a folder aekit may not write, or a file there that aekit did not write), writing
    nothing; checked before long work, so it fails early. Returns the folder's
    :func:`ownership` state and the names aekit wrote there."""
    from .errors import FolderError

    state, known = _state_and_names(folder)
    clash = _clashes(Path(folder), set(names) - known)
    if clash:
        raise FolderError(
            f"{Path(folder) / clash[0]} was not written by aekit; aekit does not replace it. Move "
            "it, or choose another folder"
        )
    return state, known


def unclaimable(folder: str | os.PathLike, names) -> list[str]:
    """Those of ``names`` that :func:`claim` would refuse in ``folder`` (files there that aekit
    did not write); raises like :func:`ownership` for a folder aekit may not write at all."""
    _, known = _state_and_names(folder)
    return _clashes(Path(folder), set(names) - known)


def _state_and_names(folder) -> tuple[str, set[str]]:
    """:func:`ownership`, and the names aekit wrote in ``folder`` (every entry of a folder
    adopted from an older aekit)."""
    folder = Path(folder)
    state = ownership(folder)
    if state == "legacy":
        return state, set(os.listdir(folder)) - {LOCK_FILE}
    if state == "owned":
        return state, read_manifest(folder) or set()
    return state, set()


def _clashes(folder: Path, names) -> list[str]:
    """Those of ``names`` that exist in ``folder`` (a dangling symlink too) or are not plain
    file names."""
    return sorted(n for n in names if not _plain_name(n) or os.path.lexists(folder / n))


def remove_owned(folder: str | os.PathLike, names) -> list[str]:
    """Delete those of ``names`` that ``folder``'s manifest lists (and their ``.prev``), and
    drop them from it; returns the names removed. Nothing else is ever deleted."""
    folder = Path(folder)
    owned = read_manifest(folder) or set()
    removed = []
    for name in names:
        for n in (name, name + PREVIOUS):
            if n in owned and _plain_name(n):
                path = folder / n
                if os.path.lexists(path) and not (path.is_symlink() or path.is_file()):
                    continue  # a folder (the staging run) is removed by remove_owned_folder
                path.unlink(missing_ok=True)  # a symlink itself, never what it points to
                owned.discard(n)
                removed.append(n)
    if removed:
        _write_manifest(folder, owned)
    return removed


def remove_owned_folder(folder: str | os.PathLike) -> bool:
    """Delete what aekit wrote in ``folder`` (its manifest's files, the manifest, the lock file),
    then the folder itself if that leaves it empty; True if there was such a folder. A folder
    without aekit's manifest is left alone, and a symbolic link refused."""
    from .errors import FolderError

    folder = Path(folder)
    if folder.is_symlink():
        raise FolderError(
            f"{folder} is a symbolic link; aekit removes only a folder it created there. Remove "
            "the link yourself"
        )
    owned = read_manifest(folder)
    if owned is None:
        return False
    with folder_lock(folder):
        remove_owned(folder, sorted(owned))
        (folder / MANIFEST).unlink(missing_ok=True)
        (folder / LOCK_FILE).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: files someone else put there stay
        folder.rmdir()
    return True


# (real path, thread) -> [fd, depth]: re-entrant within a thread. Each key is only ever touched
# by its own thread, so the dict needs no lock of its own.
_HELD_LOCKS: dict[tuple[str, int], list] = {}


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike):
    """Hold ``folder``'s lock (``.aekit.lock``, an advisory ``flock`` that the system releases
    when the process ends, even after kill -9). A second process fails at once with
    :class:`~aekit.errors.FolderLockedError`, naming the process that holds it. Re-entrant within
    one process. The folder must be new, empty or aekit's; it is created."""
    folder = Path(folder)
    ownership(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = (os.path.realpath(folder), threading.get_ident())
    if key in _HELD_LOCKS:  # this thread holds it already
        _HELD_LOCKS[key][1] += 1
        try:
            yield folder
        finally:
            _HELD_LOCKS[key][1] -= 1
        return
    # Another thread of this process, like another process, opens the file anew, and flock
    # refuses a second open file description: it gets FolderLockedError.
    fd = _acquire(folder)
    _HELD_LOCKS[key] = [fd, 1]
    try:
        yield folder
    finally:
        del _HELD_LOCKS[key]
        _release(fd)


def check_unlocked(folder: str | os.PathLike) -> None:
    """Raise :class:`~aekit.errors.FolderLockedError` now if another process holds ``folder``'s
    lock (without creating anything): a second writer fails before it loads its data."""
    folder = Path(folder)
    held = (os.path.realpath(folder), threading.get_ident()) in _HELD_LOCKS
    if held or not (folder / LOCK_FILE).exists():
        return
    _release(_acquire(folder))


def _acquire(folder: Path) -> int:
    from .errors import FolderLockedError

    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another process holds it
        try:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        raise FolderLockedError(
            f"{folder} is in use by another aekit process ({holder}); wait for it to finish, or "
            "write to another folder"
        ) from None
    except OSError as e:  # a file system without locks (some network mounts)
        os.close(fd)
        raise OSError(e.errno, f"cannot lock the folder ({e.strerror})", str(path)) from None
    info = (f"pid {os.getpid()} on {socket.gethostname()}, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:300]}")  # fmt: skip
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, info.encode())
    return fd


def _release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


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
