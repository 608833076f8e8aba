"""Cityscapes (gtFine): 34 label ids -> 19 train ids; test labels are withheld."""

from keras_memseg.datasets.cityscapes import classes
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec
from keras_memseg.datasets.spec import EvalDefaults

SPEC = DatasetSpec(
    name="cityscapes",
    num_classes=19,
    class_names=classes.CLASS_NAMES,
    palette=classes.PALETTE,
    splits=("train", "val", "test", "trainval"),
    # Train on train, score on val. The paper's test-server numbers train on trainval
    # and submit test predictions (recipes/evaluate.py --submission_dir).
    train_split="train",
    eval_split="val",
    unlabelled_splits=("test",),
    augment=AugmentConfig(
        target_scale=(2048, 1024), crop_size=(512, 1024), test_scale=(2048, 1024)
    ),
    # The reference slides a (h=1024, w=512) window with stride 341.
    evaluation=EvalDefaults(mode="slide", crop_size=(1024, 512), stride=(341, 341)),
    layout=(
        "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip\n"
        "  (https://www.cityscapes-dataset.com, registration required), as archives or\n"
        "  extracted to leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png and\n"
        "  gtFine/{train,val,test}/<city>/*_gtFine_labelIds.png (or *_labelTrainIds.png)"
    ),
    builder="keras_memseg.datasets.cityscapes.cityscapes_dataset_builder:MemsegCityscapes",
    submission="keras_memseg.datasets.cityscapes.submission:submission_file",
)
