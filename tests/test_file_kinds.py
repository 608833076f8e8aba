"""keras_memseg.file_kinds: what a path is, and what `--model PATH` names (one function
shared by evaluate, export and analysis)."""

import json
import os

import pytest

from keras_memseg.file_kinds import latest_checkpoint
from keras_memseg.file_kinds import resolve_model_path
from keras_memseg.file_kinds import run_config_path
from keras_memseg.file_kinds import run_dataset


def _touch(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_keras_file_is_itself(tmp_path):
    model = _touch(tmp_path / "m.keras")
    assert resolve_model_path(model) == str(model)
    assert resolve_model_path(str(model)) == str(model)


def test_a_preset_folder_is_itself(tmp_path):
    _touch(tmp_path / "preset" / "config.json", json.dumps({"class_name": "DeepLabV3"}))
    _touch(tmp_path / "preset" / "model.weights.h5")
    assert resolve_model_path(tmp_path / "preset") == str(tmp_path / "preset")
    assert run_config_path(tmp_path / "preset") is None  # a Keras config is not a run's


def test_a_run_folder_is_its_model_keras_and_names_its_dataset(tmp_path):
    run = tmp_path / "run"
    _touch(run / "config.json", json.dumps({"dataset": "camvid", "max_steps": 10}))
    _touch(run / "checkpoints" / "ckpt-0000002.weights.h5")
    _touch(run / "model.keras")
    path = resolve_model_path(run)
    assert path == str(run / "model.keras")
    assert run_config_path(path) == str(run / "config.json")
    assert run_dataset(run_config_path(path)) == "camvid"
    ckpt = run / "checkpoints" / "ckpt-0000002.weights.h5"
    assert run_config_path(ckpt) == str(run / "config.json")


def test_an_unfinished_run_folder(tmp_path):
    run = tmp_path / "run"
    _touch(run / "config.json", json.dumps({"dataset": "sample"}))
    for step in (2, 10, 9):
        _touch(run / "checkpoints" / f"ckpt-{step:07d}.weights.h5")
    _touch(run / "checkpoints" / "notes.txt")
    latest = str(run / "checkpoints" / "ckpt-0000010.weights.h5")
    assert latest_checkpoint(run) == latest
    assert resolve_model_path(run, weights_ok=True) == latest
    with pytest.raises(ValueError, match="run folder without model.keras") as info:
        resolve_model_path(run)
    assert str(run) in str(info.value) and latest in str(info.value)
    for name in os.listdir(run / "checkpoints"):
        os.remove(run / "checkpoints" / name)
    with pytest.raises(ValueError, match="holds no checkpoint yet"):
        resolve_model_path(run, weights_ok=True)


def test_what_cannot_be_a_model_is_one_line_naming_the_path(tmp_path):
    cases = [(tmp_path / "missing.keras", f"model not found: {tmp_path / 'missing.keras'}")]
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", f"{tmp_path / 'empty'} is a folder without config.json"))
    os.mkfifo(tmp_path / "fifo.keras")
    cases.append((tmp_path / "fifo.keras", f"{tmp_path / 'fifo.keras'} is a FIFO (named pipe)"))
    for path, message in cases:
        with pytest.raises(ValueError) as info:
            resolve_model_path(path)
        text = str(info.value)
        assert text.startswith(message) and "\n" not in text, text


def test_run_dataset_of_what_is_not_a_run_config(tmp_path):
    assert run_dataset(tmp_path / "missing.json") is None
    assert run_dataset(_touch(tmp_path / "bad.json", "not json")) is None
    assert run_dataset(_touch(tmp_path / "list.json", "[1, 2]")) is None
    assert run_dataset(_touch(tmp_path / "preset.json", '{"class_name": "X"}')) is None
