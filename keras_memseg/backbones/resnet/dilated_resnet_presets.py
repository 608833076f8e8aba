"""Named presets of `DilatedResNetBackbone`: architectures and where their weights come from.

Each entry: `metadata` (description, parameter count), `config` (constructor
arguments) and `source`, the published ImageNet checkpoint (PyTorch `.pth`) that
`python -m keras_memseg.convert SOURCE --preset NAME` turns into a local preset
folder; nothing is downloaded by keras_memseg. The V1c weights are open-mmlab's, the
ones the reference's `ResNet` loads (`use_conv3x3_stem=True`); the 7x7-stem presets
take torchvision's ImageNet weights, the files the reference loads with
`use_conv3x3_stem=False`.
"""

_OPENMMLAB = "https://download.openmmlab.com/pretrain/third_party/"
_TORCHVISION = "https://download.pytorch.org/models/"

backbone_presets = {
    "resnet18_v1c": {
        "metadata": {
            "description": "ResNet-18-V1c (3x3 deep stem), ImageNet-1k.",
            "params": 11_195_744,
        },
        "config": {"depth": 18},
        "source": _OPENMMLAB + "resnet18_v1c-b5776b93.pth",
    },
    "resnet34_v1c": {
        "metadata": {
            "description": "ResNet-34-V1c (3x3 deep stem); no published weights.",
            "params": 21_303_904,
        },
        "config": {"depth": 34},
        "source": "",
    },
    "resnet50_v1c": {
        "metadata": {
            "description": "ResNet-50-V1c (3x3 deep stem), ImageNet-1k; the "
            "backbone of the paper's R-50-D8 results.",
            "params": 23_527_264,
        },
        "config": {"depth": 50},
        "source": _OPENMMLAB + "resnet50_v1c-2cccc1ad.pth",
    },
    "resnet101_v1c": {
        "metadata": {
            "description": "ResNet-101-V1c (3x3 deep stem), ImageNet-1k; the "
            "backbone of the paper's R-101-D8 results.",
            "params": 42_519_392,
        },
        "config": {"depth": 101},
        "source": _OPENMMLAB + "resnet101_v1c-e67eebb6.pth",
    },
    "resnet18": {
        "metadata": {
            "description": "ResNet-18 (7x7 stem, torchvision), ImageNet-1k.",
            "params": 11_176_512,
        },
        "config": {"depth": 18, "stem": "7x7"},
        "source": _TORCHVISION + "resnet18-5c106cde.pth",
    },
    "resnet34": {
        "metadata": {
            "description": "ResNet-34 (7x7 stem, torchvision), ImageNet-1k.",
            "params": 21_284_672,
        },
        "config": {"depth": 34, "stem": "7x7"},
        "source": _TORCHVISION + "resnet34-333f7ec4.pth",
    },
    "resnet50": {
        "metadata": {
            "description": "ResNet-50 (7x7 stem, torchvision), ImageNet-1k.",
            "params": 23_508_032,
        },
        "config": {"depth": 50, "stem": "7x7"},
        "source": _TORCHVISION + "resnet50-19c8e357.pth",
    },
    "resnet101": {
        "metadata": {
            "description": "ResNet-101 (7x7 stem, torchvision), ImageNet-1k.",
            "params": 42_500_160,
        },
        "config": {"depth": 101, "stem": "7x7"},
        "source": _TORCHVISION + "resnet101-5d3b4d8f.pth",
    },
}
