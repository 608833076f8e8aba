"""Dilated convolution that costs what its in-map taps cost (the ASPP and OS8 backbone convs).

A "same" dilated convolution is the sum over its kh*kw taps of a 1x1 convolution
(a matmul over channels) of the input shifted by the tap's offset. With a large
rate on a small map most of that work multiplies zero padding: at rate 36 on a
32x32 map only the centre tap of a 3x3 kernel reads the image, at rate 24 each
outer tap overlaps it on a quarter of the rows. TensorFlow's CPU convolution
runs every dilated conv through SpaceToBatchND/BatchToSpaceND over the padded
map, so its cost grows with the rate (DeepLabV3's ASPP branches at rates 12/24/36
dominated the training step); XLA (JAX, TF `jit_compile=True`) grows with the rate too.
"""

import keras
from keras import ops


def _tap_windows(size, kernel, dilation):
    """Per kernel index along one axis: `(out_start, out_stop, offset)` or None.

    "same" padding with stride 1 pads `(kernel - 1) * dilation` in total, the
    smaller half before (TensorFlow's, XLA's and PyTorch's rule). Output
    position `p` of tap `i` reads input `p + offset`, `offset = i * dilation -
    before`; the tap overlaps the map on outputs `[out_start, out_stop)` and is
    None when it lies wholly in the padding.
    """
    before = (kernel - 1) * dilation // 2
    windows = []
    for i in range(kernel):
        offset = i * dilation - before
        start, stop = max(0, -offset), min(size, size - offset)
        windows.append((start, stop, offset) if start < stop else None)
    return windows


def in_map_fraction(height, width, kernel_size, dilation_rate):
    """Multiply-adds of the in-map taps over those of the dense convolution, in [0, 1]."""
    (kh, kw), (dh, dw) = kernel_size, dilation_rate
    rows = sum(w[1] - w[0] for w in _tap_windows(height, kh, dh) if w is not None)
    cols = sum(w[1] - w[0] for w in _tap_windows(width, kw, dw) if w is not None)
    return rows * cols / (kh * kw * height * width)


def _per_tap(kernel):
    """`(kh, kw, Cin, Cout)` -> kh*kw matrices `(Cin, Cout)`, row-major over taps.

    An unstack, not `kernel[i, j]`: TF differentiates each StridedSlice with a
    StridedSliceGrad that writes a full-kernel tensor (kh*kw of them, then summed);
    Unpack's gradient is one Pack.
    """
    kh, kw, cin, cout = kernel.shape
    return ops.unstack(ops.reshape(kernel, (kh * kw, cin, cout)), num=kh * kw, axis=0)


def tap_sum(inputs, kernel, dilation_rate):
    """NHWC "same", stride-1 dilated conv as a sum of 1x1 convs over each tap's overlap.

    Static H and W: a tap wholly in the padding is dropped; a tap partly in it
    is a matmul on its overlap only, zero-padded into its output sub-window.
    Cost: `in_map_fraction` of the dense conv's multiply-adds.
    """
    _, height, width, cin = inputs.shape
    batch = ops.shape(inputs)[0]
    kh, kw, _, cout = kernel.shape
    rows = _tap_windows(height, kh, dilation_rate[0])
    cols = _tap_windows(width, kw, dilation_rate[1])
    weights = _per_tap(kernel)
    out = None
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            if row is None or col is None:
                continue
            (y0, y1, dy), (x0, x1, dx) = row, col
            # (B, y1-y0, x1-x0, Cin). `ops.slice`, not `[...]`: TF differentiates Slice
            # with a Pad, StridedSlice with StridedSliceGrad (several times slower on CPU).
            window = ops.slice(inputs, (0, y0 + dy, x0 + dx, 0), (batch, y1 - y0, x1 - x0, cin))
            tap = ops.matmul(ops.reshape(window, (-1, cin)), weights[i * kw + j])
            tap = ops.reshape(tap, (-1, y1 - y0, x1 - x0, cout))
            if (y0, y1, x0, x1) != (0, height, 0, width):
                tap = ops.pad(tap, ((0, 0), (y0, height - y1), (x0, width - x1), (0, 0)))
            out = tap if out is None else ops.add(out, tap)
    return out


def padded_tap_sum(inputs, kernel, dilation_rate):
    """The same convolution for unknown (None) H, W: pad once, then all kh*kw taps.

    Every tap is a full-map matmul, so this costs the dense conv's multiply-adds
    (9 matmuls for 3x3, whatever the rate) plus one padded copy of the input,
    instead of `in_map_fraction` of them; still never more than the dense conv,
    unlike SpaceToBatchND which also computes on the padding.
    """
    kh, kw, cin, cout = kernel.shape
    (dh, dw) = dilation_rate
    shape = ops.shape(inputs)
    height, width = shape[1], shape[2]
    top, left = (kh - 1) * dh // 2, (kw - 1) * dw // 2
    padded = ops.pad(
        inputs, ((0, 0), (top, (kh - 1) * dh - top), (left, (kw - 1) * dw - left), (0, 0))
    )
    weights = _per_tap(kernel)
    out = None
    for i in range(kh):
        for j in range(kw):
            window = ops.slice(padded, (0, i * dh, j * dw, 0), (shape[0], height, width, cin))
            tap = ops.matmul(ops.reshape(window, (-1, cin)), weights[i * kw + j])
            out = tap if out is None else ops.add(out, tap)
    return ops.reshape(out, (shape[0], height, width, cout))


