"""The dataset registry: each dataset folder registers its `DatasetSpec` once.

The folders are found by listing the subpackages of `keras_memseg.datasets`, so a new
dataset is one new folder (`__init__.py` calling `register(SPEC)`), nothing else.
`get_info` also accepts the path of a user's folder dataset (`from_folder`), read
again at each call (nothing is cached).
"""

import importlib
import os
import pathlib
import pkgutil

_SPECS = {}
_PACKAGE = "keras_memseg.datasets"


def register(spec):
    """Registers `spec` (a `DatasetSpec`) under `spec.name`; returns it."""
    known = _SPECS.get(spec.name)
    if known is not None and known is not spec:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def _discover():
    folder = pathlib.Path(__file__).resolve().parent
    for module in pkgutil.iter_modules([str(folder)]):
        if module.ispkg:
            importlib.import_module(f"{_PACKAGE}.{module.name}")


def dataset_names():
    """The names of every registered dataset, sorted.

    Example:
    >>> dataset_names()
    ('ade20k', 'camvid', 'cityscapes', 'coco_stuff10k', 'coco_stuff164k', 'lip', 'sample')
    """
    _discover()
    return tuple(sorted(_SPECS))


def get_info(name, num_classes=None):
    """The `DatasetSpec` registered as `name`, or of the folder dataset at `name`.

    Args:
        name: one of `dataset_names()`, e.g. `"ade20k"` or `"coco_stuff10k"`, or
            the path (str or os.PathLike) of a folder holding `classes.txt`: then
            `keras_memseg.datasets.from_folder(name)` (its `name` is the folder's
            absolute path). A registered name wins over a folder of that name in the
            current directory (write `./name` for the folder).
        num_classes: another label space of the dataset (COCO-Stuff: 182 = the
            reference, the default, or 171 = mmsegmentation's contiguous remap).

    Raises:
        ValueError: for an unknown name; the message lists the known names, and
            says what is missing when the name looks like a path.
        DatasetNotFoundError, BadExampleError: a folder dataset's problems
            (see `from_folder`).

    Example:
    >>> get_info("coco_stuff10k").num_classes, get_info("coco_stuff164k", 171).num_classes
    (182, 171)
    >>> get_info("lip").flip_pairs
    ((14, 15), (16, 17), (18, 19))
    """
    names = dataset_names()
    if isinstance(name, str) and name in _SPECS:
        return _SPECS[name].with_num_classes(num_classes)
    folder = _folder_problem(name)
    if folder is None:
        from keras_memseg.datasets.folder_dataset import from_folder

        return from_folder(name).with_num_classes(num_classes)
    hint = [n for n in names if n.replace("_", "") == str(name).replace("_", "").lower()]
    raise ValueError(
        f"unknown dataset {os.fspath(name) if isinstance(name, os.PathLike) else name!r}"
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
        + (f" ({folder})" if folder else "")
        + f"; known datasets: {', '.join(names)}"
    )


def looks_like_path(name):
    """Whether `name` is meant as a folder: a path object, or a string with a
    separator or naming something that exists."""
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str) or not name:
        return False
    return "/" in name or os.sep in name or os.path.exists(name)


def _folder_problem(name):
    """None for a folder holding classes.txt; what is missing for a path-like name;
    "" for a plain unknown name."""
    if not looks_like_path(name):
        return ""
    path = os.path.abspath(os.fspath(name))
    if not os.path.exists(path):
        return f"no folder {path}"
    if not os.path.isdir(path):
        return f"{path} is not a folder"
    if not os.path.isfile(os.path.join(path, "classes.txt")):
        return f"no classes.txt in {path}; a folder dataset needs one, see from_folder"
    return None


def resolve(reference):
    """The object named by `"module:attribute"` (a spec's builder or reader)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
