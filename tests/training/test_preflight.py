"""What the recipes check before the run folder is created (`--pretrained`, `--run_dir`),
and the data errors they print as one line (issue #34), in process: the same functions
`recipes/train_*.py` call (`trainer.train` -> `preflight`, `check_pretrained`;
`cli.train_main`). The command-line versions are in test_config.py."""

import os
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from keras_memseg.training import get_recipe
from keras_memseg.training.config import ConfigError
from keras_memseg.training.run_folder import RunFolder
from keras_memseg.training.run_folder import RunFolderError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAMVID = os.path.join(ROOT, "keras_memseg", "datasets", "camvid", "dummy_data")


def _problems(config, run_dir):
    from keras_memseg.training.trainer import preflight

    with pytest.raises(ConfigError) as error:
        preflight(config, str(run_dir))
    return error.value.problems


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)  # opening it for reading would block forever
    config = get_recipe("sample").replace(pretrained=str(fifo))
    assert _problems(config, tmp_path / "run") == [
        f"--pretrained='{fifo}': {fifo} is not a regular file or a preset folder "
        "(a FIFO, device or socket is never opened)"
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.pth", "pretrained weights not found: {path}"),
        ("folder", "{path} is not a KerasHub preset or keras_memseg preset folder"),
        ("weights.npz", "unsupported pretrained source {path}: expected a PyTorch .pth"),
        ("empty.weights.h5", "{path} is empty (0 bytes)"),
    ],
)
def test_pretrained_paths_that_cannot_be_weights(tmp_path, name, message):
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif name != "missing.pth":
        path.write_bytes(b"" if name.startswith("empty") else b"x")
    problems = _problems(get_recipe("sample").replace(pretrained=str(path)), tmp_path / "r")
    assert len(problems) == 1
    assert problems[0].startswith(f"--pretrained='{path}': " + message.format(path=path))


def test_run_export_and_show_dirs_that_are_files(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    config = get_recipe("sample").replace(export_dir=str(file), show_dir=str(file / "sub"))
    assert _problems(config, file) == [
        f"--run_dir='{file}': {file} exists and is not a folder",
        f"--export_dir='{file}': {file} exists and is not a folder",
        f"--show_dir='{file}/sub': {file} is not a folder, so {file}/sub cannot be created",
    ]


def _check_pretrained(path):
    from keras_memseg.training.trainer import check_pretrained

    with pytest.raises(ConfigError) as error:
        check_pretrained(get_recipe("sample").replace(pretrained=str(path)))
    (line,) = error.value.problems
    assert line.startswith(f"--pretrained='{path}': ") and "\n" not in line
    return line


def test_a_pickle_payload_is_refused_unexecuted(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "pwned"),))

    path = tmp_path / "payload.pth"
    path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    assert "weights_only=True" in _check_pretrained(path)
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_of_another_architecture_is_one_line(tmp_path):
    from keras_memseg.backbones import DilatedResNetBackbone

    path = tmp_path / "narrow.weights.h5"
    DilatedResNetBackbone(depth=18, base_channels=8).save_weights(path)  # sample: width 16
    assert "cannot load" in _check_pretrained(path)
    (tmp_path / "text.weights.h5").write_text("not HDF5\n")
    _check_pretrained(tmp_path / "text.weights.h5")


def test_an_unwritable_run_folder_is_a_run_folder_error(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(RunFolderError, match=r"cannot write the run folder .*/run "):
        RunFolder(tmp_path / "run").open({"a": 1})


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)


BAD_DATA = {
    "zero_byte_image": lambda m: (m / "train/0001TP_000000.png").write_bytes(b""),
    "jpeg_truncated": lambda m: (m / "train/0001TP_000000.png").write_bytes(b"\xff\xd8\xff\xe0"),
    "label_of_another_size": lambda m: _png(
        m / "trainannot/0001TP_000000.png", np.zeros((5, 7), np.uint8)
    ),
    "rgb_label": lambda m: _png(m / "trainannot/0001TP_000000.png", np.zeros((5, 7, 3), np.uint8)),
    "label_16_bit_out_of_range": lambda m: Image.fromarray(np.full((5, 7), 300, np.uint16)).save(
        m / "trainannot/0001TP_000000.png"
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_bad_data_is_one_error_line_and_the_run_folder_stays(tmp_path, capsys, kind):
    from keras_memseg.training.cli import train_main

    manual = tmp_path / "manual"
    shutil.copytree(CAMVID, manual)
    BAD_DATA[kind](manual)
    config = get_recipe("camvid").replace(
        manual_dir=str(manual),
        data_dir=str(tmp_path / "data"),
        run_dir=str(tmp_path / "run"),
        num_train_examples=3,
        global_batch_size=1,
        max_steps=1,
        crop_size=(32, 32),
    )
    assert train_main(config) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(manual) in lines[0] and "0001TP_000000.png" in lines[0], lines
    assert (tmp_path / "run" / "config.json").exists()
