"""Label maps and overlays for image files: input listing, output names, one image, many."""

import dataclasses
import math
import os
import warnings

import numpy as np

from keras_memseg.evaluation.inference import InferenceConfig
from keras_memseg.evaluation.inference import infer_runs
from keras_memseg.evaluation.overlays import default_palette
from keras_memseg.evaluation.overlays import overlay_image
from keras_memseg.evaluation.overlays import present_classes
from keras_memseg.evaluation.overlays import save_label_png
from keras_memseg.evaluation.overlays import save_png
from keras_memseg.predict.loading import EmptyMemoryWarning
from keras_memseg.predict.loading import LoadedSegmenter
from keras_memseg.predict.loading import empty_memory_message
from keras_memseg.predict.loading import load_predictor
from keras_memseg.predict.loading import wrap_model
from keras_memseg.predict.memory import available_memory
from keras_memseg.predict.memory import format_bytes
from keras_memseg.predict.memory import model_profile
from keras_memseg.predict.memory import prediction_bytes
from keras_memseg.predict.tiles import resize_bilinear
from keras_memseg.predict.tiles import upsampled_argmax

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
_EXIF_ORIENTATION = 0x0112


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


def class_info(num_classes, dataset=None, model=None):
    """The class names/palette/flip pairs of the outputs: the dataset's when given,
    else the model's (a segmenter that knows its classes, or a `LoadedSegmenter`
    carrying them), else `class_<i>` and `default_palette`.

    Raises ValueError when the dataset's class count is not the model's.

    Example:
    >>> class_info(2).names
    ('class_0', 'class_1')
    """
    if dataset is None:
        names = getattr(model, "class_names", None)
        palette = getattr(model, "palette", None)
        pre = getattr(model, "preprocessor", None)
        if names is not None and len(names) == num_classes:
            palette = palette if palette is not None and len(palette) == num_classes else None
            return ClassInfo(
                tuple(names),
                tuple(tuple(c) for c in palette) if palette else default_palette(num_classes),
                tuple(pre.flip_pairs) if pre is not None else (),
            )
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
            image.load()
            if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                image = ImageOps.exif_transpose(image)
            if image.mode != "RGB":  # no copy of an RGB image (81 MP: 324 MB each)
                image = image.convert("RGB")
            return np.asarray(image, np.uint8)
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

    `test_scale`: the test `Resize` (mmsegmentation's convention: (long, short) with
    `keep_ratio`, else (w, h); `keras_memseg.models.segmenter.test_resize_size`, the
    sizes of `keras_memseg.datasets.transforms.rescale_size`); None keeps (H, W).
    `max_size` then caps the long side (scale `max_size / max(h, w)`, rounded half
    up), never enlarging.

    Example:
    >>> inference_size(168, 224, max_size=112)
    (84, 112)
    >>> inference_size(360, 480, test_scale=(2048, 512))
    (512, 683)
    """
    from keras_memseg.models.segmenter import test_resize_size

    return test_resize_size(height, width, test_scale, keep_ratio, max_size)


def predict_image(segmenter, image, config=InferenceConfig(), size=None):
    """Class ids (H, W) int32 of one RGB uint8 (H, W, 3) image at its own size.

    The image (0-255, float32) is resized bilinearly to `size` (h, w) when given,
    then `keras_memseg.evaluation.infer_runs` runs the scales / flips of `config`;
    their scores are upsampled to (H, W), averaged and reduced to class ids a tile of
    rows at a time (`keras_memseg.predict.tiles`): the same labels as the argmax of
    the evaluation's `infer` at (H, W), with memory O(H W) instead of O(H W K).
    """
    from keras import ops

    height, width = int(image.shape[0]), int(image.shape[1])
    size = (height, width) if size is None else tuple(int(v) for v in size)
    if size == (height, width):
        x = np.asarray(image, np.float32)  # (H, W, 3) 0-255
    else:
        x = resize_bilinear(image, size)  # (h, w, 3) 0-255, a few rows cast at a time
    runs = [
        np.asarray(ops.convert_to_numpy(scores), np.float32)[0]  # (h_s, w_s, K)
        for scores in infer_runs(segmenter.forward, x[None], segmenter.num_classes, config)
    ]
    del x
    return upsampled_argmax(runs, (height, width))


def _header_size(path):
    """(H, W) of an image file as `read_image` returns it, read from its header without
    decoding the pixels; None when Pillow cannot tell. The EXIF orientation is applied
    when it comes before the pixels (a PNG may keep it after them: then the size may be
    (W, H), which needs the same memory)."""
    from PIL import Image

    from keras_memseg.file_kinds import special_file_kind

    if special_file_kind(path) is not None:
        return None
    try:
        with Image.open(path) as image:
            width, height = image.size
            # A PNG's EXIF may follow its pixels: Pillow would decode them to find it.
            header_exif = image.format != "PNG" or "exif" in image.info
            if header_exif and image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width  # turned by 90 degrees
    except Exception:  # noqa: BLE001  (read_image says what is wrong with the file)
        return None
    return int(height), int(width)


def _run_sizes(size, config):
    """(h, w) of each test-time run of `config` (scales, flips) for a model size `size`."""
    height, width = size
    sizes = [
        (int(math.floor(height * s + 0.5)), int(math.floor(width * s + 0.5))) for s in config.scales
    ]
    return [v for v in sizes for _ in range(2 if config.flip else 1)]


def _memory_problem(path, shape, segmenter, config, test_scale, keep_ratio, max_size, profile):
    """The one-line reason why predicting an image of `shape` (H, W) would not fit in the
    memory this process may still use, or None (also when that is unknown).

    With a `max_size` that would fit the line suggests it (not for a SavedModel, which
    runs at its own export scale).
    """
    available, what = available_memory()
    if available is None:
        return None

    def needed(cap):
        size = inference_size(*shape, test_scale, keep_ratio, cap)
        return size, prediction_bytes(
            shape, _run_sizes(size, config), segmenter.num_classes, profile
        )

    size, total = needed(max_size)
    if total <= available:
        return None
    advice = "downscale the image first"
    if segmenter.serving_scale is None:
        low, high = 0, max(size) - 1  # the largest long side that fits, if any
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if needed(middle)[1] <= available else (low, middle - 1)
        if low >= 32:
            advice = f"try --max_size {low - low % 32}"
    height, width = shape
    return (
        f"{path}: a {width}x{height} image needs about {format_bytes(total)} to predict "
        f"(the model runs at {size[1]}x{size[0]}), more than the "
        f"{format_bytes(available)} available ({what}); {advice}"
    )


def _out_of_memory(error):
    """Whether `error` is an allocation failure of NumPy, TensorFlow, JAX or PyTorch."""
    text = str(error)
    return (
        isinstance(error, MemoryError)
        or type(error).__name__ in ("ResourceExhaustedError", "OutOfMemoryError")
        or "RESOURCE_EXHAUSTED" in text
        or "can't allocate memory" in text
    )


def _test_settings(segmenter, dataset):
    """{test_scale, keep_ratio, mode, crop_size, stride}: the dataset's test resize and
    inference mode when `dataset` is given, else the model's preprocessor's, else the
    image's own size and whole inference."""
    settings = {
        "test_scale": None,
        "keep_ratio": True,
        "mode": "whole",
        "crop_size": InferenceConfig.crop_size,
        "stride": InferenceConfig.stride,
    }
    if dataset is not None:
        from keras_memseg.datasets import get_info

        info = get_info(dataset)
        augment, evaluation = info.augment, info.evaluation
        settings.update(
            test_scale=tuple(augment.test_scale) if augment.test_scale else None,
            keep_ratio=bool(augment.test_keep_ratio),
            mode=evaluation.mode,
            crop_size=tuple(evaluation.crop_size),
            stride=tuple(evaluation.stride),
        )
        return settings
    pre = getattr(segmenter, "preprocessor", None)
    if pre is not None:
        settings.update(
            test_scale=pre.test_scale,
            keep_ratio=pre.keep_ratio,
            mode=pre.mode,
            crop_size=pre.slide_window,
            stride=pre.slide_stride,
        )
    return settings


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
    test_scale=None,
    keep_ratio=None,
    mode=None,
    slide_window=None,
    slide_stride=None,
    full_size=False,
):
    """Writes a palette label PNG and an overlay with a legend for each input image.

    For each image: `<out_dir>/<base>.png`, the class ids as a "P" mode PNG whose
    palette is the class palette (pixel value = class id), and
    `<out_dir>/<base>_overlay.png`, the image blended with the class colours and a
    legend of the classes present. `<base>` is the file's stem, made unique by
    `output_names`. Existing outputs are kept (the image is skipped) unless
    `overwrite`.

    Memory grows with the image's pixels, not pixels x classes (`predict_image`).
    Each image is checked from its header, before it is decoded, against the memory
    this process may still use (`keras_memseg.predict.memory`): one that cannot fit
    fails with one line naming it, its size and the memory it needs, as does one that
    runs out of memory anyway or whose outputs cannot be written.

    Args:
        model: a `.keras` path, a preset folder, a SavedModel folder (see
            `load_predictor`), a `LoadedSegmenter` or a built Keras segmenter.
        inputs: image files and folders.
        out_dir: output folder (created); a ValueError names it, before any work,
            when it cannot be written (`keras_memseg.writable.folder_problem`).
        dataset: a dataset name or folder (`keras_memseg.datasets.get_info`): its test
            resize (`augment.test_scale`/`.test_keep_ratio`), inference mode, class
            names, palette and flip pairs. None: the model's own (`model.class_names`,
            `model.preprocessor`: set by training or conversion); a model without any
            runs at the image's own size with `class_<i>` names.
        max_size: cap on the long side the model sees (after the test resize).
        scales, flip: test-time augmentation (`InferenceConfig`).
        recursive: also read subfolders of the input folders.
        overwrite: replace existing outputs.
        alpha: colour weight of the overlay.
        callback: called after each input as `callback(index, total, path, status,
            detail)`; status is "written", "skipped" or "failed", detail the
            output paths, or the reason.
        test_scale: the test resize (mmsegmentation's (w, h), or (long, short) with
            `keep_ratio`), replacing the dataset's / model's.
        keep_ratio: replaces the dataset's / model's (default True).
        mode, slide_window, slide_stride: `"whole"` / `"slide"` inference and the
            window's (h, w) size and step, replacing the dataset's / model's.
        full_size: run at each image's own size (no test resize; `max_size` applies).

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
    from keras_memseg.writable import folder_problem

    out_dir = os.fspath(out_dir)
    problem = folder_problem(out_dir)  # before any work: a read-only --out, a file
    if problem:
        raise ValueError(problem)
    if isinstance(model, LoadedSegmenter):
        segmenter = model
    elif isinstance(model, (str, os.PathLike)):
        segmenter = load_predictor(model)
    else:
        segmenter = wrap_model(model)
    if segmenter.memory_empty:
        warnings.warn(empty_memory_message(segmenter), EmptyMemoryWarning, stacklevel=2)
    classes = class_info(segmenter.num_classes, dataset, segmenter)
    settings = _test_settings(segmenter, dataset)
    if test_scale is not None:
        settings["test_scale"] = tuple(int(v) for v in test_scale)
    if keep_ratio is not None:
        settings["keep_ratio"] = bool(keep_ratio)
    if full_size:
        settings["test_scale"] = None
    for key, value in (("mode", mode), ("crop_size", slide_window), ("stride", slide_stride)):
        if value is not None:
            settings[key] = value if key == "mode" else tuple(int(v) for v in value)
    test_scale, keep_ratio = settings["test_scale"], settings["keep_ratio"]
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
        # Images are given to it at that size (its own resize is then the identity),
        # so its scores come back at that size and are upsampled in tiles here.
        (test_scale, keep_ratio), max_size, scales = segmenter.serving_scale, None, (1.0,)
        settings["mode"] = "whole"  # its windows would be resized by it too
    config = InferenceConfig(
        mode=settings["mode"],
        crop_size=settings["crop_size"],
        stride=settings["stride"],
        scales=scales,
        flip=bool(flip),
        flip_pairs=classes.flip_pairs,
    )
    profile = model_profile(segmenter.model)
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
        shape = _header_size(path)  # from the header: checked before decoding
        problem = shape and _memory_problem(
            path, shape, segmenter, config, test_scale, keep_ratio, max_size, profile
        )
        if problem:
            result.failed.append((path, problem))
            report(path, "failed", problem)
            continue
        try:
            image = read_image(path)
            shape = tuple(image.shape[:2])
            size = inference_size(*shape, test_scale, keep_ratio, max_size)
            labels = predict_image(segmenter, image, config, size)
            _write_atomic(label_path, lambda p: save_label_png(p, labels, classes.palette))
            overlay = overlay_image(image, labels, classes.palette, classes.names, alpha=alpha)
            _write_atomic(overlay_path, lambda p: save_png(p, overlay))
            count = len(present_classes(labels, num_classes=segmenter.num_classes, ignore_class=-1))
        except ImageReadError as error:
            result.failed.append((path, str(error)))
            report(path, "failed", str(error))
            continue
        except OSError as error:  # the output folder became unwritable, the disk is full
            reason = f"{path}: cannot write its outputs in {out_dir} ({error.strerror or error})"
            result.failed.append((path, reason))
            report(path, "failed", reason)
            continue
        except Exception as error:
            if not _out_of_memory(error):
                raise
            what = f"a {shape[1]}x{shape[0]} image" if shape else "the image"
            reason = (
                f"{path}: out of memory predicting {what}; pass a smaller --max_size or "
                "downscale the image"
            )
            result.failed.append((path, reason))
            report(path, "failed", reason)
            continue
        finally:
            image = labels = overlay = None  # the next image's peak is its own
        result.written.append((path, label_path, overlay_path))
        report(path, "written", (label_path, overlay_path, shape, count))
    return result
