"""TensorFlow process settings keras_memseg chooses before TensorFlow is imported.

TensorFlow decides at import time whether its CPU kernels are oneDNN's
(`TF_ENABLE_ONEDNN_OPTS`): on by default only on recent Intel CPUs (AVX-512 VNNI,
AMX), off on others, e.g. AMD EPYC and older Intel parts. The models' heavy ops are
matmuls (`layers.MatmulConv2D` computes 1x1, dilated and wide convolutions as
matmuls), and oneDNN's matmul runs at about 1.5x Eigen's rate on a 2-core AMD EPYC
(`benchmarks/matmul_conv.py`); the training step of an R50 MCIBI model is ~1.3x
faster end to end (`benchmarks/compare_reference.py`). Results differ from Eigen's
by float32 rounding only (the parity tests against the authors' outputs hold either way).
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
