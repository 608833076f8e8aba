"""tf.data training and evaluation pipelines, in the order of the reference's transforms
(`ssseg/modules/datasets/pipelines/transforms.py` in SegmentationBLWX/sssegmentation).

Train order: random keep-ratio rescale -> random crop (75 % single-class cap)
-> flip (LIP: swap left/right labels) -> [LIP rotation] -> photometric
distortion -> normalisation -> centred padding to the crop size.

Determinism: every example gets its own seed pair from
`tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, consumed only
by stateless random ops, and the shuffle uses the same seed. Two runs with the
same seed give identical batches; each new iteration (epoch) of the same
dataset object draws new, still reproducible, augmentations.

Sharding: `train_pipeline` sets `auto_shard_policy` to DATA by default. Our
sources are either TFDS TFRecord shards (few files per split, often fewer
than workers) or a Python list of PNG paths read in `map` (no file-reader op
for FILE sharding to find), so FILE or AUTO would fail or skew; DATA is
correct for both (each worker reads everything and keeps every N-th batch).
Pass `auto_shard_policy=tf.data.experimental.AutoShardPolicy.FILE` for large
TFRecord datasets with many more shards than workers. The batch size given
to `train_pipeline` is the GLOBAL batch; `model.fit` under a strategy's scope splits
it over the replicas.
"""

import tensorflow as tf

from keras_memseg.datasets import transforms
from keras_memseg.datasets.registry import get_info
from keras_memseg.layers.image_normalization import IMAGENET_MEAN
from keras_memseg.layers.image_normalization import IMAGENET_STD


def augment_config_for(name):
    """The training augmentation and test resize of dataset `name`
    (`get_info(name).augment`).

    Example:
    >>> augment_config_for("lip").rotate_prob
    0.6
    """
    return get_info(name).augment


def _standardise(example):
    """{"image": uint8 (H,W,3), "label": (H,W) or (H,W,1)} -> same with label (H,W) uint8.

    Float images must hold finite values in [0, 255] (a NaN would silently become 0)."""
    label = example["label"]
    if label.shape.rank == 3:
        label = label[..., 0]
    image = example["image"]
    if image.dtype.is_floating:
        image = tf.debugging.assert_all_finite(
            image, "an image of the dataset holds NaN/inf pixel values"
        )
    return {"image": tf.cast(image, tf.uint8), "label": tf.cast(label, tf.uint8)}


