"""Your own data: a folder of images and label PNGs as a dataset (`from_folder`).

Layout read::

    ROOT/classes.txt        one class per line, index = class id:
                              `name`, `name R,G,B` or `name #rrggbb` (the colour, optional,
                              is the last token; names may contain spaces). Blank lines and
                              lines starting with "# " are skipped. Either every class has
                              a colour or none has (then the VOC palette is used).
    ROOT/images/<split>/**/*.{jpg,jpeg,png,bmp,webp}     any subfolders
    ROOT/labels/<split>/**/<same relative path, extension .png>

The splits are the subfolders of `images/` (e.g. train, val, test); `train` is
required. A split with no `labels/<split>` folder at all is unlabelled (its labels
read as all 255, like Cityscapes' test split). The evaluation split is `val` if it
is labelled, else `test` if it is labelled, else `train`. Files and folders whose
name starts with "." and files of other extensions are ignored.

A label is a PNG of the image's size: single-channel (mode L: the value is the
class id), palette (mode P: the palette *index* is the class id) or RGB whose
colours are exactly the classes.txt colours. 255 = ignore; other values >= K,
16-bit and other modes are errors. Images are decoded with PIL, EXIF orientation
applied, converted to RGB uint8.

Pairing problems (an image without a label, a label without an image, an empty
split) are found by `from_folder`; size and value problems when an example is
read (`read_example`; `check_folder` reads them all). Nothing in the folder is
executed: classes.txt is parsed as text, images and labels decoded by PIL.
This module does not import TensorFlow; `folder_reader` reads a split in tf.data.
"""

import concurrent.futures
import io
import os
import re

import numpy as np
from PIL import Image

from keras_memseg.datasets._palette import voc_palette
from keras_memseg.datasets._validation import check_same_size
from keras_memseg.datasets._validation import decode_image
from keras_memseg.datasets._validation import map_label
from keras_memseg.datasets.errors import BadExampleError
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.spec import IGNORE_CLASS
from keras_memseg.datasets.spec import DatasetSpec

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LABEL_EXTENSION = ".png"
CLASSES_FILE = "classes.txt"
READER = "keras_memseg.datasets.folder_reader:load_folder"
LAYOUT = (
    "ROOT/classes.txt (one class per line: `name`, `name R,G,B` or `name #rrggbb`),\n"
    "  ROOT/images/<split>/**/*.{jpg,jpeg,png,bmp,webp} and\n"
    "  ROOT/labels/<split>/**/<the image's relative path, extension .png>\n"
    "  (splits: train required, val and/or test optional; labels are class ids 0..K-1,\n"
    "  255 = ignore, as single-channel or palette PNGs, or RGB PNGs of the classes.txt colours)"
)
_SPLIT_ORDER = ("train", "val", "test")
_RGB_AT_END = re.compile(r"^(.*?\S)\s+(\d+\s*,\s*\d+\s*,\s*\d+)$")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHOWN = 5


def parse_classes(text, where=CLASSES_FILE):
    """Class names and colours from the text of a classes.txt.

    Args:
        text: the file's text.
        where: the file, for error messages.

    Returns:
        (names, colours): tuples; `colours` is None when no line gives one.

    Raises:
        ValueError: naming the file and line, for a bad colour, a line without a
            colour among lines with one, a duplicate name or colour, fewer than 2
            or more than 255 classes.

    Example:
    >>> parse_classes("# my classes\\nbackground 0,0,0\\nroad sign #ff8000\\n")
    (('background', 'road sign'), ((0, 0, 0), (255, 128, 0)))
    >>> parse_classes("sky\\ntree\\n")
    (('sky', 'tree'), None)
    """
    names, colours, lines = [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped == "#" or stripped.startswith("# "):
            continue
        name, colour = _split_colour(stripped, f"{where} line {number}")
        if name in names:
            first = lines[names.index(name)]
            raise ValueError(
                f"{where} line {number}: class name {name!r} is also on line {first}; "
                "class names must be unique"
            )
        names.append(name)
        colours.append(colour)
        lines.append(number)
    if len(names) < 2:
        raise ValueError(
            f"{where} lists {len(names)} class(es); a segmentation dataset needs at least 2"
        )
    if len(names) > IGNORE_CLASS:
        raise ValueError(
            f"{where} lists {len(names)} classes; at most {IGNORE_CLASS} fit uint8 labels "
            f"({IGNORE_CLASS} = ignore)"
        )
    given = [c is not None for c in colours]
    if not any(given):
        return tuple(names), None
    if not all(given):
        missing = [str(n) for n, g in zip(lines, given) if not g]
        raise ValueError(
            f"{where}: lines {', '.join(missing[:_SHOWN])}{' ...' if len(missing) > _SHOWN else ''}"
            " give no colour but other lines do; give every class a colour or none"
        )
    for index, colour in enumerate(colours):
        if colours.index(colour) != index:
            raise ValueError(
                f"{where} line {lines[index]}: colour {colour} is also the colour of "
                f"{names[colours.index(colour)]!r} (line {lines[colours.index(colour)]}); "
                "colours must be unique"
            )
    return tuple(names), tuple(colours)


def _split_colour(line, where):
    """(name, (r, g, b) or None) of one classes.txt line."""
    match = _RGB_AT_END.match(line)
    if match:
        name, text = match.groups()
    else:
        tokens = line.rsplit(None, 1)
        if len(tokens) == 2 and (tokens[1].startswith("#") or "," in tokens[1]):
            name, text = tokens
        else:
            return line, None
    if _HEX.match(text):
        return name, tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))
    values = [v.strip() for v in text.split(",")]
    if len(values) == 3 and all(v.isdigit() and int(v) <= 255 for v in values):
        return name, tuple(int(v) for v in values)
    raise ValueError(
        f"{where}: bad colour {text!r} for class {name!r}; expected R,G,B (each 0-255) or #rrggbb"
    )


