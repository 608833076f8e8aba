"""MatmulConv2D vs keras.layers.Conv2D on the current backend (JAX or torch).

Run by `tests/layers/test_matmul_conv.py` in a fresh process:
    KERAS_BACKEND=jax python tests/layers/matmul_conv_backend_check.py

Forward and gradients (w.r.t. the input, kernel and bias) of the layer as
shipped, and of the matmul forms themselves (`one_by_one`, `tap_sum`, whatever the
layer chooses on this backend), equal Keras' own conv with the same weights within 1e-5;
on JAX also under `jax.jit`. Prints `OK <backend>` and exits 0, or raises.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_memseg.layers import matmul_conv  # noqa: E402
from keras_memseg.layers.matmul_conv import MatmulConv2D  # noqa: E402

BACKEND = keras.backend.backend()
ATOL = 1e-5
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


class _Matmuls(MatmulConv2D):
    """The matmul form forced on (the shipped layer may prefer the backend's conv here)."""

    def convolution_op(self, inputs, kernel):
        if tuple(self.kernel_size) == (1, 1):
            return matmul_conv.one_by_one(inputs, kernel)
        return matmul_conv.tap_sum(inputs, kernel, self.dilation_rate)


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


def main():
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
        for cls in (MatmulConv2D, _Matmuls):
            layer = cls(cout, kernel, **kw)
            layer.build((None, height, width, cin))
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
                        err_msg=f"{BACKEND} {cls.__name__} {mode} {name} case "
                        f"{(batch, height, width, cin, cout, kernel, rate, bias)}",
                    )
    print(f"OK {BACKEND}")


if __name__ == "__main__":
    main()
