"""`SegmenterPreprocessor`: how a segmenter wants its raw images, saved with it.

Raw RGB pixels (uint8, or float on the 0-255 scale) are normalised with `mean` / `std`
(`call`), resized to the dataset's test scale (`resize_size`, mmsegmentation's
`Resize`), and run whole or by sliding window, at `scales`, optionally flipped
(`inference_config`). `Segmenter.segment` does all of it; `keras_memseg.predict` reads
the same settings. As KerasHub's `ImageSegmenterPreprocessor`, it is a layer with a
config and no weights.
"""

import math

import keras
from keras import ops

from keras_memseg.layers.image_normalization import IMAGENET_MEAN
from keras_memseg.layers.image_normalization import IMAGENET_STD
from keras_memseg.models.segmenter.inference import InferenceConfig

MODES = ("whole", "slide")


def test_resize_size(height, width, test_scale=None, keep_ratio=True, max_size=None):
    """(h, w) an (H, W) image is resized to before the model: mmsegmentation's test
    `Resize` (pure Python; the same sizes as `keras_memseg.datasets.transforms.
    rescale_size`), then `max_size` caps the long side (never enlarging).

    `test_scale` follows mmsegmentation: with `keep_ratio` only its max / min matter
    ((long, short): the image is scaled by `min(long / max(H, W), short / min(H, W))`);
    without it, it is (w, h). None keeps (H, W).

    Example:
    >>> test_resize_size(360, 480, test_scale=(2048, 512))
    (512, 683)
    >>> test_resize_size(360, 480, test_scale=(473, 400), keep_ratio=False)
    (400, 473)
    >>> test_resize_size(168, 224, max_size=112)
    (84, 112)
    """
    height, width = int(height), int(width)
    if test_scale is not None:
        if keep_ratio:
            factor = min(max(test_scale) / max(height, width), min(test_scale) / min(height, width))
            new_h, new_w = height * factor, width * factor
        else:
            new_w, new_h = float(test_scale[0]), float(test_scale[1])
        height, width = int(math.floor(new_h + 0.5)), int(math.floor(new_w + 0.5))
    if max_size is not None and max(height, width) > max_size:
        factor = max_size / max(height, width)
        height = max(1, int(math.floor(height * factor + 0.5)))
        width = max(1, int(math.floor(width * factor + 0.5)))
    return max(height, 1), max(width, 1)


