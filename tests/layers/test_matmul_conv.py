"""The matmul forms of a conv == keras.layers.Conv2D (forward and gradients), through the
layers `conv_policy.conv2d` builds; their geometry; what such layers save and load.

The oracle is Keras' own `Conv2D` with the same weights (TensorFlow's convolution
kernels and, dilated, its SpaceToBatchND path, independent of matmuls and tap sums) and, once, a NumPy loop over
taps and pixels. JAX and torch run `matmul_conv_backend_check.py` in a fresh
process with `KERAS_BACKEND` set. The equality tests force the matmul forms
(`conv_path("matmul")`), so they test them on a GPU machine too; the "auto" table is
`test_conv_policy.py`'s.
"""

import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.layers.conv_policy import computed_as
from keras_memseg.layers.conv_policy import conv2d
from keras_memseg.layers.conv_policy import conv_path
from keras_memseg.layers.conv_policy import follows_conv_path
from keras_memseg.layers.conv_policy import with_conv_path
from keras_memseg.layers.matmul_conv import in_map_fraction
from keras_memseg.layers.matmul_conv import in_map_taps

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


@pytest.fixture
def matmul():
    """The matmul forms wherever they apply, whatever the device (see the docstring)."""
    with conv_path("matmul"):
        yield


def _pair(cin, cout, kernel, rate, bias, **kwargs):
    """A `conv2d` layer and a plain Conv2D with the same random weights (bias too)."""
    kw = dict(padding="same", dilation_rate=rate, use_bias=bias, **kwargs)
    fast = conv2d(cout, kernel, bias_initializer="random_normal", **kw)
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
def test_forward_and_gradients_equal_conv2d(
    matmul, batch, height, width, cin, cout, kernel, rate, bias
):
    fast, plain = _pair(cin, cout, kernel, rate, bias)
    assert computed_as(fast, (batch, height, width, cin)) == ("matmul" if kernel == 1 else "taps")
    rng = np.random.default_rng(height * width + cin)
    x = rng.normal(size=(batch, height, width, cin)).astype("float32")
    cotangent = _cotangent(rng, (batch, height, width, cout))
    got, expected = _value_and_grads(fast, x, cotangent), _value_and_grads(plain, x, cotangent)
    assert len(got) == (4 if bias else 3)  # y, dx, dkernel[, dbias]
    for name, a, b in zip(("y", "dx", "dkernel", "dbias"), got, expected):
        np.testing.assert_allclose(a, b, atol=ATOL, err_msg=name)


def test_forward_equals_a_numpy_transcription(matmul):
    fast, _ = _pair(3, 4, 3, 3, True)
    x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype("float32")
    kernel, bias = fast.get_weights()
    np.testing.assert_allclose(fast(x).numpy(), _numpy_dilated_conv(x, kernel, bias, 3), atol=ATOL)


@pytest.mark.parametrize("shape", [(2, 7, 12), (1, 3, 3), (2, 16, 9)])
@pytest.mark.parametrize("rate", [2, 6])
def test_unknown_spatial_shape_in_tf_function(matmul, shape, rate):
    """`TensorSpec([None, None, None, C])`: the padded fallback, same values and gradients."""
    fast, plain = _pair(3, 2, 3, rate, True)
    assert computed_as(fast, (None, None, None, 3)) == "padded_taps"

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


def test_unknown_batch_static_map_uses_in_map_taps_only(matmul):
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
    """The "auto" table on a CPU (and on every device: these have no matmul form or are
    narrow) computes them with Conv2D's own path."""
    kwargs = {"filters": 6, "kernel_size": 3, "padding": "same", **kwargs}
    fast = conv2d(**kwargs)
    plain = keras.layers.Conv2D(**kwargs)
    x = np.random.default_rng(2).normal(size=[d or 7 for d in shape]).astype("float32")
    fast(x), plain(x)
    plain.set_weights(fast.get_weights())
    assert computed_as(fast, shape, "cpu") == "conv"
    np.testing.assert_allclose(fast(x).numpy(), plain(x).numpy(), atol=ATOL)