def read_classes(root):
    """`parse_classes` of `ROOT/classes.txt`; DatasetNotFoundError when it is missing."""
    path = os.path.join(os.fspath(root), CLASSES_FILE)
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"no {CLASSES_FILE} in {os.path.abspath(os.fspath(root))}; a folder dataset "
            f"needs {LAYOUT}"
        )
    with open(path, encoding="utf-8-sig") as f:
        return parse_classes(f.read(), path)


def _listing(folder, extensions):
    """Sorted relative paths (with "/") of the files under `folder` with `extensions`."""
    found = []
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(current, folder)
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return sorted(found)


def _subfolders(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))
    )


def _some(names):
    shown = ", ".join(names[:_SHOWN])
    return f"{len(names)} ({shown}{', ...' if len(names) > _SHOWN else ''})"


def _scan(root):
    """(examples, problems): {split: [(image rel, label rel or None)]} and the pairing
    problems found, as exceptions, in the order `from_folder` raises them."""
    root = os.path.abspath(os.fspath(root))
    images_dir = os.path.join(root, "images")
    labels_dir = os.path.join(root, "labels")
    if not os.path.isdir(images_dir):
        return {}, [
            DatasetNotFoundError(f"no images/ folder in {root}; a folder dataset needs {LAYOUT}")
        ]
    splits = sorted(
        _subfolders(images_dir),
        key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else len(_SPLIT_ORDER), s),
    )
    problems = []
    if "train" not in splits:
        problems.append(
            DatasetNotFoundError(
                f"no images/train folder in {root} (found splits: {splits or 'none'}); "
                f"a folder dataset needs {LAYOUT}"
            )
        )
    for split in _subfolders(labels_dir):
        if split not in splits:
            problems.append(
                BadExampleError(
                    f"{os.path.join(labels_dir, split)} has no images/{split} folder "
                    f"in {root}; labels need images"
                )
            )
    examples = {}
    for split in splits:
        image_rels = _listing(os.path.join(images_dir, split), IMAGE_EXTENSIONS)
        if not image_rels:
            problems.append(
                DatasetNotFoundError(
                    f"split {split!r} is empty: no {'/'.join(IMAGE_EXTENSIONS)} image "
                    f"under {os.path.join(images_dir, split)}"
                )
            )
            continue
        split_labels = os.path.join(labels_dir, split)
        if not os.path.isdir(split_labels):
            if split == "train":
                problems.append(
                    DatasetNotFoundError(f"no labels/train folder in {root}; train needs labels")
                )
            examples[split] = [(rel, None) for rel in image_rels]
            continue
        labels = {os.path.splitext(rel)[0]: rel for rel in _listing(split_labels, (".png",))}
        stems = {}
        for rel in image_rels:
            stems.setdefault(os.path.splitext(rel)[0], []).append(rel)
        shared = [" and ".join(rels) for rels in stems.values() if len(rels) > 1]
        if shared:
            problems.append(
                BadExampleError(
                    f"split {split!r}: images that would share one label (same path but "
                    f"extension) in {os.path.join(images_dir, split)}: {_some(shared)}"
                )
            )
        unlabelled = [rel for rel in image_rels if os.path.splitext(rel)[0] not in labels]
        if unlabelled:
            problems.append(
                BadExampleError(
                    f"split {split!r}: {_some(unlabelled)} images in "
                    f"{os.path.join(images_dir, split)} have no label .png in {split_labels}"
                )
            )
        orphans = sorted(rel for stem, rel in labels.items() if stem not in stems)
        if orphans:
            problems.append(
                BadExampleError(
                    f"split {split!r}: {_some(orphans)} labels in {split_labels} have no "
                    f"image in {os.path.join(images_dir, split)}"
                )
            )
        examples[split] = [
            (rel, labels[os.path.splitext(rel)[0]])
            for rel in image_rels
            if os.path.splitext(rel)[0] in labels
        ]
    return examples, problems


