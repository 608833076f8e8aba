"""Models saved by keras_memseg 0.1 load unchanged (same outputs, same memory).

Keras stores the weights of a functional model's layers under their class names, so a
layer class swapped inside the backbone would silently orphan old weights; the
fixtures (see tests/fixtures/keras_memseg_0_1/README.md) catch that."""

import os

import keras
import numpy as np
import pytest

from keras_memseg.models import load_segmenter

FIXTURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "fixtures", "keras_memseg_0_1"
)


@pytest.mark.parametrize(
    "name, key",
    [("mcibi.keras", "mcibi"), ("mcibi_preset", "mcibi"), ("deeplabv3.keras", "deeplabv3")],
)
def test_old_files_give_the_same_outputs(name, key):
    recorded = np.load(os.path.join(FIXTURES, "outputs.npz"))
    with pytest.warns(UserWarning, match="training policy is set by compile"):
        model = load_segmenter(os.path.join(FIXTURES, name))
    got = keras.ops.convert_to_numpy(model(recorded["images"]))
    np.testing.assert_allclose(got, recorded[key], atol=1e-4)
    if key == "mcibi":
        np.testing.assert_array_equal(model.memory.memory.numpy(), recorded["memory"])
