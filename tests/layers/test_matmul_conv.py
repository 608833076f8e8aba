"""MatmulConv2D == keras.layers.Conv2D (forward and gradients), strategy, serialisation, wiring.

The oracle is Keras' own `Conv2D` with the same weights (TensorFlow's convolution
kernels and, dilated, its SpaceToBatchND path, independent of matmuls and tap sums) and, once, a NumPy loop over
taps and pixels. JAX and torch run `matmul_conv_backend_check.py` in a fresh
process with `KERAS_BACKEND` set.
"""

import doctest
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_memseg
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.layers import ASPP
from keras_memseg.layers import ConvBNAct
from keras_memseg.layers import matmul_conv
from keras_memseg.layers.matmul_conv import MatmulConv2D
from keras_memseg.layers.matmul_conv import in_map_fraction
from keras_memseg.layers.matmul_conv import strategy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ATOL = 1e-5

# (batch, height, width, cin, cout, kernel, rate, bias); TensorFlow's strategy below
CASES = [
    (2, 8, 8, 3, 4, 1, 1, True),  # 1x1: one matmul
    (1, 5, 7, 6, 2, 1, 1, False),
    (2, 6, 5, 128, 128, 3, 1, True),  # wide, undilated: all nine taps, eight partial
    (2, 8, 8, 3, 4, 3, 2, True),  # rate 2: most taps in the map
    (2, 8, 8, 3, 4, 3, 6, False),  # outer taps overlap on 2 of 8 rows
    (1, 5, 5, 2, 3, 3, 6, True),  # map smaller than the rate: only the centre tap
    (2, 4, 4, 2, 3, 3, 36, False),  # ASPP's largest rate on a tiny map
    (1, 7, 12, 3, 2, 3, 4, True),  # odd, rectangular
    (3, 9, 5, 2, 3, 3, (2, 5), True),  # different rates per axis
    (2, 6, 7, 2, 3, 2, 3, True),  # even kernel: "same" pads the smaller half before
    (1, 9, 9, 2, 2, (3, 5), 2, False),  # rectangular kernel
    (1, 6, 6, 2, 2, 5, 2, True),  # 5x5
]


def _cotangent(rng, shape):
    """Random output cotangent scaled so that the kernel gradient (a sum over all
    pixels) stays O(1): the 1e-5 tolerance is then a float32 rounding margin."""
    return (rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))).astype("float32")


def _pair(cin, cout, kernel, rate, bias, **kwargs):
    """A MatmulConv2D and a plain Conv2D with the same random weights (bias too)."""
    kw = dict(padding="same", dilation_rate=rate, use_bias=bias, **kwargs)
    fast = MatmulConv2D(cout, kernel, bias_initializer="random_normal", **kw)
    plain = keras.layers.Conv2D(cout, kernel, **kw)
    fast.build((None, None, None, cin))
    plain.build((None, None, None, cin))
    plain.set_weights(fast.get_weights())
    return fast, plain


def _value_and_grads(layer, x, cotangent):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * cotangent)
    grads = tape.gradient(loss, [x] + [v.value for v in layer.trainable_variables])
    return [y.numpy()] + [g.numpy() for g in grads]


def _numpy_dilated_conv(x, kernel, bias, rate):
    """Direct transcription: out[b, p, q] = sum_ij x[b, p + i*d - pad, q + j*d - pad] @ K[i, j]."""
    batch, height, width, _ = x.shape
    kh, kw, _, cout = kernel.shape
    out = np.zeros((batch, height, width, cout), np.float64)
    top, left = (kh - 1) * rate // 2, (kw - 1) * rate // 2
    for p in range(height):
        for q in range(width):
            for i in range(kh):
                for j in range(kw):
                    r, c = p + i * rate - top, q + j * rate - left
                    if 0 <= r < height and 0 <= c < width:
                        out[:, p, q] += x[:, r, c] @ kernel[i, j]
    return out + (0.0 if bias is None else bias)


