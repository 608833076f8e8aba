"""`load(name, split)`: one call from a dataset name (or a folder dataset's path) to a
`tf.data.Dataset` of image/label."""

import pathlib

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_memseg.datasets import transforms
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message
from keras_memseg.datasets.registry import get_info
from keras_memseg.datasets.registry import resolve


def builder_class(name):
    """The TFDS builder class of dataset `name` (imported on demand)."""
    spec = get_info(name)
    if not spec.builder:
        raise ValueError(f"{name!r} has no TFDS builder (it is read directly)")
    return resolve(spec.builder)


def prepare(name, data_dir=None, manual_dir=None, num_classes=None, skip_bad_examples=False):
    """Returns a prepared builder, generating TFRecords from `manual_dir` on first use.

    Raises:
        DatasetNotFoundError: not prepared yet and `manual_dir` is missing; the
            message says where to put which files.
    """
    spec = get_info(name, num_classes=num_classes)  # validates num_classes
    config = str(spec.num_classes) if spec.variants else None
    builder = builder_class(name)(
        data_dir=data_dir, config=config, skip_bad_examples=skip_bad_examples
    )
    if builder.is_prepared():
        return builder
    if manual_dir is None or not pathlib.Path(manual_dir).is_dir():
        raise DatasetNotFoundError(
            f"{name} is not prepared in {builder.data_dir} and manual_dir "
            f"{manual_dir} is not a folder.\n" + missing_data_message(name, manual_dir)
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
    with_file_names=False,
):
    """Loads a dataset as a `tf.data.Dataset` of `{"image", "label"}`.

    `image` is uint8 (H, W, 3) RGB, `label` uint8 (H, W) training ids with 255
    = ignore; sizes vary per example. The order is the builder's deterministic
    order (no file shuffling); `keras_memseg.datasets.train_pipeline` shuffles.

    Args:
        name: one of `keras_memseg.datasets.dataset_names()`, e.g.
            "coco_stuff10k", "ade20k", "cityscapes", "lip", "camvid", "sample",
            or the path of a folder dataset (`keras_memseg.datasets.from_folder`).
        split: split name, see `get_info(name).splits`.
        data_dir: where TFDS keeps the prepared TFRecords (TFDS default if None).
        manual_dir: folder with the downloaded archives or extracted files;
            needed the first time only. Unused for "sample".
        num_classes: COCO-Stuff only: 182 (default) or 171.
        skip_bad_examples: skip (and log) bad examples instead of raising.
        with_file_names: also yield "file_name", the image's path in `manual_dir`
            (benchmark-server submissions name their files after it); for a
            folder dataset, its path relative to `ROOT/images/<split>`.

    Example:
    >>> ds = load("sample", split="val")
    >>> example = next(iter(ds))
    >>> example["image"].dtype.name, example["label"].shape.rank
    ('uint8', 2)
    """
    spec = get_info(name, num_classes=num_classes)
    if split not in spec.splits:
        raise ValueError(f"dataset {name!r} has splits {spec.splits}, got split={split!r}")
    if spec.root:  # a folder dataset: its reader reads the folder
        ds = resolve(spec.reader)(spec.root, split, with_file_names=with_file_names)
        return ds.ignore_errors(log_warning=True) if skip_bad_examples else ds
    if spec.reader:
        return resolve(spec.reader)(split, with_file_names=with_file_names)
    builder = prepare(name, data_dir, manual_dir, num_classes, skip_bad_examples)
    if split not in builder.info.splits:
        raise DatasetNotFoundError(
            f"{name} was prepared in {builder.data_dir} without a {split!r} split (its files "
            f"were not in manual_dir then); prepared splits: {sorted(builder.info.splits)}"
        )
    ds = builder.as_dataset(split=split, shuffle_files=False)
    keys = ("image", "label", "file_name") if with_file_names else ("image", "label")
    return ds.map(
        transforms.plain_graph(
            lambda e: {key: e[key][..., 0] if key == "label" else e[key] for key in keys}
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
