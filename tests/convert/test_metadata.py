"""A converted segmentor gets its dataset's class names, palette and test settings."""

import warnings

import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.convert.metadata import apply_dataset
from keras_memseg.convert.metadata import dataset_from_filename
from keras_memseg.datasets import get_info
from keras_memseg.models import DeepLabV3


def _model(k):
    return DeepLabV3(
        DilatedResNetBackbone(depth=18, base_channels=8), k, feats_channels=8, aux_channels=8
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mcibi_deeplabv3_resnet50os8_ade20k.pth", "ade20k"),
        ("mcibi_deeplabv3_resnet101os8_cocostuff10k_train.pth", "coco_stuff10k"),
        ("deeplabv3_resnet101os8_cityscapes.pth", "cityscapes"),
        ("mcibi_r101_lip.pth", "lip"),
        ("resnet50_v1c-2cccc1ad.pth", None),
        ("ade20k_and_lip.pth", None),  # ambiguous
    ],
)
def test_dataset_from_filename(name, expected):
    assert dataset_from_filename(name) == expected


def test_apply_dataset_from_the_file_name_or_explicit():
    model = _model(20)
    assert apply_dataset(model, source="/x/mcibi_r50_lip.pth") == "lip"
    spec = get_info("lip")
    assert model.class_names == tuple(spec.class_names)
    assert model.preprocessor.test_scale == tuple(spec.augment.test_scale)
    assert model.preprocessor.keep_ratio is False
    model = _model(19)
    with pytest.warns(UserWarning, match="do not match it; class names left unset"):
        assert apply_dataset(model, source="mcibi_r50_lip.pth") is None
    assert model.class_names[0] == "class_0"
    with pytest.warns(UserWarning, match="no dataset name in the file name"):
        apply_dataset(model, source="weights.pth")
    assert apply_dataset(model, "cityscapes") == "cityscapes"
    assert model.preprocessor.mode == "slide"
    with pytest.raises(ValueError, match="^--dataset ade20k: dataset 'ade20k' has 150 classes"):
        apply_dataset(model, "ade20k")
    model = _model(171)  # COCO-Stuff's 171-class variant
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert apply_dataset(model, source="x_cocostuff10k.pth") == "coco_stuff10k"
    assert len(model.class_names) == 171 and len(np.unique(model.palette, axis=0)) > 1
