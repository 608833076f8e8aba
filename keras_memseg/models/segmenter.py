"""`Segmenter`: what MemorySegmenter and the DeepLabV3 baseline share.

Architecture lives in the constructor (backbone, classes, heads); training policy
lives in `compile()` (optimizer, loss weights, weight decay; MemorySegmenter adds the
memory momentum and the memory-loss start), as KerasHub's `ImageSegmenter.compile`.
A saved model or preset therefore carries architecture, weights and the memory,
never a learning-rate schedule.

One training formulation for every backend: `call(images, training=True)` returns a
dict of training outputs (`logits`, `stage1`, `aux` upsampled to the input,
`features` at feature resolution); `call(images)` returns the final float32 logits
`(B, H, W, K)`. The losses (and MemorySegmenter's memory update) are computed in
`compute_loss`, which Keras calls inside its own `train_step` on TensorFlow, JAX
(`stateless_compute_loss` returns the assigned variables) and PyTorch, so `fit()`
needs no per-backend `train_step`. A model with `FORWARD_TAKES_LABELS` (MemorySegmenter)
gets `(images, labels)` as the input of its training forward pass in `fit()`.
"""

import numbers
import warnings

import keras
import numpy as np
from keras import ops

from keras_memseg import distribute
from keras_memseg import presets as preset_io
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.backbones import pyramid_feature_model
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers.resize import bilinear_resize
from keras_memseg.losses import masked_cross_entropy
from keras_memseg.losses.label_checks import assert_labels_in_range
from keras_memseg.losses.label_checks import check_label_shape
from keras_memseg.losses.label_checks import labels_in_range
from keras_memseg.losses.label_checks import to_class_id_map
from keras_memseg.optimizers import TorchSGD
from keras_memseg.optimizers import finite_step

# The cross-entropy terms: loss name -> key of the prediction in the training outputs.
CE_TERMS = {"stage2": "logits", "stage1": "stage1", "aux": "aux"}
# The reference's weights (`ssseg/configs/_base_/segmentors/mcibi.py`); the memory
# loss is on only in its ADE20K configs.
DEFAULT_LOSS_WEIGHTS = {"stage2": 1.0, "stage1": 0.4, "aux": 0.4, "memory": 0.0}
DEFAULT_WEIGHT_DECAY = 5e-4
# Constructor arguments of keras_memseg < 0.2 that are training policy now.
_POLICY_ARGS = (
    "memory_momentum",
    "loss_weights",
    "weight_decay",
    "memory_loss",
    "memory_loss_start_step",
)


def _check_label_arrays(x, y):
    """Labels given as an array beside image arrays: integer, one channel, same size."""
    if y is None or not hasattr(y, "shape") or not hasattr(y, "dtype"):
        return
    images = x.get("images") if isinstance(x, dict) else x
    image_shape = tuple(images.shape) if hasattr(images, "shape") else None
    if "float" in str(y.dtype):
        raise ValueError(
            f"labels must be integer class ids, got {y.dtype} (cast them after "
            "checking they hold whole numbers)"
        )
    check_label_shape(tuple(y.shape), image_shape)


def _check_image_arrays(x, what, channels):
    """Images given as an array: (batch, height, width, channels), at least one image.

    Datasets and generators are not looked into (their batches are checked in the step).
    """
    images = x.get("images") if isinstance(x, dict) else x
    if not (hasattr(images, "shape") and hasattr(images, "dtype")):
        return
    shape = tuple(images.shape)
    if len(shape) != 4 or (channels is not None and shape[-1] != channels):
        want = channels if channels is not None else "channels"
        raise ValueError(
            f"{what}: images must be a (batch, height, width, {want}) array, got shape {shape}"
        )
    if shape[0] == 0:
        raise ValueError(f"{what}: got an empty batch of shape {shape}; pass at least one image")


def resize_to(x, reference):
    """Bilinear (half-pixel) resize of `x` to the spatial size of `reference`, float32."""
    return bilinear_resize(ops.cast(x, "float32"), ops.shape(reference)[1:3])


def resolve_backbone(backbone, output_stride=8, sync_batchnorm=False, dtype=None):
    """A backbone model from a preset name (random weights) or the model itself."""
    if isinstance(backbone, str):
        return DilatedResNetBackbone.from_preset(
            backbone,
            load_weights=False,
            output_stride=output_stride,
            sync_batchnorm=sync_batchnorm,
            dtype=dtype,
        )
    return backbone


