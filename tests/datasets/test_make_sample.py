import numpy as np
from _helpers import dummy_dir
from PIL import Image

from keras_memseg.datasets.make_sample import make_sample


def test_make_sample_is_reproducible(tmp_path):
    size_a = make_sample(
        dummy_dir("camvid"), tmp_path / "a", counts={"train": 2, "val": 1}, size=(16, 12)
    )
    size_b = make_sample(
        dummy_dir("camvid"), tmp_path / "b", counts={"train": 2, "val": 1}, size=(16, 12)
    )
    assert size_a == size_b
    lines = (tmp_path / "a" / "train.txt").read_text().split()
    assert len(lines) == 4
    label = np.asarray(Image.open(tmp_path / "a" / lines[1]))
    assert label.shape == (12, 16) and set(np.unique(label)) <= {0, 3, 5, 8, 11}
    assert "Brostow" in (tmp_path / "a" / "README.md").read_text()