def test_in_map_fraction():
    # 32x32 map, 3x3: rate 36 -> centre only; rate 24 -> outer taps on 8 of 32 rows.
    assert in_map_fraction(32, 32, (3, 3), (36, 36)) == pytest.approx(1 / 9)
    assert in_map_fraction(32, 32, (3, 3), (24, 24)) == pytest.approx((48 / 96) ** 2)
    assert in_map_fraction(32, 32, (3, 3), (12, 12)) == pytest.approx((72 / 96) ** 2)
    assert in_map_fraction(64, 64, (3, 3), (1, 1)) == pytest.approx((190 / 192) ** 2)
    assert in_map_taps((32, 32), (3, 3), (36, 36)) == 1
    assert in_map_taps((32, 32), (3, 3), (24, 24)) == 9
    assert in_map_taps((32, 8), (3, 3), (24, 24)) == 3  # the outer columns are padding


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(matmul, policy):
    compute = policy.split("_")[1]
    fast = conv2d(4, 3, padding="same", dilation_rate=3, dtype=policy)
    full = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=3)
    x = np.random.default_rng(3).normal(size=(2, 8, 7, 3)).astype("float32")
    y = fast(x)
    full(x)
    full.set_weights(fast.get_weights())
    assert fast.kernel.dtype == "float32" and fast.bias.dtype == "float32"
    assert keras.backend.standardize_dtype(y.dtype) == compute
    tol = 2e-2 if compute == "bfloat16" else 3e-3
    np.testing.assert_allclose(np.asarray(y, "float32"), full(x).numpy(), atol=tol, rtol=tol)


def _h5_paths(path):
    with h5py.File(path, "r") as f:
        names = []
        f.visit(names.append)
        return names


def _model(conv, **kw):
    inputs = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(4, 1, name="stem")(inputs)
    y = conv(6, 3, padding="same", dilation_rate=6, use_bias=False, name="conv", **kw)(y)
    y = conv(2, 1, name="head", **kw)(y)
    return keras.Model(inputs, y)


def test_is_a_conv2d_with_conv2d_weight_paths(tmp_path):
    """The class is Conv2D itself: `repr`, config and the functional model's weight paths
    in `.weights.h5` (keyed by class name: conv2d, conv2d_1, ...) are a plain Conv2D's."""
    fast, plain = _model(conv2d), _model(keras.layers.Conv2D)
    layer = fast.get_layer("conv")
    assert type(layer) is keras.layers.Conv2D and follows_conv_path(layer)
    assert repr(layer) == "<Conv2D name=conv, built=True>"
    assert layer.get_config() == plain.get_layer("conv").get_config()
    assert [w.path for w in fast.weights] == [w.path for w in plain.weights]
    fast.save_weights(str(tmp_path / "fast.weights.h5"))
    plain.save_weights(str(tmp_path / "plain.weights.h5"))
    paths = _h5_paths(str(tmp_path / "fast.weights.h5"))
    assert paths == _h5_paths(str(tmp_path / "plain.weights.h5"))
    assert {"layers/conv2d_1/vars/0", "layers/conv2d_2/vars/1"} <= set(paths)


def test_weights_saved_by_a_plain_conv2d_load(matmul, tmp_path):
    """`.weights.h5` written with `keras.layers.Conv2D` loads bit-exactly, and back."""
    old, new = _model(keras.layers.Conv2D), _model(conv2d)
    old.save_weights(str(tmp_path / "old.weights.h5"))
    new.load_weights(str(tmp_path / "old.weights.h5"))
    for a, b in zip(new.weights, old.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = np.random.default_rng(5).normal(size=(1, 10, 8, 3)).astype("float32")
    np.testing.assert_allclose(new(x).numpy(), old(x).numpy(), atol=ATOL)


def test_own_functional_model_reloads_as_plain_conv2d(tmp_path):
    """A `.keras` file of a model of one's own saves these layers as plain Conv2D (the
    policy is not in the config): they reload computing with Keras' conv, the same
    values, and `with_conv_path` puts the policy back. keras_memseg's own layers and
    backbones re-apply it themselves (`test_conv_policy.py`)."""
    model = _model(conv2d)
    x = np.random.default_rng(4).normal(size=(2, 9, 9, 3)).astype("float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("conv")
    assert type(layer) is keras.layers.Conv2D and not follows_conv_path(layer)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=ATOL)
    assert follows_conv_path(with_conv_path(layer))
    with conv_path("matmul"):
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=ATOL)
    with pytest.raises(TypeError, match="expected a keras.layers.Conv2D, got Dense"):
        with_conv_path(keras.layers.Dense(2))


def test_backbone_weights_written_with_plain_conv2d_load(matmul, tmp_path):
    """A functional model keys its layers' weights by class name ("conv2d_7"): a backbone
    whose convs are plain `Conv2D` (`clone_model` re-creates them from their configs)
    saves a file that loads into one whose convs follow the policy."""
    net = DilatedResNetBackbone(depth=18, base_channels=8)
    old = keras.models.clone_model(net)
    convs = [layer for layer in old.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and not any(follows_conv_path(layer) for layer in convs)
    path = str(tmp_path / "old.weights.h5")
    old.save_weights(path)
    net.load_weights(path)
    x = np.random.default_rng(6).random((1, 32, 32, 3)).astype("float32")
    got, expected = net(x), old(x)
    for level in ("P2", "P5"):
        np.testing.assert_allclose(got[level].numpy(), expected[level].numpy(), atol=ATOL)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(backend):
    """Forward + gradients == keras.layers.Conv2D on JAX (eager and jax.jit) and torch;
    the old file loads there too."""
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
