"""Pixel-wise softmax cross-entropy that skips the ignore class.

The reference's `CrossEntropyLoss` (`ssseg/modules/models/losses/crossentropyloss.py`):
softmax cross-entropy averaged over the pixels whose label is not ignored.
"""

import math

import keras
from keras import ops

from keras_memseg.losses import label_checks


def masked_cross_entropy(labels, logits, ignore_class=255, check_range=True):
    """Mean softmax cross-entropy over the pixels whose label is not `ignore_class`.

    Args:
        labels: int labels `(B, H, W)` or `(B, H, W, 1)`.
        logits: `(B, H, W, K)` logits at the label resolution.
        ignore_class: skipped label value.
        check_range: fail (TensorFlow graph assertion, eager check elsewhere) on a
            label outside `[0, K)` that is not `ignore_class`.

    Returns a float32 scalar; 0 when every pixel is ignored (never NaN).
    """
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == len(logits.shape):
        labels = labels[..., 0]
    labels = ops.cast(labels, "int32")
    num_classes = logits.shape[-1]
    if check_range:
        labels = label_checks.assert_labels_in_range(labels, num_classes, ignore_class)
    # Out-of-range labels never reach the gather (the check above reports them).
    valid = ops.not_equal(labels, ignore_class) & (labels >= 0) & (labels < num_classes)
    safe = ops.where(valid, labels, 0)
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    nll = -_pick_classes(log_probs, safe)
    weights = ops.cast(valid, "float32")
    return ops.sum(nll * weights) / ops.maximum(ops.sum(weights), 1.0)


def _pick_classes(values, classes):
    """`values[..., classes]` per pixel: one gather on the flattened values.

    The same numbers as `take_along_axis(values, classes[..., None], -1)`, which
    TensorFlow builds from broadcast index grids (~200 ops with its gradient, for
    each of a model's losses): a flat gather traces a quarter of that and its
    forward + backward run ~25 % faster (B=8, 128x128, 11 classes, 2-core CPU).
    """
    k = values.shape[-1]
    flat = ops.reshape(values, (-1,))
    dtype = flat_index_dtype(values.shape)
    if dtype == "int64" and keras.backend.backend() == "jax" and not _jax_x64_enabled():
        raise ValueError(
            f"cross-entropy over logits of shape {tuple(values.shape)} needs 64-bit "
            "indices: set JAX_ENABLE_X64=1 or use a smaller batch"
        )
    index = ops.arange(ops.shape(flat)[0] // k, dtype=dtype) * k + ops.cast(
        ops.reshape(classes, (-1,)), dtype
    )
    return ops.reshape(ops.take(flat, index), ops.shape(classes))


def flat_index_dtype(shape):
    """int32 while every flat index of `shape` fits in it; int64 past 2**31 - 1
    elements or for an unknown size: an index never wraps around."""
    if None in tuple(shape) or math.prod(shape) >= 2**31:
        return "int64"
    return "int32"


def _jax_x64_enabled():
    import jax

    return bool(jax.config.jax_enable_x64)


@keras.saving.register_keras_serializable(package="keras_memseg")
class SegmentationCrossEntropy(keras.losses.Loss):
    """`keras.losses.Loss` wrapper of `masked_cross_entropy` (for `compile(loss=...)`).

    Example:
    >>> import numpy as np
    >>> loss = SegmentationCrossEntropy(ignore_class=255)
    >>> labels = np.array([[[0, 255]]], "int32")
    >>> logits = np.zeros((1, 1, 2, 3), "float32")
    >>> round(float(loss(labels, logits)), 4)   # log(3) over the one valid pixel
    1.0986
    """

    def __init__(self, ignore_class=255, name="segmentation_cross_entropy", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)
        self.ignore_class = int(ignore_class)

    def call(self, y_true, y_pred):
        return masked_cross_entropy(y_true, y_pred, self.ignore_class)

    def get_config(self):
        return {"name": self.name, "ignore_class": self.ignore_class}
