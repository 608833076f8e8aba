"""Ignore-aware cross-entropy against a NumPy transcription (mean over valid pixels)."""

import numpy as np
import pytest

from keras_memseg.losses import SegmentationCrossEntropy
from keras_memseg.losses import masked_cross_entropy


def _numpy_ce(labels, logits, ignore_class=255):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != ignore_class
    picked = np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    return -(picked * valid).sum() / max(valid.sum(), 1)


def test_mean_over_valid_pixels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, 4)).astype("float32")
    labels = rng.integers(0, 4, (2, 5, 6)).astype("int32")
    labels[0, :2] = 255
    expected = _numpy_ce(labels, logits)
    np.testing.assert_allclose(float(masked_cross_entropy(labels, logits)), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(masked_cross_entropy(labels[..., None], logits)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(SegmentationCrossEntropy()(labels, logits)), expected, rtol=1e-5
    )


def test_all_ignored_is_zero_not_nan():
    logits = np.zeros((1, 2, 2, 3), "float32")
    assert float(masked_cross_entropy(np.full((1, 2, 2), 255, "int32"), logits)) == 0.0


def test_other_ignore_class():
    logits = np.random.default_rng(1).normal(size=(1, 3, 3, 3)).astype("float32")
    labels = np.array([[[0, 1, 2], [7, 7, 7], [2, 1, 0]]], "int32")
    np.testing.assert_allclose(
        float(masked_cross_entropy(labels, logits, ignore_class=7)),
        _numpy_ce(labels, logits, 7),
        rtol=1e-5,
    )


def test_out_of_range_labels_raise():
    logits = np.zeros((1, 1, 2, 3), "float32")
    with pytest.raises(Exception, match="label values must be in \\[0, 3\\)"):
        masked_cross_entropy(np.array([[[0, 5]]], "int32"), logits)


def test_config_round_trip():
    loss = SegmentationCrossEntropy(ignore_class=0)
    assert SegmentationCrossEntropy.from_config(loss.get_config()).ignore_class == 0


def test_flat_indices_widen_to_int64_past_int32():
    """The label pick is one gather on the flattened logits: int32 indices would wrap
    around past 2**31 - 1 elements, so the indices widen there (and for unknown sizes)."""
    from keras_memseg.losses.segmentation_cross_entropy import flat_index_dtype

    assert flat_index_dtype((2, 3, 4, 5)) == "int32"
    assert flat_index_dtype((2**16, 2**11, 2**4 - 1)) == "int32"
    assert flat_index_dtype((2**16, 2**11, 2**4)) == "int64"
    assert flat_index_dtype((None, 4, 4, 3)) == "int64"


def test_unknown_batch_size_gives_the_same_loss():
    """A `None` batch (a TensorFlow graph with a relaxed signature) takes int64 indices."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 5, 6, 4)).astype("float32")
    labels = rng.integers(0, 4, (2, 5, 6)).astype("int32")
    labels[1, 0] = 255
    loss = tf.function(
        lambda y, z: masked_cross_entropy(y, z, check_range=False),
        input_signature=[tf.TensorSpec((None, 5, 6), tf.int32), tf.TensorSpec((None, 5, 6, 4))],
    )
    np.testing.assert_allclose(float(loss(labels, logits)), _numpy_ce(labels, logits), rtol=1e-5)
