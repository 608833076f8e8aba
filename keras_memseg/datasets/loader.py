"""`load(name, split)`: one call from a dataset name to a `tf.data.Dataset` of image/label."""

import importlib
import pathlib

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_memseg.datasets._sample import load_sample
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message
from keras_memseg.datasets.info import canonical_name
from keras_memseg.datasets.info import get_info

_BUILDERS = {
    "coco_stuff10k": "MemsegCocoStuff10k",
    "coco_stuff164k": "MemsegCocoStuff164k",
    "ade20k": "MemsegAde20k",
    "cityscapes": "MemsegCityscapes",
    "lip": "MemsegLip",
    "camvid": "MemsegCamvid",
}


def builder_class(name):
    """The TFDS builder class for `name` (imported on demand)."""
    canonical = canonical_name(name)
    if canonical not in _BUILDERS:
        raise ValueError(f"{name!r} has no TFDS builder (it is read directly)")
    module = importlib.import_module(
        f"keras_memseg.datasets.{canonical}.{canonical}_dataset_builder"
    )
    return getattr(module, _BUILDERS[canonical])


def prepare(name, data_dir=None, manual_dir=None, num_classes=None, skip_bad_examples=False):
    """Returns a prepared builder, generating TFRecords from `manual_dir` on first use.

    Raises:
        DatasetNotFoundError: not prepared yet and `manual_dir` is missing; the
            message says where to put which files.
    """
    canonical = canonical_name(name)
    info = get_info(canonical, num_classes=num_classes)  # validates num_classes
    config = str(info.num_classes) if canonical.startswith("coco_stuff") else None
    builder = builder_class(canonical)(
        data_dir=data_dir, config=config, skip_bad_examples=skip_bad_examples
    )
    if builder.is_prepared():
        return builder
    if manual_dir is None or not pathlib.Path(manual_dir).is_dir():
        raise DatasetNotFoundError(
            f"{canonical} is not prepared in {builder.data_dir} and manual_dir "
            f"{manual_dir} is not a folder.\n" + missing_data_message(canonical, manual_dir)
        )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def load(
    name,
    split="train",
    data_dir=None,
    manual_dir=None,
    num_classes=None,
    skip_bad_examples=False,
):
    """Loads a dataset as a `tf.data.Dataset` of `{"image", "label"}`.

    `image` is uint8 (H, W, 3) RGB, `label` uint8 (H, W) training ids with 255
    = ignore; sizes vary per example. The order is the builder's deterministic
    order (no file shuffling); `keras_memseg.datasets.train_pipeline` shuffles.

    Args:
        name: one of `keras_memseg.datasets.info.known_names()`, e.g.
            "cocostuff10k", "ade20k", "cityscapes", "lip", "camvid", "sample".
        split: split name, see `get_info(name).splits`.
        data_dir: where TFDS keeps the prepared TFRecords (TFDS default if None).
        manual_dir: folder with the downloaded archives or extracted files;
            needed the first time only. Unused for "sample".
        num_classes: COCO-Stuff only: 182 (default) or 171.
        skip_bad_examples: skip (and log) bad examples instead of raising.

    Example:
    >>> ds = load("sample", split="val")
    >>> example = next(iter(ds))
    >>> example["image"].dtype.name, example["label"].shape.rank
    ('uint8', 2)
    """
    canonical = canonical_name(name)
    info = get_info(canonical, num_classes=num_classes)
    if split not in info.splits:
        raise ValueError(f"{canonical} has splits {info.splits}, got {split!r}")
    if canonical == "sample":
        return load_sample(split)
    builder = prepare(canonical, data_dir, manual_dir, num_classes, skip_bad_examples)
    ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(
        lambda e: {"image": e["image"], "label": e["label"][..., 0]},
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
