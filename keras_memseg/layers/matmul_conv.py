"""Convolutions computed as matrix multiplications where that is faster (exactly the same).

A 1x1 convolution is one matmul over channels. A "same", stride-1 kxk
convolution is the sum over its kh*kw taps of a 1x1 convolution of the input
shifted by the tap's offset. Computed that way, the work goes to the backend's
matmul kernel, which on CPUs runs at a higher rate than its convolution kernels,
and with a large dilation most of the work can be skipped: at rate 36 on a
32x32 map only the centre tap of a 3x3 kernel reads the image (the other eight
read zero padding), at rate 24 each outer tap overlaps it on a quarter of the
rows. TensorFlow's CPU convolution runs every dilated conv through
SpaceToBatchND/BatchToSpaceND over the padded map, so its cost grows with the
rate (DeepLabV3's ASPP branches at rates 12/24/36 dominated the training step);
XLA (JAX, TF `jit_compile=True`) grows with the rate too, and XLA's CPU 1x1
convolution runs at a quarter of its matmul's rate (`benchmarks/matmul_conv.py`).
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


def one_by_one(inputs, kernel):
    """NHWC 1x1 stride-1 convolution as one matmul: `(B*H*W, Cin) @ (Cin, Cout)`."""
    cin, cout = kernel.shape[2], kernel.shape[3]
    shape = ops.shape(inputs)
    out = ops.matmul(ops.reshape(inputs, (-1, cin)), ops.reshape(kernel, (cin, cout)))
    return ops.reshape(out, (shape[0], shape[1], shape[2], cout))


# The smallest min(Cin, Cout) at which an undilated kxk conv is faster as a tap sum
# than as the backend's conv (TensorFlow and JAX on a 2-core CPU: 128 -> 128 at 32x32
# 1.1-1.5x faster, 64 -> 64 at 64x64 and 32 -> 64 at 128x128 slower).
WIDE_CHANNELS = 128


def strategy(backend, input_shape, kernel_shape, strides, dilation_rate, padding):
    """How `MatmulConv2D` computes a channels-last, ungrouped conv: one of "conv"
    (the backend's), "matmul" (`one_by_one`), "taps" (`tap_sum`), "padded_taps"
    (`padded_tap_sum`). Static: from the backend, the static input shape and the
    kernel, as measured by `benchmarks/matmul_conv.py` on a 2-core CPU.

    TensorFlow and JAX: a 1x1 stride-1 conv is a matmul; a "same" stride-1 dilated
    conv the tap sum (Keras' dilated conv is SpaceToBatchND + conv on TF and
    `lax.conv_general_dilated` on JAX, both paying for the padding; `padded_tap_sum`
    when H or W is unknown); an undilated one the tap sum when it is wide
    (min(Cin, Cout) >= `WIDE_CHANNELS`). PyTorch: its oneDNN convolution already
    skips most of the padding and beat the tap sum on every shape except a single
    in-map tap (rate >= map size, e.g. ASPP rate 36 on 32x32), where one matmul is
    several times faster.
    """
    kh, kw, cin, cout = kernel_shape
    if max(strides) > 1:
        return "conv"
    if (kh, kw) == (1, 1):
        return "conv" if backend == "torch" else "matmul"
    if padding != "same":
        return "conv"
    height, width = input_shape[1], input_shape[2]
    dilated = max(dilation_rate) > 1
    if height is None or width is None:
        return "padded_taps" if dilated and backend != "torch" else "conv"
    if backend == "torch":
        rows = _tap_windows(height, kh, dilation_rate[0])
        cols = _tap_windows(width, kw, dilation_rate[1])
        single = sum(r is not None for r in rows) * sum(c is not None for c in cols) == 1
        return "taps" if dilated and single else "conv"
    if dilated or min(cin, cout) >= WIDE_CHANNELS:
        return "taps"
    return "conv"


@keras.saving.register_keras_serializable(package="keras_memseg")
class MatmulConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` computed as matmuls where that is faster; same results.

    Same arguments, variables (`kernel` (kh, kw, Cin, Cout), `bias`), names and
    outputs as `keras.layers.Conv2D`, so weights and `.keras` files of either
    load into the other. For channels_last and no groups, the computation is
    chosen statically from the backend and the static input shape (`strategy`):
    a 1x1 stride-1 conv is one matmul over channels (`one_by_one`); a "same"
    stride-1 kxk conv, dilated or wide, the sum of its taps, each a 1x1 conv on
    the part of the map the tap overlaps (`tap_sum`): a tap wholly in the zero
    padding is dropped, a partial one is computed on the overlap and added into
    its output sub-window. Shapes are static, so the graph suits XLA and TPUs.
    With an unknown H or W (a TensorFlow graph traced with
    `TensorSpec([None, None, None, C])`), a dilated conv is `padded_tap_sum`:
    one padded copy of the input and all kh*kw full-map matmuls, i.e. the
    multiply-adds of the undilated conv whatever the rate (the padding is not
    skipped there). Everything else (strides, "valid" kxk, groups,
    channels_first, narrow undilated convs) is `keras.layers.Conv2D` itself.

    Why: DeepLabV3/MCIBI heads (ASPP at rates 12/24/36, OS8 backbones at rates
    2/4) are where TensorFlow's and XLA's CPU convolutions are slowest; see
    Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation"
    (2017) for the architecture and `benchmarks/matmul_conv.py` for the timings.

    Args:
        *args, **kwargs: those of `keras.layers.Conv2D` (`dtype=` included;
            mixed-precision policies compute in float16/bfloat16 with float32
            variables, as Conv2D).

    Example:
    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).random((1, 8, 8, 2)).astype("float32")
    >>> fast = MatmulConv2D(3, 3, padding="same", dilation_rate=6)
    >>> plain = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=6)
    >>> _ = fast(x), plain(x)
    >>> plain.set_weights(fast.get_weights())
    >>> bool(np.allclose(fast(x), plain(x), atol=1e-5))
    True
    """

    def strategy(self, input_shape):
        """How `call` computes for this static input shape (see `strategy`)."""
        if self.groups != 1 or self.data_format != "channels_last" or self.rank != 2:
            return "conv"
        return strategy(
            keras.backend.backend(),
            input_shape,
            tuple(self.kernel_size) + (input_shape[-1], self.filters),
            self.strides,
            self.dilation_rate,
            self.padding,
        )

    def convolution_op(self, inputs, kernel):
        how = self.strategy(inputs.shape)
        if how == "matmul":
            return one_by_one(inputs, kernel)
        if how == "taps":
            return tap_sum(inputs, kernel, self.dilation_rate)
        if how == "padded_taps":
            return padded_tap_sum(inputs, kernel, self.dilation_rate)
        return super().convolution_op(inputs, kernel)


# Keras keys the weights of layers held in a list (a functional model's `layers`) by
# their snake-cased class name, numbered: "conv2d", "conv2d_1", ... Answering to
# Conv2D's name keeps those paths, so `.weights.h5`, `.keras` files and presets
# written with `keras.layers.Conv2D` load unchanged (serialisation uses the
# registered name, "keras_memseg>MatmulConv2D"; `__qualname__` is untouched).
MatmulConv2D.__name__ = "Conv2D"
