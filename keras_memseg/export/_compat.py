"""Workaround, active only while export functions are traced: dynamic-size resizes.

`keras.ops.image.resize` (Keras 3.15) checks `size[0] <= 0` in Python, which fails
in a TF graph when the size is a symbolic tensor (an image whose height/width are
unknown at export time). `SegmenterBase.call` (final upsampling) and `PPM.call`
resize to such sizes, so a SavedModel accepting any H, W cannot be traced. While
tracing, `dynamic_resize()` routes resizes with tensor sizes to `tf.image.resize`,
exactly the op Keras's TensorFlow backend emits (ResizeBilinear, half-pixel
centres); static sizes go to Keras unchanged. The graph written keeps no trace of
the patch. Remove this module once the core layers resize with dynamic sizes.
"""

import contextlib
import threading

import keras
import tensorflow as tf

_LOCK = threading.Lock()


def _is_static(size):
    return all(isinstance(v, int) for v in size)


@contextlib.contextmanager
def dynamic_resize():
    """Context manager: `keras.ops.image.resize` accepts tensor sizes while active."""
    with _LOCK:
        original = keras.ops.image.resize

        def resize(images, size, interpolation="bilinear", antialias=False, **kwargs):
            if _is_static(size) or kwargs.get("data_format") == "channels_first" or any(
                    kwargs.get(k) for k in ("crop_to_aspect_ratio", "pad_to_aspect_ratio")):
                return original(images, size, interpolation=interpolation,
                                antialias=antialias, **kwargs)
            size = tf.stack([tf.cast(v, tf.int32) for v in size])
            return tf.image.resize(images, size, method=interpolation, antialias=antialias)

        keras.ops.image.resize = resize
        try:
            yield
        finally:
            keras.ops.image.resize = original
