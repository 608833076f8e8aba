"""The training policy of a segmenter, set by `compile()`: optimizer, loss table,
weight decay, and what a training step hands the forward pass.

As KerasHub's `ImageSegmenter.compile`: the constructor holds the architecture, so a
saved model or preset carries architecture, weights and state, never a schedule.
Every schedule's step is `optimizer.iterations` minus its value at `compile()`
(`optimizer_step`): one clock for the learning rate, the memory momentum and the
memory-loss start.
"""

import keras
from keras import ops

from keras_memseg import distribute
from keras_memseg.losses import masked_cross_entropy
from keras_memseg.optimizers import TorchSGD
from keras_memseg.optimizers import finite_step

# The cross-entropy terms: loss name -> key of the prediction in the training outputs.
CE_TERMS = {"stage2": "logits", "stage1": "stage1", "aux": "aux"}
# The reference's weights (`ssseg/configs/_base_/segmentors/mcibi.py`); the memory
# loss is on only in its ADE20K configs.
DEFAULT_LOSS_WEIGHTS = {"stage2": 1.0, "stage1": 0.4, "aux": 0.4, "memory": 0.0}
DEFAULT_WEIGHT_DECAY = 5e-4


def split_inputs(inputs):
    """`(images, labels, step)` of a model input: images alone, `(images, labels)` or
    `(images, labels, step)` (what `train_step` hands a model that takes labels)."""
    if isinstance(inputs, (tuple, list)) and len(inputs) in (2, 3):
        return tuple(inputs) + (None,) * (3 - len(inputs))
    return inputs, None, None


def labels_into_inputs(data, step):
    """A `(x, y[, sample_weight])` batch as `((x, y, step), y[, sample_weight])`."""
    if isinstance(data, (tuple, list)) and len(data) >= 2 and data[1] is not None:
        return ((data[0], data[1], step),) + tuple(data[1:])
    return data


