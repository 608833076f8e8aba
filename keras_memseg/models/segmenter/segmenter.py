"""`Segmenter`: what MemorySegmenter and the DeepLabV3 baseline share.

Architecture lives in the constructor (backbone, classes, heads); training policy
lives in `compile()` (`training_policy.py`), as KerasHub's `ImageSegmenter.compile`.

One training formulation for every backend: `call(images, training=True)` returns a
dict of training outputs (`logits`, `stage1`, `aux` upsampled to the input,
`features` at feature resolution); `call(images)` returns the final float32 logits
`(B, H, W, K)`. The losses (and MemorySegmenter's memory write) are computed in
`compute_loss`, which Keras calls inside its own `train_step` on TensorFlow, JAX
(`stateless_compute_loss` returns the assigned variables) and PyTorch, so `fit()`
needs no per-backend `train_step`. A model with `FORWARD_TAKES_LABELS` (MemorySegmenter)
gets `(images, labels, step)` as the input of its training forward pass in `fit()`.

The class is assembled from one module per concern: `training_policy.py` (compile,
losses, the step clock, metrics), `guards.py` (non-finite batches, labels, broken
weights), `keras_workarounds.py` (multi-worker hooks), `compat.py` (old configs),
`checks.py` (arguments and input arrays).
"""

import keras
from keras import ops

from keras_memseg import presets as preset_io
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.backbones import pyramid_feature_model
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers.resize import bilinear_resize
from keras_memseg.models.segmenter.checks import check_ignore_class
from keras_memseg.models.segmenter.checks import check_image_arrays
from keras_memseg.models.segmenter.checks import check_int
from keras_memseg.models.segmenter.checks import check_label_arrays
from keras_memseg.models.segmenter.compat import migrate_config
from keras_memseg.models.segmenter.guards import StepGuards
from keras_memseg.models.segmenter.keras_workarounds import MultiWorkerWorkarounds
from keras_memseg.models.segmenter.training_policy import TrainingPolicy
from keras_memseg.models.segmenter.training_policy import split_inputs


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


class Segmenter(TrainingPolicy, StepGuards, MultiWorkerWorkarounds, keras.Model):
    """Backbone resolution, auxiliary head, forward pass, config and preset I/O.

    Subclasses build their heads and implement `forward_heads`; `LOSS_TERMS` lists
    the loss names they can report (a class attribute, so nothing depends on the
    order of attribute assignments in constructors).
    """

    LOSS_TERMS = ("stage2", "aux")
    # The train step hands `(images, labels, step)` to `call` (see `train_step`).
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
        self.init_training_policy()

    # -- to implement ------------------------------------------------------------
    def forward_heads(self, images, training=False):
        """A dict of feature-resolution outputs, `logits` at least (see the subclasses).

        Not named `forward`: on the PyTorch backend a Keras layer is a
        `torch.nn.Module` whose `__call__` dispatches to `forward`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward_heads")

    # -- forward -----------------------------------------------------------------
    def call(self, images, training=False):
        images, labels, step = split_inputs(images)
        # The state a training step may change besides the weights, read before the
        # forward pass updates it: restored when the batch turns out non-finite.
        state = (
            [ops.copy(ops.convert_to_tensor(v)) for v in self.guarded_state()] if training else []
        )
        extra = {"labels": labels, "step": step} if training and labels is not None else {}
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

    # -- inputs checked before any step ----------------------------------------------
    def input_channels(self):
        """The image channels the backbone takes (3 for RGB), or None when unknown."""
        try:
            return int(self.backbone.input_shape[-1])
        except (AttributeError, TypeError, ValueError, IndexError):
            return None

    def predict(self, x=None, *args, **kwargs):
        self.check_finite("predict")
        check_image_arrays(x, "predict", self.input_channels())
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_finite("evaluate")
        check_image_arrays(x, "evaluate", self.input_channels())
        check_label_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        # Arrays are checked here, before any step: a second `fit` is traced with
        # relaxed (unknown) shapes, where only graph assertions could catch them.
        check_image_arrays(x, "fit", self.input_channels())
        check_label_arrays(x, y)
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
        config = migrate_config(cls, config)
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