@pytest.mark.parametrize("batch, height, width, cin, cout, kernel, rate, bias", CASES)
def test_forward_and_gradients_equal_conv2d(batch, height, width, cin, cout, kernel, rate, bias):
    fast, plain = _pair(cin, cout, kernel, rate, bias)
    assert fast.strategy((batch, height, width, cin)) == ("matmul" if kernel == 1 else "taps")
    rng = np.random.default_rng(height * width + cin)
    x = rng.normal(size=(batch, height, width, cin)).astype("float32")
    cotangent = _cotangent(rng, (batch, height, width, cout))
    got, expected = _value_and_grads(fast, x, cotangent), _value_and_grads(plain, x, cotangent)
    assert len(got) == (4 if bias else 3)  # y, dx, dkernel[, dbias]
    for name, a, b in zip(("y", "dx", "dkernel", "dbias"), got, expected):
        np.testing.assert_allclose(a, b, atol=ATOL, err_msg=name)


def test_forward_equals_a_numpy_transcription():
    fast, _ = _pair(3, 4, 3, 3, True)
    x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype("float32")
    kernel, bias = fast.get_weights()
    np.testing.assert_allclose(fast(x).numpy(), _numpy_dilated_conv(x, kernel, bias, 3), atol=ATOL)


@pytest.mark.parametrize("shape", [(2, 7, 12), (1, 3, 3), (2, 16, 9)])
@pytest.mark.parametrize("rate", [2, 6])
def test_unknown_spatial_shape_in_tf_function(shape, rate):
    """`TensorSpec([None, None, None, C])`: the padded fallback, same values and gradients."""
    fast, plain = _pair(3, 2, 3, rate, True)
    assert fast.strategy((None, None, None, 3)) == "padded_taps"

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, None, None, 2])]
    )
    def step(x, cotangent):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fast(x)
            loss = tf.reduce_sum(y * cotangent)
        return [y] + tape.gradient(loss, [x, fast.kernel.value, fast.bias.value])

    rng = np.random.default_rng(rate)
    x = rng.normal(size=shape + (3,)).astype("float32")
    cotangent = _cotangent(rng, shape + (2,))
    got = [t.numpy() for t in step(x, cotangent)]
    for a, b in zip(got, _value_and_grads(plain, x, cotangent)):
        np.testing.assert_allclose(a, b, atol=ATOL)
    graph = step.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert "SpaceToBatchND" not in ops and "MatMul" in ops


def test_unknown_batch_static_map_uses_in_map_taps_only():
    """Batch None, H and W known: rate 36 on 6x6 is one matmul (the centre tap)."""
    fast, plain = _pair(3, 2, 3, 36, False)
    fn = tf.function(fast, input_signature=[tf.TensorSpec([None, 6, 6, 3])])
    x = np.random.default_rng(1).normal(size=(3, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(fn(x).numpy(), plain(x).numpy(), atol=ATOL)
    ops = [op.type for op in fn.get_concrete_function().graph.get_operations()]
    assert ops.count("MatMul") == 1 and "Pad" not in ops and "SpaceToBatchND" not in ops


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({"dilation_rate": 1}, (1, 6, 6, 3)),  # narrow: the backend's conv is faster
        ({"dilation_rate": 1}, (1, None, None, 3)),
        ({"strides": 2}, (1, 7, 7, 3)),
        ({"strides": 2, "kernel_size": 1}, (1, 7, 7, 3)),
        ({"dilation_rate": 2, "padding": "valid"}, (1, 9, 9, 3)),
        ({"dilation_rate": 2, "groups": 3, "filters": 3}, (1, 8, 8, 3)),
    ],
)
def test_other_cases_are_conv2d(kwargs, shape):
    kwargs = {"filters": 6, "kernel_size": 3, "padding": "same", **kwargs}
    fast = MatmulConv2D(**kwargs)
    plain = keras.layers.Conv2D(**kwargs)
    x = np.random.default_rng(2).normal(size=[d or 7 for d in shape]).astype("float32")
    fast(x), plain(x)
    plain.set_weights(fast.get_weights())
    assert fast.strategy(shape) == "conv"
    np.testing.assert_allclose(fast(x).numpy(), plain(x).numpy(), atol=ATOL)


