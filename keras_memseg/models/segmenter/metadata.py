"""What a segmenter knows about its classes: names and colours, checked and defaulted.

Pure Python (no Keras, no TensorFlow): `Segmenter` stores them in its config, so a
`.keras` file or preset folder carries them; `predict` and `export` read them back.
"""

import colorsys


def default_class_names(num_classes):
    """`("class_0", ..., "class_{K-1}")`: the names of a model told none.

    Example:
    >>> default_class_names(2)
    ('class_0', 'class_1')
    """
    return tuple(f"class_{i}" for i in range(int(num_classes)))


def default_palette(num_classes):
    """`num_classes` distinct, deterministic RGB colours (golden-angle hues, no black;
    the same as `keras_memseg.evaluation.overlays.default_palette`).

    Example:
    >>> palette = default_palette(20)
    >>> len(set(palette)), (0, 0, 0) in palette
    (20, False)
    """
    colours = []
    for index in range(int(num_classes)):
        hue = (index * 0.618033988749895) % 1.0
        saturation = (0.85, 0.55)[(index // 2) % 2]
        value = (0.95, 0.7)[(index // 4) % 2]
        colours.append(
            tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, saturation, value))
        )
    return tuple(colours)


def check_class_names(class_names, num_classes):
    """`tuple(class_names)` (None stays None) after checking they are K strings.

    Example:
    >>> check_class_names(["sky", "road"], 2)
    ('sky', 'road')
    >>> check_class_names(["sky"], 2)
    Traceback (most recent call last):
    ...
    ValueError: class_names must hold num_classes=2 strings, got 1: ['sky']
    """
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)):
        raise ValueError(
            f"class_names must be a list of {num_classes} strings, got {class_names!r}"
        )
    names = list(class_names)
    if len(names) != num_classes:
        shown = names if len(names) <= 5 else names[:5] + ["..."]
        raise ValueError(
            f"class_names must hold num_classes={num_classes} strings, got {len(names)}: {shown}"
        )
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ValueError(f"class_names must be strings, got {bad[0]!r}")
    return tuple(names)


def check_palette(palette, num_classes):
    """`((r, g, b), ...)` ints in [0, 255] (None stays None) after checking K triples.

    Example:
    >>> check_palette([[0, 0, 0], (255, 0, 0.0)], 2)
    ((0, 0, 0), (255, 0, 0))
    >>> check_palette([(0, 0, 300), (1, 2, 3)], 2)
    Traceback (most recent call last):
    ...
    ValueError: palette[0] must be an (r, g, b) triple of integers in [0, 255], got (0, 0, 300)
    """
    if palette is None:
        return None
    if hasattr(palette, "tolist"):
        palette = palette.tolist()
    colours = list(palette)
    if len(colours) != num_classes:
        raise ValueError(
            f"palette must hold num_classes={num_classes} (r, g, b) triples, got {len(colours)}"
        )
    out = []
    for index, colour in enumerate(colours):
        try:
            values = tuple(colour)
            ok = len(values) == 3 and all(
                not isinstance(v, bool) and float(v).is_integer() and 0 <= v <= 255 for v in values
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"palette[{index}] must be an (r, g, b) triple of integers in [0, 255], "
                f"got {colour!r}"
            )
        out.append(tuple(int(v) for v in values))
    return tuple(out)


def spec_labels(spec, num_classes):
    """`(class_names, palette)` of a `DatasetSpec` for a K-class model: its own, or those
    of its variant with K classes (COCO-Stuff 171 / 182); ValueError naming the dataset
    when neither has K classes."""
    names, palette = tuple(spec.class_names), tuple(spec.palette)
    if len(names) != num_classes:
        variant = (getattr(spec, "variants", None) or {}).get(num_classes)
        if variant is None:
            raise ValueError(
                f"dataset {getattr(spec, 'name', spec)!r} has {len(names)} classes but the "
                f"model predicts {num_classes}"
            )
        names, palette = tuple(variant[0]), tuple(variant[1])
    return names, palette
