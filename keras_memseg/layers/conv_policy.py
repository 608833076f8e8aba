"""The conv-path policy: how each convolution of the models is computed, per backend and device.

Every convolution of the backbones and heads is a plain `keras.layers.Conv2D` built by
`conv2d`: its class, `repr`, config and weight paths (`conv2d`, `conv2d_1`, ... in a
functional model's `.weights.h5`) are Conv2D's. `conv2d` hands it this module's
`convolution_op`, which computes the conv one of four ways, all equal to Keras' own
within float32 rounding (the kernels are in `keras_memseg.layers.matmul_conv`):

- `"conv"`: `keras.layers.Conv2D`'s convolution, the backend's kernel;
- `"matmul"`: a 1x1 stride-1 conv as one matmul over channels (`one_by_one`);
- `"taps"`: a "same" stride-1 kxk conv as the sum of its taps, each a matmul on the
  tap's overlap with the map, taps wholly in the padding dropped (`tap_sum`);
- `"padded_taps"`: the same when H or W is unknown, every tap on the padded map
  (`padded_tap_sum`).

Which one is `choose`'s, from the setting (below), the backend, the kind of device the
backend computes on (`device_kind`) and the conv's static geometry. The "auto" table:

| backend    | "cpu"                 | "gpu"  | "tpu"  |
|------------|-----------------------|--------|--------|
| tensorflow | `cpu_matmul_rule`     | "conv" | "conv" |
| jax        | `cpu_matmul_rule`     | "conv" | "conv" |
| torch      | `torch_cpu_rule`      | "conv" | "conv" |

- CPU, TensorFlow and JAX (`cpu_matmul_rule`), chosen from per-shape timings on a 2-core
  AMD EPYC (`benchmarks/matmul_conv.py`; rerun it to see them on your CPU) and whole
  training steps (`benchmarks/train_step.py --conv_path auto|conv`): a 1x1 stride-1
  conv is a matmul (XLA's CPU 1x1 conv runs well below its dot's rate); a "same"
  stride-1 dilated conv the tap sum (TF's SpaceToBatchND conv and XLA's dilated conv
  both compute on the padding: at rate 36 on 32x32 only the centre tap reads the map);
  an undilated one the tap sum when min(Cin, Cout) >= `WIDE_CHANNELS`; with unknown H
  or W a dilated conv is `"padded_taps"`, an undilated one `"conv"`.
- CPU, torch (`torch_cpu_rule`): its oneDNN conv already skips most of the padding and
  beat the tap sum on every measured shape except a dilated conv with a single in-map
  tap (rate >= map size, e.g. ASPP rate 36 on 32x32), several times faster as one matmul.
- GPU: the backend's conv everywhere (cuDNN's kernels do not compute on the padding the
  way the CPU kernels do). A development run on one H100 with JAX had the plain conv
  faster per step and quicker to compile than the CPU rule, with a larger allocator
  peak; its result file did not record a command that reproduces it and was dropped
  (issue #28), so no figure is quoted here: measure with
  `python benchmarks/train_step.py --conv_path auto|conv|matmul` on your GPU. Where GPU
  memory is short, try `set_conv_path("matmul")`.
- TPU: unmeasured. `"conv"`, the XLA-friendly default: one convolution HLO per layer,
  which XLA's TPU compiler tiles onto the matrix unit itself (dilation included),
  against kh*kw slices, small matmuls, pads and adds for the tap sum (slower to compile
  on the H100 run above); the tap sum's only win, the skipped padding, matters at
  large rates on small maps (ASPP), where it may still pay on a TPU: measure with
  `benchmarks/train_step.py --conv_path` before changing this.
- Any other backend or device: `"conv"`. Grouped, channels_first, strided and "valid"
  kxk convs are `"conv"` under every setting.

The setting, `"auto"` (the table) unless changed: `"conv"` sends every conv down
Conv2D's own path, `"matmul"` every conv that has a matmul form to it (1x1 stride-1
-> "matmul", "same" stride-1 kxk -> "taps" or "padded_taps"). `set_conv_path` sets it
for the process (`KERAS_MEMSEG_CONV_PATH` gives the value before any call, e.g. for a
subprocess), `conv_path` for a `with` block. It is read when a conv is traced (every
call in eager mode, once per compiled function under `jit_compile`, `jax.jit`,
`tf.function`): a function compiled before a change keeps its path, and an exported
SavedModel keeps the path of the device it was traced on (export inside
`conv_path("conv")` for a GPU server).

`device_kind` is cheap and starts nothing at import: it runs when a conv is called
(when the backend is already running). TensorFlow: "tpu" if logical TPU devices
exist (a TPU system initialised), "gpu" if logical GPUs do, else "cpu" (TF's own
placement default). JAX: `jax.default_backend()`. torch: the input's device (cuda,
mps, xpu -> "gpu").

Example:
>>> import numpy as np, keras
>>> choose("jax", "cpu", (2, 32, 32, 64), (3, 3, 64, 64), (1, 1), (12, 12), "same")
'taps'
>>> choose("jax", "gpu", (2, 32, 32, 64), (3, 3, 64, 64), (1, 1), (12, 12), "same")
'conv'
>>> layer = conv2d(3, 3, padding="same", dilation_rate=6)
>>> type(layer).__name__, follows_conv_path(layer)
('Conv2D', True)
>>> x = np.random.default_rng(0).random((1, 8, 8, 2)).astype("float32")
>>> plain = keras.layers.Conv2D(3, 3, padding="same", dilation_rate=6)
>>> _ = layer(x), plain(x)
>>> plain.set_weights(layer.get_weights())
>>> with conv_path("matmul"):
...     computed_as(layer, x.shape, "cpu"), bool(np.allclose(layer(x), plain(x), atol=1e-5))
('taps', True)
>>> with conv_path("conv"):
...     computed_as(layer, x.shape, "cpu")
'conv'
"""

