"""Regenerates the tiny `dummy_data/` fixtures of every builder (run from the repo root).

    python tests/datasets/make_dummy_data.py

Images are 24-40 px noise, labels are blocky maps of valid raw ids, all
seeded, so the files are identical on every run.
"""

import pathlib
import shutil

import numpy as np
import scipy.io
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2] / "keras_memseg" / "datasets"
SIZES = ((24, 32), (32, 40), (28, 24))  # (H, W)


def _image(rng, size):
    return rng.integers(0, 256, size + (3,), dtype=np.uint8)


def _label(rng, size, values):
    h, w = size
    blocks = rng.choice(np.asarray(values), size=((h + 7) // 8, (w + 7) // 8))
    return np.kron(blocks, np.ones((8, 8), np.int64))[:h, :w]


def _save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mat":
        scipy.io.savemat(path, {"S": array.astype(np.uint16), "names": np.array(["x"])})
    else:
        mode = "RGB" if array.ndim == 3 else "L"
        Image.fromarray(array.astype(np.uint8), mode).save(path, quality=90)


def _fresh(name):
    folder = ROOT / name / "dummy_data"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def coco_stuff10k(rng):
    d = _fresh("coco_stuff10k")
    for split, count in (("train", 3), ("test", 2)):
        names = [f"COCO_{split}2014_{i:012d}" for i in range(count)]
        for i, name in enumerate(names):
            size = SIZES[i % 3]
            _save(d / "images" / f"{name}.jpg", _image(rng, size))
            labels = _label(rng, size, [0, 1, 2, 96, 150, 182, 255])
            _save(d / "annotations" / f"{name}.mat", labels, "mat")
        (d / "imageLists").mkdir(exist_ok=True)
        (d / "imageLists" / f"{split}.txt").write_text("\n".join(names) + "\n")


def coco_stuff164k(rng):
    d = _fresh("coco_stuff164k")
    for split in ("train", "val"):
        for i in range(2):
            name = f"{i:012d}"
            size = SIZES[i % 3]
            _save(d / "images" / f"{split}2017" / f"{name}.jpg", _image(rng, size))
            labels = _label(rng, size, [0, 5, 11, 100, 181, 255])
            _save(d / "annotations" / f"{split}2017" / f"{name}.png", labels)


def ade20k(rng):
    d = _fresh("ade20k") / "ADEChallengeData2016"
    for split, folder in (("train", "training"), ("val", "validation")):
        for i in range(2):
            name = f"ADE_{split}_{i + 1:08d}"
            size = SIZES[i % 3]
            _save(d / "images" / folder / f"{name}.jpg", _image(rng, size))
            _save(d / "annotations" / folder / f"{name}.png", _label(rng, size, [0, 1, 2, 75, 150]))


def cityscapes(rng):
    d = _fresh("cityscapes")
    for split, city, count in (("train", "aachen", 2), ("val", "lindau", 2), ("test", "berlin", 1)):
        for i in range(count):
            base = f"{city}_{i:06d}_000019"
            size = SIZES[i % 3]
            _save(d / "leftImg8bit" / split / city / f"{base}_leftImg8bit.png", _image(rng, size))
            if split == "test":
                continue
            if split == "val" and i == 1:  # only a pre-made train-id map
                _save(
                    d / "gtFine" / split / city / f"{base}_gtFine_labelTrainIds.png",
                    _label(rng, size, [0, 5, 18, 255]),
                )
            else:
                _save(
                    d / "gtFine" / split / city / f"{base}_gtFine_labelIds.png",
                    _label(rng, size, [0, 1, 7, 8, 26, 33]),
                )


def lip(rng):
    d = _fresh("lip")
    for split in ("train", "val"):
        names = [f"{i + 1}_{100 + i}" for i in range(2)]
        for i, name in enumerate(names):
            size = SIZES[i % 3]
            _save(d / "TrainVal_images" / f"{split}_images" / f"{name}.jpg", _image(rng, size))
            _save(
                d / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{name}.png",
                _label(rng, size, [0, 2, 14, 15, 16, 17, 18, 19]),
            )
        (d / "TrainVal_images" / f"{split}_id.txt").write_text("\n".join(names) + "\n")


def camvid(rng):
    d = _fresh("camvid")
    for split, count in (("train", 3), ("val", 2)):
        lines = []
        for i in range(count):
            name = f"0001TP_{i:06d}.png"
            size = SIZES[i % 3]
            _save(d / split / name, _image(rng, size))
            _save(d / f"{split}annot" / name, _label(rng, size, [0, 3, 5, 8, 11]))
            lines.append(f"{split}/{name} {split}annot/{name}")
        (d / f"{split}.txt").write_text("\n".join(lines) + "\n")


def main():
    rng = np.random.default_rng(0)
    for make in (coco_stuff10k, coco_stuff164k, ade20k, cityscapes, lip, camvid):
        make(rng)
        print("wrote", make.__name__)


if __name__ == "__main__":
    main()
