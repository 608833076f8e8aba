"""TFDS builder for COCO-Stuff-10k v1.1 (.mat labels read with scipy.io.loadmat)."""

import io

import scipy.io

from keras_memseg.datasets import _coco_stuff_classes
from keras_memseg.datasets._builder_base import SegmentationBuilder
from keras_memseg.datasets._coco_stuff_config import CONFIGS
from keras_memseg.datasets.errors import BadExampleError
from keras_memseg.datasets.errors import DatasetNotFoundError

_OFFICIAL = {"train": 9000, "test": 1000}


class MemsegCocoStuff10k(SegmentationBuilder):
    """COCO-Stuff-10k: `train` (9,000) and `test` (1,000).

    Labels: `S - 1` for 1..182, 0 and 255 -> 255 (config "182", default); config
    "171" further remaps to contiguous ids.

    Example:
    >>> builder = MemsegCocoStuff10k(config="171", data_dir="tfds_data")  # doctest: +SKIP
    """

    DATASET_NAME = "coco_stuff10k"
    BUILDER_CONFIGS = list(CONFIGS)
    HOMEPAGE = "https://github.com/nightrome/cocostuff10k"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put cocostuff-10k-v1.1.zip in manual_dir, or extract it there so that
    images/*.jpg, annotations/*.mat, imageLists/train.txt and imageLists/test.txt exist.
    """

    def _num_classes(self):
        return self.builder_config.num_classes

    def _label_table(self, label_rel):
        return _coco_stuff_classes.one_based_table(self._num_classes())

    def _read_raw_label(self, source, label_rel):
        where = source.describe(label_rel)
        try:
            mat = scipy.io.loadmat(io.BytesIO(source.read(label_rel)))
        except Exception as error:  # scipy raises several types on corrupt files.
            raise BadExampleError(f"cannot read .mat label {where}: {error}") from error
        if "S" not in mat:
            raise BadExampleError(f"label {where} has no variable 'S' (found {sorted(mat)})")
        label = mat["S"]
        if label.ndim != 2:
            raise BadExampleError(f"label {where}: 'S' has shape {label.shape}, expected HxW")
        return label

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)
        prefix = self._require_root(source, "imageLists", ("", "cocostuff-10k-v1.1/"))
        splits = {}
        for split, official in _OFFICIAL.items():
            list_rel = f"{prefix}imageLists/{split}.txt"
            if not source.exists(list_rel):
                raise DatasetNotFoundError(
                    f"{source.describe(list_rel)} not found: the {split} list "
                    f"({official} names) is missing"
                )
            listed = [
                ((f"{prefix}images/{name}.jpg", f"{prefix}annotations/{name}.mat"), number, name)
                for number, name in self._read_list(source, list_rel)
            ]
            pairs, origins = self._dedupe(listed, source.describe(list_rel))
            pairs = self._check_pairs(source, pairs, f"{split} split", official, origins)
            splits[split] = self._generate_examples(source, pairs)
        return splits
