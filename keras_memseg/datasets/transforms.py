"""Per-example augmentations in pure TensorFlow (graph-safe, stateless-seeded).

Every function takes `image` float32 (H, W, 3) on the 0-255 scale and/or
`label` int32 (H, W) plus a `seed` int32/int64 tensor of shape [2], and uses
only stateless random ops, so the same seed gives the same output on every
run. Labels are only ever gathered, resized with nearest neighbour, cropped,
flipped, rotated with nearest sampling or padded with the ignore value: their
values are never interpolated. Follows the reference's transforms
(`ssseg/modules/datasets/pipelines/transforms.py`).
"""

import math

import tensorflow as tf

from keras_memseg.layers.image_normalization import IMAGENET_MEAN
from keras_memseg.layers.image_normalization import IMAGENET_STD


def plain_graph(fn):
    """`fn` for `Dataset.map` without AutoGraph: the transforms use `tf.cond` and
    `tf.while_loop` themselves, and converting their source costs ~3.5 s per run
    (~2/3 of building the sample recipe's train and eval pipelines)."""
    return tf.autograph.experimental.do_not_convert(fn)


def _uniform(seed, minval=0.0, maxval=1.0):
    return tf.random.stateless_uniform([], seed, minval=minval, maxval=maxval)


def _resize_pair(image, label, new_h, new_w):
    # (H, W, 3) -> (new_h, new_w, 3); label resized by nearest, dtype kept.
    image = tf.image.resize(image, [new_h, new_w], method="bilinear")
    image = tf.clip_by_value(tf.round(image), 0.0, 255.0)  # like cv2's uint8 output
    label = tf.image.resize(label[..., None], [new_h, new_w], method="nearest")[..., 0]
    return image, label


def rescale_size(height, width, target_scale, keep_ratio, ratio=1.0):
    """Output (h, w) int32 of the reference `Resize` for a given random ratio.

    keep_ratio: factor `min(max(target)/max(h, w), min(target)/min(h, w))`
    with target = target_scale * ratio; otherwise `target_scale` is (w, h).

    Example:
    >>> [int(v) for v in rescale_size(360, 480, (2048, 512), True)]
    [512, 683]
    """
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    ratio = tf.cast(ratio, tf.float32)
    if keep_ratio:
        long_side = float(max(target_scale)) * ratio
        short_side = float(min(target_scale)) * ratio
        factor = tf.minimum(
            long_side / tf.maximum(height, width), short_side / tf.minimum(height, width)
        )
        new_h, new_w = height * factor, width * factor
    else:
        new_w, new_h = float(target_scale[0]) * ratio, float(target_scale[1]) * ratio
    return tf.cast(new_h + 0.5, tf.int32), tf.cast(new_w + 0.5, tf.int32)


def random_rescale(image, label, seed, target_scale, ratio_range, keep_ratio):
    """Random-ratio `Resize` (step 1): image bilinear, label nearest."""
    low, high = ratio_range
    ratio = _uniform(seed, low, high) if low != high else tf.constant(float(low))
    shape = tf.shape(image)
    new_h, new_w = rescale_size(shape[0], shape[1], target_scale, keep_ratio, ratio)
    return _resize_pair(image, label, new_h, new_w)


def _class_ok(label_crop, cat_max_ratio, ignore_class):
    counts = tf.math.bincount(
        tf.reshape(label_crop, [-1]), minlength=256, maxlength=256, dtype=tf.int32
    )
    counts = counts * tf.cast(tf.range(256) != ignore_class, tf.int32)
    total = tf.reduce_sum(counts)
    many = tf.math.count_nonzero(counts) > 1
    below = tf.cast(tf.reduce_max(counts), tf.float32) < cat_max_ratio * tf.cast(total, tf.float32)
    return tf.logical_and(many, below)


def random_crop(image, label, seed, crop_size, cat_max_ratio=0.75, ignore_class=255, max_tries=10):
    """`RandomCrop` (step 2) with the single-class cap.

    Up to `max_tries` offsets are drawn until the crop holds more than one
    valid class and none covers >= `cat_max_ratio` of the valid pixels;
    otherwise the last try is kept. A crop larger than the image is clipped
    to the image (the padding step fills the rest).
    """
    shape = tf.shape(label)
    crop_h = tf.minimum(crop_size[0], shape[0])
    crop_w = tf.minimum(crop_size[1], shape[1])
    margin_h, margin_w = shape[0] - crop_h, shape[1] - crop_w

    def offsets(attempt):
        u = tf.random.stateless_uniform(
            [2], tf.random.experimental.stateless_fold_in(seed, attempt)
        )
        top = tf.cast(u[0] * tf.cast(margin_h + 1, tf.float32), tf.int32)
        left = tf.cast(u[1] * tf.cast(margin_w + 1, tf.float32), tf.int32)
        return tf.minimum(top, margin_h), tf.minimum(left, margin_w)

    def check(top, left):
        crop = label[top : top + crop_h, left : left + crop_w]
        return _class_ok(crop, cat_max_ratio, ignore_class)

    top, left = offsets(0)
    if cat_max_ratio < 1.0 and max_tries > 1:

        def cond(attempt, top, left, ok):
            return tf.logical_and(attempt < max_tries, tf.logical_not(ok))

        def body(attempt, top, left, ok):
            top, left = offsets(attempt)
            return attempt + 1, top, left, check(top, left)

        _, top, left, _ = tf.while_loop(cond, body, (tf.constant(1), top, left, check(top, left)))
    image = image[top : top + crop_h, left : left + crop_w]
    label = label[top : top + crop_h, left : left + crop_w]
    return image, label