class TrainingPolicy:
    """Mixin of `Segmenter`: `compile()`, the losses, the step clock, the metrics."""

    def init_training_policy(self):
        self.loss_trackers = {
            key: keras.metrics.Mean(name=f"loss_{key}")
            for key in self.LOSS_TERMS
            if key != "aux" or self.aux
        }
        self.nonfinite_tracker = keras.metrics.Sum(name="nonfinite_batches")
        self.loss_weights = self.default_loss_weights()
        self.weight_decay = 0.0
        self.custom_loss = None  # compile(loss=...); None = `masked_cross_entropy`
        self._step_offset = 0.0

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        loss_weights="auto",
        weight_decay="auto",
        metrics=None,
        **kwargs,
    ):
        """Sets the training policy (KerasHub's `ImageSegmenter.compile` shape).

        Args:
            optimizer: `"auto"` = the reference's `TorchSGD(0.01, momentum=0.9)`
                (constant rate: pass a `PolyDecay` schedule for the paper's), a name
                or a `keras.optimizers.Optimizer`.
            loss: `"auto"` = pixel cross-entropy over the labels that are not
                `ignore_class`, or a callable `(labels, logits) -> scalar` used for
                every classification term.
            loss_weights: `"auto"` = `{"stage2": 1.0, "stage1": 0.4, "aux": 0.4}`
                (the reference's), or a dict overriding some of them.
            weight_decay: coupled L2 on every trainable weight (BN and biases too),
                as PyTorch's SGD applies it. `"auto"` = 5e-4 with `optimizer="auto"`,
                else 0 (an optimizer of yours carries its own decay).
            metrics: extra metrics on the final logits.
            **kwargs: `keras.Model.compile` arguments (`jit_compile`, ...).
        """
        weights = self.default_loss_weights()
        if loss_weights not in ("auto", None):
            unknown = sorted(set(loss_weights) - set(self.LOSS_TERMS))
            if unknown:
                raise ValueError(
                    f"unknown loss_weights keys {unknown}; "
                    f"{type(self).__name__} has {list(self.LOSS_TERMS)}"
                )
            for key, value in loss_weights.items():
                if not float(value) >= 0.0:
                    raise ValueError(f"loss_weights[{key!r}] must be >= 0, got {value!r}")
            weights.update({k: float(v) for k, v in loss_weights.items()})
        if weight_decay in ("auto", None):
            weight_decay = DEFAULT_WEIGHT_DECAY if optimizer == "auto" else 0.0
        if not float(weight_decay) >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if optimizer == "auto":
            optimizer = TorchSGD(0.01, momentum=0.9)
        # A finite learning rate; NaN/inf gradients skip the step, whatever optimizer.
        optimizer = finite_step.guard(optimizer, self.dtype_policy)
        if loss in ("auto", None):
            loss = None
        elif not callable(loss):
            raise ValueError(
                f"loss must be 'auto' or a callable (labels, logits) -> scalar, got {loss!r}"
            )
        self.loss_weights = weights
        self.weight_decay = float(weight_decay)
        self.custom_loss = loss
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)
        # Schedules count from this call: an optimizer that has run before (or a
        # loaded model compiled anew) starts them at step 0.
        self._step_offset = float(ops.convert_to_numpy(self.optimizer.iterations))

    @classmethod
    def default_loss_weights(cls):
        """`{term: weight}` of `compile(loss_weights="auto")` for this model's terms."""
        return {key: DEFAULT_LOSS_WEIGHTS[key] for key in cls.LOSS_TERMS}

    def get_compile_config(self):
        config = super().get_compile_config() or {}
        config.update(self._policy_config())
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _policy_config(self):
        return {"loss_weights": dict(self.loss_weights), "weight_decay": self.weight_decay}

    # -- the step ------------------------------------------------------------------
    def train_step(self, *args, **kwargs):
        # The data is the last argument on every backend (JAX: `(state, data)`).
        if self.FORWARD_TAKES_LABELS and args:
            step = self.optimizer_step(args[0] if len(args) == 2 else None)
            args = args[:-1] + (labels_into_inputs(args[-1], step),)
        return distribute.reducible_logs(super().train_step(*args, **kwargs))

    def optimizer_step(self, jax_state=None):
        """The (0-based, float32) step of every schedule: `optimizer.iterations` as
        this step reads it, minus its value at `compile()`.

        On JAX the optimizer's variables live in the step's `state` (its third item)
        rather than in the variables: `jax_state` is that state.
        """
        if self.optimizer is None:  # not compiled: a forward pass called by hand
            return ops.convert_to_tensor(0.0, "float32")
        iterations = self.optimizer.iterations
        if jax_state is not None:
            index = next(i for i, v in enumerate(self.optimizer.variables) if v is iterations)
            iterations = jax_state[2][index]
        return ops.cast(ops.convert_to_tensor(iterations), "float32") - self._step_offset

    # -- losses --------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x = split_inputs(x)[0]
        labels = self.check_labels(y, x)
        in_range = self.labels_in_range(labels)
        if not isinstance(y_pred, dict):  # evaluate() on plain logits
            y_pred = {"logits": y_pred}
        finite = None
        if training:
            finite = self.batch_is_finite(x, y_pred)
            self.restore_state_unless(ops.logical_and(finite, in_range), y_pred.get("state", []))
        losses = self.classification_losses(self.checked_labels(labels, training), y_pred)
        return self.skipped_unless(finite, self.total_loss(losses, training))

    def classification_losses(self, labels, y_pred):
        """`{term: cross-entropy}` for every term of `CE_TERMS` present in `y_pred`."""
        out = {}
        for term, key in CE_TERMS.items():
            if key not in y_pred or term not in self.loss_trackers:
                continue
            if self.custom_loss is None:  # labels were range-checked by `check_labels`
                out[term] = masked_cross_entropy(
                    labels, y_pred[key], self.ignore_class, check_range=False
                )
            else:
                out[term] = self.custom_loss(labels, y_pred[key])
        return out

    def total_loss(self, losses, training):
        """Weighted sum of `losses` (trackers updated) plus the coupled L2 term."""
        total = 0.0
        for key, value in losses.items():
            self.loss_trackers[key].update_state(value)
            total = total + self.loss_weights.get(key, 0.0) * value
        if self.weight_decay and training:
            # Coupled L2 on every parameter (BN and biases too), as PyTorch SGD.
            l2 = sum(ops.sum(ops.square(ops.cast(w, "float32"))) for w in self.trainable_weights)
            total = total + 0.5 * self.weight_decay * l2
        # Per-replica loss scaled by 1/replicas: the summed gradients are the global mean.
        replicas = distribute.num_replicas_in_sync()
        return total if replicas == 1 else total / float(replicas)

    # -- metrics -------------------------------------------------------------------
    @property
    def metrics(self):
        # Keras tracks every tracker attribute; report those of the compiled policy.
        own = self.own_metrics()
        hidden = [m for m in self.loss_trackers.values() if m not in own]
        base = [m for m in super().metrics if all(m is not h for h in hidden)]
        return base + [m for m in own if all(m is not b for b in base)]

    def own_metrics(self):
        """The loss trackers of the compiled policy (terms with weight 0 are hidden)."""
        return [
            tracker
            for key, tracker in self.loss_trackers.items()
            if self.loss_weights.get(key, 0.0) > 0.0
        ]

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        return super().compute_metrics(x, y, y_pred, sample_weight)
