"""TorchBatchNormalization: PyTorch's BatchNorm2d, number for number (NumPy oracle)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.layers.torch_batch_norm import TorchBatchNormalization


def _numpy_batch_norm_step(x, mean, var, gamma, beta, momentum=0.1, eps=1e-5):
    """One training step of torch.nn.BatchNorm2d (NHWC here): output and statistics."""
    axes = tuple(range(x.ndim - 1))
    n = np.prod([x.shape[a] for a in axes])
    batch_mean, batch_var = x.mean(axes), x.var(axes)  # biased: normalises the batch
    out = gamma * (x - batch_mean) / np.sqrt(batch_var + eps) + beta
    new_mean = (1 - momentum) * mean + momentum * batch_mean
    new_var = (1 - momentum) * var + momentum * batch_var * n / (n - 1)  # unbiased
    return out, new_mean, new_var


# 2D: the memory rows (n = K) that decoder_stage2's BN sees in the memory loss.
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (5, 1, 1, 5), (2, 1, 1, 5), (7, 5), (2, 3, 5)])
def test_training_step_equals_pytorch(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32") * 3 + 1
    bn = TorchBatchNormalization(momentum=0.9, epsilon=1e-5)
    bn.build(shape)
    mean, var = rng.normal(size=5).astype("float32"), rng.uniform(0.5, 2, 5).astype("float32")
    gamma, beta = rng.uniform(0.5, 2, 5).astype("float32"), rng.normal(size=5).astype("float32")
    bn.set_weights([gamma, beta, mean, var])
    out = bn(x, training=True)
    ref_out, ref_mean, ref_var = _numpy_batch_norm_step(x.astype("float64"), mean, var, gamma, beta)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.numpy(), ref_mean, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), ref_var, rtol=1e-5)
    # Inference uses the moving statistics, as Keras' BatchNormalization.
    keras_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    keras_bn.build(shape)
    keras_bn.set_weights(bn.get_weights())
    np.testing.assert_allclose(bn(x, training=False), keras_bn(x, training=False), atol=1e-6)


def _numpy_batch_norm_backward(x, gamma, dy, eps=1e-5):
    """d(sum(out * dy)) / d(x, gamma, beta) for a training batch (biased variance)."""
    axes = tuple(range(x.ndim - 1))
    n = np.prod([x.shape[a] for a in axes])
    std = np.sqrt(x.var(axes) + eps)
    xhat = (x - x.mean(axes)) / std
    dx = gamma / std * (dy - dy.sum(axes) / n - xhat * (dy * xhat).sum(axes) / n)
    return dx, (dy * xhat).sum(axes), dy.sum(axes)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7, 5)])
@pytest.mark.parametrize("scale_center", [(True, True), (False, False)])
def test_training_gradients_equal_the_analytic_ones(shape, scale_center):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape).astype("float32") * 2 - 1
    dy = rng.normal(size=shape).astype("float32")
    scale, center = scale_center
    bn = TorchBatchNormalization(scale=scale, center=center, epsilon=1e-5)
    bn.build(shape)
    gamma = rng.uniform(0.5, 2, 5).astype("float32") if scale else np.ones(5, "float32")
    if scale:
        bn.gamma.assign(gamma)
    x_var = keras.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(bn(x_var, training=True) * dy)
    grads = tape.gradient(loss, [x_var.value] + [w.value for w in bn.trainable_weights])
    ref_dx, ref_dgamma, ref_dbeta = _numpy_batch_norm_backward(x.astype("float64"), gamma, dy)
    np.testing.assert_allclose(grads[0], ref_dx, atol=2e-5)
    expected = ([ref_dgamma] if scale else []) + ([ref_dbeta] if center else [])
    for got, ref in zip(grads[1:], expected):
        np.testing.assert_allclose(got, ref, atol=5e-5)


def test_unknown_batch_size_counts_values_at_run_time():
    """n for the unbiased variance comes from the run-time shape when it is not static."""
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    bn = TorchBatchNormalization(momentum=0.0)
    bn.build((None, 4))
    tf.function(lambda v: bn(v, training=True), input_signature=[tf.TensorSpec((None, 4))])(x)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(0) * 3 / 2, rtol=1e-5)


def test_serialization_and_dtype():
    bn = TorchBatchNormalization(momentum=0.9, dtype="mixed_bfloat16", name="bn")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(bn))
    assert isinstance(clone, TorchBatchNormalization)
    assert clone.get_config() == bn.get_config()
    out = bn(np.ones((2, 2, 2, 3), "float32"), training=True)
    assert out.dtype == "bfloat16" and bn.moving_variance.dtype == "float32"


def test_weights_saved_with_keras_batch_normalization_load(tmp_path):
    """A functional model keys BN weights by class name: ours answers to Keras' name."""

    def functional(bn_class):
        inputs = keras.Input((4, 4, 3))
        x = keras.layers.Conv2D(3, 1)(inputs)
        return keras.Model(inputs, bn_class()(bn_class()(x)))

    old = functional(keras.layers.BatchNormalization)
    rng = np.random.default_rng(0)
    for w in old.weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    old.save_weights(str(tmp_path / "old.weights.h5"))
    new = functional(TorchBatchNormalization)
    new.load_weights(str(tmp_path / "old.weights.h5"))
    for a, b in zip(old.weights, new.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
