"""PyTorch checkpoints -> keras_memseg models and preset folders.

    python -m keras_memseg.convert SRC.pth --out DIR      # any supported checkpoint
    python -m keras_memseg.convert resnet50_v1c-2cccc1ad.pth --preset resnet50_v1c

Reads the authors' MCIBI / DeepLabV3 checkpoints (SegmentationBLWX/sssegmentation),
open-mmlab ResNet-V1c and torchvision ResNet backbones; torch is the optional
`[torch]` extra (`pip install "keras-memseg[torch]"`). `load_resnet_weights` loads
pretrained ResNet weights from a `.pth`, a preset folder or a `.weights.h5` into a
`DilatedResNetBackbone`.
"""

from typing import TYPE_CHECKING

from keras_memseg.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: `--help` answers before TensorFlow is imported
    from keras_memseg.convert.from_torch import convert_checkpoint
    from keras_memseg.convert.from_torch import convert_state_dict
    from keras_memseg.convert.from_torch import load_into_backbone
    from keras_memseg.convert.pretrained_weights import load_resnet_weights
    from keras_memseg.convert.state_transfer import MappingError
    from keras_memseg.convert.torch_checkpoint import CheckpointError
    from keras_memseg.convert.torch_checkpoint import read_state_dict

__getattr__, __dir__ = lazy_exports(__name__, __file__)
