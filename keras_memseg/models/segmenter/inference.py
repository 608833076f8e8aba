"""Test-time inference of a segmenter: whole image, sliding window, multi-scale + flip, as the reference
(`ssseg/test.py` and mmsegmentation's `slide_inference`).

Everything is written with `keras.ops` on one image at a time (B = 1 is typical;
any B works), NHWC. `forward` is any callable mapping normalised images
(B, h, w, 3) to scores (B, h, w, K) at its input size, e.g. a `MemorySegmenter`
in inference mode (it already upsamples its 1/8 logits to the input size).
"""

import dataclasses
import math

import numpy as np
from keras import ops


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """How to turn a (test-resized) image into class scores at the original size.

    Args:
        mode: `"whole"` (one forward) or `"slide"` (overlapping crops averaged
            with a count map, as mmsegmentation's `slide_inference`).
        crop_size: (h, w) of the sliding window.
        stride: (h, w) step of the sliding window.
        scales: image scale factors (1.0 = the test-resized image).
        flip: also run the horizontally flipped image and flip the output back.
        flip_pairs: class pairs whose channels are swapped after flipping back
            (LIP left/right parts).
        probs_before_resize: softmax at network resolution before resizing to
            the output size (the reference's `use_probs_before_resize`); logits
            are averaged otherwise.

    Example:
    >>> InferenceConfig(mode="slide", crop_size=(1024, 512), stride=(341, 341)).mode
    'slide'
    """

    mode: str = "whole"
    crop_size: tuple = (512, 512)
    stride: tuple = (341, 341)
    scales: tuple = (1.0,)
    flip: bool = False
    flip_pairs: tuple = ()
    probs_before_resize: bool = False

    @classmethod
    def for_dataset(cls, spec):
        """The evaluation defaults of a `DatasetSpec` (`spec.evaluation`, its flip pairs)."""
        ev = spec.evaluation
        return cls(
            mode=ev.mode,
            crop_size=tuple(ev.crop_size),
            stride=tuple(ev.stride),
            scales=tuple(ev.scales),
            flip=ev.flip,
            flip_pairs=tuple(spec.flip_pairs),
            probs_before_resize=ev.probs_before_resize,
        )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def __post_init__(self):
        if self.mode not in ("whole", "slide"):
            raise ValueError(f"InferenceConfig.mode must be 'whole' or 'slide', got {self.mode!r}")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"InferenceConfig.scales must be positive, got {self.scales}")
        if min(self.crop_size) <= 0 or min(self.stride) <= 0:
            raise ValueError(f"crop_size {self.crop_size} and stride {self.stride} must be > 0")


def _resize(x, size):
    return ops.image.resize(
        ops.cast(x, "float32"), tuple(int(s) for s in size), interpolation="bilinear"
    )


def whole_inference(forward, images):
    """One forward pass: (B, h, w, 3) -> (B, h, w, K) float32."""
    return ops.cast(forward(images), "float32")


def window_starts(size, crop, stride):
    """Start offsets of mmsegmentation's sliding window along one axis.

    `n = max(size - crop + stride - 1, 0) // stride + 1` windows; the last ones
    are shifted back so that every window lies inside the image.

    Example:
    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(3, 4, 3)
    [0]
    """
    count = max(size - crop + stride - 1, 0) // stride + 1
    starts = []
    for i in range(count):
        end = min(i * stride + crop, size)
        starts.append(max(end - crop, 0))
    return starts


def slide_inference(forward, images, crop_size, stride, num_classes, softmax=False):
    """Sliding-window inference averaged with a count map: (B, H, W, 3) -> (B, H, W, K).

    Args:
        softmax: apply softmax per crop before accumulating (probs_before_resize).
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    crop_h, crop_w = (int(v) for v in crop_size)
    stride_h, stride_w = (int(v) for v in stride)
    batch = int(images.shape[0])
    total = np.zeros((batch, height, width, num_classes), np.float32)
    count = np.zeros((1, height, width, 1), np.float32)
    for y0 in window_starts(height, crop_h, stride_h):
        for x0 in window_starts(width, crop_w, stride_w):
            y1, x1 = min(y0 + crop_h, height), min(x0 + crop_w, width)
            scores = ops.cast(forward(images[:, y0:y1, x0:x1, :]), "float32")
            if softmax:
                scores = ops.softmax(scores, axis=-1)
            total[:, y0:y1, x0:x1, :] += ops.convert_to_numpy(scores)
            count[:, y0:y1, x0:x1, :] += 1.0
    return ops.convert_to_tensor(total / count)


def swap_channels(scores, flip_pairs):
    """Swaps the class channels of each (a, b) pair in `flip_pairs` (LIP)."""
    if not flip_pairs:
        return scores
    order = list(range(int(scores.shape[-1])))
    for a, b in flip_pairs:
        order[a], order[b] = b, a
    return ops.take(scores, np.asarray(order, "int32"), axis=-1)


def infer_runs(forward, images, num_classes, config=InferenceConfig()):
    """The score maps of each test-time run, each at its own run's resolution.

    For each scale s the image is resized by s (bilinear) and run whole or by sliding
    window (optionally softmaxed); with `config.flip` the flipped image too, its scores
    flipped back and its `flip_pairs` channels swapped. Yields (B, h_s, w_s, K)
    float32 per run, in order: what `infer` resizes to the output size and averages.
    A caller that resizes them itself (in tiles: `keras_memseg.predict`) never holds
    the full-resolution (B, H, W, K) scores.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    images = ops.cast(images, "float32")
    for scale in config.scales:
        size = (int(math.floor(height * scale + 0.5)), int(math.floor(width * scale + 0.5)))
        scaled = images if size == (height, width) else _resize(images, size)
        variants = [False, True] if config.flip else [False]
        for flipped in variants:
            x = ops.flip(scaled, axis=2) if flipped else scaled
            if config.mode == "slide":
                scores = slide_inference(
                    forward,
                    x,
                    config.crop_size,
                    config.stride,
                    num_classes,
                    softmax=config.probs_before_resize,
                )
            else:
                scores = whole_inference(forward, x)
                if config.probs_before_resize:
                    scores = ops.softmax(scores, axis=-1)
            if flipped:
                scores = swap_channels(ops.flip(scores, axis=2), config.flip_pairs)
            yield scores


def infer(forward, images, num_classes, config=InferenceConfig(), output_size=None):
    """Multi-scale (+ flip) inference averaged at `output_size`.

    For each scale s the image is resized by s (bilinear), run whole or by sliding
    window, optionally softmaxed, resized to `output_size` (default: the input
    size) and summed; flipped runs are flipped back and have their `flip_pairs`
    channels swapped (`infer_runs`). Returns the mean over runs, (B, H_out, W_out, K).
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    output_size = (height, width) if output_size is None else tuple(int(v) for v in output_size)
    total, runs = None, 0
    for scores in infer_runs(forward, images, num_classes, config):
        if tuple(scores.shape[1:3]) != output_size:
            scores = _resize(scores, output_size)
        total = scores if total is None else total + scores
        runs += 1
    return total / float(runs)
