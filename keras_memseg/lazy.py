"""Package namespaces whose names are imported on first use (PEP 562).

The command-line entry points parse their flags, and answer `--help`, before Keras and
TensorFlow are imported; a package whose `__init__` imported its TensorFlow modules
eagerly would import them as soon as its `__main__` is run. Such a package writes its
public imports under `if TYPE_CHECKING:` (so static readers, mkdocstrings and IDEs, see
them as usual) and lets `lazy_exports` import each name when it is first used:

    from typing import TYPE_CHECKING

    from keras_memseg.lazy import lazy_exports

    if TYPE_CHECKING:
        from keras_memseg.datasets.loader import load

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
"""

import ast
import importlib


def exports_of(source):
    """{name: module} of the `from M import N` statements under `if TYPE_CHECKING:`
    in a module's `source`.

    Example:
    >>> exports_of("if TYPE_CHECKING:\\n    from math import sqrt\\n")
    {'sqrt': 'math'}
    """
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    for alias in statement.names:
                        out[alias.asname or alias.name] = statement.module
    return out


def lazy_exports(package, init_file):
    """The `(__getattr__, __dir__)` of the package module `package` (its `__init__.py`
    is `init_file`): the names imported under its `if TYPE_CHECKING:` are imported from
    their modules when first used.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "__init__.py")
    >>> _ = open(path, "w").write("if TYPE_CHECKING:" + chr(10) + "    from math import sqrt")
    >>> getattr_, dir_ = lazy_exports("demo", path)
    >>> getattr_("sqrt")(9.0), dir_()
    (3.0, ['sqrt'])
    >>> getattr_("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'demo' has no attribute 'nothing'
    """
    with open(init_file, encoding="utf-8") as f:
        exports = exports_of(f.read())

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
