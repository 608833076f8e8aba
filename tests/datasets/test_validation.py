"""Bad input: every case fails loudly with the file name, unless skip_bad_examples."""

import logging
import shutil

import numpy as np
import pytest
import scipy.io
from _helpers import build
from _helpers import dummy_dir
from PIL import Image

from keras_memseg import datasets
from keras_memseg.datasets import BadExampleError
from keras_memseg.datasets import DatasetNotFoundError
from keras_memseg.datasets.camvid.camvid_dataset_builder import MemsegCamvid
from keras_memseg.datasets.coco_stuff10k.coco_stuff10k_dataset_builder import MemsegCocoStuff10k

NAME = "0001TP_000000.png"


@pytest.fixture
def camvid(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(dummy_dir("camvid"), manual)
    return manual


def test_missing_manual_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nope.*not a folder") as info:
        datasets.load("camvid", data_dir=tmp_path, manual_dir=tmp_path / "nope")
    assert "train.txt" in str(info.value) and "load('sample')" in str(info.value)


def test_unprepared_without_manual_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="ADEChallengeData2016"):
        datasets.load("ade20k", data_dir=tmp_path)


def test_half_extracted_annotations_missing(camvid, tmp_path):
    shutil.rmtree(camvid / "trainannot")
    with pytest.raises(
        DatasetNotFoundError,
        match=r"expected 3 images and 3 labels \(official count 367\), found 3 images "
        r"and 0 labels.*trainannot/0001TP_000000.png",
    ):
        build(MemsegCamvid, camvid, tmp_path / "data")


def test_list_file_missing(camvid, tmp_path):
    (camvid / "val.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"val.txt not found.*101"):
        build(MemsegCamvid, camvid, tmp_path / "data")


def test_coco_list_dir_missing(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(dummy_dir("coco_stuff10k"), manual)
    shutil.rmtree(manual / "imageLists")
    with pytest.raises(DatasetNotFoundError, match="imageLists not found"):
        build(MemsegCocoStuff10k, manual, tmp_path / "data")


def test_corrupt_image(camvid, tmp_path):
    (camvid / "train" / NAME).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(BadExampleError, match=f"cannot decode image .*train/{NAME}"):
        build(MemsegCamvid, camvid, tmp_path / "data")


def test_corrupt_zip(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "CamVid.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetNotFoundError, match="CamVid.zip is not a readable zip"):
        build(MemsegCamvid, manual, tmp_path / "data")


def test_label_size_mismatch(camvid, tmp_path):
    path = camvid / "trainannot" / NAME
    Image.open(path).resize((10, 7), Image.NEAREST).save(path)
    with pytest.raises(BadExampleError, match=f"trainannot/{NAME} is 10x7.*must match"):
        build(MemsegCamvid, camvid, tmp_path / "data")


def test_label_out_of_range(camvid, tmp_path):
    path = camvid / "trainannot" / NAME
    label = np.asarray(Image.open(path)).copy()
    label[0, 0] = 50
    Image.fromarray(label).save(path)
    with pytest.raises(
        BadExampleError, match=rf"trainannot/{NAME} has values \[50\].*0\.\.11, 255"
    ):
        build(MemsegCamvid, camvid, tmp_path / "data")


def test_rgb_label_rejected(camvid, tmp_path):
    path = camvid / "trainannot" / NAME
    Image.open(path).convert("RGB").save(path)
    with pytest.raises(BadExampleError, match=f"trainannot/{NAME} has mode RGB"):
        build(MemsegCamvid, camvid, tmp_path / "data")


def test_coco_mat_out_of_range(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(dummy_dir("coco_stuff10k"), manual)
    name = sorted((manual / "annotations").glob("*.mat"))[0]
    labels = scipy.io.loadmat(name)["S"]
    labels[0, 0] = 300
    scipy.io.savemat(name, {"S": labels})
    with pytest.raises(BadExampleError, match=rf"{name.name} has values \[300\]"):
        build(MemsegCocoStuff10k, manual, tmp_path / "data")


def test_skip_bad_examples_counts_and_logs(camvid, tmp_path, caplog):
    (camvid / "train" / NAME).write_bytes(b"garbage")
    shutil.os.remove(camvid / "valannot" / NAME)
    with caplog.at_level(logging.WARNING, logger="keras_memseg.datasets"):
        builder = build(MemsegCamvid, camvid, tmp_path / "data", skip_bad_examples=True)
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.splits["val"].num_examples == 1
    skipped = [where for where, _ in builder.skipped_examples]
    assert len(skipped) == 2 and any(f"train/{NAME}" in s for s in skipped)
    assert "skipped 1 bad examples" in caplog.text and f"train/{NAME}" in caplog.text
