import numpy as np
from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir
from _helpers import examples
from _helpers import read_png

from keras_memseg.datasets.cityscapes.cityscapes_dataset_builder import MemsegCityscapes

# Independent transcription of the spec's labelIds -> trainIds list.
_SPEC = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}


CityscapesBuilderTest = builder_test_case(
    MemsegCityscapes, {"train": 2, "val": 2, "test": 1, "trainval": 4}, ["train", "val", "trainval"]
)


def test_label_ids_and_train_ids(tmp_path):
    builder = build(MemsegCityscapes, dummy_dir("cityscapes"), tmp_path)
    check_examples(builder, "trainval", 19, 4)
    for item in check_examples(builder, "val", 19, 2) + check_examples(builder, "train", 19, 2):
        name = item["file_name"].decode()
        stem = name.replace("leftImg8bit/", "gtFine/").replace("_leftImg8bit.png", "_gtFine_")
        ids = dummy_dir("cityscapes") / (stem + "labelIds.png")
        if ids.exists():
            raw = read_png(ids)
            expected = np.vectorize(lambda v: _SPEC.get(int(v), 255))(raw)
        else:
            expected = read_png(dummy_dir("cityscapes") / (stem + "labelTrainIds.png"))
        np.testing.assert_array_equal(item["label"][..., 0], expected)


def test_test_split_has_only_ignore(tmp_path):
    builder = build(MemsegCityscapes, dummy_dir("cityscapes"), tmp_path)
    (item,) = examples(builder, "test")
    assert (item["label"] == 255).all()
