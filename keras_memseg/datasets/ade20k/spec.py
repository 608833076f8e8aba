"""ADE20K SceneParsing (ADEChallengeData2016): 150 classes, label 0 ignored."""

from keras_memseg.datasets.ade20k import classes
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec

SPEC = DatasetSpec(
    name="ade20k",
    num_classes=150,
    class_names=classes.CLASS_NAMES,
    palette=classes.PALETTE,
    splits=("train", "val"),
    augment=AugmentConfig(),  # (2048, 512) x U(0.5, 2), 512 crops, test (2048, 512)
    layout=(
        "ADEChallengeData2016.zip (http://sceneparsing.csail.mit.edu), as the archive or\n"
        "  extracted to ADEChallengeData2016/images/{training,validation}/*.jpg and\n"
        "  ADEChallengeData2016/annotations/{training,validation}/*.png"
    ),
    builder="keras_memseg.datasets.ade20k.ade20k_dataset_builder:MemsegAde20k",
)
