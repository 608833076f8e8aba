"""Predict without --dataset takes class names, palette, test scale and inference mode
from the model; the new flag names and the old spellings."""

import os

import keras
import numpy as np
import pytest

from keras_memseg.predict.__main__ import parse_args


def test_flags_and_old_spellings(capsys):
    args = parse_args(
        [
            "--model",
            "m",
            "a.png",
            "--out",
            "o",
            "--test_scale",
            "512,1024",
            "--mode",
            "slide",
            "--slide_window",
            "64,32",
            "--slide_stride",
            "48,16",
        ]
    )
    assert args.test_scale == (512, 1024) and args.mode == "slide"
    assert (args.slide_window, args.slide_stride, args.verbose) == ((64, 32), (48, 16), 1)
    assert capsys.readouterr().err == ""
    assert parse_args(["--model", "m", "--verbose", "a.png", "--out", "o"]).verbose == 2
    assert parse_args(["--model", "m", "a.png", "--out", "o", "--verbose", "0"]).verbose == 0
    assert parse_args(["--model", "m", "a.png", "--out", "o", "--quiet"]).verbose == 0
    assert capsys.readouterr().err == "note: --quiet is now --verbose 0\n"
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "a.png", "--out", "o", "--test_scale", "512"])


def _rgb(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_predict_uses_the_models_classes_and_test_scale(tmp_path):
    from PIL import Image

    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import DeepLabV3
    from keras_memseg.models import SegmenterPreprocessor
    from keras_memseg.predict import predict_files
    from keras_memseg.predict.__main__ import main

    keras.utils.set_random_seed(0)
    model = DeepLabV3(
        DilatedResNetBackbone(depth=18, base_channels=8),
        3,
        feats_channels=16,
        aux_channels=8,
        class_names=["sky", "road", "car"],
        palette=[(10, 20, 30), (40, 50, 60), (70, 80, 90)],
        preprocessor=SegmenterPreprocessor(test_scale=(48, 32)),
    )
    model(np.zeros((1, 32, 32, 3), "float32"))
    run = tmp_path / "run"
    run.mkdir()
    model.save(str(run / "model.keras"))  # a run folder, as training writes it
    image = np.random.default_rng(0).integers(0, 256, (60, 90, 3)).astype("uint8")
    Image.fromarray(image).save(tmp_path / "x.png")
    assert (
        main(
            [
                "--model",
                str(run),
                str(tmp_path / "x.png"),
                "--out",
                str(tmp_path / "o"),
                "--verbose",
                "0",
            ]
        )
        == 0
    )
    with Image.open(tmp_path / "o" / "x.png") as png:
        labels = np.asarray(png)
        palette = png.getpalette()[:9]
    assert palette == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    # bounded by the model's test scale: the same labels as segment()
    assert np.mean(labels == model.segment(image)) > 0.99
    full = predict_files(model, [str(tmp_path / "x.png")], tmp_path / "f", full_size=True)
    assert full.written
    with Image.open(tmp_path / "f" / "x.png") as png:
        np.testing.assert_array_equal(np.asarray(png), model.segment(image, full_size=True))
    assert os.path.exists(tmp_path / "f" / "x_overlay.png")
