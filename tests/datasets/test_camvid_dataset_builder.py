import logging
import os
import shutil
import zipfile

import numpy as np
import pytest
from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir
from _helpers import examples
from _helpers import read_png
from PIL import Image

from keras_memseg import datasets
from keras_memseg.datasets import DatasetNotFoundError
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


# -- issue #34: unsafe paths, valid-but-unusual input, empty / repeated lists ---------------


def _tiny_layout(root, size=(6, 8)):
    """CamVid layout with 2 train and 1 val tiny examples (image i is grey 40*i, label i)."""
    width, height = size
    for split, count in (("train", 2), ("val", 1)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for i in range(count):
            image = np.full((height, width, 3), 40 * i, np.uint8)
            Image.fromarray(image).save(root / split / f"{i}.png")
            Image.fromarray(np.full((height, width), i, np.uint8)).save(
                root / f"{split}annot" / f"{i}.png"
            )
            lines.append(f"{split}/{i}.png {split}annot/{i}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def _images(builder, split="train"):
    """{file_name: image} of a prepared split."""
    return {item["file_name"].decode(): item["image"] for item in examples(builder, split)}


def test_dotdot_list_line_refused(tmp_path):
    manual = _tiny_layout(tmp_path / "manual")
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(tmp_path / "outside.png")
    (manual / "train.txt").write_text(
        "train/0.png trainannot/0.png\ntrain/../outside.png trainannot/1.png\n"
    )
    with pytest.raises(DatasetNotFoundError) as info:
        build(MemsegCamvid, manual, tmp_path / "data")
    message = str(info.value)
    assert "\n" not in message and "refusing" in message
    assert f"{manual / 'train.txt'} line 2" in message
    assert "'train/../outside.png trainannot/1.png'" in message


def test_symlinked_image_folder_outside_refused(tmp_path):
    manual = _tiny_layout(tmp_path / "manual")
    shutil.move(manual / "train", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", manual / "train")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load("camvid", "train", data_dir=tmp_path / "data", manual_dir=manual)
    message = str(info.value)
    assert "\n" not in message and "outside manual_dir" in message
    assert f"{manual / 'train.txt'} line 1" in message and "train/0.png" in message


def test_symlinked_manual_dir_itself_accepted(tmp_path):
    real = _tiny_layout(tmp_path / "real")
    os.symlink(real, tmp_path / "manual")
    builder = build(MemsegCamvid, tmp_path / "manual", tmp_path / "data")
    assert builder.info.splits["train"].num_examples == 2


def test_jpeg_cmyk_crlf_and_whitespace_accepted(tmp_path):
    manual = _tiny_layout(tmp_path / "manual")
    # A JPEG under a .png name and a CMYK JPEG; list with BOM, CRLF and padding.
    Image.fromarray(np.full((8, 6, 3), 200, np.uint8)).save(manual / "train/0.png", format="JPEG")
    Image.new("CMYK", (6, 8), (0, 0, 0, 0)).save(manual / "train/1.jpg", format="JPEG")
    lines = "\ufeff  train/0.png\ttrainannot/0.png  \r\n\r\ntrain/1.jpg trainannot/1.png\r\n"
    (manual / "train.txt").write_bytes(lines.encode("utf-8"))
    images = _images(build(MemsegCamvid, manual, tmp_path / "data"))
    assert sorted(images) == ["train/0.png", "train/1.jpg"]
    assert abs(int(images["train/0.png"].mean()) - 200) <= 2
    np.testing.assert_array_equal(images["train/1.jpg"], np.full((8, 6, 3), 255, np.uint8))


def test_exif_rotated_jpeg_is_rotated_like_cv2(tmp_path):
    manual = _tiny_layout(tmp_path / "manual")
    stored = np.zeros((6, 8, 3), np.uint8)  # stored 8 wide x 6 high, shown 6 x 8
    stored[0, :] = 255  # top row of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(stored).save(manual / "train/1.jpg", format="JPEG", quality=100, exif=exif)
    (manual / "train.txt").write_text("train/1.jpg trainannot/1.png\n")
    image = _images(build(MemsegCamvid, manual, tmp_path / "data"))["train/1.jpg"]
    assert image.shape == (8, 6, 3)
    assert image[:, -1].mean() > 200 and image[:, 0].mean() < 50  # top row -> right column


def test_exif_rotated_jpeg_with_unrotated_label_names_file(tmp_path):
    manual = _tiny_layout(tmp_path / "manual")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(
        manual / "train/1.jpg", format="JPEG", exif=exif
    )
    (manual / "train.txt").write_text("train/1.jpg trainannot/1.png\n")
    with pytest.raises(datasets.BadExampleError) as info:
        build(MemsegCamvid, manual, tmp_path / "data")
    message = str(info.value)
    assert "\n" not in message and str(manual / "train/1.jpg") in message
    assert "EXIF orientation 6" in message and str(manual / "trainannot/1.png") in message


def test_repeated_line_used_once_with_one_warning(tmp_path, caplog):
    manual = _tiny_layout(tmp_path / "manual")
    text = (manual / "train.txt").read_text()
    (manual / "train.txt").write_text(text + "train/0.png trainannot/0.png\n")
    with caplog.at_level(logging.WARNING, logger="keras_memseg.datasets"):
        builder = build(MemsegCamvid, manual, tmp_path / "data")
    assert builder.info.splits["train"].num_examples == 2
    warnings = [r.getMessage() for r in caplog.records if "repeated" in r.getMessage()]
    assert len(warnings) == 1 and "line 3 repeats line 1" in warnings[0]


@pytest.mark.parametrize("split", ["train", "val"])
def test_empty_list_refused_up_front(tmp_path, split):
    manual = _tiny_layout(tmp_path / "manual")
    (manual / f"{split}.txt").write_text(" \r\n\n")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load("camvid", "train", data_dir=tmp_path / "data", manual_dir=manual)
    assert str(info.value) == f"{manual / (split + '.txt')}: no examples listed"


def test_split_left_empty_by_skipping_is_dataset_error(tmp_path):
    manual = _tiny_layout(tmp_path / "manual")
    (manual / "val" / "0.png").write_bytes(b"not an image")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load(
            "camvid", "train", data_dir=tmp_path / "data", manual_dir=manual, skip_bad_examples=True
        )
    message = str(info.value)
    assert "No examples were yielded" not in message and "\n" not in message
    assert "split 'val'" in message and str(manual) in message
