"""TensorFlow process settings keras_memseg chooses before TensorFlow is imported.

TensorFlow decides at import time whether its CPU kernels are oneDNN's
(`TF_ENABLE_ONEDNN_OPTS`): on by default only on recent Intel CPUs (AVX-512 VNNI,
AMX), off on others, e.g. AMD EPYC and older Intel parts. The models' heavy ops are
matmuls (`layers.MatmulConv2D` computes 1x1, dilated and wide convolutions as
matmuls), and oneDNN's matmul runs at about 1.5x Eigen's rate on a 2-core AMD EPYC
(`benchmarks/matmul_conv.py`); the training step of an R50 MCIBI model is ~1.3x
faster end to end (`benchmarks/compare_reference.py`). Results differ from Eigen's
by float32 rounding only (the parity tests against the authors' outputs hold either way).

On CPUs with AVX-512, oneDNN's AVX-512 kernels in TensorFlow 2.21 (oneDNN 3.7)
corrupt the heap when these models train at batch size 1 (segmentation faults and
glibc aborts in `fit`, issue #34, on an Intel Xeon with AVX-512 VNNI; fine with
oneDNN off, fine at batch 2, fine on AVX2 CPUs, where oneDNN picks other kernels for
the same shapes). `cap_onednn_isa` keeps oneDNN on its AVX2 kernels there.
"""

import os
import sys


def prefer_onednn():
    """Turns TensorFlow's oneDNN CPU kernels on unless the user chose
    (`TF_ENABLE_ONEDNN_OPTS` set, to 0 or 1, is kept) or TensorFlow is already
    imported (then it is too late: the setting is read at import). Called by
    `import keras_memseg` and by the recipes before they import TensorFlow.

    Returns whether TensorFlow, once imported, will use oneDNN's kernels as far as
    this process's environment says (TensorFlow may still decide for itself when
    already imported).

    Example:
    >>> import os
    >>> prefer_onednn() == (os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1")
    True
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"


# The environment variables oneDNN reads for its highest instruction set, newest first.
ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# The cap on CPUs with AVX-512: the kernels the batch-1 training runs with on AVX2
# CPUs (`benchmarks/onednn.py`, `tests/models/test_batch_one.py`).
ONEDNN_ISA_CAP = "AVX2"


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (`avx2`, `avx512f`, ...) as a frozenset; empty where
    the system does not list them (no `/proc/cpuinfo`: macOS, Windows)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cap_onednn_isa(flags=None, environ=None):
    """Keeps oneDNN on its AVX2 kernels on a CPU with AVX-512, unless the user chose.

    oneDNN reads `ONEDNN_MAX_CPU_ISA` when it creates its first kernel, so this
    works after `import tensorflow` too, as long as no TensorFlow op has run yet
    (it is called by `import keras_memseg`). A value the user set in
    `ONEDNN_MAX_CPU_ISA` or `DNNL_MAX_CPU_ISA` (e.g. `ALL` to let oneDNN use
    AVX-512 and AMX) is kept. Why: see the module docstring (issue #34).

    Args:
        flags: the CPU's feature flags; `cpu_flags()` when None.
        environ: the environment to set; `os.environ` when None.

    Returns:
        The cap set now (`"AVX2"`), or None when nothing was set (no AVX-512, or
        the user's own setting).

    Example:
    >>> cap_onednn_isa(flags={"avx2", "avx512f"}, environ={})
    'AVX2'
    >>> cap_onednn_isa(flags={"avx2", "avx512f"}, environ={"ONEDNN_MAX_CPU_ISA": "ALL"})
    >>> cap_onednn_isa(flags={"avx2", "fma"}, environ={})
    """
    environ = os.environ if environ is None else environ
    flags = cpu_flags() if flags is None else flags
    if "avx512f" not in flags or any(name in environ for name in ONEDNN_ISA_VARIABLES):
        return None
    environ["ONEDNN_MAX_CPU_ISA"] = ONEDNN_ISA_CAP
    return ONEDNN_ISA_CAP


def set_thread_counts(inter_op=0, intra_op=0):
    """Sizes TensorFlow's two CPU thread pools; 0 leaves TensorFlow's choice.

    `intra_op` threads share the work of one op (a matmul, a convolution);
    `inter_op` threads run independent ops at the same time. TensorFlow's default
    gives both the number of cores, which suits large ops. A small model's step is
    thousands of small ops: there, one thread per op with the ops side by side is
    faster (the bundled-sample recipe's step is ~15 % faster with `intra_op=1` on a
    2-core CPU, `benchmarks/sample_recipe.py`). Summation order, and so float32
    rounding, can change with `intra_op`.

    TensorFlow fixes the pools when its runtime starts (the first op), so call this
    before anything runs. Raises `RuntimeError` (one line naming the setting) when it
    asks for other sizes than a running runtime already has.

    Example:
    >>> set_thread_counts()  # both 0: nothing is changed
    """
    if not (inter_op or intra_op):
        return
    import tensorflow as tf

    threading = tf.config.threading
    wanted = {
        "inter_op_parallelism_threads": (
            inter_op,
            threading.get_inter_op_parallelism_threads,
            threading.set_inter_op_parallelism_threads,
        ),
        "intra_op_parallelism_threads": (
            intra_op,
            threading.get_intra_op_parallelism_threads,
            threading.set_intra_op_parallelism_threads,
        ),
    }
    for name, (count, get, set_) in wanted.items():
        if not count or get() == count:
            continue
        try:
            set_(count)
        except RuntimeError:
            raise RuntimeError(
                f"{name}={count}: TensorFlow's runtime has already started in this process "
                f"with {get() or 'its default'}; set it before the first TensorFlow op runs"
            ) from None
