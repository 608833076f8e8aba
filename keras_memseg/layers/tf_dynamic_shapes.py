"""TensorFlow-only: ops on sizes known only at run time (graphs with unknown H, W)."""

import tensorflow as tf


def resize_bilinear(x, size):
    size = tf.stack([tf.cast(s, tf.int32) for s in size])
    out = tf.image.resize(x, size, method="bilinear", antialias=False)
    return tf.cast(out, x.dtype)
