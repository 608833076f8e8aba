import numpy as np
import pytest
from _helpers import dummy_dir

from keras_memseg import datasets
from keras_memseg.datasets import DatasetNotFoundError


def test_sample_counts_and_values():
    for split, count in (("train", 48), ("val", 16)):
        items = list(datasets.load("sample", split=split).as_numpy_iterator())
        assert len(items) == count
        for item in items[:5]:
            assert item["image"].shape == (168, 224, 3) and item["image"].dtype == np.uint8
            assert item["label"].shape == (168, 224) and item["label"].dtype == np.uint8
        values = set(np.unique(np.concatenate([i["label"].ravel() for i in items])).tolist())
        assert values <= set(range(11)) | {255}
    assert 255 in values  # raw 11 (Unlabelled) became 255


def test_sample_order_is_deterministic():
    a = [x["label"].sum() for x in datasets.load("sample", "val").as_numpy_iterator()]
    b = [x["label"].sum() for x in datasets.load("sample", "val").as_numpy_iterator()]
    assert a == b


def test_sample_split_is_decoded_once_then_served_from_memory(tmp_path):
    import shutil

    from keras_memseg.datasets.sample.reader import SAMPLE_DIR
    from keras_memseg.datasets.sample.reader import load_sample

    shutil.copytree(SAMPLE_DIR, tmp_path / "sample")
    ds = load_sample("val", sample_dir=tmp_path / "sample")
    first = [x["label"].sum() for x in ds.as_numpy_iterator()]
    for png in (tmp_path / "sample").rglob("*.png"):
        png.unlink()  # a second pass that re-read the files would fail now
    assert [x["label"].sum() for x in ds.as_numpy_iterator()] == first


def test_load_camvid_builds_once(tmp_path):
    ds = datasets.load("camvid", "val", data_dir=tmp_path, manual_dir=dummy_dir("camvid"))
    items = list(ds.as_numpy_iterator())
    assert len(items) == 2 and items[0]["label"].ndim == 2
    again = datasets.load("camvid", "val", data_dir=tmp_path)  # prepared: no manual_dir needed
    assert len(list(again)) == 2


def test_bad_split():
    with pytest.raises(ValueError, match="splits"):
        datasets.load("sample", split="test")


def test_sample_dir_readable_by_camvid_builder(tmp_path):
    from keras_memseg.datasets.sample.reader import SAMPLE_DIR

    builder = datasets.prepare("camvid", data_dir=tmp_path, manual_dir=SAMPLE_DIR)
    assert builder.info.splits["val"].num_examples == 16


def test_missing_raises_with_instructions(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="TrainVal_images.zip"):
        datasets.load("lip", data_dir=tmp_path, manual_dir=None)
