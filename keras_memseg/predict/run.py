"""Label maps and overlays for image files: input listing, output names, one image, many."""

import dataclasses
import math
import os
import warnings

import numpy as np

from keras_memseg.evaluation.inference import InferenceConfig
from keras_memseg.evaluation.inference import infer
from keras_memseg.evaluation.overlays import default_palette
from keras_memseg.evaluation.overlays import overlay_image
from keras_memseg.evaluation.overlays import save_label_png
from keras_memseg.evaluation.overlays import save_png
from keras_memseg.predict.loading import EmptyMemoryWarning
from keras_memseg.predict.loading import LoadedSegmenter
from keras_memseg.predict.loading import empty_memory_message
from keras_memseg.predict.loading import load_predictor
from keras_memseg.predict.loading import wrap_model

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pnm",
)
OVERLAY_SUFFIX = "_overlay"


class ImageReadError(ValueError):
    """A file that is not a readable image."""


@dataclasses.dataclass
class PredictResult:
    """What `predict_files` did.

    Args:
        written: (input, label PNG, overlay PNG) per predicted image.
        skipped: (input, reason) for images whose outputs already exist.
        failed: (input, reason) for missing, unreadable and non-image inputs.
        ignored: files in input folders without an image extension (not read).
    """

    written: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ClassInfo:
    """Class names, palette and LIP-style flip pairs used for the outputs."""

    names: tuple
    palette: tuple
    flip_pairs: tuple = ()


def class_info(num_classes, dataset=None):
    """The dataset's names/palette/flip pairs, or `class_<i>` and `default_palette`.

    Raises ValueError when the dataset's class count is not the model's.

    Example:
    >>> class_info(2).names
    ('class_0', 'class_1')
    """
    if dataset is None:
        return ClassInfo(
            tuple(f"class_{i}" for i in range(num_classes)), default_palette(num_classes)
        )
    from keras_memseg.datasets import get_info

    info = get_info(dataset)
    if info.num_classes != num_classes and info.name.startswith("coco_stuff"):
        info = get_info(dataset, num_classes=num_classes)  # 171 or 182 classes
    if info.num_classes != num_classes:
        raise ValueError(
            f"--dataset {dataset} has {info.num_classes} classes but the model "
            f"predicts {num_classes}"
        )
    return ClassInfo(tuple(info.class_names), tuple(info.palette), tuple(info.flip_pairs))


def collect_inputs(inputs, recursive=False, exclude=None):
    """Expands files and folders into image files, in order, each file once.

    A file named on the command line is always tried (and fails later if it is
    not an image); inside a folder only files with an `IMAGE_EXTENSIONS`
    extension are taken, sorted by name (subfolders too with `recursive`, except
    `exclude`, the output folder).

    Returns:
        (files, missing, ignored): the files to read, the inputs that do not
        exist (or are neither a file nor a folder: a FIFO, a device; never opened),
        and the folder entries skipped for their extension.
    """
    files, missing, ignored, seen = [], [], [], set()
    exclude = os.path.realpath(exclude) if exclude else None

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    def take(folder, names):
        for name in sorted(names):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            if name.lower().endswith(IMAGE_EXTENSIONS):
                add(path)
            else:
                ignored.append(path)

    for item in inputs:
        item = os.fspath(item)
        if os.path.isfile(item):
            add(item)
        elif os.path.isdir(item):
            if not recursive:
                take(item, os.listdir(item))
                continue
            for folder, subfolders, names in os.walk(item):
                subfolders[:] = sorted(
                    d for d in subfolders if os.path.realpath(os.path.join(folder, d)) != exclude
                )
                take(folder, names)
        else:
            missing.append(item)
    return files, missing, ignored


def output_names(paths):
    """A unique output base name (no extension) per input path, in order.

    The base is the file's stem (`street.jpg` -> `street`). Inputs that share a
    stem (case-insensitively: `a/x.png`, `b/x.png`, `a/x.jpg`) are named after
    their path below the deepest folder they have in common, with "__" for each
    folder separator and "_" before the extension: `a__x_png`, `b__x_png`,
    `a__x_jpg`. A name that would still clash with another output (also the
    `<base>_overlay` names) gets `-2`, `-3`, ...

    Example:
    >>> output_names(["in/a/x.png", "in/b/x.png", "in/y.jpg", "in/y.png", "z.png"])
    ['a__x_png', 'b__x_png', 'y_jpg', 'y_png', 'z']
    """
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    groups = {}
    for index, stem in enumerate(stems):
        groups.setdefault(stem.lower(), []).append(index)
    bases = list(stems)
    for members in groups.values():
        if len(members) < 2:
            continue
        absolute = [os.path.abspath(paths[i]) for i in members]
        common = os.path.commonpath([os.path.dirname(p) for p in absolute])
        for i, path in zip(members, absolute):
            relative = os.path.relpath(path, common)
            root, ext = os.path.splitext(relative)
            parts = root.split(os.sep)
            bases[i] = "__".join(parts) + (f"_{ext[1:]}" if ext else "")
    taken, result = set(), []
    for base in bases:
        name, count = base, 1
        while name.lower() in taken or (name + OVERLAY_SUFFIX).lower() in taken:
            count += 1
            name = f"{base}-{count}"
        taken.update((name.lower(), (name + OVERLAY_SUFFIX).lower()))
        result.append(name)
    return result