def test_in_map_fraction():
    # 32x32 map, 3x3: rate 36 -> centre only; rate 24 -> outer taps on 8 of 32 rows.
    assert in_map_fraction(32, 32, (3, 3), (36, 36)) == pytest.approx(1 / 9)
    assert in_map_fraction(32, 32, (3, 3), (24, 24)) == pytest.approx((48 / 96) ** 2)
    assert in_map_fraction(32, 32, (3, 3), (12, 12)) == pytest.approx((72 / 96) ** 2)
    assert in_map_fraction(64, 64, (3, 3), (1, 1)) == pytest.approx((190 / 192) ** 2)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    compute = policy.split("_")[1]
    fast = MatmulConv2D(4, 3, padding="same", dilation_rate=3, dtype=policy)
    full = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=3)
    x = np.random.default_rng(3).normal(size=(2, 8, 7, 3)).astype("float32")
    y = fast(x)
    full(x)
    full.set_weights(fast.get_weights())
    assert fast.kernel.dtype == "float32" and fast.bias.dtype == "float32"
    assert keras.backend.standardize_dtype(y.dtype) == compute
    tol = 2e-2 if compute == "bfloat16" else 3e-3
    np.testing.assert_allclose(np.asarray(y, "float32"), full(x).numpy(), atol=tol, rtol=tol)


def test_config_round_trip_and_registration():
    layer = MatmulConv2D(5, 3, padding="same", dilation_rate=12, use_bias=False, name="conv")
    config = layer.get_config()
    again = MatmulConv2D.from_config(config)
    assert again.get_config() == config
    assert keras.saving.get_registered_object("keras_memseg>MatmulConv2D") is MatmulConv2D
    assert (
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).__class__
        is MatmulConv2D
    )


