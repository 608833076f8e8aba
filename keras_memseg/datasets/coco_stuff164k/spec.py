"""COCO-Stuff-164k (COCO 2017 images, stuffthingmaps): 182-way or 171 contiguous ids."""

from keras_memseg.datasets import _coco_stuff_classes as coco
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec

SPEC = DatasetSpec(
    name="coco_stuff164k",
    num_classes=182,
    class_names=coco.CLASS_NAMES_182,
    palette=coco.PALETTE_182,
    splits=("train", "val"),
    augment=AugmentConfig(),
    layout=(
        "COCO 2017 images train2017.zip, val2017.zip and stuffthingmaps_trainval2017.zip\n"
        "  (https://github.com/nightrome/cocostuff), as archives or extracted to:\n"
        "    images/train2017/*.jpg, images/val2017/*.jpg (or train2017/, val2017/)\n"
        "    annotations/train2017/*.png, annotations/val2017/*.png\n"
        "    (or stuffthingmaps_trainval2017/train2017/*.png, or .png next to the .jpg)"
    ),
    builder="keras_memseg.datasets.coco_stuff164k.coco_stuff164k_dataset_builder:"
    "MemsegCocoStuff164k",
    variants={171: (coco.CLASS_NAMES_171, coco.PALETTE_171)},
)
