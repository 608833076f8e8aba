"""TensorFlow process settings keras_memseg chooses before TensorFlow is imported.

TensorFlow decides at import time whether its CPU kernels are oneDNN's
(`TF_ENABLE_ONEDNN_OPTS`): on by default only on recent Intel CPUs (AVX-512 VNNI,
AMX), off on others, e.g. AMD EPYC and older Intel parts. `prefer_onednn` chooses per
CPU instead, unless the user set the variable:

- **CPUs without AVX-512: oneDNN on.** The models' heavy ops are matmuls
  (`layers.MatmulConv2D` computes 1x1, dilated and wide convolutions as matmuls);
  oneDNN's matmul runs at about 1.5x Eigen's rate on a 2-core AMD EPYC
  (`benchmarks/matmul_conv.py`), the training step of an R50 MCIBI model ~1.3x faster
  (`benchmarks/compare_reference.py`). Results differ from Eigen's by float32 rounding
  only (the parity tests against the authors' outputs hold either way).
- **CPUs with AVX-512: oneDNN off (Eigen).** There TensorFlow 2.21's oneDNN (3.7)
  corrupted the heap when these models trained at batch size 1 (segmentation faults
  and glibc aborts in `fit`, issue #34, on an Intel Xeon with AVX-512 VNNI; fine with
  oneDNN off). Keeping oneDNN on but capping its instruction set at AVX2
  (`ONEDNN_MAX_CPU_ISA=AVX2`, the first fix) is no way out: on a CPU with AVX512_BF16,
  TensorFlow still hands bfloat16 matmuls to oneDNN, which then has no kernel for them,
  and the process dies (exit 139; `mixed_bfloat16`, measured on an AMD EPYC with
  AVX-512 BF16, `tests/test_tensorflow_runtime.py`).
"""

import os
import sys


def prefer_onednn(flags=None, environ=None, tensorflow_imported=None):
    """Chooses TensorFlow's CPU kernels for this CPU, unless the user chose.

    Sets `TF_ENABLE_ONEDNN_OPTS` to "1" (oneDNN) on a CPU without AVX-512 and to "0"
    (Eigen) on one with AVX-512 (why: the module docstring). A value the user set is
    kept, and nothing is set once TensorFlow is imported (it reads the variable at
    import). Called by `import keras_memseg` and by the recipes before they import
    TensorFlow.

    Args:
        flags: the CPU's feature flags; `cpu_flags()` when None.
        environ: the environment to set; `os.environ` when None.
        tensorflow_imported: whether it is too late; `"tensorflow" in sys.modules`
            when None.

    Returns whether TensorFlow, once imported, will use oneDNN's kernels as far as the
    environment says.

    Example:
    >>> prefer_onednn(flags={"avx2", "fma"}, environ={}, tensorflow_imported=False)
    True
    >>> env = {}
    >>> prefer_onednn(flags={"avx2", "avx512f"}, environ=env, tensorflow_imported=False)
    False
    >>> env
    {'TF_ENABLE_ONEDNN_OPTS': '0'}
    >>> prefer_onednn(flags={"avx512f"}, environ={"TF_ENABLE_ONEDNN_OPTS": "1"},
    ...               tensorflow_imported=False)  # the user's choice
    True
    """
    environ = os.environ if environ is None else environ
    if tensorflow_imported is None:
        tensorflow_imported = "tensorflow" in sys.modules
    if not tensorflow_imported and "TF_ENABLE_ONEDNN_OPTS" not in environ:
        flags = cpu_flags() if flags is None else flags
        environ["TF_ENABLE_ONEDNN_OPTS"] = "0" if "avx512f" in flags else "1"
    return environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"


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
