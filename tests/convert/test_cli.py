"""`python -m keras_memseg.convert` end to end on the authors' checkpoint, and its errors."""

import json

import numpy as np
import pytest
import torch
from torch_resnet_oracle import resnet_state

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.convert.__main__ import main
from keras_memseg.models import MemorySegmenter


@pytest.fixture()
def checkpoint(fixture_paths):
    return str(fixture_paths["checkpoint"])


def _error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m keras_memseg.convert: error:")
    return err


def test_convert_then_load_and_predict_the_authors_labels(
    tmp_path, capsys, recorded, state, checkpoint
):
    out = tmp_path / "mcibi_r18"
    assert main([checkpoint, "--out", str(out), "--dropout", "0"]) == 0
    assert "MemorySegmenter (242 tensors" in capsys.readouterr().out
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["converted_from"] == "mcibi_r18_aspp.pth"
    model = MemorySegmenter.from_preset(out)
    np.testing.assert_array_equal(model.memory.memory.numpy(), state["memory_module.memory"])
    image = recorded["eval_image_nhwc"]
    probs = model.predict(image, verbose=0)
    expected = recorded["eval_stage2_logits_upsampled"]
    np.testing.assert_array_equal(np.argmax(probs, -1), np.argmax(expected, -1))
    np.testing.assert_allclose(probs, expected, atol=1e-4, rtol=0)
    # A folder holding a preset is not overwritten by accident.
    assert main([checkpoint, "--out", str(out)]) == 2
    assert "already holds a preset" in _error_line(capsys)
    assert main([checkpoint, "--out", str(out), "--overwrite", "--print_mapping"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "memory_module.memory\tfeature_memory/memory" in lines
    assert "backbone_net.stem.0.weight\tbackbone/conv1_conv/kernel" in lines


def test_backbone_preset_lands_in_the_preset_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path / "home"))
    torch.save(
        resnet_state(18, base=64, stem="deep", stem_channels=32),
        tmp_path / "resnet18_v1c-b5776b93.pth",
    )
    assert main([str(tmp_path / "resnet18_v1c-b5776b93.pth"), "--preset", "resnet18_v1c"]) == 0
    folder = tmp_path / "home" / "presets" / "resnet18_v1c"
    assert (folder / "model.weights.h5").is_file()
    backbone = DilatedResNetBackbone.from_preset("resnet18_v1c", output_stride=16)
    expected = resnet_state(18, base=64, stem="deep", stem_channels=32)["stem.0.weight"]
    np.testing.assert_array_equal(
        backbone.get_layer("conv1_conv").kernel.numpy(),
        np.transpose(expected.numpy(), (2, 3, 1, 0)),
    )
    capsys.readouterr()
    # A checkpoint of another architecture than the named preset is refused.
    assert main([str(tmp_path / "resnet18_v1c-b5776b93.pth"), "--preset", "resnet50_v1c"]) == 2
    assert "does not hold preset 'resnet50_v1c'" in _error_line(capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "resnet18_v1c"], "--preset is for backbone checkpoints"),
        (["--preset", "resnet51_v1c"], "unknown backbone preset 'resnet51_v1c'"),
        (["--out", "{tmp}/o", "--aspp_rates", "1,6,12"], "4 ASPP branches but 3 rates"),
        (["--out", "{tmp}/o", "--aspp_rates", "6,12,24,36"], "ASPP branch 0 has a 1x1 kernel"),
    ],
)
def test_what_the_weights_contradict_is_one_line(tmp_path, capsys, args, message, checkpoint):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main([checkpoint] + args) == 2
    assert message in _error_line(capsys)


def test_bad_files_and_flags_are_one_line(tmp_path, capsys, checkpoint):
    (tmp_path / "notes.pth").write_text("hello")
    assert main([str(tmp_path / "notes.pth"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a PyTorch checkpoint" in _error_line(capsys)
    assert main([str(tmp_path / "missing.pth"), "--out", str(tmp_path / "o")]) == 2
    assert "checkpoint not found" in _error_line(capsys)
    for bad in (["--aspp_rates", "1,x"], ["--dropout", "1.5"], []):
        with pytest.raises(SystemExit) as exit_info:
            main([checkpoint] + bad + (["--out", "o"] if bad else []))
        assert exit_info.value.code == 2
        _error_line(capsys)
