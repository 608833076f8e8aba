"""Convolutions computed as matrix multiplications: the same results as the backend's conv.

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

This module holds the computations only; which one a layer uses, per backend and
device, is `keras_memseg.layers.conv_policy`'s (its `conv2d` builds the layers).
"""

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


def in_map_taps(map_size, kernel_size, dilation_rate):
    """How many of the kh*kw taps of a "same", stride-1 conv read the map at all."""
    (height, width), (kh, kw), (dh, dw) = map_size, kernel_size, dilation_rate
    rows = sum(w is not None for w in _tap_windows(height, kh, dh))
    return rows * sum(w is not None for w in _tap_windows(width, kw, dw))


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
