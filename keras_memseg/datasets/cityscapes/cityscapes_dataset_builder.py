"""TFDS builder for Cityscapes gtFine: labelIds -> 19 train ids; test has no labels."""

from keras_memseg.datasets._builder_base import SegmentationBuilder
from keras_memseg.datasets.cityscapes import classes
from keras_memseg.datasets.errors import DatasetNotFoundError

_OFFICIAL = {"train": 2975, "val": 500, "test": 1525}
_IMAGE_SUFFIX = "_leftImg8bit.png"


class MemsegCityscapes(SegmentationBuilder):
    """Cityscapes fine annotations. Splits `train`, `val`, `test` (label all 255), `trainval`.

    `*_gtFine_labelIds.png` is mapped with the official 34 -> 19 table; when only
    pre-made `*_gtFine_labelTrainIds.png` exist they are used as they are.

    Example:
    >>> builder = MemsegCityscapes(data_dir="tfds_data")  # doctest: +SKIP
    """

    DATASET_NAME = "cityscapes"
    IMAGE_FORMAT = "png"
    HOMEPAGE = "https://www.cityscapes-dataset.com/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip in manual_dir (or
    extract them there): leftImg8bit/{train,val,test}/<city>/*_leftImg8bit.png and
    gtFine/{train,val,test}/<city>/*_gtFine_labelIds.png (or *_labelTrainIds.png).
    """

    def _label_table(self, label_rel):
        if label_rel.endswith("_labelTrainIds.png"):
            return classes.train_ids_table()
        return classes.label_ids_table()

    def _pairs(self, source, image_prefix, gt_prefix, split):
        images = source.list_files(f"{image_prefix}leftImg8bit/{split}", _IMAGE_SUFFIX, True)
        if not images:
            raise DatasetNotFoundError(
                f"no *{_IMAGE_SUFFIX} files under "
                f"{source.root / (image_prefix + 'leftImg8bit/' + split)} "
                f"(official {_OFFICIAL[split]}); is leftImg8bit_trainvaltest fully extracted?"
            )
        pairs = []
        for image_rel in images:
            if split == "test":
                pairs.append((image_rel, None))
                continue
            city_base = image_rel.split(f"leftImg8bit/{split}/", 1)[1][: -len(_IMAGE_SUFFIX)]
            stem = f"{gt_prefix}gtFine/{split}/{city_base}_gtFine_"
            label_rel = stem + "labelIds.png"
            if not source.exists(label_rel) and source.exists(stem + "labelTrainIds.png"):
                label_rel = stem + "labelTrainIds.png"
            pairs.append((image_rel, label_rel))
        return self._check_pairs(source, pairs, f"{split} split", _OFFICIAL[split])

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)
        image_prefix = self._require_root(source, "leftImg8bit")
        gt_prefix = source.find_root("gtFine")
        gt_prefix = image_prefix if gt_prefix is None else gt_prefix
        pairs = {s: self._pairs(source, image_prefix, gt_prefix, s) for s in _OFFICIAL}
        return {
            "train": self._generate_examples(source, pairs["train"]),
            "val": self._generate_examples(source, pairs["val"]),
            "test": self._generate_examples(source, pairs["test"]),
            "trainval": self._generate_examples(source, pairs["train"] + pairs["val"]),
        }
