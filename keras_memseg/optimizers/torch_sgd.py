"""SGD with PyTorch's momentum convention, the optimizer of the reference code."""

import keras
from keras import ops

from keras_memseg import distribute


@keras.saving.register_keras_serializable(package="keras_memseg")
class TorchSGD(keras.optimizers.Optimizer):
    """`torch.optim.SGD` semantics: `b <- momentum * b + g; w <- w - lr_t * b`.

    Keras' own `SGD` keeps a velocity that already includes the learning rate
    (`v <- momentum * v - lr_t * g; w <- w + v`). The two agree while the learning
    rate is constant and differ as soon as it changes: the reference trains every
    MCIBI model with a poly schedule that changes the rate at every step, so only
    this form reproduces its updates (the authors' `ssseg` builds `torch.optim.SGD`).
    Weight decay as PyTorch applies it (coupled L2 on the gradient) is a loss term in
    keras_memseg: `model.compile(weight_decay=...)`. When any gradient of a step holds
    NaN/inf (on any replica), or the rate is not finite, no variable and no momentum
    buffer is updated at all: a bad batch never reaches the weights, even through
    the variables whose own gradient happens to be finite. On TensorFlow each
    variable's update is one fused `ResourceApplyMomentum` kernel (the same formula:
    bit-identical without Nesterov, within an ulp with it;
    `keras_memseg.optimizers.tf_momentum`); on JAX and PyTorch it is written with
    `keras.ops`.

    Args:
        learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule`.
        momentum: the momentum factor (0.9 in every paper config).
        nesterov: Nesterov momentum (`w <- w - lr_t * (g + momentum * b)`).
        **kwargs: `keras.optimizers.Optimizer` arguments (`clipnorm`, ...).

    Example:
    >>> import numpy as np, keras
    >>> w = keras.Variable(np.ones(2, "float32"))
    >>> opt = TorchSGD(learning_rate=0.1, momentum=0.9)
    >>> opt.apply([np.full(2, 1.0, "float32")], [w])
    >>> _ = opt.learning_rate.assign(0.05)
    >>> opt.apply([np.full(2, 1.0, "float32")], [w])    # b = 0.9 * 1 + 1 = 1.9
    >>> [round(float(v), 4) for v in w.numpy()]            # 1 - 0.1 - 0.05 * 1.9
    [0.805, 0.805]
    """

    def __init__(
        self, learning_rate=0.01, momentum=0.9, nesterov=False, name="torch_sgd", **kwargs
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"TorchSGD momentum must be in [0, 1), got {momentum}")
        if nesterov and not momentum:
            raise ValueError("TorchSGD nesterov=True needs a momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum:
            self.momentums = [self.add_variable_from_reference(v, "momentum") for v in variables]

    def apply(self, grads, trainable_variables=None):
        # One decision for the whole step, read by `update_step`: every value of
        # every gradient finite (on every replica: a count of the non-finite ones,
        # summed over replicas) and the rate finite. Decided once here instead of
        # once per variable.
        finite = [ops.all(ops.isfinite(g)) for g in grads if g is not None]
        if finite:
            bad = ops.sum(ops.cast(ops.logical_not(ops.stack(finite)), "float32"))
            lr = ops.cast(ops.convert_to_tensor(self.learning_rate), "float32")
            self._step_is_finite = ops.equal(distribute.cross_replica_sum(bad), 0.0) & ops.isfinite(
                lr
            )
        else:
            self._step_is_finite = None
        self._fused_scalars = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_is_finite = None
            self._fused_scalars = None

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        # A non-finite step (or rate) leaves the variable and its momentum as they
        # are: NaN/inf never reach the weights.
        finite = getattr(self, "_step_is_finite", None)
        if finite is None:  # called outside `apply`
            finite = ops.all(ops.isfinite(gradient)) & ops.isfinite(lr)
        if self.momentum and keras.backend.backend() == "tensorflow":
            self._fused_update(gradient, variable, lr, finite)
            return
        # Values, not Variables, in `where` (JAX's stateless apply cannot trace those).
        value = ops.convert_to_tensor(variable)
        if not self.momentum:
            self.assign(variable, ops.where(finite, value - lr * gradient, value))
            return
        momentum = self.momentums[self._get_variable_index(variable)]
        buf = ops.convert_to_tensor(momentum)
        new_buf = self.momentum * buf + gradient  # the first step gives b = g
        step = gradient + self.momentum * new_buf if self.nesterov else new_buf
        self.assign(momentum, ops.where(finite, new_buf, buf))
        self.assign(variable, ops.where(finite, value - lr * step, value))

    def _fused_update(self, gradient, variable, lr, finite):
        """TensorFlow: the same update as one fused kernel per variable (see
        `keras_memseg.optimizers.tf_momentum`). Inside `apply`, the step's rate and
        momentum factor are built once per dtype instead of once per variable."""
        from keras_memseg.optimizers import tf_momentum

        cache = getattr(self, "_fused_scalars", None)  # a dict only inside `apply`
        scalars = cache.get(str(variable.dtype)) if cache is not None else None
        if scalars is None:
            scalars = tf_momentum.step_scalars(lr, self.momentum, finite, variable.dtype)
            if cache is not None:
                cache[str(variable.dtype)] = scalars
        buffer = self.momentums[self._get_variable_index(variable)]
        tf_momentum.apply_momentum(variable, buffer, gradient, *scalars, finite, self.nesterov)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
