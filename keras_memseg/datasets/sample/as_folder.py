"""The bundled CamVid sample written out as a folder dataset (`from_folder`'s layout):
a template to copy for one's own data, and the data of the "own data" walkthrough.
Pure Python (PIL, NumPy): no TensorFlow."""

import os

import numpy as np
from PIL import Image

from keras_memseg.datasets.camvid import classes as camvid_classes
from keras_memseg.datasets.sample.spec import SPEC

SAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))


def write_sample_folder(out):
    """Writes the sample as `out/classes.txt`, `out/images/<split>/*.png` and
    `out/labels/<split>/*.png` (training ids, 255 = ignore); returns {split: count}.

    Refuses an `out` that exists and is not an empty folder (nothing is overwritten).

    Example:
    >>> import tempfile
    >>> from keras_memseg.datasets import from_folder
    >>> out = os.path.join(tempfile.mkdtemp(), "camvid_folder")
    >>> write_sample_folder(out)
    {'train': 48, 'val': 16}
    >>> spec = from_folder(out)
    >>> spec.num_classes, spec.class_names[:2], spec.split_sizes
    (11, ('Sky', 'Building'), {'train': 48, 'val': 16})
    """
    out = os.fspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose another path")
    table = np.asarray(
        [v if v >= 0 else 255 for v in camvid_classes.raw_to_train_table()], np.uint8
    )
    counts = {}
    for split in SPEC.splits:
        os.makedirs(os.path.join(out, "images", split), exist_ok=True)
        os.makedirs(os.path.join(out, "labels", split), exist_ok=True)
        with open(os.path.join(SAMPLE_DIR, f"{split}.txt")) as f:
            pairs = [line.split() for line in f if line.strip()]
        for image, label in pairs:
            name = os.path.basename(image)
            with Image.open(os.path.join(SAMPLE_DIR, image)) as pil:
                pil.convert("RGB").save(os.path.join(out, "images", split, name))
            with Image.open(os.path.join(SAMPLE_DIR, label)) as pil:
                ids = table[np.asarray(pil)]
            Image.fromarray(ids, mode="L").save(os.path.join(out, "labels", split, name))
        counts[split] = len(pairs)
    with open(os.path.join(out, "classes.txt"), "w") as f:
        for name, colour in zip(SPEC.class_names, SPEC.palette):
            f.write(f"{name} {','.join(str(c) for c in colour)}\n")
    return counts
