import numpy as np
from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir
from _helpers import read_png

from keras_memseg.datasets.lip.lip_dataset_builder import MemsegLip

LipBuilderTest = builder_test_case(MemsegLip, {"train": 2, "val": 2}, ())


def test_labels_unchanged(tmp_path):
    builder = build(MemsegLip, dummy_dir("lip"), tmp_path)
    for item in check_examples(builder, "val", 20, 2):
        name = item["file_name"].decode()
        raw = read_png(
            dummy_dir("lip")
            / name.replace(
                "TrainVal_images/val_images", "TrainVal_parsing_annotations/val_segmentations"
            ).replace(".jpg", ".png")
        )
        np.testing.assert_array_equal(item["label"][..., 0], raw)
    assert builder.info.metadata["flip_pairs"] == [[14, 15], [16, 17], [18, 19]]
