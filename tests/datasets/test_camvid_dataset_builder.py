import shutil
import zipfile

import numpy as np
from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir
from _helpers import read_png

from keras_memseg.datasets.camvid.camvid_dataset_builder import MemsegCamvid
from keras_memseg.datasets.camvid.camvid_dataset_builder import parse_list

CamvidBuilderTest = builder_test_case(MemsegCamvid, {"train": 3, "val": 2}, ())


def _expected(raw):
    # Independent transcription of the CamVid rule: 0..10 kept, 11 -> 255.
    out = raw.astype(np.int64).copy()
    out[raw == 11] = 255
    return out


def test_labels_mapped_and_metadata(tmp_path):
    builder = build(MemsegCamvid, dummy_dir("camvid"), tmp_path)
    items = check_examples(builder, "train", 11, 3)
    for item in items:
        name = item["file_name"].decode()
        raw = read_png(dummy_dir("camvid") / name.replace("train/", "trainannot/"))
        np.testing.assert_array_equal(item["label"][..., 0], _expected(raw))
        np.testing.assert_array_equal(item["image"], read_png(dummy_dir("camvid") / name))
    meta = builder.info.metadata
    assert meta["num_classes"] == 11 and len(meta["class_names"]) == 11
    assert len(meta["palette"]) == 11 and meta["ignore_class"] == 255


def test_builds_from_zip_with_top_folder(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "CamVid.zip", "w") as archive:
        for path in sorted(dummy_dir("camvid").rglob("*")):
            if path.is_file():
                archive.write(path, "CamVid/" + path.relative_to(dummy_dir("camvid")).as_posix())
    builder = build(MemsegCamvid, manual, tmp_path / "data")
    check_examples(builder, "train", 11, 3)
    check_examples(builder, "val", 2 and 11, 2)


def test_parse_list_absolute_segnet_paths():
    text = "/SegNet/CamVid/val/a.png /SegNet/CamVid/valannot/a.png\n\n"
    assert parse_list(text, "val.txt") == [("val/a.png", "valannot/a.png")]


def test_extra_test_split_when_listed(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(dummy_dir("camvid"), manual)
    (manual / "test.txt").write_text((manual / "val.txt").read_text())
    builder = build(MemsegCamvid, manual, tmp_path / "data")
    assert builder.info.splits["test"].num_examples == 2
