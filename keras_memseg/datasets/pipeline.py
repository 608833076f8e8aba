"""tf.data training and evaluation pipelines (mcibi.md section 4.1, per-dataset table 4.2).

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
to `train_pipeline` is the GLOBAL batch; `distribute(ds, strategy)` splits it
over replicas with `strategy.experimental_distribute_dataset`.
"""

import dataclasses

import tensorflow as tf

from keras_memseg.datasets import transforms
from keras_memseg.datasets.info import canonical_name
from keras_memseg.datasets.info import get_info
from keras_memseg.layers.image_normalization import IMAGENET_MEAN
from keras_memseg.layers.image_normalization import IMAGENET_STD


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation and test resizing settings for one dataset.

    Args:
        target_scale: `Resize` target. With `keep_ratio` only max/min matter
            ((long, short), e.g. (2048, 512)); without it, (w, h).
        ratio_range: the random ratio multiplying `target_scale`.
        keep_ratio: keep the aspect ratio when resizing.
        crop_size: (h, w) of the random crop and of the padded output.
        cat_max_ratio: a crop's largest valid class must stay below this share
            (10 tries); 1.0 disables the check.
        flip_prob: horizontal flip probability.
        flip_pairs: label pairs swapped by a flip (LIP).
        rotate_prob: probability of the LIP rotation (0 = off).
        rotate_degree: the rotation angle is an integer in [-d, d - 1].
        photometric: apply mmseg's PhotoMetricDistortion.
        ignore_label: label of padded / unlabelled pixels.
        test_scale: evaluation `Resize` target (same convention as target_scale).
        test_keep_ratio: keep the aspect ratio at evaluation.

    Example:
    >>> cfg = augment_config_for("cityscapes")
    >>> cfg.crop_size, cfg.target_scale
    ((512, 1024), (2048, 1024))
    """

    target_scale: tuple = (2048, 512)
    ratio_range: tuple = (0.5, 2.0)
    keep_ratio: bool = True
    crop_size: tuple = (512, 512)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    flip_pairs: tuple = ()
    rotate_prob: float = 0.0
    rotate_degree: int = 30
    photometric: bool = True
    ignore_label: int = 255
    test_scale: tuple = (2048, 512)
    test_keep_ratio: bool = True

    def __post_init__(self):
        for field in ("target_scale", "ratio_range", "crop_size", "test_scale"):
            value = getattr(self, field)
            if len(value) != 2 or min(value) <= 0:
                raise ValueError(f"AugmentConfig.{field} needs two positive numbers, got {value}")
        if self.ratio_range[0] > self.ratio_range[1]:
            raise ValueError(f"AugmentConfig.ratio_range {self.ratio_range} is decreasing")
        for field in ("flip_prob", "rotate_prob"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"AugmentConfig.{field} must be in [0, 1], got {getattr(self, field)}")
        if not 0.0 < self.cat_max_ratio <= 1.0:
            raise ValueError(f"AugmentConfig.cat_max_ratio must be in (0, 1], got {self.cat_max_ratio}")
        if not 0 <= self.ignore_label <= 255:
            raise ValueError(f"AugmentConfig.ignore_label must be in [0, 255], got {self.ignore_label}")


def augment_config_for(name):
    """Reference settings for `name` (mcibi.md table 4.2; CamVid/sample are ours).

    Example:
    >>> augment_config_for("lip").rotate_prob
    0.6
    """
    canonical = canonical_name(name)
    if canonical in ("ade20k", "coco_stuff10k", "coco_stuff164k"):
        return AugmentConfig()
    if canonical == "cityscapes":
        return AugmentConfig(
            target_scale=(2048, 1024), crop_size=(512, 1024), test_scale=(2048, 1024)
        )
    if canonical == "lip":
        return AugmentConfig(
            target_scale=(520, 520), ratio_range=(0.75, 1.25), keep_ratio=False,
            crop_size=(473, 473), flip_pairs=get_info("lip").flip_pairs,
            rotate_prob=0.6, rotate_degree=30, test_scale=(473, 473), test_keep_ratio=False,
        )
    if canonical == "camvid":  # not in the paper: native 480x360 as target.
        return AugmentConfig(target_scale=(480, 360), crop_size=(360, 480), test_scale=(480, 360))
    return AugmentConfig(  # sample: 224x168 frames.
        target_scale=(224, 168), crop_size=(168, 224), test_scale=(224, 168)
    )


def _standardise(example):
    """{"image": uint8 (H,W,3), "label": (H,W) or (H,W,1)} -> same with label (H,W) uint8."""
    label = example["label"]
    if label.shape.rank == 3:
        label = label[..., 0]
    return {"image": tf.cast(example["image"], tf.uint8), "label": tf.cast(label, tf.uint8)}


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
        image, label, seeds[1], config.crop_size, config.cat_max_ratio, config.ignore_label
    )
    if config.flip_prob > 0:
        image, label = transforms.random_flip(
            image, label, seeds[2], config.flip_prob, config.flip_pairs
        )
    if config.rotate_prob > 0:
        image, label = transforms.random_rotate(
            image, label, seeds[3], config.rotate_prob, config.rotate_degree, config.ignore_label
        )
    if config.photometric:
        image = transforms.photometric_distortion(image, seeds[4])
    image = transforms.normalize(image)
    return transforms.center_pad(image, label, config.crop_size, config.ignore_label)


def _with_options(ds, auto_shard_policy):
    options = tf.data.Options()
    options.deterministic = True
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
    ds = ds.map(_standardise, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)
    ds = ds.map(
        lambda example, pair: augment_example(example, pair, config),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return _with_options(ds.prefetch(tf.data.AUTOTUNE), auto_shard_policy)


def eval_pipeline(ds, test_scale, keep_ratio=True, batch_size=1,
                  auto_shard_policy=tf.data.experimental.AutoShardPolicy.DATA):
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
        example = _standardise(example)
        shape = tf.shape(example["label"])
        new_h, new_w = transforms.rescale_size(shape[0], shape[1], test_scale, keep_ratio)
        image = tf.image.resize(
            tf.cast(example["image"], tf.float32), [new_h, new_w], method="bilinear"
        )
        image = transforms.normalize(image, IMAGENET_MEAN, IMAGENET_STD)
        return {
            "image": image,
            "label": tf.cast(example["label"], tf.int32),
            "original_size": shape[:2],
            "image_size": tf.stack([new_h, new_w]),
        }

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batch_size == 1:
        ds = ds.batch(1)
    else:
        ds = ds.padded_batch(
            batch_size,
            padding_values={"image": 0.0, "label": 255, "original_size": 0, "image_size": 0},
        )
    return _with_options(ds.prefetch(tf.data.AUTOTUNE), auto_shard_policy)


def distribute(ds, strategy):
    """Splits a `train_pipeline`/`eval_pipeline` dataset over `strategy`'s replicas.

    Equivalent to `strategy.experimental_distribute_dataset(ds)`; the batch
    size given to the pipeline is the global batch. With `model.fit` under
    `strategy.scope()` Keras does this itself, so pass the plain dataset there.

    Example:
    >>> import tensorflow as tf
    >>> from keras_memseg.datasets import load
    >>> ds = train_pipeline(load("sample", "val"), augment_config_for("sample"), 2, seed=0)
    >>> dist = distribute(ds, tf.distribute.get_strategy())
    """
    return strategy.experimental_distribute_dataset(ds)
