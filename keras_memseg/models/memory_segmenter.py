"""MemorySegmenter: backbone + context module + MCIBI feature-memory head (spec section 1)."""

import warnings

import keras
import numpy as np
from keras import ops

from keras_memseg.layers import ASPP
from keras_memseg.layers import PPM
from keras_memseg.layers import ConvBNAct
from keras_memseg.layers import FeatureMemory
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers import SelfAttentionBlock
from keras_memseg.losses import masked_cross_entropy
from keras_memseg.models.segmenter import _CONTEXTS
from keras_memseg.models.segmenter import SegmenterBase


@keras.saving.register_keras_serializable(package="keras_memseg")
class MemorySegmenter(SegmenterBase):
    """DeepLabV3/PSPNet/FCN + MCIBI: segmentation with a dataset-level class memory.

    Forward (NHWC, spec 1.3-1.11): `C3, C4 = backbone(I)`, `F = bottleneck(C4)`,
    `P1 = decoder_stage1(F)`, `R = softmax(P1) @ M`, `O1 = fuse_memory([F, SA_mem(F, R)])`,
    `O = fuse_context([SA_ctx(F, context(C4)), O1])` (context on), `P2 = decoder_stage2(O)`,
    `aux = aux_head(C3)`. Training (`fit`) updates `M` from the ground truth after
    the forward pass; inference never touches it.

    Args:
        backbone: a backbone name (`keras_memseg.backbones.available_backbones()`),
            or a keras.Model with `pyramid_outputs` (KerasHub) or
            `pyramid_level_inputs` (KerasCV). P5 feeds the head, P4 the aux head.
        num_classes: K.
        context: `"aspp"` (DeepLabV3 + MCIBI, all paper configs), `"ppm"` or None.
        feats_channels: head width C (512).
        transform_channels: attention width (256).
        aux: add the auxiliary head on P4 (loss weight 0.4).
        aux_channels: width of the auxiliary head (512).
        memory_loss: add the memory-classification loss (ADE20K configs).
        memory_loss_start_step: first training step of that loss (the reference
            starts it with the second epoch: pass the steps per epoch).
        feats_per_class: memory slots per class (1).
        hard_aggregate: read the memory with the argmax instead of the softmax.
        sync: memory replica semantics, `"global"` or `"replica_mean"`.
        update_resolution: `"label"` (reference) or `"feature"`.
        memory_momentum: a float, or a callable `step -> momentum` such as
            `keras_memseg.training.TiedMomentum` (tied to the LR schedule).
        dropout: `Dropout2d` rate of the classifiers (0.1).
        activation: head activation, `"relu"` or `"leaky_relu"` (LIP).
        aspp_rates: ASPP dilations (1, 12, 24, 36).
        ppm_bins: PPM bins (1, 2, 3, 6).
        loss_weights: overrides of `{"stage2": 1, "stage1": 0.4, "aux": 0.4, "memory": 1}`.
        ignore_index: label skipped by losses and the memory (255).
        output_stride: output stride of a backbone given by name (8 or 16).
        sync_batchnorm: synchronised BN across replicas (TensorFlow).
        weight_decay: coupled L2 on all parameters (PyTorch SGD semantics).

    Example:
    >>> import numpy as np, keras
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> backbone = DilatedResNetBackbone(depth=18, base_channels=8)
    >>> model = MemorySegmenter(backbone, num_classes=3, feats_channels=16,
    ...                         transform_channels=8, aux_channels=8)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.01))
    >>> x = np.random.rand(2, 32, 32, 3).astype("float32")
    >>> y = np.random.randint(0, 3, (2, 32, 32)).astype("int32")
    >>> _ = model.fit(x, y, epochs=1, verbose=0)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, backbone, num_classes, context="aspp", feats_channels=512,
                 transform_channels=256, aux=True, aux_channels=512, memory_loss=False,
                 memory_loss_start_step=0, feats_per_class=1, hard_aggregate=False,
                 sync="global", update_resolution="label", memory_momentum=0.9, dropout=0.1,
                 activation="relu", aspp_rates=(1, 12, 24, 36), ppm_bins=(1, 2, 3, 6),
                 loss_weights=None, ignore_index=255, output_stride=8, sync_batchnorm=False,
                 weight_decay=0.0, **kwargs):
        if context not in _CONTEXTS:
            raise ValueError(f"context must be one of {_CONTEXTS}, got {context!r}")
        if isinstance(memory_momentum, dict):
            memory_momentum = keras.saving.deserialize_keras_object(memory_momentum)
        if not callable(memory_momentum) and not 0.0 <= float(memory_momentum) <= 1.0:
            raise ValueError(f"memory_momentum must be in [0, 1], got {memory_momentum}")
        self.memory_loss = bool(memory_loss)
        super().__init__(backbone, num_classes, aux=aux, aux_channels=aux_channels,
                         dropout=dropout, activation=activation, loss_weights=loss_weights,
                         ignore_index=ignore_index, output_stride=output_stride,
                         sync_batchnorm=sync_batchnorm, weight_decay=weight_decay, **kwargs)
        c, t, k = int(feats_channels), int(transform_channels), self.num_classes
        self.context = context
        self.feats_channels = c
        self.transform_channels = t
        self.memory_loss_start_step = int(memory_loss_start_step)
        self.feats_per_class = int(feats_per_class)
        self.hard_aggregate = bool(hard_aggregate)
        self.sync = sync
        self.update_resolution = update_resolution
        self.memory_momentum = memory_momentum
        self.aspp_rates = tuple(aspp_rates)
        self.ppm_bins = tuple(ppm_bins)
        kw = {"activation": activation, "sync_batchnorm": self.sync_batchnorm}

        self.context_module = None
        if context == "aspp":
            self.context_module = ASPP(c, self.aspp_rates, name="aspp", **kw)
        elif context == "ppm":
            self.context_module = PPM(c, self.ppm_bins, name="ppm", **kw)
        self.bottleneck = ConvBNAct(c, 3, name="bottleneck", **kw)
        self.decoder_stage1 = SegmentationDecoder(k, c, dropout=self.dropout,
                                                  name="decoder_stage1", **kw)
        self.memory = FeatureMemory(k, c, feats_per_class=self.feats_per_class,
                                    hard_aggregate=self.hard_aggregate, sync=sync,
                                    update_resolution=update_resolution,
                                    ignore_index=self.ignore_index, name="feature_memory")
        self.attention_memory = [
            SelfAttentionBlock(t, c, name=f"attention_memory_{j}", **kw)
            for j in range(self.feats_per_class)
        ]
        self.slot_fuse = (ConvBNAct(c, 1, name="slot_fuse", **kw)
                          if self.feats_per_class > 1 else None)
        self.fuse_memory = ConvBNAct(c, 3, name="fuse_memory", **kw)
        self.attention_context = None
        self.fuse_context = None
        if context is not None:
            self.attention_context = SelfAttentionBlock(t, c, name="attention_context", **kw)
            self.fuse_context = ConvBNAct(c, 3, name="fuse_context", **kw)
        self.decoder_stage2 = SegmentationDecoder(k, c, dropout=self.dropout,
                                                  name="decoder_stage2", **kw)
        self.momentum_tracker = keras.metrics.Mean(name="memory_momentum")

    def _loss_keys(self):
        keys = ["stage2", "stage1"] + (["aux"] if self.aux else [])
        return tuple(keys + (["memory"] if self.memory_loss else []))

    def forward_heads(self, images, training=False):
        pyramid = self.pyramid(images, training=training)
        c4 = pyramid["P5"]
        feats = self.bottleneck(c4, training=training)  # (B, h, w, C): F
        stage1 = self.decoder_stage1(feats, training=training)  # (B, h, w, K)
        probs = ops.softmax(ops.cast(stage1, "float32"), axis=-1)
        read = ops.cast(self.memory(probs), feats.dtype)  # (B, h, w, C) or (.., n, C)
        if self.feats_per_class == 1:
            memory_out = self.attention_memory[0](feats, read, training=training)
        else:
            slots = [att(feats, read[..., j, :], training=training)
                     for j, att in enumerate(self.attention_memory)]
            memory_out = self.slot_fuse(ops.concatenate(slots, axis=-1), training=training)
        out = self.fuse_memory(ops.concatenate([feats, memory_out], axis=-1), training=training)
        if self.context_module is not None:
            context = self.context_module(c4, training=training)
            attended = self.attention_context(feats, context, training=training)
            out = self.fuse_context(ops.concatenate([attended, out], axis=-1), training=training)
        result = {"logits": self.decoder_stage2(out, training=training), "stage1": stage1,
                  "features": feats, "head_features": out}
        if self.aux_head is not None:
            result["aux"] = self.aux_head(pyramid["P4"], training=training)
        return result

    def _own_metrics(self):
        return super()._own_metrics() + [self.momentum_tracker]

    def momentum_at(self, step):
        """The memory momentum of a (0-based) training step."""
        if callable(self.memory_momentum):
            return ops.cast(self.memory_momentum(step), "float32")
        return ops.cast(self.memory_momentum, "float32")

    def _extra_losses(self, y, y_pred, training):
        if not training:
            return {}
        # Everything derived from the step counter is computed before the update:
        # on TensorFlow a variable read placed after its assign sees the new value.
        step = ops.convert_to_tensor(self.memory.num_updates)
        momentum = self.momentum_at(step)
        active = ops.cast(step >= float(self.memory_loss_start_step), "float32")
        self.momentum_tracker.update_state(momentum)
        new_memory = self.memory.update(y_pred["features"], y, momentum)
        if not self.memory_loss:
            return {}
        # Memory rows through decoder_stage2 in training mode, M detached (spec section 3).
        k, n, c = self.num_classes, self.feats_per_class, self.feats_channels
        rows = ops.reshape(ops.stop_gradient(new_memory), (k * n, 1, 1, c))
        logits = self.decoder_stage2(ops.cast(rows, self.compute_dtype), training=True)
        targets = ops.reshape(ops.repeat(ops.arange(k)[:, None], n, axis=1), (k * n, 1, 1))
        loss = masked_cross_entropy(targets, logits, self.ignore_index, check_range=False)
        return {"memory": loss * active}

    def memory_snapshot(self):
        """The current memory `(K, n, C)` as a NumPy array, also in the middle of `fit()`.

        On JAX, `fit()` keeps the model state outside the variables between epoch
        ends (the variables are purged), so a callback that captured the model
        and reads `model.memory.memory` in `on_train_batch_end` fails; `self.model`
        inside a callback, or this method, syncs the state first (`jax_state_sync`).
        """
        sync = getattr(self, "jax_state_sync", None)
        if sync is not None:
            sync()
        return ops.convert_to_numpy(self.memory.memory)

    # -- inference guard ---------------------------------------------------
    def memory_is_empty(self):
        """True while every memory row is zero (an untrained or unrestored memory)."""
        return not np.any(self.memory_snapshot())

    def warn_if_memory_empty(self, what):
        """Warns (UserWarning) that `what` runs with an all-zero memory, if it does."""
        if self.memory_is_empty():
            warnings.warn(
                f"MemorySegmenter.{what}: the feature memory is all zero. It is filled by "
                "training and saved with the model; a model evaluated with an empty memory "
                "gives silently degraded results. Train it or load trained weights first.",
                UserWarning, stacklevel=3)

    def predict(self, *args, **kwargs):
        self.warn_if_memory_empty("predict")
        return super().predict(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        self.warn_if_memory_empty("evaluate")
        return super().evaluate(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        momentum = self.memory_momentum
        if callable(momentum):
            momentum = keras.saving.serialize_keras_object(momentum)
        config.update({
            "context": self.context,
            "feats_channels": self.feats_channels,
            "transform_channels": self.transform_channels,
            "memory_loss": self.memory_loss,
            "memory_loss_start_step": self.memory_loss_start_step,
            "feats_per_class": self.feats_per_class,
            "hard_aggregate": self.hard_aggregate,
            "sync": self.sync,
            "update_resolution": self.update_resolution,
            "memory_momentum": momentum,
            "aspp_rates": self.aspp_rates,
            "ppm_bins": self.ppm_bins,
        })
        return config