def swap_table(flip_pairs):
    """256-entry int32 table swapping each (a, b) pair, identity elsewhere.

    Example:
    >>> [int(v) for v in swap_table(((1, 2),))[:4]]
    [0, 2, 1, 3]
    """
    table = list(range(256))
    for left, right in flip_pairs:
        table[left], table[right] = right, left
    return tf.constant(table, tf.int32)


def random_flip(image, label, seed, prob=0.5, flip_pairs=()):
    """`RandomFlip` (step 3): horizontal with probability `prob`, swapping label pairs."""
    flip = _uniform(seed) < prob
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    if flip_pairs:
        table = swap_table(flip_pairs)
        label = tf.cond(flip, lambda: tf.gather(table, tf.reverse(label, [1])), lambda: label)
    else:
        label = tf.cond(flip, lambda: tf.reverse(label, [1]), lambda: label)
    return image, label


def rotation_transform(angle_degrees, height, width):
    """ImageProjectiveTransform parameters (output -> input) of cv2's rotation.

    Positive angles turn the content counter-clockwise about the image centre,
    as `cv2.getRotationMatrix2D(((w-1)/2, (h-1)/2), angle, 1)` does.
    """
    theta = angle_degrees * math.pi / 180.0
    cos, sin = tf.cos(theta), tf.sin(theta)
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    return tf.stack(
        [
            cos,
            -sin,
            cx - cos * cx + sin * cy,
            sin,
            cos,
            cy - sin * cx - cos * cy,
            0.0,
            0.0,
        ]
    )[None]


def rotate(image, label, angle_degrees, ignore_class=255):
    """Rotates image (bilinear, fill 0) and label (nearest, fill `ignore_class`)."""
    shape = tf.shape(label)
    transform = rotation_transform(tf.cast(angle_degrees, tf.float32), shape[0], shape[1])
    out_shape = shape[:2]
    image = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=out_shape,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    label = tf.raw_ops.ImageProjectiveTransformV3(
        images=label[None, ..., None],
        transforms=transform,
        output_shape=out_shape,
        fill_value=float(ignore_class),
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )[0, ..., 0]
    return image, label


def random_rotate(image, label, seed, prob=0.6, max_degree=30, ignore_class=255):
    """LIP `RandomRotation`: with `prob`, an integer angle in [-max_degree, max_degree - 1].

    The reference samples the image bicubically; the TF op offers bilinear,
    which is used here (labels are nearest either way).
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    angle = tf.floor(_uniform(seeds[1]) * (2 * max_degree)) - max_degree
    return tf.cond(
        _uniform(seeds[0]) < prob,
        lambda: rotate(image, label, angle, ignore_class),
        lambda: (image, label),
    )


def photometric_distortion(image, seed):
    """mmseg `PhotoMetricDistortion` (step 4) on a float (H, W, 3) 0-255 image.

    brightness +-32 (p 0.5); contrast x U(0.5, 1.5) (p 0.5), first or last at
    random; saturation x U(0.5, 1.5) (p 0.5); hue +-18 in OpenCV units of 2
    degrees, i.e. integer delta in [-18, 17] (p 0.5). Each step clips to
    [0, 255]. The reference's RGB2HSV-on-BGR quirk mirrors the hue circle, so
    a shift of d there is a shift of -d here; with a symmetric delta the
    distribution is the same.
    """
    s = tf.random.experimental.stateless_split(seed, 10)

    def chance(index):
        return _uniform(s[index]) < 0.5

    delta = _uniform(s[1], -32.0, 32.0)
    image = tf.clip_by_value(image + tf.where(chance(0), delta, 0.0), 0.0, 255.0)
    contrast_first = chance(2)
    alpha = tf.where(chance(3), _uniform(s[4], 0.5, 1.5), 1.0)
    image = tf.clip_by_value(image * tf.where(contrast_first, alpha, 1.0), 0.0, 255.0)
    do_saturation, do_hue = chance(5), chance(7)
    saturation = tf.where(do_saturation, _uniform(s[6], 0.5, 1.5), 1.0)
    hue_shift = tf.where(do_hue, tf.floor(_uniform(s[8], -18.0, 18.0)) / 180.0, 0.0)

    def hsv_jitter():
        hsv = tf.image.rgb_to_hsv(image / 255.0)
        hue = tf.math.floormod(hsv[..., 0] + hue_shift, 1.0)
        sat = tf.clip_by_value(hsv[..., 1] * saturation, 0.0, 1.0)
        rgb = tf.image.hsv_to_rgb(tf.stack([hue, sat, hsv[..., 2]], axis=-1))
        return tf.clip_by_value(rgb * 255.0, 0.0, 255.0)

    image = tf.cond(tf.logical_or(do_saturation, do_hue), hsv_jitter, lambda: image)
    return tf.clip_by_value(image * tf.where(contrast_first, 1.0, alpha), 0.0, 255.0)


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """`(image - mean) / std` per channel, 0-255 scale (step 5)."""
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def center_pad(image, label, crop_size, ignore_class=255):
    """Centred `Padding` to `crop_size` (step 6): image 0, label `ignore_class`.

    Returns tensors with the static shape (crop_h, crop_w[, 3]).
    """
    shape = tf.shape(label)
    pad_h = tf.maximum(crop_size[0] - shape[0], 0)
    pad_w = tf.maximum(crop_size[1] - shape[1], 0)
    paddings = [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2]]
    image = tf.pad(image, paddings + [[0, 0]], constant_values=0.0)
    label = tf.pad(label, paddings, constant_values=ignore_class)
    image = tf.ensure_shape(image, [crop_size[0], crop_size[1], 3])
    label = tf.ensure_shape(label, [crop_size[0], crop_size[1]])
    return image, label