import contextlib
import os
import types

import keras

from keras_memseg.layers.matmul_conv import in_map_taps
from keras_memseg.layers.matmul_conv import one_by_one
from keras_memseg.layers.matmul_conv import padded_tap_sum
from keras_memseg.layers.matmul_conv import tap_sum

SETTINGS = ("auto", "conv", "matmul")
DEVICE_KINDS = ("cpu", "gpu", "tpu")
COMPUTATIONS = ("conv", "matmul", "taps", "padded_taps")
ENV = "KERAS_MEMSEG_CONV_PATH"

# The smallest min(Cin, Cout) at which an undilated kxk conv was faster as a tap sum
# than as the backend's conv (TensorFlow and JAX on a 2-core CPU, `benchmarks/matmul_conv.py`:
# 128 -> 128 at 32x32 faster, 64 -> 64 at 64x64 and 32 -> 64 at 128x128 slower).
WIDE_CHANNELS = 128

# What `set_conv_path` chose for this process (None: `KERAS_MEMSEG_CONV_PATH`, else
# "auto"). A process setting like `keras.config.set_floatx`, not a cache; a module
# variable rather than a ContextVar so that tf.distribute's replica threads see it.
_setting = None


def _check_setting(path, where):
    if path not in SETTINGS:
        raise ValueError(f"{where} must be one of {SETTINGS}, got {path!r}")
    return path


def get_conv_path():
    """The current setting: `set_conv_path`'s, else `$KERAS_MEMSEG_CONV_PATH`, else "auto"."""
    if _setting is not None:
        return _setting
    return _check_setting(os.environ.get(ENV) or "auto", f"${ENV}")


def set_conv_path(path):
    """Sets how convolutions are computed in this process: "auto" (the table), "conv"
    (the backend's conv everywhere) or "matmul" (the matmul forms wherever they apply);
    None goes back to `$KERAS_MEMSEG_CONV_PATH` / "auto". Applies to convs traced after it."""
    global _setting
    _setting = None if path is None else _check_setting(path, "conv path")


@contextlib.contextmanager
def conv_path(path):
    """`set_conv_path(path)` for the `with` block, then the previous setting again."""
    global _setting
    previous = _setting
    set_conv_path(path)
    try:
        yield
    finally:
        _setting = previous


