"""The dataset registry: one `DatasetSpec` per dataset folder, found by listing them."""

import dataclasses
import pathlib

import pytest

from keras_memseg import datasets
from keras_memseg.datasets import registry

DATASETS_DIR = pathlib.Path(datasets.__file__).resolve().parent


@pytest.mark.parametrize(
    "name,k",
    [
        ("coco_stuff10k", 182),
        ("coco_stuff164k", 182),
        ("ade20k", 150),
        ("cityscapes", 19),
        ("lip", 20),
        ("camvid", 11),
        ("sample", 11),
    ],
)
def test_get_info(name, k):
    info = datasets.get_info(name)
    assert info.name == name
    assert info.num_classes == k == len(info.class_names) == len(info.palette)
    assert info.ignore_class == 255
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in info.palette)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 3


def test_every_dataset_folder_registers_itself_and_nothing_else():
    folders = sorted(p.name for p in DATASETS_DIR.iterdir() if (p / "__init__.py").exists())
    assert datasets.dataset_names() == tuple(folders)
    for name in folders:
        assert (DATASETS_DIR / name / "spec.py").exists(), name
    spec = datasets.get_info("ade20k")
    assert registry.register(spec) is spec  # registering the same spec again is a no-op
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(dataclasses.replace(spec))


def test_variants_splits_and_flip_pairs():
    assert datasets.get_info("coco_stuff164k", num_classes=171).num_classes == 171
    assert len(datasets.get_info("coco_stuff10k", 171).class_names) == 171
    with pytest.raises(ValueError, match="must be one of \\[171, 182\\]"):
        datasets.get_info("coco_stuff10k", num_classes=150)
    with pytest.raises(ValueError, match="several label spaces"):
        datasets.get_info("ade20k", num_classes=150 + 1)
    assert datasets.get_info("lip").flip_pairs == ((14, 15), (16, 17), (18, 19))
    city = datasets.get_info("cityscapes")
    assert (city.train_split, city.eval_split, city.unlabelled_splits) == (
        "train",
        "val",
        ("test",),
    )
    assert city.evaluation.mode == "slide" and city.evaluation.crop_size == (1024, 512)
    assert datasets.get_info("camvid").splits == ("train", "val", "test")
    assert datasets.get_info("lip").evaluation.flip
    assert datasets.get_info("ade20k").builder.endswith(":MemsegAde20k")
    assert datasets.get_info("sample").reader and not datasets.get_info("sample").builder


def test_unknown_name_lists_known_and_suggests():
    with pytest.raises(
        ValueError, match="unknown dataset 'pascal'; known datasets: .*ade20k.*sample"
    ):
        datasets.get_info("pascal")
    with pytest.raises(ValueError, match="did you mean 'coco_stuff10k'"):
        datasets.get_info("cocostuff10k")
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("pascal")


def test_spec_checks_itself():
    spec = datasets.get_info("camvid")
    with pytest.raises(ValueError, match="11 classes but 2 names"):
        dataclasses.replace(spec, class_names=("a", "b"))
    with pytest.raises(ValueError, match="split 'dev' is not in"):
        dataclasses.replace(spec, eval_split="dev")
    with pytest.raises(ValueError, match="exactly one of builder and reader"):
        dataclasses.replace(spec, reader="x:y")


def test_missing_data_message_names_files():
    message = datasets.missing_data_message("cityscapes", "/data/cs")
    assert "leftImg8bit_trainvaltest.zip" in message and "/data/cs" in message
    assert "load('sample')" in message
    assert "ADEChallengeData2016.zip" in datasets.missing_data_message("ade20k")
