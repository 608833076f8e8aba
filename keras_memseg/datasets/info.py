"""Static facts about each dataset (`DatasetInfo`), available without building anything."""

import dataclasses

from keras_memseg.datasets import _coco_stuff_classes as coco
from keras_memseg.datasets.ade20k import classes as ade20k
from keras_memseg.datasets.camvid import classes as camvid
from keras_memseg.datasets.cityscapes import classes as cityscapes
from keras_memseg.datasets.lip import classes as lip

IGNORE_LABEL = 255

# User-facing name (and aliases) -> canonical name.
_ALIASES = {
    "coco_stuff10k": "coco_stuff10k",
    "cocostuff10k": "coco_stuff10k",
    "coco_stuff164k": "coco_stuff164k",
    "cocostuff164k": "coco_stuff164k",
    "ade20k": "ade20k",
    "cityscapes": "cityscapes",
    "lip": "lip",
    "camvid": "camvid",
    "sample": "sample",
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a metric need to know about a dataset.

    Args:
        name: canonical dataset name, e.g. `"coco_stuff10k"`.
        num_classes: number of training classes K (labels are 0..K-1 or 255).
        class_names: K names, index = training id.
        palette: K RGB triples for colouring predictions.
        ignore_label: label value skipped by losses and metrics (255).
        flip_pairs: training-id pairs swapped by a horizontal flip (LIP).
        splits: split names the dataset provides.
        train_split: split the reference trains on.
        eval_split: split the reference evaluates on.
        builder_name: registered TFDS name of the builder (None for `sample`).

    Example:
    >>> info = get_info("camvid")
    >>> info.num_classes, info.class_names[0], info.ignore_label
    (11, 'Sky', 255)
    """

    name: str
    num_classes: int
    class_names: tuple
    palette: tuple
    ignore_label: int = IGNORE_LABEL
    flip_pairs: tuple = ()
    splits: tuple = ("train", "val")
    train_split: str = "train"
    eval_split: str = "val"
    builder_name: str = None


def known_names():
    """All names `load` and `get_info` accept (aliases included), sorted."""
    return tuple(sorted(_ALIASES))


def canonical_name(name):
    """Maps an alias such as `"cocostuff10k"` to its canonical name.

    Raises:
        ValueError: for an unknown name; the message lists the known names.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in _ALIASES:
        raise ValueError(
            f"Unknown dataset {name!r}. Known names: {', '.join(known_names())}"
        )
    return _ALIASES[key]


def get_info(name, num_classes=None):
    """Returns the `DatasetInfo` for `name` (any alias of `known_names()`).

    Args:
        name: dataset name, e.g. `"ade20k"` or `"cocostuff10k"`.
        num_classes: only for COCO-Stuff: 182 (default, the reference) or 171
            (mmsegmentation's contiguous remap).

    Example:
    >>> get_info("cocostuff10k").num_classes
    182
    >>> get_info("coco_stuff164k", num_classes=171).num_classes
    171
    >>> get_info("lip").flip_pairs
    ((14, 15), (16, 17), (18, 19))
    """
    canonical = canonical_name(name)
    if num_classes is not None and not canonical.startswith("coco_stuff"):
        raise ValueError(f"num_classes can only be chosen for COCO-Stuff, not {name!r}")
    if canonical.startswith("coco_stuff"):
        num_classes = 182 if num_classes is None else int(num_classes)
        if num_classes not in (171, 182):
            raise ValueError(f"COCO-Stuff num_classes must be 182 or 171, got {num_classes}")
        full = num_classes == 182
        is_10k = canonical == "coco_stuff10k"
        return DatasetInfo(
            name=canonical,
            num_classes=num_classes,
            class_names=coco.CLASS_NAMES_182 if full else coco.CLASS_NAMES_171,
            palette=coco.PALETTE_182 if full else coco.PALETTE_171,
            splits=("train", "test") if is_10k else ("train", "val"),
            eval_split="test" if is_10k else "val",
            builder_name=f"memseg_{canonical}",
        )
    if canonical == "ade20k":
        return DatasetInfo(
            name=canonical, num_classes=150, class_names=ade20k.CLASS_NAMES,
            palette=ade20k.PALETTE, builder_name="memseg_ade20k",
        )
    if canonical == "cityscapes":
        return DatasetInfo(
            name=canonical, num_classes=19, class_names=cityscapes.CLASS_NAMES,
            palette=cityscapes.PALETTE, splits=("train", "val", "test", "trainval"),
            train_split="trainval", eval_split="test", builder_name="memseg_cityscapes",
        )
    if canonical == "lip":
        return DatasetInfo(
            name=canonical, num_classes=20, class_names=lip.CLASS_NAMES,
            palette=lip.PALETTE, flip_pairs=lip.FLIP_PAIRS, builder_name="memseg_lip",
        )
    return DatasetInfo(
        name=canonical, num_classes=11, class_names=camvid.CLASS_NAMES,
        palette=camvid.PALETTE,
        builder_name="memseg_camvid" if canonical == "camvid" else None,
    )
