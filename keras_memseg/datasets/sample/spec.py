"""The CamVid sample bundled with the package: 48 train + 16 val frames at 224x168."""

from keras_memseg.datasets.camvid import classes
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec

SPEC = DatasetSpec(
    name="sample",
    num_classes=11,
    class_names=classes.CLASS_NAMES,
    palette=classes.PALETTE,
    splits=("train", "val"),
    augment=AugmentConfig(target_scale=(224, 168), crop_size=(168, 224), test_scale=(224, 168)),
    layout=(
        "nothing: the sample ships inside the package (keras_memseg/datasets/sample/);\n"
        "  reinstall keras_memseg if it is missing, or regenerate it with\n"
        "  python -m keras_memseg.datasets.make_sample --camvid_dir /path/to/CamVid"
    ),
    reader="keras_memseg.datasets.sample.reader:load_sample",
)