def folder_examples(root, split):
    """The examples of one split: [(image path, label path or "" if unlabelled, file name)]
    in sorted file order; `file_name` is the image's path relative to images/<split>.

    Raises:
        DatasetNotFoundError, BadExampleError: the first problem `from_folder` finds.
        ValueError: for a split the folder does not have.
    """
    root = os.path.abspath(os.fspath(root))
    examples, problems = _scan(root)
    if problems:
        raise problems[0]
    if split not in examples:
        raise ValueError(f"folder dataset {root} has splits {tuple(examples)}, got {split!r}")
    return [
        (
            os.path.join(root, "images", split, *image.split("/")),
            os.path.join(root, "labels", split, *label.split("/")) if label else "",
            image,
        )
        for image, label in examples[split]
    ]


def from_folder(root):
    """A `DatasetSpec` for a folder of images and label PNGs (layout: this module's doc).

    The spec's `name` and `root` are the folder's absolute path, so
    `keras_memseg.datasets.get_info(spec.name)` and `load(spec.name, split)`
    re-read the same folder; `split_sizes` counts the examples of each split.

    Args:
        root: the folder (str or path).

    Raises:
        DatasetNotFoundError: classes.txt, images/, images/train or labels/train
            is missing, or a split holds no image.
        ValueError: classes.txt is malformed (see `parse_classes`).
        BadExampleError: an image without a label or a label without an image
            (up to 5 names and the count).

    Example:
    >>> import pathlib, shutil, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "classes.txt").write_text("background\\ncat\\n")
    >>> for split in ("train", "val"):
    ...     (root / "images" / split).mkdir(parents=True)
    ...     (root / "labels" / split).mkdir(parents=True)
    ...     Image.new("RGB", (8, 6)).save(root / "images" / split / "a.jpg")
    ...     Image.new("L", (8, 6)).save(root / "labels" / split / "a.png")
    >>> spec = from_folder(root)
    >>> spec.class_names, spec.palette, spec.splits, spec.eval_split, spec.split_sizes
    (('background', 'cat'), ((0, 0, 0), (128, 0, 0)), ('train', 'val'), 'val', {'train': 1, 'val': 1})
    >>> shutil.rmtree(root)
    """
    root = os.path.abspath(os.fspath(root))
    names, colours = read_classes(root)
    examples, problems = _scan(root)
    if problems:
        raise problems[0]
    splits = tuple(examples)
    unlabelled = tuple(s for s in splits if examples[s] and examples[s][0][1] is None)
    labelled = [s for s in splits if s not in unlabelled]
    eval_split = next((s for s in ("val", "test") if s in labelled), "train")
    return DatasetSpec(
        name=root,
        root=root,
        num_classes=len(names),
        class_names=names,
        palette=colours if colours else voc_palette(len(names)),
        splits=splits,
        train_split="train",
        eval_split=eval_split,
        unlabelled_splits=unlabelled,
        layout=LAYOUT.replace("ROOT", root),
        reader=READER,
        split_sizes={s: len(examples[s]) for s in splits},
    )


