"""Memory diagnostics on hand-made memories and on checkpoints of a tiny MemorySegmenter."""

import math

import numpy as np
import pytest

from keras_memseg.analysis import AnalysisInputError
from keras_memseg.analysis import load_memories
from keras_memseg.analysis import memory_diagnostics
from keras_memseg.analysis import memory_movement
from keras_memseg.analysis import memory_to_centres
from keras_memseg.analysis.memory import memory_to_centres_json


def test_diagnostics_of_a_hand_made_memory():
    s = 1.0 / math.sqrt(2.0)
    memory = np.array(
        [
            [[1.0, 0.0, 0.0]],  # a
            [[0.0, 2.0, 0.0]],  # b: orthogonal to a
            [[3.0, 3.0, 0.0]],  # c: 45 degrees from a and b
            [[0.0, 0.0, 0.0]],  # d: never seen
            [[-1.0, 0.0, 0.0]],
        ]
    )  # e: opposite to a
    d = memory_diagnostics(memory, ["a", "b", "c", "d", "e"])
    expected = np.array(
        [
            [1, 0, s, np.nan, -1],
            [0, 1, s, np.nan, 0],
            [s, s, 1, np.nan, -s],
            [np.nan] * 5,
            [-1, 0, -s, np.nan, 1],
        ]
    )
    np.testing.assert_allclose(d.similarity, expected, atol=1e-12)
    np.testing.assert_allclose(d.row_norms[:, 0], [1, 2, 3 * math.sqrt(2), 0, 1])
    assert d.unseen_classes == (3,)
    assert [o for o, _ in d.most_similar] == [2, 2, d.most_similar[2][0], -1, 1]
    assert d.most_similar[2][0] in (0, 1)  # a and b tie
    assert d.most_similar[0][1] == pytest.approx(s)
    out = d.to_json(["a", "b", "c", "d", "e"])
    assert out["unseen_classes"] == ["d"] and out["most_similar"]["d"] is None
    assert out["similarity"][3] == [None] * 5


def test_multi_slot_rows():
    memory = np.zeros((2, 2, 3))
    memory[0, 0] = [1, 0, 0]
    memory[1, 1] = [0, 1, 0]
    d = memory_diagnostics(memory, ["x", "y"])
    assert d.row_names == ("x/0", "x/1", "y/0", "y/1")
    assert d.similarity.shape == (4, 4) and d.unseen_classes == ()
    assert np.isnan(d.similarity[1]).all()  # slot x/1 is empty


def test_movement_between_hand_made_memories():
    a = np.array([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 5.0]]])
    b = np.array([[[1.0, 1.0]], [[2.0, 0.0]], [[0.0, 5.0]]])
    c = np.array([[[-1.0, -1.0]], [[2.0, 0.0]], [[3.0, 5.0]]])
    moved = memory_movement([a, b, c])
    s = 1.0 / math.sqrt(2.0)
    cos5 = 25.0 / (5.0 * math.sqrt(34.0))
    expected_cos = [[1 - s, np.nan, 0.0], [2.0, 0.0, 1 - cos5]]
    np.testing.assert_allclose(moved["cosine_distance"], expected_cos, atol=1e-12)
    np.testing.assert_allclose(moved["l2_distance"], [[1.0, 2.0, 0.0], [math.sqrt(8), 0, 3]])
    with pytest.raises(ValueError, match="at least 2"):
        memory_movement([a])
    with pytest.raises(ValueError, match="different shapes"):
        memory_movement([a, a[:2]])


def test_weights_file_needs_its_model(tmp_path):
    with pytest.raises(AnalysisInputError, match="needs the model"):
        load_memories([tmp_path / "ckpt.weights.h5"])


def test_memory_rows_against_class_centres():
    memory = np.array([[[2.0, 0.0]], [[0.0, 0.0]], [[1.0, 1.0]]])  # class 1 unseen
    centres = np.array([[0.0, 1.0], [1.0, 0.0], [np.nan, np.nan]])  # class 2 absent
    d = memory_to_centres(memory, centres)
    s = 1.0 / math.sqrt(2.0)
    expected = [[1.0, 0.0, np.nan], [np.nan] * 3, [1 - s, 1 - s, np.nan]]
    np.testing.assert_allclose(d, expected, atol=1e-12)
    out = memory_to_centres_json(d, ["a", "b", "c"])
    assert out["per_class"]["a"] == {
        "own_centre_distance": 1.0,
        "nearest_centre": "b",
        "nearest_centre_distance": 0.0,
    }
    assert out["per_class"]["b"]["nearest_centre"] is None
    assert out["per_class"]["c"]["own_centre_distance"] is None
    assert out["mean_own_centre_distance"] == 1.0 and out["rows_nearest_to_own_centre"] == 0