def read_image(path):
    """RGB uint8 (H, W, 3) of an image file, turned upright by its EXIF orientation.

    Raises:
        ImageReadError: one line naming `path` when it is not a readable image (a
            FIFO, socket or device is refused before it is opened).
    """
    from PIL import Image
    from PIL import ImageOps
    from PIL import UnidentifiedImageError

    from keras_memseg.file_kinds import special_file_kind

    special = special_file_kind(path)
    if special is not None:
        raise ImageReadError(f"{path}: {special}, not an image file")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"), np.uint8)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        text = str(error).strip().splitlines()
        reason = text[0] if text else type(error).__name__
        raise ImageReadError(f"{path}: unreadable image ({reason})") from None


def _missing_reason(path):
    """Why `collect_inputs` could not take `path`: it does not exist, or it is a FIFO,
    a socket or a device (never opened: reading one may block forever)."""
    from keras_memseg.file_kinds import special_file_kind

    special = special_file_kind(path)
    if special is None:
        return f"{path}: no such file or folder"
    return f"{path}: {special}, not an image file or folder"


def inference_size(height, width, test_scale=None, keep_ratio=True, max_size=None):
    """(h, w) the model runs at for an (H, W) image.

    `test_scale`: the dataset's test `Resize` (`keras_memseg.datasets.transforms.
    rescale_size`, as `eval_pipeline`); None keeps (H, W). `max_size` then caps
    the long side (scale `max_size / max(h, w)`, rounded half up), never enlarging.

    Example:
    >>> inference_size(168, 224, max_size=112)
    (84, 112)
    >>> inference_size(360, 480, test_scale=(2048, 512))
    (512, 683)
    """
    if test_scale is not None:
        from keras_memseg.datasets.transforms import rescale_size

        height, width = (int(v) for v in rescale_size(height, width, test_scale, keep_ratio))
    if max_size is not None and max(height, width) > max_size:
        factor = max_size / max(height, width)
        height = max(1, int(math.floor(height * factor + 0.5)))
        width = max(1, int(math.floor(width * factor + 0.5)))
    return height, width


def predict_image(segmenter, image, config=InferenceConfig(), size=None):
    """Class ids (H, W) int32 of one RGB uint8 (H, W, 3) image at its own size.

    The image (0-255, float32) is resized bilinearly to `size` (h, w) when given,
    then `keras_memseg.evaluation.infer` runs the scales / flips of `config` and
    upsamples the scores to (H, W) before the argmax, as the evaluation does.
    """
    from keras import ops

    height, width = int(image.shape[0]), int(image.shape[1])
    x = np.asarray(image, np.float32)[None]  # (1, H, W, 3) 0-255
    if size is not None and tuple(size) != (height, width):
        x = ops.image.resize(x, tuple(int(v) for v in size), interpolation="bilinear")
    scores = infer(
        segmenter.forward, x, segmenter.num_classes, config, output_size=(height, width)
    )  # (1, H, W, K)
    return np.asarray(ops.convert_to_numpy(ops.argmax(scores[0], axis=-1))).astype(np.int32)