def read_example(image_path, label_path, num_classes, colours=None):
    """Decodes and checks one pair: (image uint8 (H, W, 3), label uint8 (H, W)).

    Args:
        image_path: the image file.
        label_path: its label PNG; "" for an unlabelled split (label all 255).
        num_classes: K; label values must be < K or 255.
        colours: the classes.txt colours (RGB labels are mapped through them), or None.

    Raises:
        BadExampleError: naming the file: undecodable, a label of another size than
            its image, values >= K that are not 255, an RGB colour not in classes.txt,
            a 16-bit or otherwise unsupported label mode.

    Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> Image.new("RGB", (4, 2), (9, 9, 9)).save(os.path.join(folder, "a.png"))
    >>> Image.fromarray(np.array([[0, 1, 255, 1]] * 2, "uint8")).save(os.path.join(folder, "l.png"))
    >>> image, label = read_example(os.path.join(folder, "a.png"), os.path.join(folder, "l.png"), 2)
    >>> image.shape, label.tolist()
    ((2, 4, 3), [[0, 1, 255, 1], [0, 1, 255, 1]])
    >>> read_example(os.path.join(folder, "a.png"), os.path.join(folder, "l.png"), 1)
    Traceback (most recent call last):
    ...
    keras_memseg.datasets.errors.BadExampleError: label .../l.png has values [1] (4 pixels) ...
    """
    with open(image_path, "rb") as f:
        pil_image, _ = decode_image(f.read(), image_path)
    image = np.asarray(pil_image.convert("RGB"), dtype=np.uint8)
    if not label_path:
        return image, np.full(image.shape[:2], IGNORE_CLASS, np.uint8)
    raw = _decode_label(label_path, colours)
    check_same_size(pil_image, raw, image_path, label_path)
    table = list(range(num_classes)) + [-1] * (IGNORE_CLASS - num_classes) + [IGNORE_CLASS]
    return image, map_label(raw, table, label_path)


def _decode_label(path, colours):
    """(H, W) int array of class ids (or raw values still to check) of a label PNG."""
    try:
        with open(path, "rb") as f:
            label = Image.open(io.BytesIO(f.read()))
            label.load()
    except Exception as error:  # PIL raises many types for corrupt files.
        raise BadExampleError(f"cannot decode label {path}: {error}") from error
    if label.mode in ("L", "P"):
        return np.asarray(label)
    if label.mode != "RGB":
        kind = "16-bit" if label.mode.startswith("I") else f"{len(label.getbands())}-channel"
        raise BadExampleError(
            f"label {path} has mode {label.mode} ({kind}); expected an 8-bit single-channel "
            "(L) or palette (P) PNG of class ids, or an RGB PNG of the classes.txt colours"
        )
    if colours is None:
        raise BadExampleError(
            f"label {path} is an RGB image but classes.txt gives no colours; give every "
            "class a colour (`name R,G,B`) or save labels as single-channel PNGs of class ids"
        )
    rgb = np.asarray(label).astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # (H, W, 3) -> (H, W)
    known = np.array([(r << 16) | (g << 8) | b for r, g, b in colours], np.int64)
    order = np.argsort(known)
    position = np.clip(np.searchsorted(known[order], codes), 0, len(known) - 1)
    found = known[order][position] == codes
    if not found.all():
        unknown = np.unique(codes[~found])
        shown = ", ".join(f"({c >> 16},{(c >> 8) & 255},{c & 255})" for c in unknown[:10])
        raise BadExampleError(
            f"label {path} has colours [{shown}{', ...' if len(unknown) > 10 else ''}] "
            f"({int((~found).sum())} pixels) that are not classes.txt colours"
        )
    return order[position]


def check_folder(root):
    """Checks a folder dataset fully: classes.txt, pairing, and every pair decoded.

    Returns:
        (spec or None, problems): the `DatasetSpec` when the folder's structure is
        usable, and every problem found, one message each (empty = all good).

    Example:
    >>> import tempfile
    >>> spec, problems = check_folder(tempfile.mkdtemp())
    >>> spec, [p.split(";")[0][:15] for p in problems]
    (None, ['no classes.txt ', 'no images/ fold'])
    """
    root = os.path.abspath(os.fspath(root))
    problems, colours, names = [], None, None
    try:
        names, colours = read_classes(root)
    except (ValueError, DatasetNotFoundError) as error:
        problems.append(str(error))
    examples, pairing = _scan(root)
    problems.extend(str(p) for p in pairing)
    spec = from_folder(root) if not problems else None
    if names is None:
        return spec, problems
    jobs = [
        (
            os.path.join(root, "images", split, *image.split("/")),
            os.path.join(root, "labels", split, *label.split("/")) if label else "",
        )
        for split, pairs in examples.items()
        for image, label in pairs
    ]

    def check(job):
        try:
            read_example(*job, len(names), colours)
        except BadExampleError as error:
            return str(error)
        return None

    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        problems.extend(p for p in pool.map(check, jobs) if p)
    return spec, problems
