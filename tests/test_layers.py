"""The import layers of docs/ARCHITECTURE.md hold: every import of an aekit module, at the top of a
module or inside a function, points down (or sideways within a layer), never up. A circle such as
the old ``base.load`` importing the families that import ``base`` cannot come back unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import aekit

SRC = Path(aekit.__file__).parent

# Lowest first. A module may import modules of its own layer or below.
LAYERS = [
    ["aekit._version", "aekit.errors", "aekit._typing"],  # _typing: the API's aliases (numpy only)
    ["aekit.distributed"],  # process groups, shards, global-batch noise: under every torch user
    [
        "aekit._validation",
        "aekit._params",
        "aekit.io",
        "aekit.tags",
        "aekit.models",
        "aekit.models.catalog",
    ],
    [
        "aekit.runtime",
        "aekit.nn",
        "aekit.losses",
        "aekit.corruption",
        "aekit.priors",
        "aekit.metrics",
        "aekit.datasets",
        "aekit._image_folder",  # datasets.ImageFolder: the torch side of the image reader
        "aekit.sources",  # a torch Dataset / iterable as batches (training and estimator read it)
    ],
    ["aekit.training", "aekit.plotting", "aekit.networks"],
    ["aekit.callbacks", "aekit.persist", "aekit.export"],
    ["aekit.estimator", "aekit.anomaly"],  # anomaly: the outlier-detector contract the families add
    ["aekit.models.*"],  # the families (aekit.models itself is only the lazy catalogue door)
    ["aekit.runs"],
    ["aekit.report"],  # above runs, as in shared/DESIGN.md: a run's figures come from plotting
    ["aekit.cli", "aekit.cli.*", "aekit", "aekit.__main__"],
]


def rank(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if module in layer:
            return i
    for i, layer in enumerate(LAYERS):
        if any(p.endswith(".*") and module.startswith(p[:-1]) for p in layer):
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py: add it")


def module_name(path: Path) -> str:
    parts = ["aekit", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every aekit import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("aekit"):
                continue
            if node.module is None or target in ("aekit", "aekit.models", "aekit.cli"):
                # "from . import io": the names are modules
                found += [(node.lineno, f"{target}.{a.name}".replace("aekit.aekit", "aekit"))
                          for a in node.names]  # fmt: skip
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("aekit")]
    return found


def known(module: str) -> str:
    """The module itself, or the package a name was imported from."""
    while module.count(".") and not (
        (SRC.parent / (module.replace(".", "/") + ".py")).exists()
        or (SRC.parent / module.replace(".", "/") / "__init__.py").exists()
    ):
        module = module.rpartition(".")[0]
    return module


def test_imports_point_down():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        here = module_name(path)
        for line, target in imports(path):
            target = known(target)
            if target != here and rank(target) > rank(here):
                upward.append(f"{path.relative_to(SRC.parent)}:{line} {here} imports {target}")
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_the_layer_check_sees_function_level_imports(tmp_path):
    """The check itself: an import inside a function is seen (the old circle was one)."""
    probe = SRC / "persist.py"
    assert any(t.startswith("aekit.models") for _, t in imports(probe))
    assert rank("aekit.estimator") > rank("aekit.persist")
    assert rank("aekit.models.vae") > rank("aekit.estimator")
