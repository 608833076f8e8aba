"""Reading PyTorch checkpoints: wrappers, prefixes, and one-line errors for the rest."""

import sys

import numpy as np
import pytest
import torch

from keras_memseg.convert import CheckpointError
from keras_memseg.convert import read_state_dict


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"model": sd},
        lambda sd: {"state_dict": sd, "meta": {"epoch": 3}},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
    ],
)
def test_plain_wrapped_and_data_parallel_state_dicts(tmp_path, wrap):
    state = {
        "conv.weight": torch.arange(6.0).reshape(1, 1, 2, 3),
        "bn.num_batches_tracked": torch.tensor(7),
        "half.weight": torch.ones(2, dtype=torch.float16),
    }
    torch.save(wrap(state), tmp_path / "c.pth")
    out = read_state_dict(tmp_path / "c.pth")
    assert sorted(out) == ["bn.num_batches_tracked", "conv.weight", "half.weight"]
    np.testing.assert_array_equal(out["conv.weight"], np.arange(6.0).reshape(1, 1, 2, 3))
    assert out["conv.weight"].dtype == np.float32 and out["half.weight"].dtype == np.float32
    assert int(out["bn.num_batches_tracked"]) == 7


def _one_line(error):
    text = str(error)
    assert "\n" not in text
    return text


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth is not a PyTorch checkpoint") as err:
        read_state_dict(path)
    _one_line(err.value)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_state_dict(tmp_path / "missing.pth")


def test_pickled_objects_are_refused_by_weights_only(tmp_path):
    torch.save({"model": {"w": torch.ones(1)}, "cfg": _Config()}, tmp_path / "code.pth")
    with pytest.raises(CheckpointError, match="weights_only=True") as err:
        read_state_dict(tmp_path / "code.pth")
    _one_line(err.value)


class _Config:
    pass


def test_containers_that_are_not_state_dicts(tmp_path):
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"w": torch.ones(1), "step": 3}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match="not tensors: step"):
        read_state_dict(tmp_path / "mixed.pth")
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="it is empty"):
        read_state_dict(tmp_path / "empty.pth")


def test_without_torch_the_error_names_the_extra(tmp_path, monkeypatch):
    torch.save({"w": torch.ones(1)}, tmp_path / "c.pth")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "keras-memseg\[torch\]"'):
        read_state_dict(tmp_path / "c.pth")
