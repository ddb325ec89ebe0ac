"""Saving and loading models: the file schema, one checksummed save generation, trust.

A model folder holds ``config.json`` (format tag, schema version, class and its module,
parameters, fitted attributes, metadata, and the SHA-256 of every other file of the save),
``model.safetensors``, the trainer state (``optimizer.safetensors`` + ``optimizer.json``) and
``history.json``. No pickle anywhere. :func:`write_model` writes them as one save generation
(:func:`aekit.io.write_generation`); the ``read_*`` functions and :func:`load` read them back.

This module sits below the estimator: it knows the files, not the estimator's internals. The
estimator hands :func:`write_model` its parts, and restores itself from what the readers return.
:func:`load` builds only the classes of :mod:`aekit.models.catalog` (or the caller's own), and
imports no name read from a file unless the caller trusts it.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import io
from ._params import code_fields, sequence_fields
from ._version import __version__
from .errors import AekitError, ModelFileError, ParameterError, UntrustedCodeError
from .models import catalog

if TYPE_CHECKING:  # torch is imported where a model is saved or built, not by the CLI's --help
    import torch

FORMAT = "aekit-model"
SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_META_FILE = "optimizer.json"
HISTORY_FILE = "history.json"

MODEL_FILES = [OPTIMIZER_FILE, OPTIMIZER_META_FILE, HISTORY_FILE, WEIGHTS_FILE, CONFIG_FILE]


def non_finite(tensors: dict[str, torch.Tensor]) -> str:
    """The names (at most three) of the floating-point tensors holding NaN or infinity."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
    return ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")


def same_save(path: Path, name: str, save_id: str | None, config: dict[str, Any]) -> None:
    if save_id != config.get("save_id"):
        raise ModelFileError(
            f"{path}: {name} and {CONFIG_FILE} come from different saves (files copied from two "
            "folders, or edited); save the model again"
        )


