"""Optimizers and schedules of the reference recipes (backend-agnostic).

- `TorchSGD`: SGD with PyTorch's momentum convention (the reference's optimizer).
- `PolyDecay`: the poly learning-rate schedule with a floor.
- `TiedMomentum`: the memory momentum tied to a learning-rate schedule.
- `FiniteStep`: any optimizer, with steps whose gradients hold NaN/inf skipped
  (`Segmenter.compile` wraps every optimizer but `TorchSGD` in it).
"""

from keras_memseg.optimizers.finite_step import FiniteStep
from keras_memseg.optimizers.schedules import PolyDecay
from keras_memseg.optimizers.schedules import TiedMomentum
from keras_memseg.optimizers.torch_sgd import TorchSGD
