"""TorchSGD against PyTorch's own `torch.optim.SGD` on a changing learning rate."""

import keras
import numpy as np
import pytest

from keras_memseg.optimizers import PolyDecay
from keras_memseg.optimizers import TorchSGD


@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_torch_sgd_with_a_poly_schedule(nesterov):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(3, 4)).astype("float32")
    grads = rng.normal(size=(5, 3, 4)).astype("float32")
    schedule = PolyDecay(0.1, total_steps=5)
    ours = keras.Variable(w0)
    optimizer = TorchSGD(schedule, momentum=0.9, nesterov=nesterov)
    ref = torch.nn.Parameter(torch.tensor(w0))
    ref_opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, nesterov=nesterov)
    for t, g in enumerate(grads):
        optimizer.apply([g], [ours])
        for group in ref_opt.param_groups:
            group["lr"] = float(schedule(t))
        ref.grad = torch.tensor(g)
        ref_opt.step()
        np.testing.assert_allclose(
            ours.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=f"step {t}"
        )


def test_differs_from_keras_sgd_when_the_rate_changes():
    w = keras.Variable(np.zeros(1, "float32"))
    v = keras.Variable(np.zeros(1, "float32"))
    ours = TorchSGD(PolyDecay(0.1, total_steps=2), momentum=0.9)
    theirs = keras.optimizers.SGD(PolyDecay(0.1, total_steps=2), momentum=0.9)
    for _ in range(2):
        ours.apply([np.ones(1, "float32")], [w])
        theirs.apply([np.ones(1, "float32")], [v])
    assert abs(float(w.numpy()[0]) - float(v.numpy()[0])) > 1e-3


def test_config_and_arguments():
    optimizer = TorchSGD(PolyDecay(0.01, 10), momentum=0.8, nesterov=True)
    clone = TorchSGD.from_config(optimizer.get_config())
    assert (clone.momentum, clone.nesterov) == (0.8, True)
    with pytest.raises(ValueError, match="momentum must be in"):
        TorchSGD(0.01, momentum=1.5)
    with pytest.raises(ValueError, match="nesterov"):
        TorchSGD(0.01, momentum=0.0, nesterov=True)


def test_one_non_finite_gradient_skips_the_whole_step():
    import keras

    a = keras.Variable(np.ones(2, "float32"))
    b = keras.Variable(np.ones(3, "float32"))
    opt = TorchSGD(0.1, momentum=0.9)
    opt.apply([np.ones(2, "float32"), np.ones(3, "float32")], [a, b])
    state = [v.numpy().copy() for v in [a, b, *opt.momentums]]
    # b's gradient is finite, a's is not: neither variable nor buffer may move.
    opt.apply([np.array([np.nan, 1.0], "float32"), np.full(3, 2.0, "float32")], [a, b])
    for before, after in zip(state, [a, b, *opt.momentums]):
        np.testing.assert_array_equal(before, after.numpy())
    opt.apply([np.ones(2, "float32"), np.ones(3, "float32")], [a, b])
    assert not np.array_equal(state[1], b.numpy())


@pytest.mark.parametrize("bad", ["inf_and_minus_inf", "rate"])
def test_opposite_infinities_or_a_non_finite_rate_skip_the_step(bad):
    """+inf in one gradient and -inf in another (their sum is NaN, not 0), or a rate
    that is not finite: nothing moves."""
    a = keras.Variable(np.ones(2, "float32"))
    b = keras.Variable(np.ones(2, "float32"))
    opt = TorchSGD(0.1, momentum=0.9)
    opt.apply([np.ones(2, "float32"), np.ones(2, "float32")], [a, b])
    state = [v.numpy().copy() for v in [a, b, *opt.momentums]]
    grads = [np.ones(2, "float32"), np.ones(2, "float32")]
    if bad == "rate":
        opt.learning_rate.assign(np.inf)
    else:
        grads = [np.array([np.inf, 0.0], "float32"), np.array([-np.inf, 0.0], "float32")]
    opt.apply(grads, [a, b])
    for before, after in zip(state, [a, b, *opt.momentums]):
        np.testing.assert_array_equal(before, after.numpy())
