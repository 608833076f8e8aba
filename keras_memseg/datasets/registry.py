"""The dataset registry: each dataset folder registers its `DatasetSpec` once.

The folders are found by listing the subpackages of `keras_memseg.datasets`, so a new
dataset is one new folder (`__init__.py` calling `register(SPEC)`), nothing else.
"""

import importlib
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
    """The `DatasetSpec` registered as `name`.

    Args:
        name: one of `dataset_names()`, e.g. `"ade20k"` or `"coco_stuff10k"`.
        num_classes: another label space of the dataset (COCO-Stuff: 182 = the
            reference, the default, or 171 = mmsegmentation's contiguous remap).

    Raises:
        ValueError: for an unknown name; the message lists the known names.

    Example:
    >>> get_info("coco_stuff10k").num_classes, get_info("coco_stuff164k", 171).num_classes
    (182, 171)
    >>> get_info("lip").flip_pairs
    ((14, 15), (16, 17), (18, 19))
    """
    names = dataset_names()
    if name not in _SPECS:
        hint = [n for n in names if n.replace("_", "") == str(name).replace("_", "").lower()]
        raise ValueError(
            f"unknown dataset {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; known datasets: {', '.join(names)}"
        )
    return _SPECS[name].with_num_classes(num_classes)


def resolve(reference):
    """The object named by `"module:attribute"` (a spec's builder or reader)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
