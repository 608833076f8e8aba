"""TensorFlow process settings keras_memseg chooses before TensorFlow is imported.

TensorFlow decides at import time whether its CPU kernels are oneDNN's
(`TF_ENABLE_ONEDNN_OPTS`): on by default only on recent CPUs (AVX-512 VNNI, AMX), off
on others, e.g. AVX2 AMD EPYC and older Intel parts. `prefer_onednn` chooses per CPU
instead, unless the user set the variable:

- **oneDNN on**, on every CPU but the one below. The models' heavy ops are matmuls
  (`keras_memseg.layers.conv2d` computes 1x1, dilated and wide convolutions as matmuls
  on CPUs), where oneDNN's kernels beat Eigen's on the CPUs measured
  (`benchmarks/onednn.py`; its results and the machines are in `docs/performance.md`).
  Results differ from Eigen's by float32 rounding only (the parity tests against the
  authors' outputs hold either way).
- **oneDNN off (Eigen) on CPUs with AVX-512.** There TensorFlow 2.21's oneDNN (3.7)
  corrupts the heap when these models train at batch size 1 (segmentation faults and
  glibc aborts such as `malloc assertion failure in _int_malloc`, issue #34): seen on
  an Intel Xeon with AVX-512 VNNI, and on an AMD EPYC with AVX-512 VNNI and BF16 (the
  issue's command, `benchmarks/compare_reference.py --backbone resnet18_v1c
  --base_channels 8 --size 64 --batch 1 --frameworks ours_tf --models deeplabv3`, died
  3 of 3 times with oneDNN on and passed 3 of 3 with it off). Capping oneDNN's
  instruction set at AVX2 instead (`ONEDNN_MAX_CPU_ISA=AVX2`, the first fix) is no way
  out: TensorFlow still hands bfloat16 matmuls to oneDNN on AVX-512 CPUs, which then has
  no kernel for them, and the process dies (exit 139 with `mixed_bfloat16`).
"""

import os
import sys


def prefer_onednn(flags=None, environ=None, tensorflow_imported=None):
    """Chooses TensorFlow's CPU kernels for this CPU, unless the user chose.

    Sets `TF_ENABLE_ONEDNN_OPTS` to "0" (Eigen) on a CPU with AVX-512 and to "1"
    (oneDNN) elsewhere (why: the module docstring). A value the user set is kept, and
    nothing is set once TensorFlow is imported (it reads the variable at import). Called
    by `import keras_memseg` and by the recipes before they import TensorFlow.

    Args:
        flags: the CPU's feature flags; `cpu_flags()` when None.
        environ: the environment to set; `os.environ` when None.
        tensorflow_imported: whether it is too late; `"tensorflow" in sys.modules`
            when None.

    Returns whether TensorFlow, once imported, will use oneDNN's kernels as far as the
    environment says.

    Example:
    >>> prefer_onednn(flags={"avx2"}, environ={}, tensorflow_imported=False)
    True
    >>> env = {}
    >>> prefer_onednn(flags={"avx2", "avx512f"}, environ=env, tensorflow_imported=False)
    False
    >>> env
    {'TF_ENABLE_ONEDNN_OPTS': '0'}
    >>> prefer_onednn(flags={"avx512f"}, environ={"TF_ENABLE_ONEDNN_OPTS": "1"},
    ...               tensorflow_imported=False)
    True
    """
    environ = os.environ if environ is None else environ
    if tensorflow_imported is None:
        tensorflow_imported = "tensorflow" in sys.modules
    if not tensorflow_imported and "TF_ENABLE_ONEDNN_OPTS" not in environ:
        environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn_is_safe(flags) else "0"
    return environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"


def onednn_is_safe(flags=None):
    """False on a CPU with AVX-512, where TensorFlow 2.21's oneDNN crashed batch-1
    training (issue #34, Intel Xeon and AMD EPYC); True elsewhere."""
    flags = cpu_flags() if flags is None else flags
    return "avx512f" not in flags


def _cpuinfo_field(name, path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1]
    except OSError:
        pass
    return ""


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (`avx2`, `avx512f`, ...) as a frozenset; empty where
    the system does not list them (no `/proc/cpuinfo`: macOS, Windows)."""
    return frozenset(_cpuinfo_field("flags", path).split())


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
