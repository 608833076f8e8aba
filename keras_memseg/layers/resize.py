"""Bilinear (half-pixel, no antialias) resize that also accepts dynamic sizes.

`keras.ops.image.resize` validates `size` in Python, so a size that is only known at
run time (a TensorFlow graph traced with unknown H, W: exports serving any image
size, `predict` after a retrace) cannot go through it. Static sizes use `keras.ops`;
dynamic ones only occur on TensorFlow and use the same TF op Keras would emit.
"""

from keras import ops


def _is_static(size):
    return all(isinstance(s, int) for s in size)


def bilinear_resize(x, size):
    """Resizes NHWC `x` to `size = (H, W)` (ints or scalar tensors)."""
    size = tuple(size)
    if _is_static(size):
        return ops.image.resize(x, size, interpolation="bilinear")
    from keras_memseg.layers import tf_dynamic_shapes

    return tf_dynamic_shapes.resize_bilinear(x, size)
