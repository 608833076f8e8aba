"""`FiniteStep` and `check_learning_rate`: NaN/inf never reach the weights, whatever
optimizer `Segmenter.compile` is given (issue #34)."""

import keras
import numpy as np
import pytest

from keras_memseg.optimizers import FiniteStep
from keras_memseg.optimizers import PolyDecay
from keras_memseg.optimizers import TorchSGD
from keras_memseg.optimizers.finite_step import check_learning_rate
from keras_memseg.optimizers.finite_step import guard


@pytest.mark.parametrize(
    "inner",
    [lambda: keras.optimizers.SGD(0.1, momentum=0.9), lambda: keras.optimizers.Adam(0.1)],
)
def test_a_non_finite_step_moves_nothing_and_a_finite_one_is_the_inner_optimizers(inner):
    w = keras.Variable(np.array([1.0, 2.0], "float32"))
    plain_w = keras.Variable(np.array([1.0, 2.0], "float32"))
    guarded, plain = FiniteStep(inner()), inner()
    good = keras.ops.convert_to_tensor(np.array([0.5, -0.25], "float32"))
    guarded.apply([good], [w])
    plain.apply([good], [plain_w])
    slots = [v.numpy().copy() for v in guarded.inner_optimizer.variables]
    for bad in ([np.nan, 0.0], [0.0, np.inf]):
        guarded.apply([keras.ops.convert_to_tensor(np.array(bad, "float32"))], [w])
    assert w.numpy().tolist() == plain_w.numpy().tolist()
    assert all(
        np.array_equal(a, v.numpy()) for a, v in zip(slots, guarded.inner_optimizer.variables)
    )
    assert int(guarded.skipped_steps.numpy()) == 2 and int(guarded.iterations.numpy()) == 1
    guarded.apply([good], [w])  # then the same arithmetic as the inner optimizer alone
    plain.apply([good], [plain_w])
    np.testing.assert_array_equal(w.numpy(), plain_w.numpy())


def test_config_round_trip_keeps_the_inner_optimizer():
    opt = FiniteStep(keras.optimizers.SGD(PolyDecay(0.01, total_steps=10), momentum=0.5))
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(opt))
    assert isinstance(again, FiniteStep)
    assert again.inner_optimizer.get_config() == opt.inner_optimizer.get_config()


@pytest.mark.parametrize(
    "optimizer, name",
    [
        (keras.optimizers.SGD(float("nan")), "SGD"),
        (keras.optimizers.Adam(float("inf")), "Adam"),
        (TorchSGD(float("nan")), "TorchSGD"),
        (keras.optimizers.SGD(-0.1), "SGD"),
    ],
)
def test_a_learning_rate_that_is_not_finite_is_refused_in_one_line(optimizer, name):
    with pytest.raises(ValueError, match=f"^compile: {name}'s learning rate is "):
        check_learning_rate(optimizer)


def test_guard_wraps_what_does_not_guard_itself():
    assert isinstance(guard(keras.optimizers.SGD(0.1)), FiniteStep)
    assert isinstance(guard("adam"), FiniteStep)
    torch_sgd = TorchSGD(0.1)
    assert guard(torch_sgd) is torch_sgd  # skips non-finite steps itself
    sgd = keras.optimizers.SGD(0.1)
    assert guard(sgd, "mixed_float16") is sgd  # Keras wraps it in LossScaleOptimizer
