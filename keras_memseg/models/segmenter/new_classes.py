"""Fine-tuning to another class set: a segmenter's copy whose classifiers (and, for
MCIBI, the feature memory, one row per class) start fresh for `num_classes` classes while
every other weight (backbone, context module, bottlenecks, head convolutions) is kept.

What mmsegmentation does with `load_from` and a changed `num_classes` (the mismatched
`conv_seg` weights are skipped with a warning), made explicit: the layers that start
fresh are returned by name.
"""

import numpy as np

# The input that builds a copy's weights (any size works: the weights do not depend on it).
_BUILD_SIZE = 64


def with_num_classes(model, num_classes, class_names=None, palette=None):
    """A copy of the built segmenter `model` for `num_classes` classes.

    Weights are matched in order (the copy has the same architecture); a layer whose
    weights all keep their shapes is copied, a layer with any weight of another shape
    (a classifier's (1, 1, C, K) kernel and (K,) bias; the memory's (K, ...) rows and
    its update counter) keeps the copy's fresh initialisation. The preprocessor (test
    resize, inference mode) is kept; class names and palette are the ones given (default
    `class_<i>` and generated colours).

    Returns:
        (the new model, the paths of its weights that start fresh).

    Example:
    >>> import numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import DeepLabV3
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), 5,
    ...                   feats_channels=8, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> new, fresh = with_num_classes(model, 2, class_names=["road", "car"])
    >>> new.num_classes, new.class_names, len(fresh)
    (2, ('road', 'car'), 4)
    >>> bool(np.array_equal(new.backbone.weights[0], model.backbone.weights[0]))
    True
    """
    if not model.built:
        raise ValueError("with_num_classes needs a built model (call it on an image once)")
    config = model.get_config()
    config.update(num_classes=int(num_classes), class_names=class_names, palette=palette)
    new = type(model).from_config(config)
    channels = model.input_channels() or 3
    new(np.zeros((1, _BUILD_SIZE, _BUILD_SIZE, channels), "float32"))
    old_weights, new_weights = model.weights, new.weights
    if len(old_weights) != len(new_weights):
        raise ValueError(
            f"{type(model).__name__} rebuilt for {num_classes} classes has "
            f"{len(new_weights)} weights, not {len(old_weights)}: cannot match them"
        )

    def layer_of(weight):
        return weight.path.rsplit("/", 1)[0]

    changed = {
        layer_of(new_w)
        for old_w, new_w in zip(old_weights, new_weights)
        if tuple(old_w.shape) != tuple(new_w.shape)
    }
    fresh = []
    for old_w, new_w in zip(old_weights, new_weights):
        if layer_of(new_w) in changed:
            fresh.append(new_w.path)
        else:
            new_w.assign(old_w)
    return new, fresh


def for_classes(model, num_classes=None, class_names=None):
    """`model` itself when neither argument asks for another class set, else
    `with_num_classes(model, ...)[0]` (`num_classes` defaults to `len(class_names)`).
    Class names alone, for the model's own class count, are set on the model itself."""
    if num_classes is None and class_names is None:
        return model
    if num_classes is None:
        num_classes = len(class_names)
    if class_names is not None and len(class_names) != int(num_classes):
        raise ValueError(f"{len(class_names)} class_names for num_classes={num_classes}")
    if int(num_classes) == model.num_classes:
        if class_names is not None:
            model.set_metadata(class_names, model._palette, model._preprocessor)  # noqa: SLF001
        return model
    return with_num_classes(model, num_classes, class_names)[0]
