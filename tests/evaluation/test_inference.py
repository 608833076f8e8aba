"""Whole / slide / multi-scale + flip inference against NumPy transcriptions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.evaluation import InferenceConfig
from keras_memseg.evaluation import infer
from keras_memseg.evaluation import slide_inference
from keras_memseg.evaluation import swap_channels
from keras_memseg.evaluation import window_starts


def pointwise_model(k=5, seed=0):
    """A 1x1-conv model: no padding effects, so windows must agree with the whole image."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(k, 1)(inputs))


def test_window_starts_match_mmseg():
    # mmseg: h_grids = max(H - h_crop + h_stride - 1, 0) // h_stride + 1, last window shifted back
    for size, crop, stride in [(37, 16, 11), (16, 16, 5), (10, 16, 4), (100, 32, 32)]:
        grids = max(size - crop + stride - 1, 0) // stride + 1
        expected = [max(min(i * stride + crop, size) - crop, 0) for i in range(grids)]
        assert window_starts(size, crop, stride) == expected
        assert window_starts(size, crop, stride)[-1] + min(crop, size) == size


@pytest.mark.parametrize("softmax", [False, True])
def test_slide_equals_whole_for_pointwise_model(softmax):
    model = pointwise_model()
    x = np.random.default_rng(0).normal(size=(1, 37, 29, 3)).astype("float32")  # not multiples
    whole = model(x).numpy()
    if softmax:
        whole = tf.nn.softmax(whole).numpy()
    slide = slide_inference(model, x, (16, 12), (11, 7), 5, softmax=softmax)
    np.testing.assert_allclose(np.asarray(slide), whole, rtol=1e-5, atol=1e-6)
    cfg = InferenceConfig(mode="slide", crop_size=(16, 12), stride=(11, 7))
    np.testing.assert_allclose(
        np.asarray(infer(model, x, 5, cfg)), model(x).numpy(), rtol=1e-5, atol=1e-6
    )


def position_model(x):
    """Scores that depend on the column, so flipping matters: (B, H, W, 4)."""
    b, h, w = x.shape[0], x.shape[1], x.shape[2]
    col = tf.cast(tf.range(w), tf.float32)[None, None, :, None] * tf.ones((b, h, 1, 1))
    return tf.concat([x[..., :1] + col, x[..., 1:2] - col, x[..., 2:3] * 2.0, col * 0.5], -1)


def test_flip_tta_with_channel_swap():
    x = np.random.default_rng(1).normal(size=(1, 6, 9, 3)).astype("float32")
    cfg = InferenceConfig(flip=True, flip_pairs=((0, 1),))
    out = np.asarray(infer(position_model, x, 4, cfg))
    plain = position_model(x).numpy()
    flipped = position_model(x[:, :, ::-1]).numpy()[:, :, ::-1][..., [1, 0, 2, 3]]
    np.testing.assert_allclose(out, (plain + flipped) / 2, rtol=1e-5, atol=1e-5)


def test_flip_tta_of_mirror_consistent_model_is_identity():
    # f(flip x) = swap(flip f(x)) => TTA(x) == f(x): the LIP left/right contract.
    def mirror_model(x):  # "left part" = image-left half, "right part" = right half
        w = x.shape[2]
        left_half = tf.cast(tf.range(w) < w // 2, tf.float32)[None, None, :, None]
        left, right = x[..., :1] * left_half, x[..., :1] * (1.0 - left_half)
        return tf.concat([x[..., 1:2], left, right], -1)

    x0 = np.random.default_rng(2).normal(size=(1, 5, 8, 3)).astype("float32")
    # Without the swap the flipped run would disagree:
    unswapped = infer(mirror_model, x0, 3, InferenceConfig(flip=True))
    assert not np.allclose(np.asarray(unswapped), mirror_model(x0).numpy())

    x = np.random.default_rng(2).normal(size=(1, 5, 8, 3)).astype("float32")
    out = infer(mirror_model, x, 3, InferenceConfig(flip=True, flip_pairs=((1, 2),)))
    np.testing.assert_allclose(np.asarray(out), mirror_model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_swap_channels():
    scores = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    swapped = np.asarray(swap_channels(scores, ((1, 2), (4, 5))))
    assert swapped.ravel().tolist() == [0, 2, 1, 3, 5, 4]


def test_multiscale_softmax_before_resize_to_output_size():
    model = pointwise_model(k=3)
    x = np.random.default_rng(3).normal(size=(1, 16, 20, 3)).astype("float32")
    cfg = InferenceConfig(scales=(0.5, 1.0), flip=False, probs_before_resize=True)
    out = np.asarray(infer(model, x, 3, cfg, output_size=(24, 30)))
    expected = 0
    for s in (0.5, 1.0):
        xs = tf.image.resize(x, (int(16 * s), int(20 * s))) if s != 1.0 else x
        probs = tf.nn.softmax(model(xs))
        expected = expected + tf.image.resize(probs, (24, 30)).numpy()
    np.testing.assert_allclose(out, expected / 2, rtol=1e-5, atol=1e-6)
    assert out.shape == (1, 24, 30, 3)


def test_infer_runs_are_the_runs_before_the_resize():
    # One map per scale and flip, each at its run's size (what predict resizes in tiles).
    from keras_memseg.evaluation import infer_runs

    x = np.random.default_rng(4).normal(size=(1, 8, 12, 3)).astype("float32")
    cfg = InferenceConfig(scales=(0.5, 1.0), flip=True, flip_pairs=((0, 1),))
    runs = [np.asarray(r) for r in infer_runs(position_model, x, 4, cfg)]
    assert [r.shape for r in runs] == [(1, 4, 6, 4)] * 2 + [(1, 8, 12, 4)] * 2
    plain = position_model(x).numpy()
    flipped = position_model(x[:, :, ::-1]).numpy()[:, :, ::-1][..., [1, 0, 2, 3]]
    np.testing.assert_allclose(runs[2], plain, rtol=1e-6)
    np.testing.assert_allclose(runs[3], flipped, rtol=1e-6)
    mean = sum(tf.image.resize(r, (8, 12)).numpy() for r in runs) / 4
    np.testing.assert_allclose(np.asarray(infer(position_model, x, 4, cfg)), mean, rtol=1e-6)
