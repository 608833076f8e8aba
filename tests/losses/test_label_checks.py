import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.losses.label_checks import assert_labels_in_range


def test_valid_labels_pass_unchanged():
    labels = np.array([[0, 1, 255]], "int32")
    np.testing.assert_array_equal(np.asarray(assert_labels_in_range(labels, 2, 255)), labels)


@pytest.mark.parametrize("bad", [2, -1, 254])
def test_out_of_range_values_are_named(bad):
    labels = np.array([[0, bad, 255]], "int32")
    with pytest.raises(Exception, match=f"(?s)label values must be in \\[0, 2\\).*{bad}"):
        assert_labels_in_range(tf.constant(labels), 2, 255)