def _write_atomic(path, write):
    # Written under a temporary name and renamed: an interrupted run never leaves a
    # truncated PNG that a rerun would take for a finished output.
    tmp = f"{path}.tmp-{os.getpid()}.png"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def predict_files(
    model,
    inputs,
    out_dir,
    dataset=None,
    max_size=None,
    scales=(1.0,),
    flip=False,
    recursive=False,
    overwrite=False,
    alpha=0.5,
    callback=None,
):
    """Writes a palette label PNG and an overlay with a legend for each input image.

    For each image: `<out_dir>/<base>.png`, the class ids as a "P" mode PNG whose
    palette is the class palette (pixel value = class id), and
    `<out_dir>/<base>_overlay.png`, the image blended with the class colours and a
    legend of the classes present. `<base>` is the file's stem, made unique by
    `output_names`. Existing outputs are kept (the image is skipped) unless
    `overwrite`.

    Args:
        model: a `.keras` path, a preset folder, a SavedModel folder (see
            `load_predictor`), a `LoadedSegmenter` or a built Keras segmenter.
        inputs: image files and folders.
        out_dir: output folder (created).
        dataset: a dataset name (`keras_memseg.datasets.get_info`): its test resize
            (`augment_config_for(name).test_scale`/`.test_keep_ratio`), class names,
            palette and flip pairs. None: the image's own size, `class_<i>` names.
        max_size: cap on the long side the model sees (after the dataset resize).
        scales, flip: test-time augmentation (`InferenceConfig`).
        recursive: also read subfolders of the input folders.
        overwrite: replace existing outputs.
        alpha: colour weight of the overlay.
        callback: called after each input as `callback(index, total, path, status,
            detail)`; status is "written", "skipped" or "failed", detail the
            output paths, or the reason.

    Returns:
        `PredictResult`.

    Example:
    >>> import glob, tempfile, numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import DeepLabV3
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), 11,
    ...                   feats_channels=16, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> images = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "datasets",
    ...                                        "sample", "val", "*.png")))[:1]
    >>> result = predict_files(model, images, tempfile.mkdtemp(), dataset="camvid",
    ...                        max_size=64)
    >>> [os.path.basename(p) for p in result.written[0][1:]]
    ['0016E5_07959.png', '0016E5_07959_overlay.png']
    """
    if isinstance(model, LoadedSegmenter):
        segmenter = model
    elif isinstance(model, (str, os.PathLike)):
        segmenter = load_predictor(model)
    else:
        segmenter = wrap_model(model)
    if segmenter.memory_empty:
        warnings.warn(empty_memory_message(segmenter), EmptyMemoryWarning, stacklevel=2)
    classes = class_info(segmenter.num_classes, dataset)
    test_scale, keep_ratio = None, True
    if dataset is not None:
        from keras_memseg.datasets import augment_config_for

        augment = augment_config_for(dataset)
        test_scale, keep_ratio = tuple(augment.test_scale), bool(augment.test_keep_ratio)
    if max_size is not None and int(max_size) < 1:
        raise ValueError(f"max_size must be a positive number of pixels, got {max_size}")
    scales = tuple(float(s) for s in scales)
    if segmenter.serving_scale is not None:
        # The SavedModel resizes every image to its export test_scale itself: our
        # resize (dataset, max_size) and scales would only be undone by it.
        unused = [
            flag
            for flag, used in (("max_size", max_size is not None), ("scales", scales != (1.0,)))
            if used
        ]
        if unused:
            warnings.warn(
                f"{segmenter.path}: the SavedModel resizes every image to its "
                f"export test_scale {segmenter.serving_scale[0]} itself; "
                f"{' and '.join(unused)} not applied",
                UserWarning,
                stacklevel=2,
            )
        test_scale, max_size, scales = None, None, (1.0,)
    config = InferenceConfig(scales=scales, flip=bool(flip), flip_pairs=classes.flip_pairs)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"{out_dir} exists and is not a folder")
    files, missing, ignored = collect_inputs(inputs, recursive, exclude=out_dir)
    result = PredictResult(ignored=ignored)
    total = len(files) + len(missing)
    index = 0

    def report(path, status, detail):
        nonlocal index
        index += 1
        if callback is not None:
            callback(index, total, path, status, detail)

    for path in missing:
        result.failed.append((path, _missing_reason(path)))
        report(path, "failed", result.failed[-1][1])
    os.makedirs(out_dir, exist_ok=True)
    sources = {os.path.realpath(p) for p in files}
    for path, base in zip(files, output_names(files)):
        label_path = os.path.join(out_dir, base + ".png")
        overlay_path = os.path.join(out_dir, base + OVERLAY_SUFFIX + ".png")
        clash = [p for p in (label_path, overlay_path) if os.path.realpath(p) in sources]
        if clash:  # e.g. --out is the input folder: never write over an input image
            result.failed.append(
                (
                    path,
                    f"{path}: its output {clash[0]} is an input image; "
                    "choose another output folder",
                )
            )
            report(path, "failed", result.failed[-1][1])
            continue
        existing = [p for p in (label_path, overlay_path) if os.path.exists(p)]
        if existing and not overwrite:
            result.skipped.append((path, f"{existing[0]} exists (--overwrite replaces it)"))
            report(path, "skipped", result.skipped[-1][1])
            continue
        try:
            image = read_image(path)
        except ImageReadError as error:
            result.failed.append((path, str(error)))
            report(path, "failed", str(error))
            continue
        size = inference_size(image.shape[0], image.shape[1], test_scale, keep_ratio, max_size)
        labels = predict_image(segmenter, image, config, size)
        _write_atomic(label_path, lambda p: save_label_png(p, labels, classes.palette))
        overlay = overlay_image(image, labels, classes.palette, classes.names, alpha=alpha)
        _write_atomic(overlay_path, lambda p: save_png(p, overlay))
        result.written.append((path, label_path, overlay_path))
        report(path, "written", (label_path, overlay_path, image.shape[:2], len(np.unique(labels))))
    return result
