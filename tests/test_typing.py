"""The public API is typed (issue 15): ``src/aekit/py.typed`` is shipped, every public function
and method reachable from ``aekit.__all__`` annotates its named parameters and its return, the
annotations resolve at run time (``typing.get_type_hints``), and a user's code written against
the API (``tests/typing_usage.py``) type-checks with mypy."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import aekit

HERE = Path(__file__).parent
SRC = Path(aekit.__file__).parent


def _function(value: object) -> typing.Callable | None:
    """The function behind a class attribute: a plain function, a static or class method, or a
    scikit-learn ``available_if`` method (``inverse_transform``, ``decision_function``, ...)."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if inspect.isfunction(value):
        return value
    fn = getattr(value, "fn", None)  # sklearn.utils._available_if._AvailableIfDescriptor
    return fn if inspect.isfunction(fn) else None


def public_functions() -> dict[str, typing.Callable]:
    """``qualified name -> function`` for every public function and method (``__init__``
    included) that ``aekit.__all__`` reaches, inherited ones from aekit's own base classes."""
    found: dict[str, typing.Callable] = {}
    for name in aekit.__all__:
        obj = getattr(aekit, name)
        if inspect.isclass(obj):
            for cls in obj.__mro__:
                if not cls.__module__.startswith("aekit"):
                    continue
                for attr, value in vars(cls).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    fn = _function(value)
                    if fn is not None:
                        found.setdefault(f"{cls.__name__}.{attr}", fn)
        elif inspect.isfunction(obj):
            found[name] = obj
    return found


def test_py_typed_marker_is_shipped():
    assert (SRC / "py.typed").is_file()


def test_the_check_sees_the_api():
    names = public_functions()
    for expected in ("BaseAutoencoder.fit", "BaseAutoencoder.inverse_transform", "VAE.sample",
                     "OutlierMixin.decision_function", "Callback.on_epoch_end", "load",
                     "load_dataset", "Run.rows"):  # fmt: skip
        assert expected in names


def test_public_api_is_fully_annotated():
    missing = []
    for qualname, fn in sorted(public_functions().items()):
        signature = inspect.signature(fn)
        for p, value in signature.parameters.items():
            if p in ("self", "cls") or value.kind in (value.VAR_POSITIONAL, value.VAR_KEYWORD):
                continue
            if value.annotation is inspect.Parameter.empty:
                missing.append(f"{qualname}: parameter {p}")
        if fn.__name__ != "__init__" and signature.return_annotation is inspect.Signature.empty:
            missing.append(f"{qualname}: return")
    assert not missing, "unannotated:\n" + "\n".join(missing)


def test_annotations_resolve_at_run_time():
    failed = []
    for qualname, fn in sorted(public_functions().items()):
        owner = getattr(aekit, qualname.split(".")[0], None)
        # a dataclass's generated __init__ is evaluated in the subclass's module, where the
        # fields of a base class are not all imported: the class resolves each in its own
        target = owner if fn.__name__ == "__init__" and dataclasses.is_dataclass(owner) else fn
        try:
            typing.get_type_hints(target)
        except Exception as e:  # NameError: a name imported only for type checkers
            failed.append(f"{qualname}: {type(e).__name__}: {e}")
    assert not failed, "\n".join(failed)


def test_type_checkers_see_every_public_name():
    """``aekit/__init__.py`` imports its public names lazily (``__getattr__``, which a type
    checker reads as ``Any``); its ``if TYPE_CHECKING:`` block must import each one, so that
    ``from aekit import VAE`` is typed as the class."""
    tree = ast.parse((SRC / "__init__.py").read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    imported = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom)
                for a in n.names}  # fmt: skip
    assert imported == set(aekit.__all__) - {"__version__"}


def test_typing_module_keeps_torch_away():
    """The aliases import numpy only: aekit.anomaly, aekit.runs and aekit.datasets use them and
    stay torch-free at import."""
    code = (
        "import sys, aekit._typing, aekit.anomaly, aekit.callbacks; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_user_code_type_checks_with_mypy(tmp_path):
    """``tests/typing_usage.py`` uses the API as a user would; mypy (from a cold cache) finds no
    error in it, through aekit's own annotations (``py.typed``)."""
    pytest.importorskip("mypy")
    usage = tmp_path / "typing_usage.py"
    shutil.copy(HERE / "typing_usage.py", usage)
    cmd = [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
           "--no-error-summary", "--show-error-codes", "--ignore-missing-imports",
           "--follow-imports=silent", str(usage)]  # fmt: skip
    env = {"MYPYPATH": str(SRC.parent)}
    import os

    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, **env})  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
