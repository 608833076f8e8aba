"""The named MCIBI presets (the authors' published checkpoints): the table, its page in
the docs, and `MemorySegmenter.from_preset(NAME)` before and after conversion.

Converting a checkpoint under a published name is tested in tests/convert/test_cli.py."""

import pathlib
import re

import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.datasets import dataset_names
from keras_memseg.datasets import get_info
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter
from keras_memseg.models import Segmenter
from keras_memseg.models.mcibi import mcibi_presets
from keras_memseg.models.mcibi.mcibi_presets import RELEASE_URL

MARKER = "<!-- the rows are checked by tests/models/mcibi/test_mcibi_presets.py -->"
PAGE = pathlib.Path(__file__).resolve().parents[3] / "docs" / "guides" / "pretrained_weights.md"
FIELDS = {
    "description",
    "dataset",
    "backbone",
    "backbone_label",
    "miou",
    "miou_tta",
    "tta",
    "crop_size",
    "splits",
    "config",
    "file",
    "source",
    "sha256",
    "convertible",
    "convert_command",
}
# The published results, typed again from the authors' model zoo page (docs/modelzoo/mcibi,
# an independent copy).
PUBLISHED = {
    "mcibi_deeplabv3_r50_cocostuff10k.pth": (38.84, 39.78),
    "mcibi_deeplabv3_r101_cocostuff10k.pth": (39.84, 41.52),
    "mcibi_deeplabv3_s101_cocostuff10k.pth": (41.18, 42.38),
    "mcibi_deeplabv3_hrnetv2w48_cocostuff10k.pth": (39.77, 41.48),
    "mcibi_deeplabv3_vitlarge_cocostuff10k.pth": (44.27, 45.50),
    "mcibi_deeplabv3_r50_ade20k.pth": (44.39, 45.97),
    "mcibi_deeplabv3_r101_ade20k.pth": (45.66, 47.27),
    "mcibi_deeplabv3_s101_ade20k.pth": (46.63, 47.39),
    "mcibi_deeplabv3_hrnetv2w48_ade20k.pth": (45.79, 47.46),
    "mcibi_deeplabv3_vitlarge_ade20k.pth": (49.73, 50.99),
    "mcibi_deeplabv3_r50_cityscapes.pth": (None, 79.97),
    "mcibi_deeplabv3_r101_cityscapes.pth": (None, 82.10),
    "mcibi_deeplabv3_s101_cityscapes.pth": (None, 81.51),
    "mcibi_deeplabv3_hrnetv2w48_cityscapes.pth": (None, 82.54),
    "mcibi_deeplabv3_r50_lip.pth": (53.73, 54.08),
    "mcibi_deeplabv3_r101_lip.pth": (55.02, 55.42),
    "mcibi_deeplabv3_s101_lip.pth": (56.21, 56.34),
    "mcibi_deeplabv3_hrnetv2w48_lip.pth": (56.4, 56.99),
}


def test_the_table_is_well_formed():
    assert MemorySegmenter.presets is mcibi_presets
    assert {e["file"]: (e["miou"], e["miou_tta"]) for e in mcibi_presets.values()} == PUBLISHED
    files = [e["file"] for e in mcibi_presets.values()]
    assert len(set(files)) == len(files) == len(mcibi_presets) == 18
    for name, entry in mcibi_presets.items():
        assert set(entry) == FIELDS, name
        assert re.fullmatch(r"mcibi_[a-z0-9]+_[a-z0-9_]+", name)
        assert name == f"mcibi_{entry['backbone']}_{entry['dataset']}"
        assert entry["dataset"] in dataset_names() and get_info(entry["dataset"]).num_classes > 1
        assert entry["source"] == RELEASE_URL + entry["file"]
        assert entry["source"].endswith("/" + entry["file"]) and entry["file"].endswith(".pth")
        assert entry["convertible"] == (entry["backbone"] in ("resnet50", "resnet101")), name
        assert entry["sha256"] is None  # the authors publish none (see the module docstring)
        assert entry["convert_command"] == f"keras-memseg convert {entry['file']} --preset {name}"
        assert entry["tta"] == ("flip" if entry["dataset"] == "lip" else "ms+flip")
        assert entry["config"].endswith(".py") and entry["dataset"] != ""
    assert not set(mcibi_presets) & set(DilatedResNetBackbone.presets)


