"""The per-class IoU / Acc bar chart (Pillow): size, bar lengths, absent classes."""

import numpy as np
import pytest
from PIL import Image

from keras_memseg.evaluation import charts
from keras_memseg.evaluation.charts import ACC_COLOR
from keras_memseg.evaluation.charts import chart_layout
from keras_memseg.evaluation.charts import iou_chart
from keras_memseg.evaluation.charts import save_iou_chart

PALETTE = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (250, 150, 10)]


def report(iou, acc, names=None):
    iou, acc = np.asarray(iou, np.float64), np.asarray(acc, np.float64)

    def mean(x):  # NaN when every class is absent, as ConfusionMatrixMetric.report
        return float(x[~np.isnan(x)].mean()) if (~np.isnan(x)).any() else float("nan")

    return {
        "IoU": iou,
        "Acc": acc,
        "mIoU": mean(iou),
        "aAcc": 0.9,
        "mAcc": mean(acc),
        "num_images": 3,
        "class_names": names or tuple(f"class {i}" for i in range(len(iou))),
    }


def colour_pixels(chart, colour):
    return (chart == np.asarray(colour, np.uint8)).all(axis=-1)


def test_png_written_with_the_layout_size(tmp_path):
    data = report([0.8, 0.4, np.nan, 0.0], [0.9, 0.5, np.nan, np.nan])
    path = save_iou_chart(data, str(tmp_path / "sub" / "iou.png"), palette=PALETTE, width=700)
    assert (tmp_path / "sub" / "iou.png").stat().st_size > 1000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == chart_layout(4, width=700)["size"]
    small, large = chart_layout(3), chart_layout(13)
    assert large["size"][1] - small["size"][1] == 10 * small["row"]  # one row per class


def test_bar_lengths_follow_iou_and_nan_classes_have_none():
    data = report([0.8, 0.4, np.nan, 0.0], [0.9, 0.5, np.nan, np.nan])
    chart = iou_chart(data, palette=PALETTE)[chart_layout(4)["top"] :]  # below the legend
    lengths = [colour_pixels(chart, c).sum(axis=1).max() for c in PALETTE]
    assert abs(lengths[0] / lengths[1] - 2.0) < 0.05  # 80 % vs 40 %
    assert lengths[2] == 0  # absent (NaN): no bar; the row says "absent"
    assert lengths[3] <= 2  # IoU 0: a hairline
    rows = [np.nonzero(colour_pixels(chart, c).any(axis=1))[0] for c in PALETTE[:2]]
    assert rows[0].max() < rows[1].min()  # classes top to bottom in order
    assert colour_pixels(chart, ACC_COLOR).sum() > 0  # accuracy bars


def test_eval_json_form_draws_the_same_chart():
    from keras_memseg.evaluation.evaluator import report_to_json

    data = report([0.8, 0.4, np.nan, 0.0], [0.9, 0.5, np.nan, np.nan], ("a", "b", "c", "d"))
    np.testing.assert_array_equal(
        iou_chart(report_to_json(data), palette=PALETTE), iou_chart(data, palette=PALETTE)
    )


def test_all_absent_and_no_palette():
    data = report([np.nan, np.nan], [np.nan, np.nan])
    chart = iou_chart(data)  # mIoU NaN: the title says "absent"
    assert chart.shape == chart_layout(2)["size"][::-1] + (3,)
    assert colour_pixels(chart, charts.IOU_COLOR).sum() < 200  # only the legend swatch


def test_bad_reports_raise():
    with pytest.raises(ValueError, match="Acc values"):
        iou_chart({"IoU": np.zeros(3), "Acc": np.zeros(2), "mIoU": 0.0})
    with pytest.raises(ValueError, match="class_names"):
        iou_chart({"IoU": np.zeros(2), "Acc": np.zeros(2), "mIoU": 0.0, "class_names": ("a",)})
    with pytest.raises(ValueError, match="palette"):
        iou_chart(report([0.5, 0.5], [0.5, 0.5]), palette=PALETTE[:1])