def _pair(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    try:
        out = tuple(int(v) for v in value)
        ok = len(out) == 2 and min(out) > 0 and all(float(v) == int(v) for v in value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be two positive integers, got {value!r}")
    return out


def _triple(name, value):
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ValueError(
            f"{name} must be three numbers (R, G, B on the 0-255 scale), got {value!r}"
        )
    return out


@keras.saving.register_keras_serializable(package="keras_memseg")
class SegmenterPreprocessor(keras.layers.Layer):
    """Normalisation, test resize and inference mode of a segmenter (no weights).

    Args:
        mean: per-channel mean on the 0-255 scale (ImageNet's).
        std: per-channel standard deviation on the 0-255 scale (ImageNet's).
        test_scale: the test `Resize` target in mmsegmentation's convention: (long,
            short) with `keep_ratio` (ADE20K (2048, 512)), else (w, h); None keeps
            each image's own size.
        keep_ratio: keep the aspect ratio when resizing.
        mode: `"whole"` (one forward pass) or `"slide"` (overlapping windows).
        slide_window: (h, w) of the sliding window.
        slide_stride: (h, w) step of the sliding window.
        scales: test-time scale factors of the resized image (1.0).
        flip: also run the horizontally flipped image.
        flip_pairs: class pairs swapped in flipped runs (LIP left/right parts).
        probs_before_resize: average softmax probabilities instead of logits.

    Example:
    >>> import numpy as np
    >>> pre = SegmenterPreprocessor(test_scale=(64, 32))
    >>> pre.resize_size(120, 160)
    (32, 43)
    >>> out = pre(np.full((1, 2, 2, 3), 123.675, "float32"))
    >>> round(float(out[0, 0, 0, 0]), 4)
    0.0
    >>> SegmenterPreprocessor.from_config(pre.get_config()).test_scale
    (64, 32)
    """

    def __init__(
        self,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        test_scale=None,
        keep_ratio=True,
        mode="whole",
        slide_window=(512, 512),
        slide_stride=(341, 341),
        scales=(1.0,),
        flip=False,
        flip_pairs=(),
        probs_before_resize=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mean = _triple("mean", mean)
        self.std = _triple("std", std)
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {std!r}")
        self.test_scale = _pair("test_scale", test_scale, allow_none=True)
        self.keep_ratio = bool(keep_ratio)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.slide_window = _pair("slide_window", slide_window)
        self.slide_stride = _pair("slide_stride", slide_stride)
        try:
            self.scales = tuple(float(s) for s in scales)
        except (TypeError, ValueError):
            self.scales = ()
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales!r}")
        self.flip = bool(flip)
        self.flip_pairs = tuple(tuple(int(v) for v in pair) for pair in flip_pairs)
        if any(len(pair) != 2 for pair in self.flip_pairs):
            raise ValueError(f"flip_pairs must be (a, b) class pairs, got {flip_pairs!r}")
        self.probs_before_resize = bool(probs_before_resize)

    @classmethod
    def from_dataset(cls, spec, **overrides):
        """The test settings of a `DatasetSpec` (duck-typed: `spec.augment.test_scale`,
        `.test_keep_ratio`, `spec.evaluation` and `spec.flip_pairs`), ImageNet
        normalisation; `overrides` replace any argument."""
        augment, evaluation = spec.augment, spec.evaluation
        args = {
            "test_scale": tuple(augment.test_scale) if augment.test_scale else None,
            "keep_ratio": bool(augment.test_keep_ratio),
            "mode": evaluation.mode,
            "slide_window": tuple(evaluation.crop_size),
            "slide_stride": tuple(evaluation.stride),
            "scales": tuple(evaluation.scales),
            "flip": bool(evaluation.flip),
            "flip_pairs": tuple(getattr(spec, "flip_pairs", ()) or ()),
            "probs_before_resize": bool(getattr(evaluation, "probs_before_resize", False)),
        }
        args.update(overrides)
        return cls(**args)

    def call(self, images):
        # (B, H, W, 3) 0-255 (uint8 or float) -> normalised float32
        x = ops.cast(images, "float32")
        mean = ops.convert_to_tensor(self.mean, "float32")
        std = ops.convert_to_tensor(self.std, "float32")
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, images):
        return keras.KerasTensor(images.shape, "float32")

    def resize_size(self, height, width, max_size=None):
        """(h, w) the model runs an (H, W) image at (`test_resize_size`)."""
        return test_resize_size(height, width, self.test_scale, self.keep_ratio, max_size)

    def inference_config(self, **changes):
        """The `InferenceConfig` of these settings (`changes` replace fields)."""
        config = InferenceConfig(
            mode=self.mode,
            crop_size=self.slide_window,
            stride=self.slide_stride,
            scales=self.scales,
            flip=self.flip,
            flip_pairs=self.flip_pairs,
            probs_before_resize=self.probs_before_resize,
        )
        return config.replace(**changes) if changes else config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mean": list(self.mean),
                "std": list(self.std),
                "test_scale": None if self.test_scale is None else list(self.test_scale),
                "keep_ratio": self.keep_ratio,
                "mode": self.mode,
                "slide_window": list(self.slide_window),
                "slide_stride": list(self.slide_stride),
                "scales": list(self.scales),
                "flip": self.flip,
                "flip_pairs": [list(p) for p in self.flip_pairs],
                "probs_before_resize": self.probs_before_resize,
            }
        )
        return config
