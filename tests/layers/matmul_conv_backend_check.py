"""`conv_policy.conv2d` layers vs keras.layers.Conv2D on the current backend, in a fresh process.

Run by `tests/layers/test_matmul_conv.py`:
    KERAS_BACKEND=jax python tests/layers/matmul_conv_backend_check.py
    KERAS_BACKEND=tensorflow python tests/layers/matmul_conv_backend_check.py --mirrored

JAX and torch: forward and gradients (w.r.t. the input, kernel and bias) of the layer
under the "auto" setting and with the matmul forms forced on (`conv_path("matmul")`:
`one_by_one`, `tap_sum`) equal Keras' own conv with the same weights within 1e-5; on JAX
also under `jax.jit`. `device_kind()` is "cpu" here, and the model saved while
`MatmulConv2D` was a Conv2D subclass (tests/fixtures/matmul_conv2d_subclass) loads with
its recorded outputs and its convs following the policy.

`--mirrored` (TensorFlow): under a `MirroredStrategy` over two logical CPUs, the replicas
of a traced step compute what the policy says (tap sums; with `set_conv_path("conv")` set
in the main thread, Conv2D's SpaceToBatchND) and equal a plain Conv2D.

Prints `OK <backend>` and exits 0, or raises.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_memseg.layers import conv_policy  # noqa: E402

BACKEND = keras.backend.backend()
ATOL = 1e-5
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "matmul_conv2d_subclass")
# (batch, height, width, cin, cout, kernel, rate, bias)
CASES = [
    (2, 8, 8, 3, 4, 1, 1, True),  # 1x1: one matmul
    (1, 5, 6, 128, 128, 3, 1, False),  # wide, undilated
    (2, 8, 8, 3, 4, 3, 2, True),
    (1, 5, 5, 2, 3, 3, 6, False),  # map smaller than the rate
    (2, 4, 4, 2, 3, 3, 36, True),
    (1, 7, 12, 3, 2, 3, 4, True),  # odd, rectangular
    (2, 6, 7, 2, 3, 2, 3, False),  # even kernel
]


def _cotangent(rng, shape):
    """Random output cotangent scaled so that the kernel gradient (a sum over all
    pixels) stays O(1): the 1e-5 tolerance is then a float32 rounding margin."""
    return (rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))).astype("float32")


def _grad_fn(layer):
    """`(x, cotangent, weights) -> [y, dx, *dweights]` through `stateless_call`."""

    def loss(weights, x, cotangent):
        y, _ = layer.stateless_call(weights, [], x)
        return ops.sum(y * cotangent), y

    if BACKEND == "jax":
        import jax

        def fn(x, cotangent, weights):
            (_, y), (dw, dx) = jax.value_and_grad(
                lambda w, x: loss(w, x, cotangent), argnums=(0, 1), has_aux=True
            )(weights, x)
            return [y, dx, *dw]

        return fn

    import torch

    def fn(x, cotangent, weights):
        x = torch.tensor(np.asarray(x), requires_grad=True)
        weights = [torch.tensor(np.asarray(w), requires_grad=True) for w in weights]
        total, y = loss(weights, x, torch.tensor(np.asarray(cotangent)))
        return [y, *torch.autograd.grad(total, [x, *weights])]

    return fn


def _numpy(values):
    return [np.asarray(ops.convert_to_numpy(v)) for v in values]


def check_equal_to_conv2d():
    for batch, height, width, cin, cout, kernel, rate, bias in CASES:
        kw = dict(padding="same", dilation_rate=rate, use_bias=bias)
        plain = keras.layers.Conv2D(cout, kernel, **kw)
        plain.build((None, height, width, cin))
        rng = np.random.default_rng(height * width + cin)
        # Scaled by 1/sqrt(fan-in) so that outputs stay O(1) for wide convs too: the
        # 1e-5 tolerance is then a float32 rounding margin.
        fan_in = np.prod(plain.kernel.shape[:-1])
        weights = [
            (rng.normal(size=w.shape) / np.sqrt(fan_in if w.ndim > 1 else 1)).astype("float32")
            for w in plain.weights
        ]
        x = rng.normal(size=(batch, height, width, cin)).astype("float32")
        cotangent = _cotangent(rng, (batch, height, width, cout))
        expected = _numpy(_grad_fn(plain)(x, cotangent, weights))
        for setting in ("auto", "matmul"):
            with conv_policy.conv_path(setting):
                layer = conv_policy.conv2d(cout, kernel, **kw)
                layer.build((None, height, width, cin))
                if setting == "matmul":
                    assert conv_policy.computed_as(layer, x.shape) != "conv"
                fns = {"eager": _grad_fn(layer)}
                if BACKEND == "jax":
                    import jax

                    fns["jit"] = jax.jit(_grad_fn(layer))
                for mode, fn in fns.items():
                    got = _numpy(fn(x, cotangent, weights))
                    assert len(got) == len(expected) == 3 + bias
                    for name, a, b in zip(("y", "dx", "dkernel", "dbias"), got, expected):
                        np.testing.assert_allclose(
                            a,
                            b,
                            atol=ATOL,
                            err_msg=f"{BACKEND} {setting} {mode} {name} case "
                            f"{(batch, height, width, cin, cout, kernel, rate, bias)}",
                        )


def check_device_kind():
    x = ops.zeros((1, 4, 4, 2))
    assert conv_policy.device_kind(x) == "cpu", conv_policy.device_kind(x)
    assert conv_policy.device_kind() == "cpu"


def check_old_file_loads():
    model = keras.saving.load_model(os.path.join(FIXTURE, "functional.keras"))
    recorded = np.load(os.path.join(FIXTURE, "outputs.npz"))
    convs = [model.get_layer(n) for n in ("dilated", "classifier")]
    convs.append(model.get_layer("block").conv)
    assert all(type(c) is keras.layers.Conv2D and conv_policy.follows_conv_path(c) for c in convs)
    got = ops.convert_to_numpy(model(recorded["images"]))
    np.testing.assert_allclose(got, recorded["outputs"], atol=ATOL)


def check_mirrored():
    """Two replicas on two logical CPUs; the setting from the main thread reaches them."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        fast = conv_policy.conv2d(3, 3, padding="same", dilation_rate=4)
        plain = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=4)
        fast.build((None, 6, 6, 2))
        plain.build((None, 6, 6, 2))
        plain.set_weights(fast.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32")
    expected = plain(x).numpy()  # eager, outside the strategy's step
    dataset = tf.data.Dataset.from_tensors(x).unbatch().batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    for setting, op in (("auto", "MatMul"), ("conv", "SpaceToBatchND")):
        conv_policy.set_conv_path(None if setting == "auto" else setting)
        kinds = []

        def replica(images):
            kinds.append(conv_policy.device_kind())
            return fast(images)

        step = tf.function(lambda images: strategy.run(replica, args=(images,)))
        outputs = strategy.experimental_local_results(step(batch))
        assert len(outputs) == 2 and set(kinds) == {"cpu"}, (outputs, kinds)
        got = np.concatenate([o.numpy() for o in outputs])
        np.testing.assert_allclose(got, expected, atol=ATOL, err_msg=setting)
        graph = step.get_concrete_function(batch).graph
        types = {o.type for o in graph.get_operations()}
        for function in graph._functions.values():
            types |= {o.type for o in function.graph.get_operations()}
        assert op in types, (setting, sorted(types))
        if setting == "auto":
            assert "SpaceToBatchND" not in types, sorted(types)
    conv_policy.set_conv_path(None)


def main():
    if "--mirrored" in sys.argv:
        assert BACKEND == "tensorflow", BACKEND
        check_mirrored()
    else:
        check_device_kind()
        check_equal_to_conv2d()
        check_old_file_loads()
    print(f"OK {BACKEND}")


if __name__ == "__main__":
    main()
