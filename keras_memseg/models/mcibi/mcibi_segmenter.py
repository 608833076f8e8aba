"""MemorySegmenter: backbone + context module + MCIBI feature-memory head.

Jin et al., "Mining Contextual Information Beyond Image for Semantic Segmentation",
ICCV 2021 (arXiv 2108.11819); the reference is the authors' `MCIBI` segmentor in
SegmentationBLWX/sssegmentation (`ssseg/modules/models/segmentors/mcibi/`).
"""

import warnings

import keras
import numpy as np
from keras import ops

from keras_memseg.layers import ASPP
from keras_memseg.layers import PPM
from keras_memseg.layers import ConvBNAct
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers import SelfAttentionBlock
from keras_memseg.losses import masked_cross_entropy
from keras_memseg.models.mcibi.feature_memory import FeatureMemory
from keras_memseg.models.segmenter import Segmenter
from keras_memseg.models.segmenter import check_int
from keras_memseg.models.segmenter import split_inputs
from keras_memseg.optimizers import TiedMomentum

CONTEXTS = ("aspp", "ppm", None)
DEFAULT_MEMORY_MOMENTUM = 0.9  # `base_momentum` of every paper config


@keras.saving.register_keras_serializable(package="keras_memseg")
class MemorySegmenter(Segmenter):
    """DeepLabV3/PSPNet/FCN + MCIBI: segmentation with a dataset-level class memory.

    Forward (NHWC): `C3, C4 = backbone(I)`, `F = bottleneck(C4)`,
    `P1 = decoder_stage1(F)`, `R = softmax(P1) @ M`, `O1 = fuse_memory([F, SA_mem(F, R)])`,
    `O = fuse_context([SA_ctx(F, context(C4)), O1])` (context on), `P2 = decoder_stage2(O)`,
    `aux = aux_head(C3)`. A training step (`fit`) reads the old memory; the forward
    pass (which `fit` hands the labels and the optimizer's step) computes the updated
    memory from the ground truth right after that read (`FeatureMemory.next_state`,
    nothing written), and `compute_loss` writes it, once, after the finiteness and
    label checks, then adds the memory loss (`_memory_loss`, on the updated `M`) to
    the cross-entropy terms; inference never touches `M`. As in the reference, the
    gradient that the stage-2 losses send through the read `R = W M` into
    `W = softmax(P1)` uses the updated memory: the reference's backward reads the
    memory tensor that its update overwrote in place (`memory.data`), so
    `dL/dW = dL/dR M_new^T` while the forward used `M_old`.

    Args:
        backbone: a backbone preset name (`DilatedResNetBackbone.presets`), built with
            RANDOM weights (the paper starts from ImageNet ones: pass
            `DilatedResNetBackbone.from_preset(name)` of a converted preset, or load them
            with `keras_memseg.convert.load_resnet_weights`), or a keras.Model with `pyramid_outputs` (KerasHub) or
            `pyramid_level_inputs` (KerasCV). P5 feeds the head, P4 the aux head.
        num_classes: K.
        context: `"aspp"` (DeepLabV3 + MCIBI, all paper configs), `"ppm"` or None.
        feats_channels: head width C (512).
        transform_channels: attention width (256).
        aux: add the auxiliary head on P4.
        aux_channels: width of the auxiliary head (512).
        feats_per_class: memory slots per class (1).
        hard_aggregate: read the memory with the argmax instead of the softmax.
        sync: memory replica semantics, `"global"` or `"replica_mean"` (the reference).
        update_resolution: `"label"` (the reference) or `"feature"`.
        dropout: `Dropout2d` rate of the classifiers (0.1).
        activation: head activation, `"relu"` or `"leaky_relu"` (LIP).
        aspp_rates: ASPP dilations (1, 12, 24, 36).
        ppm_bins: PPM bins (1, 2, 3, 6).
        ignore_class: label skipped by the losses and the memory update (255).
        output_stride: output stride of a backbone given by name (8 or 16).
        sync_batchnorm: synchronised BN across replicas (TensorFlow).
        dtype: dtype policy of the model's layers (e.g. `"mixed_bfloat16"`); the
            memory and the logits stay float32.

    Training policy is set by `compile()`: see `MemorySegmenter.compile`.

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

    LOSS_TERMS = ("stage2", "stage1", "aux", "memory")
    FORWARD_TAKES_LABELS = True

    def __init__(
        self,
        backbone,
        num_classes,
        context="aspp",
        feats_channels=512,
        transform_channels=256,
        aux=True,
        aux_channels=512,
        feats_per_class=1,
        hard_aggregate=False,
        sync="global",
        update_resolution="label",
        dropout=0.1,
        activation="relu",
        aspp_rates=(1, 12, 24, 36),
        ppm_bins=(1, 2, 3, 6),
        ignore_class=255,
        output_stride=8,
        sync_batchnorm=False,
        dtype=None,
        **kwargs,
    ):
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
        super().__init__(
            backbone,
            num_classes,
            aux=aux,
            aux_channels=aux_channels,
            dropout=dropout,
            activation=activation,
            ignore_class=ignore_class,
            output_stride=output_stride,
            sync_batchnorm=sync_batchnorm,
            dtype=dtype,
            **kwargs,
        )
        c = check_int("feats_channels", feats_channels, 1)
        t = check_int("transform_channels", transform_channels, 1)
        k = self.num_classes
        self.context = context
        self.feats_channels = c
        self.transform_channels = t
        self.feats_per_class = check_int("feats_per_class", feats_per_class, 1)
        self.hard_aggregate = bool(hard_aggregate)
        self.sync = sync
        self.update_resolution = update_resolution
        self.aspp_rates = tuple(aspp_rates)
        self.ppm_bins = tuple(ppm_bins)
        kw = {
            "activation": activation,
            "sync_batchnorm": self.sync_batchnorm,
            "dtype": self.dtype_policy,
        }

        self.context_module = None
        if context == "aspp":
            self.context_module = ASPP(c, self.aspp_rates, name="aspp", **kw)
        elif context == "ppm":
            self.context_module = PPM(c, self.ppm_bins, name="ppm", **kw)
        self.bottleneck = ConvBNAct(c, 3, name="bottleneck", **kw)
        self.decoder_stage1 = SegmentationDecoder(
            k, c, dropout=self.dropout, name="decoder_stage1", **kw
        )
        self.memory = FeatureMemory(
            k,
            c,
            feats_per_class=self.feats_per_class,
            hard_aggregate=self.hard_aggregate,
            sync=sync,
            update_resolution=update_resolution,
            ignore_class=self.ignore_class,
            name="feature_memory",
            dtype=self.dtype_policy,
        )
        self.attention_memory = [
            SelfAttentionBlock(t, c, name=f"attention_memory_{j}", **kw)
            for j in range(self.feats_per_class)
        ]
        self.slot_fuse = (
            ConvBNAct(c, 1, name="slot_fuse", **kw) if self.feats_per_class > 1 else None
        )
        self.fuse_memory = ConvBNAct(c, 3, name="fuse_memory", **kw)
        self.attention_context = None
        self.fuse_context = None
        if context is not None:
            self.attention_context = SelfAttentionBlock(t, c, name="attention_context", **kw)
            self.fuse_context = ConvBNAct(c, 3, name="fuse_context", **kw)
        self.decoder_stage2 = SegmentationDecoder(
            k, c, dropout=self.dropout, name="decoder_stage2", **kw
        )
        self.momentum_tracker = keras.metrics.Mean(name="memory_momentum")
        self.memory_momentum = DEFAULT_MEMORY_MOMENTUM
        self.memory_loss_start_step = 0

    # -- forward -----------------------------------------------------------------------
    def forward_heads(self, images, training=False, labels=None, step=None):
        """Feature-resolution outputs: `logits` (P2), `stage1` (P1), `aux`, `features`
        (F, what the memory is read with and updated from) and `head_features` (O, the
        input of decoder_stage2). With `training=True`, `labels` and `step` (what `fit`
        passes), the updated memory is computed after the read and `memory_update` is
        added (see `_next_memory`); nothing is written here."""
        pyramid = self.pyramid(images, training=training)
        c4 = pyramid["P5"]
        feats = self.bottleneck(c4, training=training)  # (B, h, w, C): F
        stage1 = self.decoder_stage1(feats, training=training)  # (B, h, w, K)
        probs = ops.softmax(ops.cast(stage1, "float32"), axis=-1)
        read = self.memory(probs)  # (B, h, w, C) or (.., n, C), float32
        update = None
        if training and labels is not None:
            update, read = self._next_memory(images, feats, probs, read, labels, step)
        read = ops.cast(read, feats.dtype)
        if self.feats_per_class == 1:
            memory_out = self.attention_memory[0](feats, read, training=training)
        else:
            slots = [
                att(feats, read[..., j, :], training=training)
                for j, att in enumerate(self.attention_memory)
            ]
            memory_out = self.slot_fuse(ops.concatenate(slots, axis=-1), training=training)
        out = self.fuse_memory(ops.concatenate([feats, memory_out], axis=-1), training=training)
        if self.context_module is not None:
            context = self.context_module(c4, training=training)
            attended = self.attention_context(feats, context, training=training)
            out = self.fuse_context(ops.concatenate([attended, out], axis=-1), training=training)
        result = {
            "logits": self.decoder_stage2(out, training=training),
            "stage1": stage1,
            "features": feats,
            "head_features": out,
        }
        if self.aux_head is not None:
            result["aux"] = self.aux_head(pyramid["P4"], training=training)
        if update is not None:
            result["memory_update"] = update
        return result

    def _next_memory(self, images, feats, probs, read, labels, step):
        """The memory update of a training step, between the read and the stage-2 head.

        Returns `(update, read)`: `update` = `{"memory": M_new, "step", "momentum"}`
        for `compute_loss` (which writes `M_new` unless the batch is not finite), and
        the read with its value from `M_old` and its gradient with respect to `W` from
        `M_new` (the reference's backward, see the class docstring).
        """
        if step is None:
            step = self.optimizer_step()  # a forward pass called outside `fit`
        labels = self.check_labels(labels, images)
        old = ops.convert_to_tensor(self.memory.memory)
        momentum = self.momentum_at(step)
        new_memory = self.memory.next_state(feats, labels, momentum)
        if not self.hard_aggregate:  # a one-hot read has no gradient into W
            delta = ops.stop_gradient(new_memory - old)
            delta = ops.where(ops.isfinite(delta), delta, 0.0)
            weights = probs - ops.stop_gradient(probs)  # 0 in value, dW in gradient
            shift = ops.einsum("bhwk,knc->bhwnc", weights, delta)
            shift = shift[..., 0, :] if self.feats_per_class == 1 else shift
            read = read + ops.cast(shift, read.dtype)  # mixed precision: read is bf16/fp16
        return {"memory": new_memory, "step": step, "momentum": momentum}, read

    # -- training policy -----------------------------------------------------------------
    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        memory_momentum="auto",
        memory_loss_start_step=0,
        loss_weights="auto",
        weight_decay="auto",
        metrics=None,
        **kwargs,
    ):
        """Sets the training policy; see `Segmenter.compile` for the shared arguments.

        Args:
            memory_momentum: a float in [0, 1], a callable `step -> momentum` (e.g.
                `keras_memseg.optimizers.TiedMomentum`), or `"auto"`: 0.9 times the
                optimizer's learning rate over its initial value (the reference's
                `adjust_by_learning_rate` with `base_lr` = the initial rate; a
                constant 0.9 for a constant rate).
            memory_loss_start_step: the first step of the memory loss (the reference
                starts it with the second epoch: pass the steps per epoch). The loss
                runs only with `loss_weights={"memory": w}`, w > 0 (ADE20K: 1.0).
            loss_weights: `"auto"` or overrides of `{"stage2": 1.0, "stage1": 0.4,
                "aux": 0.4, "memory": 0.0}`.

        Steps count from this call: a loaded model compiled with a new optimizer starts
        its momentum schedule and memory-loss start at step 0 again.

        Example:
        >>> from keras_memseg.backbones import DilatedResNetBackbone
        >>> from keras_memseg.optimizers import PolyDecay, TorchSGD
        >>> model = MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), 3,
        ...                         feats_channels=16, transform_channels=8, aux_channels=8)
        >>> model.compile(TorchSGD(PolyDecay(0.01, total_steps=100)),
        ...               loss_weights={"memory": 1.0}, memory_loss_start_step=10)
        >>> round(float(model.memory_momentum(100)), 4)   # 0.9 * lr_T / lr_0
        0.009
        """
        super().compile(
            optimizer,
            loss,
            loss_weights=loss_weights,
            weight_decay=weight_decay,
            metrics=metrics,
            **kwargs,
        )
        if memory_momentum in ("auto", None):
            memory_momentum = _tied_to_learning_rate(self.optimizer)
        if isinstance(memory_momentum, dict):
            memory_momentum = keras.saving.deserialize_keras_object(memory_momentum)
        if not callable(memory_momentum) and not 0.0 <= float(memory_momentum) <= 1.0:
            raise ValueError(
                f"memory_momentum must be in [0, 1] or a callable, got {memory_momentum!r}"
            )
        self.memory_momentum = memory_momentum
        self.memory_loss_start_step = check_int("memory_loss_start_step", memory_loss_start_step, 0)

    def _policy_config(self):
        momentum = self.memory_momentum
        if callable(momentum):
            momentum = keras.saving.serialize_keras_object(momentum)
        return {
            **super()._policy_config(),
            "memory_momentum": momentum,
            "memory_loss_start_step": self.memory_loss_start_step,
        }

    def momentum_at(self, step):
        """The memory momentum of a (0-based) training step of the compiled schedule."""
        if callable(self.memory_momentum):
            return ops.cast(self.memory_momentum(step), "float32")
        return ops.cast(self.memory_momentum, "float32")

    # -- losses and the memory write ----------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not training or not isinstance(y_pred, dict):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        update = y_pred.get("memory_update")
        if update is None:
            raise ValueError(
                "MemorySegmenter: a training forward pass needs the labels to update the "
                "memory: call model((images, labels), training=True), as fit() does"
            )
        images = split_inputs(x)[0]
        labels = self.check_labels(y, images)
        in_range = self.labels_in_range(labels)
        # A batch with non-finite values is skipped (counted); one with labels out of
        # range is skipped too, then refused by `checked_labels`. The memory as the
        # forward pass computed it must be finite too.
        finite = ops.logical_and(self.batch_is_finite(images, y_pred, [update["memory"]]), in_range)
        self.momentum_tracker.update_state(update["momentum"])
        # The one write of the memory in a training step. A refused batch is no step:
        # the update counter advances only with labels in range.
        old = ops.convert_to_tensor(self.memory.memory)
        new_memory = ops.where(finite, update["memory"], old)
        self.memory.assign_state(new_memory, advanced=in_range)
        losses = {}
        if self.loss_weights["memory"] > 0.0:
            losses["memory"] = self._memory_loss(new_memory, update["step"])
        self.restore_state_unless(finite, y_pred.get("state", []))
        # Bad labels are refused here, after the state above was put back.
        losses.update(self.classification_losses(self.checked_labels(labels, training), y_pred))
        return self.skipped_unless(finite, self.total_loss(losses, training))

    def _stateful_layers(self):
        return [self.memory]

    def _memory_loss(self, memory, step):
        """Step 2: the memory rows, detached, classified by decoder_stage2 in training mode.

        The reference runs this pass only from `memory_loss_start_step` on; before it,
        the loss is 0 and the pass's side effects on decoder_stage2's state (BN moving
        statistics, dropout seeds) are undone, so the state equals a step without it.
        """
        k, n, c = self.num_classes, self.feats_per_class, self.feats_channels
        state = self.decoder_stage2.non_trainable_variables
        before = [ops.copy(ops.convert_to_tensor(v)) for v in state]
        rows = ops.reshape(ops.stop_gradient(memory), (k * n, 1, 1, c))
        logits = self.decoder_stage2(ops.cast(rows, self.compute_dtype), training=True)
        targets = ops.reshape(ops.repeat(ops.arange(k)[:, None], n, axis=1), (k * n, 1, 1))
        loss = masked_cross_entropy(targets, logits, self.ignore_class, check_range=False)
        active = step >= float(self.memory_loss_start_step)
        for variable, old in zip(state, before):
            variable.assign(ops.where(active, ops.convert_to_tensor(variable), old))
        return loss * ops.cast(active, "float32")

    def own_metrics(self):
        return super().own_metrics() + [self.momentum_tracker]

    # -- inference guard ---------------------------------------------------------------
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
                UserWarning,
                stacklevel=3,
            )

    def predict(self, *args, **kwargs):
        self.warn_if_memory_empty("predict")
        return super().predict(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        self.warn_if_memory_empty("evaluate")
        return super().evaluate(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "context": self.context,
                "feats_channels": self.feats_channels,
                "transform_channels": self.transform_channels,
                "feats_per_class": self.feats_per_class,
                "hard_aggregate": self.hard_aggregate,
                "sync": self.sync,
                "update_resolution": self.update_resolution,
                "aspp_rates": self.aspp_rates,
                "ppm_bins": self.ppm_bins,
            }
        )
        return config


def _tied_to_learning_rate(optimizer):
    """The `"auto"` memory momentum: 0.9 * lr_t / lr_0 of `optimizer`'s schedule."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):  # mixed_float16
        optimizer = optimizer.inner_optimizer
    learning_rate = optimizer.get_config().get("learning_rate")
    if isinstance(learning_rate, dict):
        schedule = keras.optimizers.schedules.deserialize(learning_rate)
        return TiedMomentum(schedule, DEFAULT_MEMORY_MOMENTUM)
    return DEFAULT_MEMORY_MOMENTUM
