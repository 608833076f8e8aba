"""Local preset folders: what is written, and the errors for folders that are not presets."""

import json

import numpy as np
import pytest

from keras_memseg import presets
from keras_memseg.backbones import DilatedResNetBackbone


def test_folder_layout_and_round_trip(tmp_path):
    net = DilatedResNetBackbone(depth=18, base_channels=4)
    presets.save_to_preset(net, str(tmp_path / "p"), metadata={"source": "test"})
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    meta = json.loads((tmp_path / "p" / "metadata.json").read_text())
    assert meta["source"] == "test" and "keras_memseg_version" in meta
    loaded = presets.load_from_preset(str(tmp_path / "p"))
    for a, b in zip(net.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)


def test_not_a_preset(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        presets.read_config(str(tmp_path))
    (tmp_path / "config.json").write_text("not json")
    with pytest.raises(ValueError, match="is not a valid JSON config"):
        presets.read_config(str(tmp_path))
    assert presets.is_preset_dir(str(tmp_path)) and not presets.is_preset_dir(str(tmp_path / "x"))


def test_preset_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path))
    assert presets.preset_home() == str(tmp_path / "presets")
