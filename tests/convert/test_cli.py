"""`python -m keras_memseg.convert` end to end on the authors' checkpoint, and its errors."""

import hashlib
import json
import shutil

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
        (["--preset", "resnet18_v1c"], "--preset resnet18_v1c is a backbone preset"),
        (["--preset", "resnet51_v1c"], "unknown preset 'resnet51_v1c': not a backbone preset"),
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


def test_convert_records_the_dataset(tmp_path, capsys, checkpoint):
    import shutil

    from keras_memseg.datasets import dataset_names
    from keras_memseg.datasets import get_info

    model = MemorySegmenter.from_preset  # noqa: F841 (imported above)
    out = tmp_path / "plain"
    assert main([checkpoint, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: mcibi_r18_aspp.pth: no dataset name") and err.count("\n") == 1
    k = MemorySegmenter.from_preset(out).num_classes
    names = [n for n in dataset_names() if get_info(n).num_classes == k]
    if not names:
        pytest.skip(f"no registered dataset has the fixture's {k} classes")
    renamed = tmp_path / f"mcibi_r18_aspp_{names[0]}.pth"
    shutil.copy(checkpoint, renamed)
    assert main([str(renamed), "--out", str(tmp_path / "named")]) == 0
    assert capsys.readouterr().err == ""
    converted = MemorySegmenter.from_preset(tmp_path / "named")
    assert converted.class_names == tuple(get_info(names[0]).class_names)
    meta = json.loads((tmp_path / "named" / "metadata.json").read_text())
    assert meta["dataset"] == names[0] and meta["class_names"] == list(converted.class_names)
    assert main([checkpoint, "--out", str(tmp_path / "explicit"), "--dataset", names[0]]) == 0
    assert MemorySegmenter.from_preset(tmp_path / "explicit").has_class_names


# -- named MCIBI presets: a checkpoint under a published file name ------------------------

TEST_PRESET = "mcibi_tiny_test"
TEST_FILE = "deeplabv3_r18_tinytest.pth"


@pytest.fixture()
def published(tmp_path, monkeypatch, checkpoint):
    """A test-only entry of `MemorySegmenter.presets` whose file is the fixture checkpoint
    (5 classes: its dataset is a folder dataset of 5 classes), a preset home in
    tmp_path, and the current folder empty. Returns (entry, the file's path)."""
    from PIL import Image

    from keras_memseg.models.mcibi import mcibi_presets

    data = tmp_path / "five"
    for sub in ("images/train", "labels/train"):
        (data / sub).mkdir(parents=True)
    (data / "classes.txt").write_text("sky\ntree\nroad\ncar\nperson\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data / "images/train/a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(data / "labels/train/a.png")
    entry = {
        **mcibi_presets["mcibi_resnet50_ade20k"],
        "dataset": str(data),
        "backbone": "resnet18",
        "backbone_label": "R-18",
        "file": TEST_FILE,
        "source": f"https://example.org/releases/{TEST_FILE}",
        "convert_command": f"keras-memseg convert {TEST_FILE} --preset {TEST_PRESET}",
    }
    monkeypatch.setitem(mcibi_presets, TEST_PRESET, entry)
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path / "home"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    (tmp_path / "downloads").mkdir()
    path = tmp_path / "downloads" / TEST_FILE
    shutil.copy(checkpoint, path)
    return entry, path


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("flags", [[], ["--preset", TEST_PRESET]])
def test_a_published_file_becomes_its_named_preset(tmp_path, capsys, published, flags):
    entry, path = published
    folder = tmp_path / "home" / "presets" / TEST_PRESET
    with pytest.raises(FileNotFoundError, match=f"download {entry['source']}, then run"):
        MemorySegmenter.from_preset(TEST_PRESET)
    assert main([str(path)] + flags) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert f"sha256 {_sha256(path)}  {path}" in out.out.splitlines()
    assert f"-> {folder}" in out.out and f"from_preset('{TEST_PRESET}')" in out.out
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["sha256"] == _sha256(path) and meta["source"] == entry["source"]
    assert meta["preset"] == TEST_PRESET and meta["dataset"] == entry["dataset"]
    model = MemorySegmenter.from_preset(TEST_PRESET)
    assert model.class_names == ("sky", "tree", "road", "car", "person")
    # Converting again needs --overwrite, as for --out.
    assert main([str(path)] + flags) == 2
    assert "already holds a preset" in _error_line(capsys)


def test_a_published_name_reads_its_file_from_the_current_folder(tmp_path, capsys, published):
    entry, path = published
    assert main([TEST_PRESET]) == 2
    err = _error_line(capsys)
    assert f"{TEST_FILE} is not in {tmp_path / 'cwd'}: download {entry['source']} into this " in err
    assert err.rstrip().endswith(f"(or pass its path), then run: {entry['convert_command']}")
    assert not (tmp_path / "home").exists()
    shutil.copy(path, tmp_path / "cwd" / TEST_FILE)
    assert main([TEST_PRESET]) == 0
    assert f"sha256 {_sha256(path)}  {TEST_FILE}" in capsys.readouterr().out
    assert MemorySegmenter.from_preset(TEST_PRESET).has_class_names


def test_a_published_file_with_another_hash_is_refused(tmp_path, capsys, monkeypatch, published):
    entry, path = published
    from keras_memseg.models.mcibi import mcibi_presets

    monkeypatch.setitem(mcibi_presets[TEST_PRESET], "sha256", "0" * 64)
    assert main([str(path)]) == 2
    err = _error_line(capsys)
    assert str(path) in err and _sha256(path) in err and "0" * 64 in err
    assert not (tmp_path / "home").exists()
    # The right hash passes, and is what metadata.json records.
    monkeypatch.setitem(mcibi_presets[TEST_PRESET], "sha256", _sha256(path))
    assert main([str(path), "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "metadata.json").read_text())["sha256"] == _sha256(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["mcibi_resnest101_lip"], "preset 'mcibi_resnest101_lip': the ResNeSt-101"),
        (
            ["{tmp}/mcibi_deeplabv3_vitlarge_ade20k.pth"],
            "the ViT-Large backbone is not supported yet",
        ),
        (["mcibi_hrnetv2w48_cityscapes"], "HRNetV2p-W48 backbone is not supported yet (issue #30)"),
        (["{tmp}/" + TEST_FILE, "--preset", "mcibi_resnet50_lip"], "not of --preset"),
        (["{ckpt}", "--preset", "mcibi_nope"], "nor an MCIBI preset (mcibi_"),
    ],
)
def test_named_preset_errors_are_one_line(tmp_path, capsys, published, checkpoint, args, message):
    shutil.copy(checkpoint, tmp_path / "mcibi_deeplabv3_vitlarge_ade20k.pth")
    shutil.copy(checkpoint, tmp_path / TEST_FILE)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{ckpt}", checkpoint) for a in args]
    assert main(args) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "home").exists()


def test_sha256_is_recorded_for_any_checkpoint(tmp_path, capsys, checkpoint):
    assert main([checkpoint, "--out", str(tmp_path / "o")]) == 0
    digest = hashlib.sha256(open(checkpoint, "rb").read()).hexdigest()
    assert f"sha256 {digest}  {checkpoint}" in capsys.readouterr().out
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["sha256"] == digest and meta["source"] is None and meta["preset"] is None