def labels_into_inputs(data):
    """A `(x, y[, sample_weight])` batch as `((x, y), y[, sample_weight])`."""
    if isinstance(data, (tuple, list)) and len(data) >= 2 and data[1] is not None:
        return ((data[0], data[1]),) + tuple(data[1:])
    return data


def split_inputs(inputs):
    """`(images, labels)` of a model input: images alone or `(images, labels)`."""
    if isinstance(inputs, (tuple, list)) and len(inputs) == 2:
        return inputs[0], inputs[1]
    return inputs, None


def check_int(name, value, minimum):
    """`int(value)` after checking it is an integer >= minimum (not 2.7, not True, not
    the string "5")."""
    if (
        isinstance(value, (bool, str, bytes))
        or not isinstance(value, numbers.Real)
        or not float(value).is_integer()
        or int(value) < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_ignore_class(ignore_class, num_classes):
    if isinstance(ignore_class, bool) or not float(ignore_class).is_integer():
        raise ValueError(f"ignore_class must be an integer, got {ignore_class!r}")
    if 0 <= int(ignore_class) < num_classes:
        raise ValueError(
            f"ignore_class {ignore_class} is a class id (num_classes is "
            f"{num_classes}); use a value outside [0, {num_classes}), e.g. 255"
        )
    return int(ignore_class)


class Segmenter(keras.Model):
    """Backbone resolution, auxiliary head, the loss table, compile-time policy, config.

    Subclasses build their heads and implement `forward_heads`; `LOSS_TERMS` lists
    the loss names they can report (a class attribute, so nothing depends on the
    order of attribute assignments in constructors).
    """

    LOSS_TERMS = ("stage2", "aux")
    # The train step hands `(images, labels)` to `call` (see `train_step`).
    FORWARD_TAKES_LABELS = False

    def __init__(
        self,
        backbone,
        num_classes,
        aux=True,
        aux_channels=512,
        dropout=0.1,
        activation="relu",
        ignore_class=255,
        output_stride=8,
        sync_batchnorm=False,
        dtype=None,
        **kwargs,
    ):
        super().__init__(dtype=dtype, **kwargs)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.ignore_class = check_ignore_class(ignore_class, self.num_classes)
        self.output_stride = check_int("output_stride", output_stride, 1)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.backbone = resolve_backbone(backbone, self.output_stride, self.sync_batchnorm, dtype)
        self.pyramid = pyramid_feature_model(self.backbone)
        self.aux = bool(aux)
        self.aux_channels = check_int("aux_channels", aux_channels, 1)
        self.dropout = float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.activation = activation
        self.aux_head = None
        if self.aux:
            self.aux_head = SegmentationDecoder(
                self.num_classes,
                self.aux_channels,
                kernel_size=3,
                dropout=self.dropout,
                activation=activation,
                sync_batchnorm=self.sync_batchnorm,
                name="aux_head",
                dtype=self.dtype_policy,
            )
        self.loss_trackers = {
            key: keras.metrics.Mean(name=f"loss_{key}")
            for key in self.LOSS_TERMS
            if key != "aux" or self.aux
        }
        self.nonfinite_tracker = keras.metrics.Sum(name="nonfinite_batches")
        self.loss_weights = self.default_loss_weights()
        self.weight_decay = 0.0
        self.custom_loss = None  # compile(loss=...); None = `masked_cross_entropy`

    # -- to implement ------------------------------------------------------------
    def forward_heads(self, images, training=False):
        """A dict of feature-resolution outputs, `logits` at least (see the subclasses).

        Not named `forward`: on the PyTorch backend a Keras layer is a
        `torch.nn.Module` whose `__call__` dispatches to `forward`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward_heads")

    # -- forward -----------------------------------------------------------------
    def call(self, images, training=False):
        images, labels = split_inputs(images)
        # The state a training step may change besides the weights, read before the
        # forward pass updates it: restored when the batch turns out non-finite.
        state = (
            [ops.copy(ops.convert_to_tensor(v)) for v in self.guarded_state()] if training else []
        )
        extra = {"labels": labels} if training and labels is not None else {}
        out = self.forward_heads(images, training=training, **extra)
        logits = resize_to(out["logits"], images)
        if not training:
            return logits
        result = {"logits": logits, "state": state}
        for key in ("stage1", "aux"):
            if key in out:
                result[key] = resize_to(out[key], images)
        for key in ("features", "memory_update"):
            if key in out:
                result[key] = out[key]
        return result

    # -- training policy -----------------------------------------------------------
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

    # -- losses ------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x, _ = split_inputs(x)
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

    # -- non-finite guard ---------------------------------------------------------------
    # A batch whose images or outputs hold NaN/inf must not touch the model: its BN
    # statistics are restored here, MemorySegmenter skips its memory update, and
    # `TorchSGD` skips the weight update of a non-finite gradient. Such batches are
    # counted in the `nonfinite_batches` metric (the trainer stops a run that keeps
    # producing them).
    def guarded_state(self):
        """The non-trainable variables a training step may change (BN statistics)."""
        own = [v for layer in self._stateful_layers() for v in layer.variables]
        return [v for v in self.non_trainable_variables if all(v is not o for o in own)]

    def _stateful_layers(self):
        return []  # layers guarding their own state (MemorySegmenter: the memory)

    def batch_is_finite(self, images, y_pred, extra=()):
        """A scalar bool: every image pixel, every training output, the statistics the
        forward pass just wrote (BN moving mean and variance) and `extra` are finite.

        The statistics matter on their own: huge but finite pixels (1e30) overflow a
        BN batch variance to inf while the normalised outputs stay finite.
        """
        tensors = (
            [images]
            + [y_pred[key] for key in ("logits", "stage1", "aux", "features") if key in y_pred]
            + [ops.convert_to_tensor(v) for v in self.guarded_state()]
            + list(extra)
        )
        finite = ops.all(
            ops.stack(
                [ops.all(ops.isfinite(ops.cast(t, "float32"))) for t in tensors if t is not None]
            )
        )
        self.nonfinite_tracker.update_state(1.0 - ops.cast(finite, "float32"))
        return finite

    def skipped_unless(self, finite, loss):
        """`loss`, times NaN (a constant, no gradient of its own) unless `finite`: every
        gradient of a non-finite batch is then NaN, so the optimizer skips its step
        (`TorchSGD`, `FiniteStep`) even when the outputs and gradients themselves stayed
        finite (huge pixels overflowing only the BN statistics)."""
        if finite is None:
            return loss
        scale = ops.stop_gradient(ops.where(finite, 1.0, float("nan")))
        return loss * ops.cast(scale, loss.dtype)

    def restore_state_unless(self, finite, state):
        """Puts back the `guarded_state` read before the forward pass unless `finite`."""
        for variable, old in zip(self.guarded_state(), state):
            variable.assign(ops.where(finite, ops.convert_to_tensor(variable), old))

    def check_labels(self, y, images=None):
        """int32 `(B, H, W)` labels: integer, one channel, the size of `images`.

        Checked from the static shapes; where they are unknown (TensorFlow retraces
        `fit` with relaxed shapes) by graph assertions. The label range is checked by
        `labels_in_range` / `checked_labels`, after the step's state is restored.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} needs labels: fit/evaluate on (images, labels)"
            )
        y = ops.convert_to_tensor(y)
        if "float" in str(y.dtype):
            raise ValueError(
                f"labels must be integer class ids, got {y.dtype} (cast them "
                "after checking they hold whole numbers)"
            )
        rank = y.shape.rank if hasattr(y.shape, "rank") else len(y.shape)
        if rank is None or (
            images is not None and None in tuple(y.shape[1:3]) + tuple(images.shape[1:3])
        ):
            if keras.backend.backend() == "tensorflow":
                return ops.cast(to_class_id_map(y, images), "int32")
        if rank is not None:
            check_label_shape(tuple(y.shape), None if images is None else images.shape)
        if rank == 4:
            y = y[..., 0]
        return ops.cast(y, "int32")

    def labels_in_range(self, labels):
        """A scalar bool: every label is a class id or `ignore_class`."""
        return labels_in_range(labels, self.num_classes, self.ignore_class)

    def checked_labels(self, labels, training):
        """`labels`, refused (TensorFlow: a graph assertion every loss and gradient
        waits for) when outside `[0, K)` and not `ignore_class`. In training the check
        waits for the state that `compute_loss` put back, so a refused batch changes
        nothing."""
        after = self.guarded_state() + [
            v for layer in self._stateful_layers() for v in layer.variables
        ]
        return assert_labels_in_range(
            labels, self.num_classes, self.ignore_class, after=after if training else ()
        )

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

    # -- Keras 3.15 + MultiWorkerMirroredStrategy ----------------------------------------
    # Two documented hooks around Keras bugs under TensorFlow's multi-worker strategy
    # (tests/training/test_trainer.py runs two local workers):
    # 1. `fit()` first reduces a whole (x, y) batch with `strategy.reduce` to build the
    #    model symbolically, which the collective strategy rejects ("Attempt to convert
    #    a value (PerReplica...) to a Tensor"). A built model with a built optimizer
    #    has nothing to build, so the step is skipped then.
    # 2. It reduces the step's logs with `strategy.reduce("MEAN", v, axis=0)`, which
    #    rejects scalars: `distribute.reducible_logs` gives them a leading axis.
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.built and self.optimizer is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, *args, **kwargs):
        # The data is the last argument on every backend (JAX: `(state, data)`).
        if self.FORWARD_TAKES_LABELS and args:
            args = args[:-1] + (labels_into_inputs(args[-1]),)
        return distribute.reducible_logs(super().train_step(*args, **kwargs))

    # -- state checks ----------------------------------------------------------------
    def nonfinite_weights(self):
        """Paths of the weights (the feature memory included) holding NaN or inf."""
        return [w.path for w in self.weights if not np.all(np.isfinite(ops.convert_to_numpy(w)))]

    def check_finite(self, what):
        """Raises ValueError when a weight or the memory holds NaN/inf: `what` (e.g.
        "predict") would give garbage silently."""
        bad = self.nonfinite_weights()
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(
                f"{type(self).__name__}.{what}: weights hold NaN/inf ({shown}); "
                "the model is broken: load a checkpoint from before it diverged"
            )

    def input_channels(self):
        """The image channels the backbone takes (3 for RGB), or None when unknown."""
        try:
            return int(self.backbone.input_shape[-1])
        except (AttributeError, TypeError, ValueError, IndexError):
            return None

    def predict(self, x=None, *args, **kwargs):
        self.check_finite("predict")
        _check_image_arrays(x, "predict", self.input_channels())
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_finite("evaluate")
        _check_image_arrays(x, "evaluate", self.input_channels())
        _check_label_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        # Arrays are checked here, before any step: a second `fit` is traced with
        # relaxed (unknown) shapes, where only graph assertions could catch them.
        _check_image_arrays(x, "fit", self.input_channels())
        _check_label_arrays(x, y)
        return super().fit(x, y, *args, **kwargs)

    # -- serialization -----------------------------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "aux": self.aux,
            "aux_channels": self.aux_channels,
            "dropout": self.dropout,
            "activation": self.activation,
            "ignore_class": self.ignore_class,
            "output_stride": self.output_stride,
            "sync_batchnorm": self.sync_batchnorm,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "ignore_index" in config:  # keras_memseg < 0.2
            config["ignore_class"] = config.pop("ignore_index")
        dropped = [key for key in _POLICY_ARGS if key in config]
        for key in dropped:
            config.pop(key)
        if dropped:
            warnings.warn(
                f"{cls.__name__}: ignoring {dropped} of a model saved by an older "
                "keras_memseg: training policy is set by compile() now",
                UserWarning,
                stacklevel=2,
            )
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    def save_to_preset(self, preset_dir, metadata=None):
        """Saves config and weights (memory included) as a local preset folder."""
        preset_io.save_to_preset(self, preset_dir, metadata)

    @classmethod
    def from_preset(cls, preset_dir, load_weights=True):
        """Loads a preset folder written by `save_to_preset` or by `python -m
        keras_memseg.convert` (a local folder: nothing is downloaded)."""
        model = preset_io.load_from_preset(preset_dir, load_weights)
        if not isinstance(model, cls):
            raise ValueError(
                f"preset {preset_dir} holds a {type(model).__name__}, not a {cls.__name__}"
            )
        return model
