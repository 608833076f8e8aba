"""`ConfusionMatrixMetric`: dataset-level aAcc, mIoU, mAcc and per-class IoU/Acc.

The state is one static (K, K) confusion matrix (rows = ground truth, columns =
prediction) accumulated with a segment sum over `gt * K + pred`, so updates have
static shapes and run under `jit_compile`, XLA and TPU. Pixels whose label is
the ignore label (255) or outside [0, K) go to a dummy bin that is dropped.

Scores follow mmsegmentation / chainercv: IoU_c = TP / (TP + FP + FN) and
Acc_c = TP / (TP + FN) over the whole dataset; a class with an empty union
(absent from both ground truth and prediction) has IoU NaN and is excluded from
the mean (nanmean); a class absent from the ground truth has Acc NaN.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_memseg")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Confusion-matrix segmentation metric; `result()` is mIoU (0..1).

    Args:
        num_classes: K.
        ignore_class: label value skipped (255). Any other label outside
            [0, K) is skipped as well.
        from_logits: `y_pred` is (B, H, W, K) scores (argmax taken) rather than
            (B, H, W) class ids.
        class_names: optional K names for `report()` / `format_table()`.

    Example:
    >>> import numpy as np
    >>> m = ConfusionMatrixMetric(num_classes=3, from_logits=False)
    >>> m.update_state(np.array([[0, 1, 255]]), np.array([[0, 2, 1]]))
    >>> r = m.report()
    >>> round(float(r["aAcc"]), 3), round(float(r["mIoU"]), 3)
    (0.5, 0.333)
    """

    def __init__(
        self,
        num_classes,
        ignore_class=255,
        from_logits=True,
        class_names=None,
        name="mIoU",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.ignore_class = int(ignore_class)
        self.from_logits = bool(from_logits)
        self.class_names = tuple(class_names) if class_names is not None else None
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names, num_classes is {self.num_classes}"
            )
        # int32 counts: exact up to 2**31 - 1 pixels per (gt, pred) cell.
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="int32",
            name="confusion",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("ConfusionMatrixMetric does not take sample_weight")
        k = self.num_classes
        if self.from_logits:
            y_pred = ops.argmax(y_pred, axis=-1)
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))  # (B*H*W,)
        y_pred = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        valid = (y_true >= 0) & (y_true < k) & (y_pred >= 0) & (y_pred < k)
        index = ops.where(valid, y_true * k + y_pred, k * k)  # dummy bin k*k
        counts = ops.segment_sum(ops.ones_like(index), index, num_segments=k * k + 1)
        self.confusion.assign_add(ops.reshape(counts[: k * k], (k, k)))

    def result(self):
        return self._scores(self.confusion.value)["mIoU"]

    def reset_state(self):
        self.confusion.assign(ops.zeros_like(self.confusion.value))

    @staticmethod
    def _scores(confusion):
        confusion = ops.cast(confusion, "float32")
        tp = ops.diagonal(confusion)
        gt = ops.sum(confusion, axis=1)
        pred = ops.sum(confusion, axis=0)
        union = gt + pred - tp
        nan = ops.full_like(tp, float("nan"))
        iou = ops.where(union > 0, tp / ops.maximum(union, 1.0), nan)
        acc = ops.where(gt > 0, tp / ops.maximum(gt, 1.0), nan)
        return {
            "aAcc": ops.sum(tp) / ops.maximum(ops.sum(gt), 1.0),
            "mIoU": _nanmean(iou),
            "mAcc": _nanmean(acc),
            "IoU": iou,
            "Acc": acc,
        }

    def report(self):
        """Dict of NumPy values: aAcc, mIoU, mAcc (0..1), IoU and Acc per class (K,).

        Computed in float64 from the integer counts.
        """
        confusion = ops.convert_to_numpy(self.confusion.value).astype(np.float64)
        tp = np.diag(confusion)
        gt, pred = confusion.sum(1), confusion.sum(0)
        union = gt + pred - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
            acc = np.where(gt > 0, tp / gt, np.nan)
        present = ~np.isnan(iou)
        return {
            "aAcc": float(tp.sum() / max(gt.sum(), 1.0)),
            "mIoU": float(np.mean(iou[present])) if present.any() else float("nan"),
            "mAcc": (
                float(np.mean(acc[~np.isnan(acc)])) if (~np.isnan(acc)).any() else float("nan")
            ),
            "IoU": iou,
            "Acc": acc,
            "class_names": self.class_names or tuple(str(i) for i in range(self.num_classes)),
            "confusion": confusion.astype(np.int64),
        }

    def format_table(self):
        """The per-class table (IoU and Acc in %) plus the summary line, as text."""
        return format_table(self.report())

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "from_logits": self.from_logits,
            "class_names": self.class_names,
            "name": self.name,
            "dtype": self.dtype,
        }


def _nanmean(x):
    present = ops.logical_not(ops.isnan(x))
    total = ops.sum(ops.where(present, x, ops.zeros_like(x)))
    count = ops.sum(ops.cast(present, x.dtype))
    return ops.where(count > 0, total / ops.maximum(count, 1.0), float("nan"))


def format_table(report):
    """Formats a `ConfusionMatrixMetric.report()` like mmsegmentation's log table."""
    names = report["class_names"]
    width = max(12, max(len(n) for n in names) + 2)
    lines = [f"{'Class':<{width}}{'IoU':>8}{'Acc':>8}", "-" * (width + 16)]
    for name, iou, acc in zip(names, report["IoU"], report["Acc"]):
        fmt = lambda v: f"{'nan':>8}" if np.isnan(v) else f"{100 * v:8.2f}"  # noqa: E731
        lines.append(f"{name:<{width}}{fmt(iou)}{fmt(acc)}")
    lines.append("-" * (width + 16))
    lines.append(
        f"aAcc {100 * report['aAcc']:.2f}  mIoU {100 * report['mIoU']:.2f}  "
        f"mAcc {100 * report['mAcc']:.2f}"
    )
    return "\n".join(lines)
