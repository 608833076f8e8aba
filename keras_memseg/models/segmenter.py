"""What MemorySegmenter and the DeepLabV3 baseline share: backbone, aux head, losses.

Training formulation (one for all backends). `call(images, training=True)` returns
a dict of the training outputs (`logits`, `stage1`, `aux` upsampled to the input,
`features` at feature resolution); `call(images)` in inference returns the final
logits `(B, H, W, K)` in float32. Losses, the memory update and the loss trackers
live in `compute_loss`, which Keras calls inside its own `train_step` on every
backend: on TensorFlow and PyTorch variable assignments there take effect
directly, and on JAX `stateless_compute_loss` collects the assigned non-trainable
and metric values into the returned state. So `fit()` needs no per-backend
`train_step`, and the memory update stays one backend-agnostic `keras.ops` code path.
"""

import keras
import numpy as np
from keras import ops

from keras_memseg import distribute
from keras_memseg.backbones import get_backbone
from keras_memseg.backbones import pyramid_feature_model
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers.resize import bilinear_resize
from keras_memseg.losses import masked_cross_entropy
from keras_memseg.losses.label_checks import assert_labels_in_range

DEFAULT_LOSS_WEIGHTS = {"stage2": 1.0, "stage1": 0.4, "aux": 0.4, "memory": 1.0}
_CONTEXTS = ("aspp", "ppm", None)


def resize_to(x, reference):
    """Bilinear (half-pixel) resize of `x` to the spatial size of `reference`, float32."""
    return bilinear_resize(ops.cast(x, "float32"), ops.shape(reference)[1:3])


class SegmenterBase(keras.Model):
    """Backbone resolution, auxiliary head, weighted ignore-aware losses, config."""

    def __init__(self, backbone, num_classes, aux=True, aux_channels=512, dropout=0.1,
                 activation="relu", loss_weights=None, ignore_index=255, output_stride=8,
                 sync_batchnorm=False, weight_decay=0.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if isinstance(backbone, str):
            backbone = get_backbone(backbone, output_stride=output_stride,
                                    sync_batchnorm=sync_batchnorm)
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss_weights keys {sorted(unknown)}; "
                             f"known: {sorted(DEFAULT_LOSS_WEIGHTS)}")
        self.backbone = backbone
        self.pyramid = pyramid_feature_model(backbone)
        self.num_classes = int(num_classes)
        self.aux = bool(aux)
        self.aux_channels = int(aux_channels)
        self.dropout = float(dropout)
        self.activation = activation
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        self.ignore_index = int(ignore_index)
        self.output_stride = int(output_stride)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.weight_decay = float(weight_decay)
        self.aux_head = None
        if self.aux:
            self.aux_head = SegmentationDecoder(
                self.num_classes, self.aux_channels, kernel_size=3, dropout=self.dropout,
                activation=activation, sync_batchnorm=self.sync_batchnorm, name="aux_head")
        self.loss_trackers = {
            key: keras.metrics.Mean(name=f"loss_{key}") for key in self._loss_keys()
        }

    # -- to implement -------------------------------------------------------
    def _loss_keys(self):
        return ("stage2", "aux") if self.aux else ("stage2",)

    def forward_heads(self, images, training=False):
        """Returns a dict with at least `logits` at feature resolution.

        Not named `forward`: on the PyTorch backend a Keras layer is a
        `torch.nn.Module` whose `__call__` dispatches to `forward`, so overriding
        `forward` would bypass `call` (and return feature-resolution logits).
        """
        raise NotImplementedError  # abstract: MemorySegmenter and DeepLabV3 implement it

    def _extra_losses(self, y, y_pred, training):
        return {}

    # -- shared --------------------------------------------------------------
    def call(self, images, training=False):
        out = self.forward_heads(images, training=training)
        logits = resize_to(out["logits"], images)
        if not training:
            return logits
        result = {"logits": logits}
        for key in ("stage1", "aux"):
            if key in out:
                result[key] = resize_to(out[key], images)
        if "features" in out:
            result["features"] = out["features"]
        return result

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError(f"{type(self).__name__} needs labels: fit/evaluate on (images, labels)")
        if not isinstance(y_pred, dict):  # evaluation on plain logits
            loss = masked_cross_entropy(y, y_pred, self.ignore_index)
            self.loss_trackers["stage2"].update_state(loss)
            return distribute_scale(loss)
        # Check the label range once, before anything gathers with the labels.
        y = ops.cast(ops.convert_to_tensor(y), "int32")
        if len(y.shape) == 4:
            y = y[..., 0]
        y = assert_labels_in_range(y, self.num_classes, self.ignore_index)
        losses = self._extra_losses(y, y_pred, training)  # memory update happens here
        losses["stage2"] = masked_cross_entropy(y, y_pred["logits"], self.ignore_index,
                                                check_range=False)
        if "stage1" in y_pred:
            losses["stage1"] = masked_cross_entropy(y, y_pred["stage1"], self.ignore_index,
                                                    check_range=False)
        if "aux" in y_pred:
            losses["aux"] = masked_cross_entropy(y, y_pred["aux"], self.ignore_index,
                                                 check_range=False)
        total = 0.0
        for key, value in losses.items():
            if key in self.loss_trackers:
                self.loss_trackers[key].update_state(value)
            total = total + self.loss_weights[key] * value
        if self.weight_decay and training:
            # Coupled L2 on every parameter (BN and biases too), as PyTorch SGD.
            l2 = sum(ops.sum(ops.square(ops.cast(w, "float32"))) for w in self.trainable_weights)
            total = total + 0.5 * self.weight_decay * l2
        return distribute_scale(total)

    @property
    def metrics(self):
        base = super().metrics
        return base + [m for m in self._own_metrics() if m not in base]

    def _own_metrics(self):
        return list(self.loss_trackers.values())

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred["logits"]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "aux": self.aux,
            "aux_channels": self.aux_channels,
            "dropout": self.dropout,
            "activation": self.activation,
            "loss_weights": {k: self.loss_weights[k] for k in sorted(self.loss_weights)},
            "ignore_index": self.ignore_index,
            "output_stride": self.output_stride,
            "sync_batchnorm": self.sync_batchnorm,
            "weight_decay": self.weight_decay,
        }

    def nonfinite_weights(self):
        """Paths of the weights (the feature memory included) holding NaN or inf."""
        return [w.path for w in self.weights
                if not np.all(np.isfinite(ops.convert_to_numpy(w)))]

    def save_to_preset(self, preset_dir, metadata=None):
        """Saves config and weights (memory included) as a local preset folder."""
        from keras_memseg.models.presets import save_to_preset

        save_to_preset(self, preset_dir, metadata)

    @classmethod
    def from_preset(cls, preset_dir, load_weights=True):
        """Loads a preset folder written by `save_to_preset` (nothing is downloaded)."""
        from keras_memseg.models.presets import load_from_preset

        model = load_from_preset(preset_dir, load_weights)
        if not isinstance(model, cls):
            raise ValueError(f"preset {preset_dir} holds a {type(model).__name__}, "
                             f"not a {cls.__name__}")
        return model

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def distribute_scale(loss):
    """Per-replica loss scaled by 1/replicas: summed gradients = global mean (DDP)."""
    replicas = distribute.num_replicas_in_sync()
    return loss if replicas == 1 else loss / float(replicas)
