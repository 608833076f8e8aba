"""TFDS builder for LIP (Look Into Person) human parsing, 20 classes."""

from keras_memseg.datasets._builder_base import SegmentationBuilder
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.lip import classes

_OFFICIAL = {"train": 30462, "val": 10000}


class MemsegLip(SegmentationBuilder):
    """LIP: `train` (30,462) and `val` (10,000); labels 0..19 unchanged.

    Horizontal flips must swap the left/right pairs in `classes.FLIP_PAIRS`.

    Example:
    >>> builder = MemsegLip(data_dir="tfds_data")  # doctest: +SKIP
    """

    DATASET_NAME = "lip"
    HOMEPAGE = "https://sysu-hcp.net/lip/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put TrainVal_images.zip and TrainVal_parsing_annotations.zip in manual_dir, or
    extract them there: TrainVal_images/{train,val}_images/*.jpg,
    TrainVal_images/{train,val}_id.txt and
    TrainVal_parsing_annotations/{train,val}_segmentations/*.png.
    """

    def _label_table(self, label_rel):
        return classes.raw_to_train_table()

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)
        prefix = self._require_root(source, "TrainVal_images")
        ann_prefix = source.find_root("TrainVal_parsing_annotations")
        ann_prefix = prefix if ann_prefix is None else ann_prefix
        splits = {}
        for split, official in _OFFICIAL.items():
            candidates = [f"{prefix}TrainVal_images/{split}_id.txt", f"{prefix}{split}_id.txt"]
            id_file = next((c for c in candidates if source.exists(c)), None)
            if id_file is None:
                raise DatasetNotFoundError(
                    f"LIP list file {split}_id.txt not found (looked for "
                    f"{', '.join(source.describe(c) for c in candidates)}; "
                    f"official {official} ids)"
                )
            listed = [
                (
                    (
                        f"{prefix}TrainVal_images/{split}_images/{name}.jpg",
                        f"{ann_prefix}TrainVal_parsing_annotations/{split}_segmentations/"
                        f"{name}.png",
                    ),
                    number,
                    name,
                )
                for number, name in self._read_list(source, id_file)
            ]
            pairs, origins = self._dedupe(listed, source.describe(id_file))
            pairs = self._check_pairs(source, pairs, f"{split} split", official, origins)
            splits[split] = self._generate_examples(source, pairs)
        return splits
