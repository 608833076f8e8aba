"""COCO-Stuff-10k v1.1: 182-way like the reference (or 171 contiguous ids)."""

from keras_memseg.datasets import _coco_stuff_classes as coco
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec

SPEC = DatasetSpec(
    name="coco_stuff10k",
    num_classes=182,
    class_names=coco.CLASS_NAMES_182,
    palette=coco.PALETTE_182,
    splits=("train", "test"),
    eval_split="test",
    augment=AugmentConfig(),
    layout=(
        "cocostuff-10k-v1.1.zip (https://github.com/nightrome/cocostuff10k), either the\n"
        "  archive itself or extracted so that these exist:\n"
        "    images/*.jpg, annotations/*.mat, imageLists/train.txt, imageLists/test.txt"
    ),
    builder="keras_memseg.datasets.coco_stuff10k.coco_stuff10k_dataset_builder:MemsegCocoStuff10k",
    variants={171: (coco.CLASS_NAMES_171, coco.PALETTE_171)},
)