def write_model(
    path: str | Path,
    *,
    cls: type,
    params: dict[str, Any],
    fitted: dict[str, Any],
    weights: dict[str, torch.Tensor],
    trainer_state: dict[str, Any],
    history: list[dict[str, Any]],
    metadata: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write one save generation of a model to folder ``path`` (see ``BaseAutoencoder.save``)."""
    import torch

    bad = non_finite(weights)
    if bad:
        raise ModelFileError(
            f"cannot save to {path}: the weights {bad} hold NaN or infinite values (the "
            "training diverged); refit, or restore_best=True to keep the best finite weights"
        )
    tag = {"format": FORMAT, "save_id": uuid.uuid4().hex}
    meta, tensors = io.split_tensors(trainer_state, "trainer")
    files = [
        (OPTIMIZER_FILE, io.tensors_bytes(tensors, metadata=tag)),
        (OPTIMIZER_META_FILE, io.json_bytes({**tag, "state": meta})),
        (HISTORY_FILE, io.json_bytes({**tag, "history": history})),
        (WEIGHTS_FILE, io.tensors_bytes(weights, metadata=tag)),
        *(extra_files or {}).items(),
    ]
    config = {
        **tag,
        "schema_version": SCHEMA_VERSION,
        "class": cls.__name__,
        "class_module": cls.__module__,
        "aekit_version": __version__,
        "torch_version": torch.__version__,
        "params": params,
        "fitted": fitted,
        "metadata": metadata,
        "checksums": {name: io.sha256_bytes(data) for name, data in files},
    }
    return io.write_generation(path, [*files, (CONFIG_FILE, io.json_bytes(config))])


def read_weights(path: Path, config: dict[str, Any], files: dict[str, Path]):
    """The saved weights, checked to belong to this save and to be finite."""
    weights, wmeta = io.load_tensors(
        files.get(WEIGHTS_FILE, path / WEIGHTS_FILE), "weights (model.safetensors)"
    )
    same_save(path, WEIGHTS_FILE, wmeta.get("save_id"), config)
    bad = non_finite(weights)
    if bad:
        raise ModelFileError(
            f"{path / WEIGHTS_FILE}: the weights {bad} hold NaN or infinite values; such a "
            "model gives NaN outputs. Use an earlier checkpoint, or train it again"
        )
    return weights


def read_history(path: Path, config: dict[str, Any], files: dict[str, Path]) -> list:
    """The saved training history (empty when the file was left out)."""
    if HISTORY_FILE not in files:
        return []
    saved = io.read_json(files[HISTORY_FILE], "training history")
    if not isinstance(saved, dict) or not isinstance(saved.get("history"), list):
        raise ModelFileError(f"{files[HISTORY_FILE]}: not an aekit training history")
    same_save(path, HISTORY_FILE, saved.get("save_id"), config)
    return saved["history"]


def read_trainer_state(
    path: Path, config: dict[str, Any], files: dict[str, Path]
) -> dict[str, Any] | None:
    """The saved trainer state (optimisers, schedules, generators), or None when left out."""
    if OPTIMIZER_FILE not in files or OPTIMIZER_META_FILE not in files:
        return None
    meta = io.read_json(files[OPTIMIZER_META_FILE], "optimizer state")
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise ModelFileError(f"{files[OPTIMIZER_META_FILE]}: not an aekit optimizer state")
    tensors, tmeta = io.load_tensors(files[OPTIMIZER_FILE], "optimizer state")
    same_save(path, OPTIMIZER_META_FILE, meta.get("save_id"), config)
    same_save(path, OPTIMIZER_FILE, tmeta.get("save_id"), config)
    return io.join_tensors(meta["state"], tensors)


def read_config(path: str | Path) -> tuple[Path, dict[str, Any], dict[str, Path]]:
    """``(folder, config, files)`` of the last complete save in ``path`` (a model folder, or
    one of its files): after an interrupted save some files are still ``NAME.prev``, and
    ``files`` maps each name to the version that belongs to the committed config. The config
    is checked to be an aekit model config of a schema this aekit reads, with its sections of
    the types aekit writes: a damaged file is one clear :class:`ModelFileError`."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise ModelFileError(f"{path}: no such model folder")
    files = io.resolve_generation(path, MODEL_FILES) or {CONFIG_FILE: path / CONFIG_FILE}
    where = path / CONFIG_FILE
    config = io.read_json(files[CONFIG_FILE], "model config (config.json)")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f'{where}: not an aekit model config (it lacks "format": "{FORMAT}")')
    version = config.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFileError(f"{where}: no integer schema_version")
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            f"{where}: schema version {version} was written by a newer aekit "
            f"({config.get('aekit_version', '?')}); this aekit {__version__} reads up to version "
            f"{SCHEMA_VERSION}. Upgrade aekit (pip install -U aekit)."
        )
    for key, kind in (("class", str), ("params", dict), ("fitted", dict)):
        if key not in config:
            raise ModelFileError(f"{where}: no {key!r} section; the file is incomplete")
        if not isinstance(config[key], kind):
            raise ModelFileError(
                f"{where}: {key!r} is {type(config[key]).__name__}, expected "
                f"{'a string' if kind is str else 'an object'}; the file is damaged. Use an "
                "earlier copy of the folder, or train the model again"
            )
    for key in ("metadata", "checksums"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise ModelFileError(f"{where}: {key!r} is not an object; the file is damaged")
    return path, config, files


def verify_checksums(path: Path, config: dict[str, Any], files: dict[str, Path]) -> None:
    """Check every file of the save against the SHA-256 that ``config.json`` records (saves
    written before aekit recorded checksums have none, and are taken as they are). The files
    that ``load`` needs are checked for presence where they are read; the optional ones (the
    optimiser state, history, a run's data.json) may be left out, but not changed."""
    sums = config.get("checksums")
    if sums is None:
        return
    if not isinstance(sums, dict):
        raise ModelFileError(f"{path / CONFIG_FILE}: 'checksums' is not a mapping of file names")
    for name, digest in sums.items():
        file = files.get(name)
        if file is None:  # an optional file left out (the optimiser state, to share a model)
            continue
        if io.sha256_file(file) != digest:
            raise ModelFileError(
                f"{file}: its contents differ from what was saved (the SHA-256 recorded in "
                f"{CONFIG_FILE} does not match: the file was damaged or edited after saving, or "
                "a save was under way while it was read). Load again; if it persists, copy the "
                "folder again from its source, or save the model again"
            )


def _model_class(path: Path, config: dict[str, Any], classes) -> type:
    """The class ``config.json`` names: one of aekit's families (:mod:`aekit.models.catalog`),
    or one of ``classes``, never a class found by name elsewhere."""
    name, module = config.get("class"), config.get("class_module")
    given = {}
    for cls in classes or ():
        if not _is_family_subclass(cls):
            raise ParameterError(
                f"classes: {cls!r} is not a subclass of aekit's estimators; pass the model "
                "classes your saved models were built from"
            )
        given[cls.__name__] = cls
    if name in given:
        return given[name]
    stock = module is None or str(module).startswith("aekit.")
    if stock and name in catalog.CLASS_MODULES:
        return catalog.family_class(name)
    shown = name if isinstance(name, str) and name.isidentifier() else "MyModel"
    if name in catalog.CLASS_MODULES:
        what = f"model class {name!r} from {module}, named like aekit's own but not it"
    else:
        where = f" (defined in {module})" if module else ""
        what = (f"model class {name!r}{where} is not one of aekit's families "
                f"({', '.join(catalog.CLASS_MODULES)})")  # fmt: skip
    raise ModelFileError(
        f"{path / CONFIG_FILE}: {what}; aekit builds only its families, or the classes you "
        f"pass: aekit.load({str(path)!r}, classes=[{shown}])"
    )


def _is_family_subclass(cls: Any) -> bool:
    """Whether ``cls`` is a class derived from one of the catalogue's families (checked by name
    and module along its MRO, so that this module needs no import of the families)."""
    return isinstance(cls, type) and any(
        catalog.CLASS_MODULES.get(c.__name__) == c.__module__ for c in cls.__mro__
    )


def _code_objects(
    path: Path, cls: type, params: dict[str, Any], trust_code: bool, objects
) -> dict[str, Any]:
    """The user code a config names, as objects: from ``objects``, or imported with
    ``trust_code`` and checked to be what the parameter accepts. Never imported otherwise."""
    from .priors import import_object

    code = code_fields(cls)
    objects = dict(objects or {})
    unknown = set(objects) - set(code)
    if unknown:
        takes = ", ".join(code) or "none"
        raise ParameterError(
            f"objects: {cls.__name__} has no code parameter {sorted(unknown)[0]!r} (it takes: "
            f"{takes})"
        )
    resolved = {}
    for param, (kind, builtin) in code.items():
        value = params.get(param)
        where = f"{path / CONFIG_FILE}: params.{param}"
        instance = kind == "module" and isinstance(value, dict)  # built from an instance
        if instance:
            if set(value) != {"instance_of"} or not isinstance(value["instance_of"], str):
                raise ModelFileError(f"{where} is {value!r}: expected an import path or "
                                     '{"instance_of": "module:Name"}')  # fmt: skip
            value = value["instance_of"]
        if param in objects:
            if not (isinstance(value, str) and value not in builtin):
                raise ParameterError(
                    f"objects[{param!r}]: the saved model's {param} is {value!r}, not user code; "
                    "nothing to replace"
                )
            resolved[param] = _check_code(objects[param], kind, f"objects[{param!r}]")
            continue
        if value is None or (isinstance(value, str) and value in builtin):
            continue
        if not isinstance(value, str):
            raise ModelFileError(f"{where} is {value!r}: not a built-in name nor an import path")
        if kind == "module" and value.startswith("__main__:"):
            raise UntrustedCodeError(
                f"{where} = {value!r}: the class was defined in the script or notebook that saved "
                "the model, which this process cannot import by name; pass it yourself: "
                f"aekit.load({str(path)!r}, objects={{{param!r}: {value.partition(':')[2]}}})"
            )
        if not trust_code:
            raise UntrustedCodeError(
                f"{where} = {value!r} names code to import, and aekit never imports or runs code "
                "named in a file unless you trust the file. If you do: "
                f"aekit.load({str(path)!r}, trust_code=True) (on the command line, "
                f"--trust-code), or pass the object yourself: objects={{{param!r}: ...}}"
            )
        try:
            obj = import_object(value, param)
        except ParameterError as e:
            raise ModelFileError(f"{where}: {e}") from None
        obj = _check_code(obj, kind, f"{where} = {value!r}", instances=False)
        resolved[param] = _instance_of(obj, param) if instance else obj
    return resolved


def _instance_of(cls: type, param: str) -> Any:
    """A network saved from an instance (its weights come from the file): ``cls()``, built
    with the global random state put back afterwards; for a constructor that needs arguments,
    the class itself, which the estimator builds with the sizes it knows (``input_shape``,
    ``latent_dim``, ...; :mod:`aekit.networks`). An instance built with other arguments must be
    passed in ``objects`` (the weights then say so, naming the layers that differ)."""
    import torch

    try:
        with torch.random.fork_rng(devices=[]):
            return cls()
    except TypeError:
        return cls


def _check_code(obj: Any, kind: str, where: str, instances: bool = True) -> Any:
    """``obj`` if it is what a code parameter of this ``kind`` accepts; refused otherwise, even
    with ``trust_code``: a prior is a Python function, a network an ``nn.Module`` subclass (or,
    given in ``objects``, an ``nn.Module`` instance: ``instances``)."""
    import torch

    if kind == "function" and inspect.isfunction(obj):
        return obj
    if kind == "module" and isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        return obj
    if kind == "module" and instances and isinstance(obj, torch.nn.Module):
        return obj
    what = {"function": "a Python function", "module": "a torch.nn.Module subclass"}[kind]
    got = type(obj).__name__ if not isinstance(obj, type) else f"the class {obj.__name__}"
    raise UntrustedCodeError(f"{where}: refused, it is {got}, and this parameter takes {what}")


def load(
    path: str | Path,
    device: str | None = None,
    *,
    trust_code: bool = False,
    objects: dict[str, Any] | None = None,
    classes: Iterable[type] | None = None,
) -> Any:
    """Load a model saved with ``model.save(path)``, as the class it was saved from.

    Loading runs no code named in the files: the class is one of aekit's families or one of
    ``classes``, and a parameter holding user code (an adversarial autoencoder's own prior,
    saved as ``"package.module:function"``; a user's ``encoder``, ``decoder`` or
    ``discriminator``, saved as ``"package.module:Class"``) is imported only with
    ``trust_code=True`` or taken from ``objects``.

    Parameters
    ----------
    path : str or Path
        The model folder (``config.json`` and ``model.safetensors``; ``optimizer.*`` and
        ``history.json`` when present). A path to one of its files also works.
    device : str, optional
        Where to put the model ("cpu", "cuda", ...). By default the saved ``device`` parameter,
        falling back to the CPU when that device is not available here (a model trained on a GPU
        loads on a laptop).
    trust_code : bool, default=False
        Import the user code the config names (as transformers' ``trust_remote_code``). Only
        for files you trust: importing a module runs its code. Even then, each parameter takes
        only its own kind of object (a Python function for a prior, an ``nn.Module`` subclass for
        a network); anything else is refused. A network saved from an instance is rebuilt as
        ``Class()``: with required arguments, pass the instance in ``objects``.
    objects : dict, optional
        The user code itself, by parameter name, for example ``{"prior": ring}`` or
        ``{"encoder": MyEncoder}`` (a class, or an instance whose weights the saved ones
        replace); nothing is imported.
    classes : sequence of classes, optional
        Your own subclasses of aekit's estimators that saved models may name.

    Returns
    -------
    model : BaseAutoencoder
        Fitted, with identical outputs; ``partial_fit`` continues training exactly when the
        optimiser files are present (without them, with a fresh optimiser state).

    Raises
    ------
    ModelFileError
        Missing, truncated, damaged (checksum) or foreign files, mixed saves, non-finite
        weights, an unknown class, or a schema newer than this aekit.
    UntrustedCodeError
        The config names code to import and neither ``trust_code`` nor ``objects`` allow it, or
        the name imports something its parameter does not accept.
    """
    path, config, files = read_config(path)
    cls = _model_class(path, config, classes)
    name = cls.__name__
    params = dict(config["params"])
    # A parameter added since the file was written takes the value that reproduces the model
    # as it was saved (its behaviour then), which need not be the new default.
    for key, value in cls._params_before.items():
        params.setdefault(key, value)
    for key in sequence_fields(cls):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    params.update(_code_objects(path, cls, params, trust_code, objects))
    if device is not None:
        params["device"] = device
    try:
        model = cls(**params)
    except TypeError as e:
        raise ModelFileError(
            f"{path / CONFIG_FILE}: parameters do not match {name} ({e})"
        ) from None
    try:
        model._check_params()
    except ParameterError as e:
        raise ModelFileError(f"{path / CONFIG_FILE}: {e}") from None
    try:
        model._restore(path, config, files, device_given=device is not None)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        if isinstance(e, AekitError):
            raise
        raise ModelFileError(
            f"{path / CONFIG_FILE}: the fitted state does not fit {name} ({type(e).__name__}: "
            f"{e}); the file is damaged. Use an earlier copy of the folder, or train again"
        ) from None
    verify_checksums(path, config, files)  # after the format checks, whose errors say more
    return model
