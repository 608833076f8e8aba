import zipfile

import numpy as np
from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir
from _helpers import read_png

from keras_memseg.datasets.ade20k.ade20k_dataset_builder import MemsegAde20k

Ade20kBuilderTest = builder_test_case(MemsegAde20k, {"train": 2, "val": 2}, ())


def test_reduce_zero_label(tmp_path):
    builder = build(MemsegAde20k, dummy_dir("ade20k"), tmp_path)
    for item in check_examples(builder, "train", 150, 2):
        name = item["file_name"].decode()
        raw = read_png(
            dummy_dir("ade20k") / name.replace("images/", "annotations/").replace(".jpg", ".png")
        ).astype(np.int64)
        expected = np.where(raw == 0, 255, raw - 1)
        np.testing.assert_array_equal(item["label"][..., 0], expected)
    assert builder.info.metadata["num_classes"] == 150


def test_builds_from_original_zip(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    root = dummy_dir("ade20k")
    with zipfile.ZipFile(manual / "ADEChallengeData2016.zip", "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    builder = build(MemsegAde20k, manual, tmp_path / "data")
    check_examples(builder, "val", 150, 2)
