"""NumPy pieces shared by the layer tests: a fresh BN in inference mode, a 1x1 conv."""

import numpy as np

BN_SCALE = 1.0 / np.sqrt(1.0 + 1e-5)  # a fresh BN (mean 0, var 1) in inference mode


def relu(x):
    return np.maximum(x, 0.0)


def conv1x1_bn(block, x):
    """A fresh `ConvBNAct(kernel 1)` without its activation, in NumPy."""
    return x @ block.conv.kernel.numpy()[0, 0] * BN_SCALE