def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((9, 9, 3))
    model = keras.Model(
        inputs, MatmulConv2D(4, 3, padding="same", dilation_rate=4, name="conv")(inputs)
    )
    x = np.random.default_rng(4).normal(size=(2, 9, 9, 3)).astype("float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("conv")) is MatmulConv2D
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_weights_saved_by_a_plain_conv2d_load(tmp_path):
    """`.weights.h5` written with `keras.layers.Conv2D` (the code before) loads unchanged."""

    def model(conv):
        inputs = keras.Input((None, None, 3))
        y = keras.layers.Conv2D(4, 1, name="stem")(inputs)
        y = conv(6, 3, padding="same", dilation_rate=6, use_bias=False, name="conv")(y)
        return keras.Model(inputs, y)

    old, new = model(keras.layers.Conv2D), model(MatmulConv2D)
    path = str(tmp_path / "old.weights.h5")
    old.save_weights(path)
    new.load_weights(path)
    assert [w.path for w in new.weights] == [w.path for w in old.weights]
    x = np.random.default_rng(5).normal(size=(1, 10, 8, 3)).astype("float32")
    np.testing.assert_allclose(new(x).numpy(), old(x).numpy(), atol=ATOL)


def test_backbone_weights_written_with_plain_conv2d_load(tmp_path):
    """A functional model keys its layers' weights by class name ("conv2d_7"): a backbone
    whose dilated convs are plain `Conv2D` (the code before) saves a file that loads."""
    net = DilatedResNetBackbone(depth=18, base_channels=8)

    def plain(layer):
        cls = keras.layers.Conv2D if isinstance(layer, MatmulConv2D) else layer.__class__
        return cls.from_config(layer.get_config())

    old = keras.models.clone_model(net, clone_function=plain)
    assert not any(isinstance(layer, MatmulConv2D) for layer in old.layers)
    path = str(tmp_path / "old.weights.h5")
    old.save_weights(path)
    net.load_weights(path)
    x = np.random.default_rng(6).random((1, 32, 32, 3)).astype("float32")
    got, expected = net(x), old(x)
    for level in ("P2", "P5"):
        np.testing.assert_allclose(got[level].numpy(), expected[level].numpy(), atol=ATOL)


def test_wired_into_backbone_and_heads_with_the_same_names():
    """Every conv of the backbone and the heads is a MatmulConv2D with Conv2D's names."""
    net = DilatedResNetBackbone(depth=18, base_channels=8)
    convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(type(layer) is MatmulConv2D for layer in convs)
    names = {layer.name for layer in convs}
    assert {"conv1_conv", "stack0_block0_1_conv", "stack3_block1_2_conv"} <= names
    assert "stack1_block0_0_conv" in names  # the 1x1 strided shortcut
    aspp = ASPP(filters=4, rates=(1, 12))
    assert [type(b.conv) for b in aspp.branches] == [MatmulConv2D, MatmulConv2D]
    assert aspp.branches[1].conv.name == "conv"
    assert type(ConvBNAct(4, 3).conv) is MatmulConv2D
    assert keras_memseg.layers.MatmulConv2D is MatmulConv2D  # the public path (README)


# (backend, input shape, kernel (kh, kw, cin, cout), strides, rate, padding) -> strategy
STRATEGIES = [
    ("tensorflow", (2, 32, 32, 2048), (1, 1, 2048, 512), (1, 1), (1, 1), "same", "matmul"),
    ("jax", (2, None, None, 64), (1, 1, 64, 256), (1, 1), (1, 1), "valid", "matmul"),
    ("torch", (2, 32, 32, 2048), (1, 1, 2048, 512), (1, 1), (1, 1), "same", "conv"),
    ("tensorflow", (2, 64, 64, 256), (1, 1, 256, 512), (2, 2), (1, 1), "valid", "conv"),
    ("tensorflow", (2, 32, 32, 2048), (3, 3, 2048, 512), (1, 1), (1, 1), "same", "taps"),
    ("jax", (2, 32, 32, 128), (3, 3, 128, 128), (1, 1), (1, 1), "same", "taps"),
    ("tensorflow", (2, 64, 64, 64), (3, 3, 64, 64), (1, 1), (1, 1), "same", "conv"),
    ("tensorflow", (2, None, None, 2048), (3, 3, 2048, 512), (1, 1), (1, 1), "same", "conv"),
    ("tensorflow", (2, 32, 32, 64), (3, 3, 64, 64), (1, 1), (4, 4), "same", "taps"),
    ("jax", (2, None, None, 64), (3, 3, 64, 64), (1, 1), (12, 12), "same", "padded_taps"),
    ("tensorflow", (2, 32, 32, 64), (3, 3, 64, 64), (1, 1), (4, 4), "valid", "conv"),
    ("tensorflow", (2, 128, 128, 3), (3, 3, 3, 32), (2, 2), (1, 1), "valid", "conv"),
    ("torch", (2, 32, 32, 2048), (3, 3, 2048, 512), (1, 1), (12, 12), "same", "conv"),
    ("torch", (2, 32, 32, 2048), (3, 3, 2048, 512), (1, 1), (36, 36), "same", "taps"),
    ("torch", (2, None, None, 64), (3, 3, 64, 64), (1, 1), (12, 12), "same", "conv"),
]


@pytest.mark.parametrize("backend, shape, kernel, strides, rate, padding, expected", STRATEGIES)
def test_strategy_table(backend, shape, kernel, strides, rate, padding, expected):
    assert strategy(backend, shape, kernel, strides, rate, padding) == expected


def test_grouped_and_channels_first_are_conv2d():
    assert MatmulConv2D(4, 1, groups=2).strategy((1, 8, 8, 4)) == "conv"
    assert MatmulConv2D(4, 1, data_format="channels_first").strategy((1, 4, 8, 8)) == "conv"


def test_docstring_example():
    result = doctest.testmod(matmul_conv, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(backend):
    """Forward + gradients == keras.layers.Conv2D on JAX (eager and jax.jit) and torch."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    if backend == "torch":
        env["OMP_NUM_THREADS"] = "1"  # torch's CPU kernels crawl on oversubscribed cores
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "matmul_conv_backend_check.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert f"OK {backend}" in proc.stdout, output[-6000:]
