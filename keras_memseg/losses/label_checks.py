"""Label-range checks that fail loudly instead of training on garbage.

TensorFlow: a graph assertion (`tf.debugging.assert_*`), which XLA drops when
compiling (the data pipeline validates labels too). PyTorch and eager JAX: a
Python check. Traced JAX code cannot raise; the datasets validate labels there.
"""

import keras
import numpy as np
from keras import ops


def _message(num_classes, ignore_class):
    return (
        f"label values must be in [0, {num_classes}) or equal to the ignore class "
        f"{ignore_class}; map your dataset's ids to training ids first"
    )


def check_label_shape(label_shape, image_shape=None):
    """Static checks of a label batch's shape: `(B, H, W)` or `(B, H, W, 1)`, with the
    height and width of the images where both are known. Raises `ValueError`."""
    label_shape = tuple(label_shape)
    if len(label_shape) == 4 and label_shape[-1] not in (1, None):
        raise ValueError(
            f"labels must be (B, H, W) or (B, H, W, 1) class ids, got shape {label_shape} "
            "(RGB colour labels? map them to class ids first)"
        )
    if len(label_shape) not in (3, 4):
        raise ValueError(
            f"labels must be (B, H, W) or (B, H, W, 1) class ids, got shape {label_shape}"
        )
    if image_shape is not None and len(image_shape) == 4:
        label_hw, image_hw = label_shape[1:3], tuple(image_shape[1:3])
        if None not in label_hw + image_hw and label_hw != image_hw:
            raise ValueError(
                f"labels of size {label_hw} do not match images of size {image_hw}: "
                "each label map must have its image's height and width"
            )


def labels_in_range(labels, num_classes, ignore_class):
    """A scalar bool: every label is in `[0, num_classes)` or equals `ignore_class`."""
    ok = ops.logical_or(
        ops.equal(labels, ignore_class),
        ops.logical_and(ops.greater_equal(labels, 0), ops.less(labels, num_classes)),
    )
    return ops.all(ok)


def to_class_id_map(labels, images):
    """TensorFlow graphs with unknown label shapes (Keras retraces `fit` with relaxed
    shapes): `(B, H, W)` labels from `(B, H, W)` or `(B, H, W, 1)`, asserted at run
    time to be one channel of class ids with the images' height and width. The
    assertions run before any variable is assigned after them."""
    import tensorflow as tf

    labels = tf.convert_to_tensor(labels)
    shape = tf.shape(labels)
    checks = [
        tf.debugging.assert_rank_in(
            labels,
            [3, 4],
            message="labels must be (B, H, W) or (B, H, W, 1) class ids",
        ),
    ]
    with tf.control_dependencies(checks):
        flat = tf.reduce_prod(shape[:3])
        checks.append(
            tf.debugging.assert_equal(
                tf.size(labels),
                flat,
                message="labels must be (B, H, W) or (B, H, W, 1) class ids, got more "
                "than one channel (RGB colour labels? map them to class ids first)",
            )
        )
        if images is not None:
            checks.append(
                tf.debugging.assert_equal(
                    shape[1:3],
                    tf.shape(images)[1:3],
                    message="labels do not match the size of the images: each label map "
                    "must have the height and width of its image",
                )
            )
    with tf.control_dependencies(checks):
        labels = tf.reshape(labels, shape[:3])
    labels.set_shape([None, None, None])
    return labels


def assert_labels_in_range(labels, num_classes, ignore_class, after=()):
    """Fails when a label is outside `[0, num_classes)` and not `ignore_class`; returns
    `labels`, on TensorFlow under the check's control dependency (so that everything
    computed from them, gradients included, waits for the check). `after`: variables
    whose current value the check waits for (state put back before failing)."""
    result = labels
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        bad = tf.logical_and(
            tf.not_equal(labels, ignore_class), tf.logical_or(labels < 0, labels >= num_classes)
        )
        reads = [ops.convert_to_tensor(v) for v in after]  # each after its last assign
        with tf.control_dependencies(reads):
            check = tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(bad)),
                [
                    _message(num_classes, ignore_class),
                    "offending values:",
                    tf.boolean_mask(labels, bad)[:10],
                ],
            )
        with tf.control_dependencies([check]):
            return tf.identity(result)
    if backend == "jax":
        import jax

        if isinstance(labels, jax.core.Tracer):
            return result
    values = np.asarray(ops.convert_to_numpy(labels))
    bad = (values != ignore_class) & ((values < 0) | (values >= num_classes))
    if bad.any():
        raise ValueError(
            f"{_message(num_classes, ignore_class)}; found {np.unique(values[bad])[:10]}"
        )
    return result