@keras.saving.register_keras_serializable(package="keras_memseg")
class DilatedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose "same" dilated convs only compute the in-map taps.

    Same arguments, variables (`kernel` (kh, kw, Cin, Cout), `bias`), names and
    outputs as `keras.layers.Conv2D`, so weights and `.keras` files of either
    load into the other. For stride 1, "same" padding, channels_last, no groups
    and a dilation > 1, the convolution is computed as the sum of its taps, each
    a 1x1 convolution (one matmul over channels) on the part of the map the tap
    overlaps (`tap_sum`): a tap wholly in the zero padding is dropped, a partial
    one is computed on the overlap and added into its output sub-window. Shapes
    are static, so the graph suits XLA and TPUs. Every other case (dilation 1,
    strides, "valid", groups, channels_first) is `keras.layers.Conv2D` itself.

    The choice is static, from the backend and the static input shape
    (`uses_tap_sum`), as measured by `benchmarks/dilated_conv.py` on a CPU:
    TensorFlow and JAX always take the tap sum; PyTorch keeps its own (oneDNN)
    conv, which skips most of the padding itself, unless a single tap lies in
    the map (rate >= map size), where one matmul is several times faster. With
    an unknown H or W (a TensorFlow graph traced with `TensorSpec([None, None,
    None, C])`), `padded_tap_sum`: one padded copy of the input and all kh*kw
    full-map matmuls, i.e. the multiply-adds of the undilated conv (9x a 1x1
    conv for 3x3) whatever the rate; the padding is not skipped there.

    Args:
        *args, **kwargs: those of `keras.layers.Conv2D` (`dtype=` included;
            mixed-precision policies compute in float16/bfloat16 with float32
            variables, as Conv2D).

    Example:
    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).random((1, 8, 8, 2)).astype("float32")
    >>> fast = DilatedConv2D(3, 3, padding="same", dilation_rate=6)
    >>> plain = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=6)
    >>> _ = fast(x), plain(x)
    >>> plain.set_weights(fast.get_weights())
    >>> bool(np.allclose(fast(x), plain(x), atol=1e-5))
    True
    """

    def uses_tap_sum(self, input_shape):
        """Whether `call` computes the tap sum for this static input shape (else Conv2D)."""
        if not self._tap_sum_applies():
            return False
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            return True  # padded_tap_sum
        return _prefer_taps(
            keras.backend.backend(), height, width, self.kernel_size, self.dilation_rate
        )

    def _tap_sum_applies(self):
        return (
            max(self.dilation_rate) > 1
            and self.padding == "same"
            and max(self.strides) == 1
            and self.groups == 1
            and self.data_format == "channels_last"
            and self.rank == 2
        )

    def convolution_op(self, inputs, kernel):
        if not self.uses_tap_sum(inputs.shape):
            return super().convolution_op(inputs, kernel)
        if inputs.shape[1] is None or inputs.shape[2] is None:
            return padded_tap_sum(inputs, kernel, self.dilation_rate)
        return tap_sum(inputs, kernel, self.dilation_rate)


# Keras keys the weights of layers held in a list (a functional model's `layers`) by
# their snake-cased class name, numbered: "conv2d", "conv2d_1", ... Answering to
# Conv2D's name keeps those paths, so `.weights.h5`, `.keras` files and presets
# written with `keras.layers.Conv2D` load unchanged (serialisation uses the
# registered name, "keras_memseg>DilatedConv2D"; `__qualname__` is untouched).
DilatedConv2D.__name__ = "Conv2D"


def _prefer_taps(backend, height, width, kernel_size, dilation_rate):
    """The static strategy choice, measured with `benchmarks/dilated_conv.py` (2-core CPU).

    TensorFlow and JAX: the tap sum for every shape measured (ResNet-50 OS8 rates
    2/4 and ASPP rates 12/24/36 on 32x32 and 64x64 maps): Keras' dilated conv is
    SpaceToBatchND + conv on TF and `lax.conv_general_dilated` on JAX, both paying
    for the padding. PyTorch: its oneDNN convolution already skips most of the
    padding and beat the tap sum on every shape except a single in-map tap (rate >=
    map size, e.g. ASPP rate 36 on 32x32), where one matmul is several times faster.
    """
    if backend == "torch":
        rows = _tap_windows(height, kernel_size[0], dilation_rate[0])
        cols = _tap_windows(width, kernel_size[1], dilation_rate[1])
        return sum(r is not None for r in rows) * sum(c is not None for c in cols) == 1
    return True
