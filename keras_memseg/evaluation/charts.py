"""Per-class IoU / accuracy bar chart of an evaluation report, drawn with Pillow (PNG).

One row per class, as the per-class table of `format_table`: the class name, its IoU
bar (the class colour, value at the end) and its accuracy bar (grey) on a 0-100 %
axis; classes absent from the data (NaN IoU) read "absent" and have no bar. The
title carries mIoU, aAcc and mAcc. Pillow alone (already a dependency, and its
bundled scalable font) is enough for horizontal bars with text: no matplotlib.
"""

import math
import os

import numpy as np

from keras_memseg.evaluation.overlays import load_font

ACC_COLOR = (160, 160, 160)
IOU_COLOR = (70, 130, 180)  # when no palette is given
_TEXT = (0, 0, 0)
_GRID = (215, 215, 215)
_MUTED = (120, 120, 120)


def chart_layout(num_classes, width=900, font_size=13):
    """The pixel geometry of `iou_chart`: a dict with "row" (px per class), "top",
    "bottom" (px above / below the rows) and "size" = (width, height) of the PNG.

    Example:
    >>> a, b = chart_layout(3), chart_layout(13)
    >>> b["size"][1] - a["size"][1] == 10 * a["row"], a["size"][0]
    (True, 900)
    """
    pad = max(2, font_size // 2)
    row = 2 * font_size + 3 * pad // 2  # two bars (IoU, Acc) per class
    top = 3 * font_size + 4 * pad  # title + legend line + axis labels
    bottom = font_size + 2 * pad  # axis labels
    return {
        "row": row,
        "top": top,
        "bottom": bottom,
        "pad": pad,
        "size": (int(width), top + int(num_classes) * row + bottom),
    }


def _percent(value):
    return "absent" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _from_json(report):
    """`report_to_json(report)` (eval.json: None for NaN) back to report arrays."""
    per_class = report["per_class"]

    def value(v):
        return float("nan") if v is None else float(v)

    result = {key: value(report.get(key)) for key in ("mIoU", "aAcc", "mAcc")}
    result.update(
        class_names=tuple(per_class),
        IoU=np.array([value(v["IoU"]) for v in per_class.values()]),
        Acc=np.array([value(v["Acc"]) for v in per_class.values()]),
    )
    if "num_images" in report:
        result["num_images"] = report["num_images"]
    return result


def iou_chart(report, palette=None, width=900, font_size=13, title=None):
    """Draws a `ConfusionMatrixMetric.report()` dict as a bar chart: uint8 (H, W, 3).

    Args:
        report: dict with "IoU" and "Acc" (K,) in [0, 1] or NaN, "mIoU", and
            optionally "aAcc", "mAcc", "class_names", "num_images"; or its
            `report_to_json` form (a run's `eval.json`).
        palette: K RGB colours for the IoU bars (default: one blue).
        width: image width in pixels; the height follows from K (`chart_layout`).
        font_size: text height in pixels.
        title: text before the scores in the title line.

    Example:
    >>> report = {"IoU": np.array([0.5, np.nan]), "Acc": np.array([0.75, np.nan]),
    ...           "mIoU": 0.5, "class_names": ("road", "sky")}
    >>> iou_chart(report).shape == chart_layout(2)["size"][::-1] + (3,)
    True
    """
    from PIL import Image
    from PIL import ImageDraw

    if "per_class" in report:
        report = _from_json(report)
    iou = np.asarray(report["IoU"], np.float64).reshape(-1)
    acc = np.asarray(report.get("Acc", np.full_like(iou, np.nan)), np.float64).reshape(-1)
    k = len(iou)
    if len(acc) != k:
        raise ValueError(f"iou_chart: report has {k} IoU values but {len(acc)} Acc values")
    names = [str(n) for n in (report.get("class_names") or range(k))]
    if len(names) != k:
        raise ValueError(f"iou_chart: report has {k} classes but {len(names)} class_names")
    if palette is not None and len(palette) < k:
        raise ValueError(f"iou_chart: palette has {len(palette)} colours for {k} classes")
    layout = chart_layout(k, width, font_size)
    pad, row, top = layout["pad"], layout["row"], layout["top"]
    font, small = load_font(font_size), load_font(max(8, font_size - 2))
    image = Image.new("RGB", layout["size"], (255, 255, 255))
    draw = ImageDraw.Draw(image)

    name_width = min(max((draw.textlength(n, font=font) for n in names), default=0), width // 3)
    value_width = draw.textlength("100.00", font=small) + pad
    x0 = int(pad + name_width + pad)  # the 0 % line
    x1 = int(width - pad - value_width)  # the 100 % line
    if x1 - x0 < 20:
        raise ValueError(f"iou_chart: width {width} leaves no room for the bars")

    def x_at(value):
        return x0 + (x1 - x0) * float(np.clip(value, 0.0, 1.0))

    scores = "  ".join(
        f"{key} {_percent(report[key])}" for key in ("mIoU", "aAcc", "mAcc") if key in report
    )
    images = f"  ({report['num_images']} images)" if "num_images" in report else ""
    draw.text(
        (pad, pad), f"{title + ': ' if title else ''}{scores} %{images}", fill=_TEXT, font=font
    )
    y = pad + font_size + pad
    legend_x = pad
    iou_label = "IoU (%, class colour)" if palette is not None else "IoU (%)"
    iou_colours = palette[:3] if palette is not None else [IOU_COLOR]
    for colours, label in ((iou_colours, iou_label), ([ACC_COLOR], "Acc (%)")):
        step = font_size / len(colours)  # a swatch striped with the first class colours
        for j, colour in enumerate(colours):
            draw.rectangle(
                [legend_x + j * step, y, legend_x + (j + 1) * step - 1, y + font_size - 1],
                fill=tuple(int(c) for c in colour),
            )
        draw.rectangle([legend_x, y, legend_x + font_size - 1, y + font_size - 1], outline=_TEXT)
        draw.text((legend_x + font_size + pad, y), label, fill=_TEXT, font=small)
        legend_x += font_size + 2 * pad + int(draw.textlength(label, font=small)) + 3 * pad
    axis_top, axis_bottom = top - pad, top + k * row
    for tick in (0, 25, 50, 75, 100):
        x = x_at(tick / 100)
        draw.line([x, axis_top, x, axis_bottom], fill=_GRID if tick else _MUTED)
        for ty in (axis_top - font_size - pad // 2, axis_bottom + pad):
            draw.text((x, ty), str(tick), fill=_MUTED, font=small, anchor="ma")

    bar = font_size
    for i in range(k):
        y = top + i * row
        text = names[i]
        while text and draw.textlength(text, font=font) > name_width:
            text = text[:-1]
        draw.text((x0 - pad, y + bar // 2), text, fill=_TEXT, font=font, anchor="rm")
        if math.isnan(iou[i]):
            draw.text(
                (x0 + pad, y + bar // 2),
                "absent (not in GT or prediction)",
                fill=_MUTED,
                font=small,
                anchor="lm",
            )
            continue
        colour = tuple(int(c) for c in palette[i]) if palette is not None else IOU_COLOR
        draw.rectangle([x0, y, max(x_at(iou[i]), x0 + 1), y + bar - 1], fill=colour, outline=_TEXT)
        draw.text(
            (x_at(iou[i]) + pad // 2, y + bar // 2),
            _percent(iou[i]),
            fill=_TEXT,
            font=small,
            anchor="lm",
        )
        acc_top = y + bar + pad // 2
        acc_h = max(2, bar * 2 // 3)
        if not math.isnan(acc[i]):
            draw.rectangle(
                [x0, acc_top, max(x_at(acc[i]), x0 + 1), acc_top + acc_h - 1], fill=ACC_COLOR
            )
        draw.text(
            (x_at(0 if math.isnan(acc[i]) else acc[i]) + pad // 2, acc_top + acc_h // 2),
            _percent(acc[i]) if not math.isnan(acc[i]) else "no GT pixels",
            fill=_MUTED,
            font=small,
            anchor="lm",
        )
    return np.asarray(image, np.uint8)


def save_iou_chart(report, path, palette=None, width=900, font_size=13, title=None):
    """Writes `iou_chart(report, palette, ...)` as a PNG at `path`; returns `path`.

    Example:
    >>> import tempfile
    >>> report = {"IoU": np.array([0.5, np.nan]), "Acc": np.array([0.75, np.nan]),
    ...           "mIoU": 0.5, "class_names": ("road", "sky")}
    >>> path = save_iou_chart(report, os.path.join(tempfile.mkdtemp(), "iou.png"))
    >>> os.path.getsize(path) > 0
    True
    """
    from PIL import Image

    chart = iou_chart(report, palette=palette, width=width, font_size=font_size, title=title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(chart).save(path)
    return path
