"""Label-range checks that fail loudly instead of training on garbage.

TensorFlow: a graph assertion (`tf.debugging.assert_*`), which XLA drops when
compiling (the data pipeline validates labels too). PyTorch and eager JAX: a
Python check. Traced JAX code cannot raise; the datasets validate labels there.
"""

import keras
import numpy as np
from keras import ops


def _message(num_classes, ignore_index):
    return (f"label values must be in [0, {num_classes}) or equal to the ignore label "
            f"{ignore_index}; map your dataset's ids to training ids first")


def assert_labels_in_range(labels, num_classes, ignore_index):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        bad = tf.logical_and(tf.not_equal(labels, ignore_index),
                             tf.logical_or(labels < 0, labels >= num_classes))
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(bad)),
            [_message(num_classes, ignore_index), "offending values:",
             tf.boolean_mask(labels, bad)[:10]],
        )
        with tf.control_dependencies([check]):
            return tf.identity(labels)
    if backend == "jax":
        import jax

        if isinstance(labels, jax.core.Tracer):
            return labels
    values = np.asarray(ops.convert_to_numpy(labels))
    bad = (values != ignore_index) & ((values < 0) | (values >= num_classes))
    if bad.any():
        raise ValueError(f"{_message(num_classes, ignore_index)}; found {np.unique(values[bad])[:10]}")
    return labels
