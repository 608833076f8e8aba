import dataclasses

import pytest

from keras_memseg import datasets


@pytest.mark.parametrize("name,k", [("cocostuff10k", 182), ("coco_stuff10k", 182), ("cocostuff164k", 182),
                                    ("ade20k", 150), ("cityscapes", 19), ("lip", 20), ("camvid", 11), ("sample", 11)])
def test_get_info(name, k):
    info = datasets.get_info(name)
    assert info.num_classes == k == len(info.class_names) == len(info.palette)
    assert info.ignore_label == 255
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in info.palette)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 3


def test_coco_171_and_lip_pairs():
    assert datasets.get_info("cocostuff164k", num_classes=171).num_classes == 171
    assert datasets.get_info("lip").flip_pairs == ((14, 15), (16, 17), (18, 19))
    assert datasets.get_info("cityscapes").train_split == "trainval"


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="Known names: .*ade20k.*sample"):
        datasets.get_info("pascal")
    with pytest.raises(ValueError, match="Known names"):
        datasets.load("pascal")


def test_missing_data_message_names_files():
    message = datasets.missing_data_message("cityscapes", "/data/cs")
    assert "leftImg8bit_trainvaltest.zip" in message and "/data/cs" in message
    assert "load('sample')" in message
    assert "ADEChallengeData2016.zip" in datasets.missing_data_message("ade20k")
