"""ConfusionMatrixMetric against an independent NumPy transcription."""

import keras
import numpy as np
import tensorflow as tf

from keras_memseg.metrics import ConfusionMatrixMetric


def numpy_scores(gt, pred, k, ignore=255):
    gt, pred = gt.ravel(), pred.ravel()
    keep = (gt != ignore) & (gt < k)
    cm = np.zeros((k, k), np.int64)
    for g, p in zip(gt[keep], pred[keep]):
        cm[g, p] += 1
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = np.array([tp[c] / union[c] if union[c] else np.nan for c in range(k)])
    acc = np.array([tp[c] / cm[c].sum() if cm[c].sum() else np.nan for c in range(k)])
    return cm, tp.sum() / cm.sum(), np.nanmean(iou), np.nanmean(acc), iou, acc


def random_batch(rng, k, shape=(3, 17, 23)):
    gt = rng.integers(0, k, shape)
    gt[rng.random(shape) < 0.2] = 255  # ignore pixels
    gt[gt == 2] = 3  # class 2 never in GT: Acc NaN, IoU 0 if predicted
    logits = rng.normal(size=shape + (k,)).astype("float32")
    logits[..., 4] -= 100.0  # class 4 never predicted
    gt[gt == 4] = 5  # ... nor in GT: IoU NaN, excluded from the mean
    return gt, logits


def test_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    k = 7
    metric = ConfusionMatrixMetric(k, class_names=[f"c{i}" for i in range(k)])
    gts, preds = [], []
    for _ in range(3):
        gt, logits = random_batch(rng, k)
        metric.update_state(gt, logits)
        gts.append(gt)
        preds.append(logits.argmax(-1))
    cm, aacc, miou, macc, iou, acc = numpy_scores(np.stack(gts), np.stack(preds), k)
    report = metric.report()
    np.testing.assert_array_equal(report["confusion"], cm)
    np.testing.assert_allclose(
        [report["aAcc"], report["mIoU"], report["mAcc"]], [aacc, miou, macc], rtol=1e-12
    )
    np.testing.assert_allclose(report["IoU"], iou, rtol=1e-12)
    np.testing.assert_allclose(report["Acc"], acc, rtol=1e-12)
    assert np.isnan(report["IoU"][4]) and np.isnan(report["Acc"][2])
    np.testing.assert_allclose(float(metric.result()), miou, rtol=1e-5)
    table = metric.format_table()
    assert "c6" in table and "mIoU" in table and "nan" in table
    metric.reset_state()
    assert not np.any(metric.report()["confusion"])


def test_label_input_and_out_of_range_labels_ignored():
    metric = ConfusionMatrixMetric(3, from_logits=False)
    metric.update_state(np.array([[0, 1, 2, 7, 255]]), np.array([[0, 1, 1, 0, 2]]))
    np.testing.assert_array_equal(metric.report()["confusion"], [[1, 0, 0], [0, 1, 0], [0, 1, 0]])


def test_jit_compiled_update_and_serialization():
    metric = ConfusionMatrixMetric(5, from_logits=True)
    rng = np.random.default_rng(1)
    gt, logits = rng.integers(0, 5, (2, 8, 8)), rng.normal(size=(2, 8, 8, 5)).astype("float32")
    tf.function(metric.update_state, jit_compile=True)(tf.constant(gt), tf.constant(logits))
    cm = numpy_scores(gt, logits.argmax(-1), 5)[0]
    np.testing.assert_array_equal(metric.report()["confusion"], cm)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert isinstance(clone, ConfusionMatrixMetric) and clone.num_classes == 5


def test_in_compile_metrics():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs))
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[ConfusionMatrixMetric(4)],
    )
    x = np.random.rand(4, 8, 8, 3).astype("float32")
    y = np.random.randint(0, 4, (4, 8, 8))
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert 0.0 <= logs["mIoU"] <= 1.0
