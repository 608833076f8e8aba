"""LIP (Look Into Person): 20 classes (background included), left/right flip pairs."""

from keras_memseg.datasets.lip import classes
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec
from keras_memseg.datasets.spec import EvalDefaults

SPEC = DatasetSpec(
    name="lip",
    num_classes=20,
    class_names=classes.CLASS_NAMES,
    palette=classes.PALETTE,
    splits=("train", "val"),
    flip_pairs=classes.FLIP_PAIRS,
    # Square resize without keeping the ratio, rotation p = 0.6, 473 crops.
    augment=AugmentConfig(
        target_scale=(520, 520),
        ratio_range=(0.75, 1.25),
        keep_ratio=False,
        crop_size=(473, 473),
        flip_pairs=classes.FLIP_PAIRS,
        rotate_prob=0.6,
        rotate_degree=30,
        test_scale=(473, 473),
        test_keep_ratio=False,
    ),
    evaluation=EvalDefaults(flip=True),
    layout=(
        "TrainVal_images.zip and TrainVal_parsing_annotations.zip\n"
        "  (https://sysu-hcp.net/lip), as archives or extracted to\n"
        "    TrainVal_images/{train,val}_images/*.jpg, TrainVal_images/{train,val}_id.txt\n"
        "    TrainVal_parsing_annotations/{train,val}_segmentations/*.png"
    ),
    builder="keras_memseg.datasets.lip.lip_dataset_builder:MemsegLip",
)
