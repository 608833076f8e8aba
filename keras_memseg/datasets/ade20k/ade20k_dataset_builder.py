"""TFDS builder for ADE20K SceneParsing (ADEChallengeData2016), reduce-zero-label."""

from keras_memseg.datasets._builder_base import SegmentationBuilder
from keras_memseg.datasets.ade20k import classes
from keras_memseg.datasets.errors import DatasetNotFoundError

_FOLDERS = {"train": ("training", 20210), "val": ("validation", 2000)}


class MemsegAde20k(SegmentationBuilder):
    """ADE20K, 150 classes: raw 0 -> 255, i -> i-1. Splits `train`, `val`.

    Example:
    >>> builder = MemsegAde20k(data_dir="tfds_data")  # doctest: +SKIP
    """

    DATASET_NAME = "ade20k"
    HOMEPAGE = "http://sceneparsing.csail.mit.edu/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put ADEChallengeData2016.zip in manual_dir, or extract it there so that
    ADEChallengeData2016/images/{training,validation}/*.jpg and
    ADEChallengeData2016/annotations/{training,validation}/*.png exist.
    """

    def _label_table(self, label_rel):
        return classes.reduce_zero_label_table()

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)
        prefix = self._require_root(source, "images", ("ADEChallengeData2016/", ""))
        splits = {}
        for split, (folder, official) in _FOLDERS.items():
            images = source.list_files(f"{prefix}images/{folder}", ".jpg")
            if not images:
                raise DatasetNotFoundError(
                    f"no .jpg images in {source.root / (prefix + 'images/' + folder)} "
                    f"(official {official}); is the archive fully extracted?"
                )
            pairs = [
                (rel, f"{prefix}annotations/{folder}/{rel.rsplit('/', 1)[1][:-4]}.png")
                for rel in images
            ]
            pairs = self._check_pairs(source, pairs, f"{split} split", official)
            splits[split] = self._generate_examples(source, pairs)
        return splits
