"""How much memory predicting one image takes, and how much this process may still use.

`predict_files` checks each image against these from its file header, before decoding
it: one that cannot fit is one line naming it, its size and the memory it needs,
instead of an allocation error from inside TensorFlow once the work has started.

The estimate (`prediction_bytes`) has two parts:
- at the image's size, a fixed number of bytes per pixel (`FULL_RESOLUTION_BYTES`):
  decoding, the label map and the overlay; the class scores never exist at this size
  (`keras_memseg.predict.tiles`);
- at the size the model runs at (the dataset's test resize, `--max_size`), one forward
  pass: its input, logits and backbone features per model pixel, and for a model whose
  context attends over every position (MCIBI) the two float32 (N, N) attention maps,
  N = h w / stride^2, which grow with the square of the area.

Measured on CPU with TensorFlow (peak resident memory of one forward pass: MCIBI with
ResNet-50 at 512 and 768 pixels a side, ResNet-101 at 512, ResNet-18 with 8 base
channels at 1024 and 1536, DeepLabV3 likewise at 768 and 2048), the estimate was above
the measured peak every time, by 3% to 60%. The full-resolution part measured 14 bytes
per pixel for a 9000x9000 PNG.
"""

import math

GB = 2**30
# Per image pixel: the uint8 image (3), the int32 label map (4), the overlay (3) and
# Pillow's 4-byte copy of it for the PNG encoder, the label map's uint8 copy for its PNG
# (measured: 14 per pixel for a 9000x9000 PNG, Pillow's 4-byte decode included).
FULL_RESOLUTION_BYTES = 16
# Tiles of `keras_memseg.predict.tiles` and what the PNG encoders hold at once.
FIXED_BYTES = 256 * 2**20
# Backbone feature floats per model pixel when the model is not known (an exported
# SavedModel): ResNet-50/101 at output stride 8, 256/4^2 + (512 + 1024 + 2048)/8^2.
DEFAULT_FEATURE_FLOATS = 72.0
DEFAULT_STRIDE = 8
# A limit at or above this is no limit (cgroup v1 writes 2^63 rounded to a page).
_UNLIMITED = 2**60


def model_profile(model):
    """(feature floats per model pixel, output stride, attends over positions) of a Keras
    segmenter, for `forward_bytes`; None: an exported model, the paper's values apply.

    The feature floats are the pyramid levels' channels over their stride squared (P2 at
    stride 4, deeper levels at 2^level up to the backbone's output stride).
    """
    if model is None:
        return None
    backbone = getattr(model, "backbone", None)
    stride = getattr(backbone, "output_stride", None) or getattr(model, "output_stride", None)
    stride = int(stride or DEFAULT_STRIDE)
    floats = 0.0
    outputs = getattr(getattr(model, "pyramid", None), "output", None)
    for level, tensor in outputs.items() if isinstance(outputs, dict) else ():
        if str(level)[1:].isdigit():  # "P2" ... "P5"
            floats += (tensor.shape[-1] or 0) / min(2 ** int(level[1:]), stride) ** 2
    floats = floats or DEFAULT_FEATURE_FLOATS
    attends = getattr(model, "attention_context", None) is not None
    return floats, stride, attends


def forward_bytes(height, width, num_classes, profile=None):
    """Estimated peak bytes of one forward pass at (height, width) (see the module doc).

    Example:
    >>> round(forward_bytes(512, 683, 150) / 2**30, 2)  # the paper's model, ADE20K size
    1.22
    """
    floats, stride, attends = profile or (DEFAULT_FEATURE_FLOATS, DEFAULT_STRIDE, True)
    pixels = int(height) * int(width)
    # Input and normalised input (float32 RGB), logits at the input size (float32,
    # their cast and NumPy copy), backbone and head features (about 6 live copies).
    total = pixels * (24 + 8 * int(num_classes) + 24 * floats)
    if attends:
        positions = math.ceil(height / stride) * math.ceil(width / stride)
        total += 9 * positions * positions  # scores + softmax, float32 (N, N), +12%
    return int(total)


def prediction_bytes(image_size, run_sizes, num_classes, profile=None):
    """Estimated peak bytes of predicting an `image_size` (H, W) image whose test-time
    runs are at `run_sizes` [(h, w), ...] (one per scale and flip).

    The runs are made one after the other and their (h, w, K) scores kept for the
    full-resolution argmax.
    """
    height, width = (int(v) for v in image_size)
    kept = sum(4 * int(num_classes) * h * w for h, w in run_sizes)
    largest = max(forward_bytes(h, w, num_classes, profile) for h, w in run_sizes)
    return FIXED_BYTES + FULL_RESOLUTION_BYTES * height * width + kept + largest


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def _status_bytes(key):
    """`VmSize`, `VmData`, ... of /proc/self/status in bytes (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _meminfo_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory():
    """(bytes this process may still allocate, what limits it), or (None, None) when
    nothing is known. The smallest of: the address-space limit (`ulimit -v`, `prlimit
    --as`) less the process's size, the data limit (`ulimit -d`) likewise, the cgroup's
    memory limit less its use, and the memory the kernel reports available.
    """
    found = []
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        resource = None
    if resource is not None:
        for name, key, what in (
            ("RLIMIT_AS", "VmSize", "address-space limit, ulimit -v"),
            ("RLIMIT_DATA", "VmData", "data-size limit, ulimit -d"),
        ):
            limit = resource.getrlimit(getattr(resource, name))[0]
            used = _status_bytes(key)
            if limit != resource.RLIM_INFINITY and 0 < limit < _UNLIMITED and used is not None:
                found.append((max(limit - used, 0), what))
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < _UNLIMITED and usage is not None:
            found.append((max(limit - usage, 0), "cgroup memory limit"))
    free = _meminfo_available()
    if free is not None:
        found.append((free, "free memory"))
    if not found:
        return None, None
    return min(found, key=lambda item: item[0])


def format_bytes(count):
    """`count` bytes for a person: "1.4 GB", "310 MB".

    Example:
    >>> format_bytes(1.5 * 2**30), format_bytes(310 * 2**20), format_bytes(2**50)
    ('1.5 GB', '310 MB', '1048576 GB')
    """
    if count >= GB:
        return f"{count / GB:.1f} GB" if count < 100 * GB else f"{count / GB:.0f} GB"
    return f"{count / 2**20:.0f} MB"
