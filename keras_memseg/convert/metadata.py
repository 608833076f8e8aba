"""The dataset a converted segmenter was trained on: its class names, palette, test
resize and inference mode (`Segmenter.set_dataset_info`), given or read from the
checkpoint's file name (the authors name them `..._ade20k.pth`, `..._cityscapes...`)."""

import os
import re
import warnings


def dataset_from_filename(path, names=None):
    """The registered dataset name that `path`'s file name mentions (as a whole word,
    `_` optional: `cocostuff10k` is `coco_stuff10k`), or None (none, or several).

    Example:
    >>> dataset_from_filename("mcibi_deeplabv3_resnet50os8_ade20k_train.pth",
    ...                       ["ade20k", "coco_stuff10k", "lip"])
    'ade20k'
    >>> dataset_from_filename("x/mcibi_r101_cocostuff10k.pth", ["ade20k", "coco_stuff10k"])
    'coco_stuff10k'
    >>> dataset_from_filename("resnet50_v1c.pth", ["ade20k", "lip"]) is None
    True
    """
    if names is None:
        from keras_memseg.datasets import dataset_names

        names = dataset_names()
    stem = os.path.basename(os.fspath(path)).lower()
    found = []
    for name in names:
        for spelling in {name.lower(), name.lower().replace("_", "")}:
            if re.search(rf"(?<![a-z0-9]){re.escape(spelling)}(?![a-z0-9])", stem):
                found.append(name)
                break
    return found[0] if len(found) == 1 else None


def _spec(dataset):
    if not isinstance(dataset, str):
        return dataset  # a DatasetSpec
    from keras_memseg.datasets import get_info

    return get_info(dataset)


def apply_dataset(model, dataset=None, source="checkpoint"):
    """Sets `model`'s class names, palette, test resize and inference mode from
    `dataset` (a name, a folder `get_info` accepts, or a `DatasetSpec`), or from the
    dataset that `source`'s file name names when its class count is the model's.

    Returns the dataset name used, or None (then a one-line UserWarning says why).
    Raises ValueError when an explicit `dataset` has another class count.
    """
    if not hasattr(model, "set_dataset_info"):
        return None  # a backbone: no classes
    if dataset is not None:
        spec = _spec(dataset)
        try:
            model.set_dataset_info(spec)
        except ValueError as error:
            raise ValueError(f"--dataset {getattr(spec, 'name', dataset)}: {error}") from None
        return getattr(spec, "name", str(dataset))
    name = dataset_from_filename(source)
    if name is None:
        warnings.warn(
            f"{os.path.basename(os.fspath(source))}: no dataset name in the file name; class "
            "names, palette and test scale left unset (pass --dataset NAME)",
            UserWarning,
            stacklevel=2,
        )
        return None
    try:
        model.set_dataset_info(_spec(name))
    except ValueError:
        warnings.warn(
            f"{os.path.basename(os.fspath(source))}: names dataset {name} but its "
            f"{model.num_classes} classes do not match it; class names left unset "
            "(pass --dataset NAME)",
            UserWarning,
            stacklevel=2,
        )
        return None
    return name