def device_kind(inputs=None):
    """The kind of device the current backend computes on: "cpu", "gpu" or "tpu" (see the
    module docstring); `inputs`, a tensor, decides on torch."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("TPU"):
            return "tpu"
        return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        platform = jax.default_backend().lower()
        return platform if platform in ("cpu", "tpu") else "gpu"
    if backend == "torch":
        kind = getattr(getattr(inputs, "device", None), "type", "meta")
        if kind == "meta":  # a symbolic call (shapes only) or no tensor given
            import torch

            return "gpu" if torch.cuda.is_available() else "cpu"
        return {"cpu": "cpu", "xla": "tpu"}.get(kind, "gpu")
    return "cpu"


def cpu_matmul_rule(input_shape, kernel_shape, dilation_rate):
    """TensorFlow and JAX on a CPU, for a stride-1 conv ("same" unless 1x1)."""
    kh, kw, cin, cout = kernel_shape
    if (kh, kw) == (1, 1):
        return "matmul"
    height, width = input_shape[1], input_shape[2]
    dilated = max(dilation_rate) > 1
    if height is None or width is None:
        return "padded_taps" if dilated else "conv"
    return "taps" if dilated or min(cin, cout) >= WIDE_CHANNELS else "conv"


def torch_cpu_rule(input_shape, kernel_shape, dilation_rate):
    """torch on a CPU, for a stride-1 conv ("same" unless 1x1)."""
    height, width = input_shape[1], input_shape[2]
    if tuple(kernel_shape[:2]) == (1, 1) or max(dilation_rate) == 1 or None in (height, width):
        return "conv"
    single = in_map_taps((height, width), kernel_shape[:2], dilation_rate) == 1
    return "taps" if single else "conv"


def _backend_conv(input_shape, kernel_shape, dilation_rate):
    return "conv"


# (backend, device kind) -> rule for the convs that have a matmul form; "conv" elsewhere.
POLICY = {
    ("tensorflow", "cpu"): cpu_matmul_rule,
    ("jax", "cpu"): cpu_matmul_rule,
    ("torch", "cpu"): torch_cpu_rule,
    ("tensorflow", "gpu"): _backend_conv,
    ("jax", "gpu"): _backend_conv,
    ("torch", "gpu"): _backend_conv,
    ("tensorflow", "tpu"): _backend_conv,
    ("jax", "tpu"): _backend_conv,
    ("torch", "tpu"): _backend_conv,
}


def _matmul_form(input_shape, kernel_shape, dilation_rate):
    if tuple(kernel_shape[:2]) == (1, 1):
        return "matmul"
    return "padded_taps" if None in (input_shape[1], input_shape[2]) else "taps"


def choose(
    backend, device, input_shape, kernel_shape, strides, dilation_rate, padding, setting="auto"
):
    """How a channels-last, ungrouped 2D conv is computed: one of `COMPUTATIONS`.

    Args:
        backend: "tensorflow", "jax", "torch" (others: "conv").
        device: one of `DEVICE_KINDS` (`device_kind()` for the running one).
        input_shape: static `(B, H, W, Cin)`; H, W may be None.
        kernel_shape: `(kh, kw, Cin, Cout)`.
        strides, dilation_rate: pairs; padding: "same" or "valid".
        setting: one of `SETTINGS` ("auto": the `POLICY` table).
    """
    _check_setting(setting, "setting")
    if device not in DEVICE_KINDS:
        raise ValueError(f"device must be one of {DEVICE_KINDS}, got {device!r}")
    one_by_one_kernel = tuple(kernel_shape[:2]) == (1, 1)
    if max(strides) > 1 or not (one_by_one_kernel or padding == "same") or setting == "conv":
        return "conv"
    if setting == "matmul":
        return _matmul_form(input_shape, kernel_shape, dilation_rate)
    rule = POLICY.get((backend, device), _backend_conv)
    return rule(input_shape, kernel_shape, dilation_rate)


def computed_as(layer, input_shape, device=None):
    """What `conv2d`'s `layer` computes for an input of static `input_shape` on `device`
    (default: `device_kind()`) under the current setting: one of `COMPUTATIONS`."""
    if layer.groups != 1 or layer.data_format != "channels_last" or layer.rank != 2:
        return "conv"
    return choose(
        keras.backend.backend(),
        device or device_kind(),
        tuple(input_shape),
        tuple(layer.kernel_size) + (input_shape[-1], layer.filters),
        tuple(layer.strides),
        tuple(layer.dilation_rate),
        layer.padding,
        get_conv_path(),
    )


def convolution_op(layer, inputs, kernel):
    """`keras.layers.Conv2D.convolution_op` computed as `computed_as` says."""
    how = computed_as(layer, inputs.shape, device_kind(inputs))
    if how == "matmul":
        return one_by_one(inputs, kernel)
    if how == "taps":
        return tap_sum(inputs, kernel, layer.dilation_rate)
    if how == "padded_taps":
        return padded_tap_sum(inputs, kernel, layer.dilation_rate)
    return keras.layers.Conv2D.convolution_op(layer, inputs, kernel)


def with_conv_path(layer):
    """Makes a `keras.layers.Conv2D` compute its convolution by this policy; returns it.

    The class stays Conv2D (weights, config, weight paths unchanged): the layer gets
    this module's `convolution_op` as an instance method. A Conv2D re-created from
    its config (`clone_model`, a `.keras` file of your own functional model) computes
    with Keras' conv until passed through here again; the layers and backbones of
    keras_memseg build theirs with `conv2d` on every construction, loads included.
    """
    if type(layer) is not keras.layers.Conv2D:
        raise TypeError(f"expected a keras.layers.Conv2D, got {type(layer).__name__}")
    layer.convolution_op = types.MethodType(convolution_op, layer)
    return layer


def follows_conv_path(layer):
    """Whether `layer` computes by this policy (built by `conv2d` / `with_conv_path`)."""
    op = getattr(layer, "convolution_op", None)
    return getattr(op, "__func__", None) is convolution_op and op.__self__ is layer


def conv2d(*args, **kwargs):
    """`keras.layers.Conv2D(*args, **kwargs)` computing its convolution by this policy.

    Same arguments, variables (`kernel` (kh, kw, Cin, Cout), `bias`), names, config and
    outputs as `keras.layers.Conv2D` (it is one), so weights, presets and `.keras`
    files of either load into the other.

    Example:
    >>> layer = conv2d(4, 1, name="classifier")
    >>> layer
    <Conv2D name=classifier, built=False>
    """
    return with_conv_path(keras.layers.Conv2D(*args, **kwargs))


class _SavedMatmulConv2D:
    """Reads the configs that name "keras_memseg>MatmulConv2D": until issue #28 a Conv2D
    subclass answering to Conv2D's `__name__` (so its weight paths are Conv2D's). They
    load as `conv2d(**config)`, a Conv2D following this policy."""

    @staticmethod
    def from_config(config):
        return conv2d(**config)


# Registered for reading only: `get_registered_name(Conv2D)` stays "Conv2D", so nothing
# is saved under this name again.
keras.saving.get_custom_objects()["keras_memseg>MatmulConv2D"] = _SavedMatmulConv2D
