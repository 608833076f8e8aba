"""ImageNet mean/std normalisation on the 0-255 scale, as the reference uses."""

import keras
from keras import ops

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@keras.saving.register_keras_serializable(package="keras_memseg")
class ImageNormalization(keras.layers.Layer):
    """Maps RGB pixels in [0, 255] to `(x - mean) / std` per channel.

    The training pipeline normalises on the host; exported models carry this
    layer so that TF Serving and TFLite need no Python of ours.

    Args:
        mean: per-channel mean on the 0-255 scale.
        std: per-channel standard deviation on the 0-255 scale.

    Example:
    >>> import numpy as np
    >>> layer = ImageNormalization()
    >>> out = layer(np.full((1, 2, 2, 3), 123.675, "float32"))
    >>> round(float(out[0, 0, 0, 0]), 4)
    0.0
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs):
        super().__init__(**kwargs)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values each, got {mean} and {std}")
        if min(std) <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "std": self.std})
        return config