def _number(value, suffix=""):
    return "—" if value is None else f"{value:.2f}{suffix}"


def _row(name, entry):
    """The row of docs/guides/pretrained_weights.md's table for one entry."""
    convert = f"`{entry['convert_command']}`" if entry["convertible"] else "not yet (#30)"
    return (
        f"| `{name}` | {entry['dataset']} | {entry['backbone_label']} | "
        f"{_number(entry['miou'])} | {_number(entry['miou_tta'], ' (' + entry['tta'] + ')')} | "
        f"[{entry['file']}]({entry['source']}) | {convert} |"
    )


def test_the_docs_table_is_the_presets_table():
    lines = PAGE.read_text().splitlines()
    start = lines.index(MARKER)
    rows = []
    for line in lines[start + 3 :]:  # the marker, the header, the rule
        if not line.startswith("|"):
            break
        rows.append(line)
    expected = [_row(name, entry) for name, entry in mcibi_presets.items()]
    assert rows == expected, "the table should read:\n" + "\n".join(expected)


def test_a_name_not_converted_says_what_to_download_and_run(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path))
    entry = mcibi_presets["mcibi_resnet50_ade20k"]
    with pytest.raises(FileNotFoundError) as error:
        MemorySegmenter.from_preset("mcibi_resnet50_ade20k")
    message = str(error.value)
    assert "\n" not in message and entry["source"] in message
    assert message.endswith(
        "then run: keras-memseg convert mcibi_deeplabv3_r50_ade20k.pth --preset mcibi_resnet50_ade20k"
    )
    # The base class knows its subclasses' names too.
    with pytest.raises(FileNotFoundError, match="mcibi_deeplabv3_r50_ade20k.pth"):
        Segmenter.from_preset("mcibi_resnet50_ade20k")


def test_unsupported_backbones_and_unknown_names_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path))
    with pytest.raises(ValueError, match=r"ViT-Large backbone is not supported yet \(issue #30\)"):
        MemorySegmenter.from_preset("mcibi_vitlarge_ade20k")
    with pytest.raises(ValueError) as error:
        MemorySegmenter.from_preset("mcibi_resnet50_ade21k")
    message = str(error.value)
    assert "\n" not in message and "not a preset folder" in message
    assert all(name in message for name in mcibi_presets)
    with pytest.raises(ValueError, match=r"not a named DeepLabV3 preset \(known: none\)"):
        DeepLabV3.from_preset("mcibi_resnet50_ade20k")
    with pytest.raises(FileNotFoundError, match="preset folder not found"):
        MemorySegmenter.from_preset(str(tmp_path / "no" / "such"))


def test_a_converted_name_loads_from_the_preset_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path))
    model = MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes=3,
        feats_channels=8,
        transform_channels=8,
        aux_channels=8,
        aspp_rates=(1, 2, 3),
        dropout=0.0,
    )
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    model(x)
    model.save_to_preset(str(tmp_path / "presets" / "mcibi_resnet101_lip"))
    loaded = MemorySegmenter.from_preset("mcibi_resnet101_lip")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert isinstance(Segmenter.from_preset("mcibi_resnet101_lip"), MemorySegmenter)


def test_the_readme_results_table_is_the_presets_table():
    # README's "The paper's results" links each ResNet number to its checkpoint.
    readme = (pathlib.Path(__file__).resolve().parents[3] / "README.md").read_text()
    for name, entry in mcibi_presets.items():
        if not entry["convertible"]:
            continue
        numbers = [f"{v:.2f}" for v in (entry["miou"], entry["miou_tta"]) if v is not None]
        cell = f"[{' / '.join(numbers)}]({entry['source']})"
        assert cell in readme, f"README.md should show {cell} for {name}"
