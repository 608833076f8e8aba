"""The package-level import graph of keras_memseg: no cycle, nothing imports upwards,
no private name crosses a package (issue #28).

Read from the source with `ast` (every `import` / `from ... import`, including those
inside functions), so a lazy import counts like any other. A package may import only
packages of a lower rank in `RANKS`; `ALIASES` would list an upward edge allowed on
purpose, with its reason (none is).
"""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_memseg")

# Lowest first. A package imports only packages of a strictly lower rank.
RANKS = {
    # foundations: no keras_memseg imports, or only of rank 0
    "version": 0,
    "file_kinds": 0,
    "lazy": 0,
    "writable": 0,
    "console": 0,
    "tensorflow_runtime": 0,
    "distribute": 0,
    "presets": 1,
    # building blocks
    "layers": 2,
    "losses": 2,
    "metrics": 2,
    "optimizers": 2,
    "datasets": 3,
    "backbones": 3,
    # models on backbones and layers
    "models": 4,
    # what uses models: conversion, evaluation, export, analysis
    "convert": 5,
    "evaluation": 5,
    "export": 5,
    "analysis": 6,
    "predict": 6,
    # training uses all of the above
    "training": 7,
    # the `keras-memseg` console command dispatches to every command
    "cli": 8,
}
# (importing file, imported module): why an upward edge exists. None: nothing may.
ALIASES = {}


def _package(path):
    """`keras_memseg/<package>/...` or `keras_memseg/<module>.py` -> its name."""
    rel = os.path.relpath(path, ROOT).split(os.sep)
    return rel[0][:-3] if rel[0].endswith(".py") else rel[0]


def _imports(path):
    """[(line, imported module, imported names)] of the keras_memseg imports in a file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "keras_memseg":
                out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "keras_memseg":
                    out.append((node.lineno, alias.name, []))
    return out


def _edges():
    """[(importer package, imported package, where, module, names)] across packages."""
    edges = []
    for folder, _, files in os.walk(ROOT):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            if os.path.dirname(path) == ROOT and name == "__init__.py":
                continue  # the top-level package gathers the public API
            importer = _package(path)
            for line, module, names in _imports(path):
                parts = module.split(".")
                if len(parts) > 1:
                    imported = parts[1]
                else:  # `from keras_memseg import X`: X is the package
                    imported = names[0] if len(names) == 1 else "<several>"
                if imported != importer:
                    where = f"{os.path.relpath(path, os.path.dirname(ROOT))}:{line}"
                    edges.append((importer, imported, where, module, names))
    return edges


def test_every_package_has_a_rank():
    packages = {_package(os.path.join(ROOT, n)) for n in os.listdir(ROOT)}
    packages -= {"__init__", "__pycache__"}
    assert packages - set(RANKS) == set(), "give each new package a rank in RANKS"


def test_nothing_imports_upwards_and_there_is_no_cycle():
    wrong = [
        f"{where}: {importer} (rank {RANKS.get(importer)}) imports {module} "
        f"(rank {RANKS.get(imported)})"
        for importer, imported, where, module, _ in _edges()
        if (where.split(":")[0], module) not in ALIASES
        and not RANKS.get(imported, 99) < RANKS.get(importer, -1)
    ]
    assert wrong == [], "\n".join(wrong)


def test_no_private_name_crosses_a_package():
    private = [
        f"{where}: {name} from {module}"
        for _, _, where, module, names in _edges()
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == [], "\n".join(private)
