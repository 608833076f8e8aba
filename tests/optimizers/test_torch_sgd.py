"""TorchSGD against PyTorch's own `torch.optim.SGD` on a changing learning rate."""

import os
import subprocess
import sys

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


def test_mirrored_strategy_replicas_match_numpy_sgd():
    """TensorFlow's fused update inside `Strategy.update` on 2 logical CPUs: every
    replica's copy equals a NumPy transcription of torch's SGD on the summed
    gradients, a NaN on one replica skips the step on both (see the script)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mirrored_sgd_check.py")
    root = os.path.dirname(os.path.dirname(os.path.dirname(script)))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.count("max abs err") == 4, proc.stdout


@pytest.mark.parametrize("nesterov", [False, True])
def test_a_traced_step_matches_the_eager_update(nesterov):
    """The update inside a compiled function (TensorFlow: the fused kernel in a graph)
    gives what the eager update gives, a skipped NaN step included."""
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(5, 3)).astype("float32")
    grads = rng.normal(size=(4, 5, 3)).astype("float32")
    grads[1, 0, 0] = np.nan
    eager, traced = keras.Variable(w0), keras.Variable(w0)
    eager_opt = TorchSGD(PolyDecay(0.1, total_steps=4), momentum=0.9, nesterov=nesterov)
    traced_opt = TorchSGD(PolyDecay(0.1, total_steps=4), momentum=0.9, nesterov=nesterov)
    traced_opt.build([traced])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        apply = tf.function(lambda g: traced_opt.apply([g], [traced]))
    else:
        apply = lambda g: traced_opt.apply([g], [traced])  # noqa: E731
    for g in grads:
        eager_opt.apply([g], [eager])
        apply(g)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(traced), keras.ops.convert_to_numpy(eager), rtol=0, atol=1e-7
    )
    assert np.isfinite(keras.ops.convert_to_numpy(traced)).all()
