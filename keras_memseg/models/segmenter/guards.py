"""What keeps a bad batch or a broken model from changing or returning anything.

A batch whose images or outputs hold NaN/inf must not touch the model: its BN
statistics are restored (`restore_state_unless`), MemorySegmenter leaves its memory
as it was, and its loss is multiplied by a NaN constant so that every optimizer
skips the step (`TorchSGD` itself, any other one inside `FiniteStep`). Such batches
are counted in the `nonfinite_batches` metric (the trainer stops a run that keeps
producing them). Labels outside `[0, K)` that are not `ignore_class` are refused,
after the step's state was put back.
"""

import keras
import numpy as np
from keras import ops

from keras_memseg.losses.label_checks import assert_labels_in_range
from keras_memseg.losses.label_checks import check_label_shape
from keras_memseg.losses.label_checks import labels_in_range
from keras_memseg.losses.label_checks import to_class_id_map


class StepGuards:
    """Mixin of `Segmenter`: the non-finite guard and the label checks of a step."""

    def guarded_state(self):
        """The non-trainable variables a training step may change (BN statistics)."""
        own = [v for layer in self._stateful_layers() for v in layer.variables]
        return [v for v in self.non_trainable_variables if all(v is not o for o in own)]

    def _stateful_layers(self):
        return []  # layers whose state the model writes itself (MemorySegmenter: the memory)

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

    # -- a broken model refuses to predict --------------------------------------------
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