def augment_example(example, seed, config):
    """All training steps for one example; returns float32 (h,w,3) image, int32 (h,w) label.

    Args:
        example: {"image": uint8 (H, W, 3), "label": integer (H, W)}.
        seed: int32/int64 tensor of shape [2] (stateless seed).
        config: `AugmentConfig`.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)
    image = tf.cast(example["image"], tf.float32)
    label = tf.cast(example["label"], tf.int32)
    image, label = transforms.random_rescale(
        image, label, seeds[0], config.target_scale, config.ratio_range, config.keep_ratio
    )
    image, label = transforms.random_crop(
        image, label, seeds[1], config.crop_size, config.cat_max_ratio, config.ignore_class
    )
    if config.flip_prob > 0:
        image, label = transforms.random_flip(
            image, label, seeds[2], config.flip_prob, config.flip_pairs
        )
    if config.rotate_prob > 0:
        image, label = transforms.random_rotate(
            image, label, seeds[3], config.rotate_prob, config.rotate_degree, config.ignore_class
        )
    if config.photometric:
        image = transforms.photometric_distortion(image, seeds[4])
    image = transforms.normalize(image)
    return transforms.center_pad(image, label, config.crop_size, config.ignore_class)


def _with_options(ds, auto_shard_policy):
    """Deterministic, sharded as asked, and without tf.data's model autotuning.

    Autotuning off: its optimisation thread wakes after 10, 20, 40, ... ms (doubling
    up to a minute), and deleting the iterator waits for that wake-up, so a `fit`
    call (the trainer runs one per checkpoint segment) or an evaluation pass that ends
    between two wake-ups idles until the next one: a segment of 5.2 to 10.2 s takes
    10.23 s, one of 10.3 to 20.4 s takes 20.47 s, with both cores idle meanwhile.
    `AUTOTUNE` parallelism then means one call per core and the prefetch buffer still
    grows on demand (tf.data's legacy prefetch autotuner), which keeps up with these
    pipelines (`benchmarks/data_pipeline.py`).
    """
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    options.experimental_distribute.auto_shard_policy = auto_shard_policy
    return ds.with_options(options)


def train_pipeline(
    ds,
    config,
    batch_size,
    seed=None,
    shuffle_buffer=256,
    repeat=False,
    drop_remainder=True,
    auto_shard_policy=tf.data.experimental.AutoShardPolicy.DATA,
):
    """Augments, batches and prefetches `ds` for `model.fit`.

    Args:
        ds: dataset of {"image": uint8 (H,W,3), "label": (H,W) or (H,W,1)},
            e.g. from `keras_memseg.datasets.load`.
        config: `AugmentConfig` (see `augment_config_for`).
        batch_size: global batch size.
        seed: int for reproducible shuffling and augmentation; None = random.
        shuffle_buffer: shuffle buffer size (0 disables shuffling).
        repeat: repeat forever (then pass `steps_per_epoch` to fit).
        drop_remainder: drop the last partial batch (the reference does).
        auto_shard_policy: tf.data auto-shard policy (see the module docstring).

    Returns:
        dataset of `(image float32 (B, h, w, 3), label int32 (B, h, w))`.

    Example:
    >>> from keras_memseg.datasets import load
    >>> ds = train_pipeline(load("sample", "val"), augment_config_for("sample"), 2, seed=0)
    >>> image, label = next(iter(ds))
    >>> image.shape, label.dtype.name
    (TensorShape([2, 168, 224, 3]), 'int32')
    """
    ds = ds.map(transforms.plain_graph(_standardise), num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)
    ds = ds.map(
        transforms.plain_graph(lambda example, pair: augment_example(example, pair, config)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return _with_options(ds.prefetch(tf.data.AUTOTUNE), auto_shard_policy)


def eval_pipeline(
    ds,
    test_scale,
    keep_ratio=True,
    batch_size=1,
    auto_shard_policy=tf.data.experimental.AutoShardPolicy.DATA,
):
    """Resizes and normalises images for inference; keeps the original labels.

    Args:
        ds: dataset of {"image": uint8 (H,W,3), "label": (H,W) or (H,W,1)}.
        test_scale: `Resize` target, e.g. (2048, 512) (see `AugmentConfig`).
        keep_ratio: keep the aspect ratio.
        batch_size: 1 (default) or more; larger batches are padded
            bottom/right (image 0, label 255, see "original_size"/"image_size").

    Returns:
        dataset of {"image": float32 (B, h', w', 3) resized and normalised,
        "label": int32 (B, H, W) original labels, "original_size": int32 (B, 2)
        = (H, W), "image_size": int32 (B, 2) = (h', w')}. Predictions are
        meant to be upsampled to original_size before scoring.

    Example:
    >>> from keras_memseg.datasets import load
    >>> batch = next(iter(eval_pipeline(load("sample", "val"), (448, 336))))
    >>> batch["image"].shape, batch["label"].shape
    (TensorShape([1, 336, 448, 3]), TensorShape([1, 168, 224]))
    """

    def prepare(example):
        file_name = example.get("file_name")
        example = _standardise(example)
        if file_name is not None:
            example["file_name"] = file_name
        shape = tf.shape(example["label"])
        new_h, new_w = transforms.rescale_size(shape[0], shape[1], test_scale, keep_ratio)
        image = tf.image.resize(
            tf.cast(example["image"], tf.float32), [new_h, new_w], method="bilinear"
        )
        image = transforms.normalize(image, IMAGENET_MEAN, IMAGENET_STD)
        out = {
            "image": image,
            "label": tf.cast(example["label"], tf.int32),
            "original_size": shape[:2],
            "image_size": tf.stack([new_h, new_w]),
        }
        if "file_name" in example:
            out["file_name"] = example["file_name"]
        return out

    ds = ds.map(
        transforms.plain_graph(prepare), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if batch_size == 1:
        ds = ds.batch(1)
    else:
        ds = ds.padded_batch(
            batch_size,
            padding_values={
                "image": 0.0,
                "label": 255,
                "original_size": 0,
                "image_size": 0,
                **({"file_name": ""} if "file_name" in ds.element_spec else {}),
            },
        )
    return _with_options(ds.prefetch(tf.data.AUTOTUNE), auto_shard_policy)
