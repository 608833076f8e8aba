"""Direct tf.data reader for the CamVid sample bundled in this folder."""

import os
import pathlib

import tensorflow as tf

from keras_memseg.datasets import transforms
from keras_memseg.datasets.camvid import classes as camvid_classes
from keras_memseg.datasets.camvid.camvid_dataset_builder import parse_list
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message

SAMPLE_DIR = pathlib.Path(__file__).resolve().parent
SPLITS = ("train", "val")


def sample_pairs(split, sample_dir=SAMPLE_DIR):
    """(image path, label path) strings of a sample split, in list-file order."""
    if split not in SPLITS:
        raise ValueError(f"sample has splits {SPLITS}, got {split!r}")
    list_file = pathlib.Path(sample_dir) / f"{split}.txt"
    if not list_file.is_file():
        raise DatasetNotFoundError(f"{list_file} not found.\n" + missing_data_message("sample"))
    pairs = parse_list(list_file.read_text(), str(list_file))
    return [(str(sample_dir / image), str(sample_dir / label)) for image, label in pairs]


def load_sample(split="train", sample_dir=SAMPLE_DIR, with_file_names=False):
    """`tf.data.Dataset` of `{"image": uint8 (H,W,3), "label": uint8 (H,W)}` in file order
    (plus `"file_name"`, the image's path in the sample folder, when asked).

    Raw CamVid id 11 (Unlabelled) becomes 255. No TFDS preparation is needed. The
    decoded split is cached in memory after its first full pass (48 + 16 frames of
    168x224, about 10 MB): a training run re-reads it every few steps and the PNG decoding would
    otherwise compete with the training step for the CPU.

    Example:
    >>> ds = load_sample("val")
    >>> int(ds.cardinality())
    16
    """
    pairs = sample_pairs(split, pathlib.Path(sample_dir))
    table = tf.constant(
        [v if v >= 0 else 255 for v in camvid_classes.raw_to_train_table()], tf.uint8
    )

    def read(image_path, label_path, name):
        image = tf.io.decode_png(tf.io.read_file(image_path), channels=3)
        label = tf.io.decode_png(tf.io.read_file(label_path), channels=1)[..., 0]
        example = {"image": image, "label": tf.gather(table, tf.cast(label, tf.int32))}
        if with_file_names:
            example["file_name"] = name
        return example

    images, labels = zip(*pairs)
    names = [os.path.relpath(p, sample_dir) for p in images]
    ds = tf.data.Dataset.from_tensor_slices((list(images), list(labels), names))
    return ds.map(
        transforms.plain_graph(read), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).cache()
