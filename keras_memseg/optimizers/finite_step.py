"""Non-finite guards for any optimizer: a finite learning rate, steps with NaN/inf skipped.

`TorchSGD` skips a step whose gradient or rate is not finite by itself. Any other
optimizer a user passes to `Segmenter.compile` is wrapped in `FiniteStep`, which does
the same around it, and every optimizer's learning rate is checked when compiling.
"""

import math

import keras
from keras import initializers
from keras import ops


def check_learning_rate(optimizer):
    """Raises ValueError (one line, naming the optimizer) unless its current learning
    rate is a finite number >= 0. A NaN rate turns every weight into NaN with Keras'
    optimizers and makes `TorchSGD` skip every step (nothing would train).

    Example:
    >>> check_learning_rate(keras.optimizers.SGD(0.01))
    >>> check_learning_rate(keras.optimizers.SGD(float("nan")))
    Traceback (most recent call last):
    ...
    ValueError: compile: SGD's learning rate is nan: it must be a finite number >= 0
    """
    try:
        rate = float(ops.convert_to_numpy(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return  # no readable rate (a custom optimizer): nothing to check here
    if not (math.isfinite(rate) and rate >= 0.0):
        name = type(getattr(optimizer, "inner_optimizer", optimizer)).__name__
        raise ValueError(
            f"compile: {name}'s learning rate is {rate}: it must be a finite number >= 0"
        )


@keras.saving.register_keras_serializable(package="keras_memseg")
class FiniteStep(keras.optimizers.LossScaleOptimizer):
    """Wraps an optimizer so that a step whose gradients hold NaN/inf changes nothing.

    The step is skipped as a whole: no weight, no slot (momentum, Adam moments) and no
    iteration count moves; `skipped_steps` counts such steps. A finite step is the
    wrapped optimizer's own, unchanged (no loss scaling: the scale stays 1). Built on
    Keras' `LossScaleOptimizer`, which implements the skip on TensorFlow (with
    distribution strategies), JAX and PyTorch; for float16 training use that one
    instead (Keras wraps the optimizer in it under the `mixed_float16` policy).

    `Segmenter.compile` wraps every optimizer that is neither `TorchSGD` (which guards
    itself) nor a `LossScaleOptimizer` in it.

    Args:
        inner_optimizer: the `keras.optimizers.Optimizer` to guard.
        name: the wrapper's name.

    Example:
    >>> import numpy as np
    >>> w = keras.Variable(np.ones(2, "float32"))
    >>> opt = FiniteStep(keras.optimizers.Adam(0.1))
    >>> opt.apply([keras.ops.convert_to_tensor([np.nan, 1.0])], [w])
    >>> w.numpy().tolist(), int(opt.skipped_steps.numpy()), int(opt.iterations.numpy())
    ([1.0, 1.0], 1, 0)
    """

    def __init__(self, inner_optimizer, name=None, **kwargs):
        # `initial_scale` / `dynamic_growth_steps` come back from `get_config`; the
        # scale is fixed at 1 whatever they say.
        kwargs.pop("initial_scale", None)
        kwargs.pop("dynamic_growth_steps", None)
        super().__init__(inner_optimizer, initial_scale=1.0, name=name, **kwargs)

    def build(self, var_list):
        super().build(var_list)
        self.skipped_steps = self.add_variable(
            shape=(),
            dtype="int",
            initializer=initializers.Zeros(),
            aggregation="none",
            name="skipped_steps",
        )

    def scale_loss(self, loss):
        return loss

    def _common_apply(self, grads, trainable_variables=None):
        # Eager (PyTorch, eager JAX or TensorFlow): decide in Python, since the
        # wrapped optimizer's stateful update cannot run inside a traced `cond` on JAX.
        # Traced (a TensorFlow graph, `jax.jit`): Keras' `cond`, as LossScaleOptimizer.
        finite = self.check_finite(grads)
        try:
            finite = bool(ops.convert_to_numpy(finite))
        except Exception:  # noqa: BLE001 - a symbolic tensor or tracer, by backend
            return super()._common_apply(grads, trainable_variables)
        if finite:
            self._stateful_handle_finite_grads(grads, trainable_variables)
        else:
            self._stateful_handle_non_finite_grads()

    # Stateful (TensorFlow, PyTorch): the wrapped optimizer's own step, or nothing.
    def _stateful_handle_finite_grads(self, grads, trainable_variables):
        self.inner_optimizer.apply(grads, trainable_variables=trainable_variables)

    def _stateful_handle_non_finite_grads(self):
        self.skipped_steps.assign_add(1)

    # Stateless (JAX): the same, on the variables' values.
    def _stateless_handle_finite_grads(self, optimizer_variables, grads, trainable_variables):
        own = len(self._variables)
        mapping = list(zip(self.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping):
            new_trainable, new_inner = self.inner_optimizer.stateless_apply(
                self.inner_optimizer.variables, grads, trainable_variables
            )
        return new_trainable, list(optimizer_variables[:own]) + list(new_inner)

    def _stateless_handle_non_finite_grads(self, optimizer_variables, trainable_variables):
        mapping = list(zip(self.variables, optimizer_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.skipped_steps.assign_add(1)
        return trainable_variables, [scope.get_current_value(v) for v in self.variables]


def guard(optimizer, dtype_policy=None):
    """`optimizer` as `Segmenter.compile` trains with it: wrapped in `FiniteStep` unless
    it guards itself (`TorchSGD`, any `LossScaleOptimizer`) or the policy is
    `mixed_float16` (Keras then wraps it in its own `LossScaleOptimizer`, which skips
    non-finite steps too). Its learning rate is checked first (`check_learning_rate`).
    """
    from keras_memseg.optimizers.torch_sgd import TorchSGD

    optimizer = keras.optimizers.get(optimizer)
    check_learning_rate(optimizer)
    policy = getattr(dtype_policy, "name", dtype_policy)
    if isinstance(optimizer, (TorchSGD, keras.optimizers.LossScaleOptimizer)):
        return optimizer
    if policy == "mixed_float16":
        return optimizer
    return FiniteStep(optimizer)
