"""TFDS builder for COCO-Stuff-164k (COCO 2017 images + stuffthingmaps PNGs)."""

from keras_memseg.datasets import _coco_stuff_classes
from keras_memseg.datasets._builder_base import SegmentationBuilder
from keras_memseg.datasets._coco_stuff_config import CONFIGS
from keras_memseg.datasets.errors import DatasetNotFoundError

_OFFICIAL = {"train": 118287, "val": 5000}


class MemsegCocoStuff164k(SegmentationBuilder):
    """COCO-Stuff-164k: `train` (118,287) and `val` (5,000); PNG ids 0..181, 255 ignore.

    Example:
    >>> builder = MemsegCocoStuff164k(data_dir="tfds_data")  # doctest: +SKIP
    """

    DATASET_NAME = "coco_stuff164k"
    BUILDER_CONFIGS = list(CONFIGS)
    HOMEPAGE = "https://github.com/nightrome/cocostuff"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put train2017.zip, val2017.zip and stuffthingmaps_trainval2017.zip in manual_dir,
    or extract them: images in images/{train,val}2017/ (or {train,val}2017/), labels
    in annotations/{train,val}2017/, stuffthingmaps_trainval2017/{train,val}2017/ or
    next to the images as .png.
    """

    def _num_classes(self):
        return self.builder_config.num_classes

    def _label_table(self, label_rel):
        return _coco_stuff_classes.zero_based_table(self._num_classes())

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)
        splits = {}
        for split, official in _OFFICIAL.items():
            folder = f"{split}2017"
            image_dirs = [f"images/{folder}", folder, f"coco/images/{folder}"]
            images, image_dir = [], None
            for candidate in image_dirs:
                images = source.list_files(candidate, ".jpg")
                if images:
                    image_dir = candidate
                    break
            if not images:
                raise DatasetNotFoundError(
                    f"no {folder} .jpg images in {source.root} (looked in "
                    f"{', '.join(image_dirs)}; official {official})"
                )
            label_dirs = [
                f"annotations/{folder}",
                f"stuffthingmaps_trainval2017/{folder}",
                folder,
            ]
            label_dir = next((d for d in label_dirs if source.list_files(d, ".png")), label_dirs[0])
            pairs = [(rel, f"{label_dir}/{rel.rsplit('/', 1)[1][:-4]}.png") for rel in images]
            pairs = self._check_pairs(source, pairs, f"{split} split ({image_dir})", official)
            splits[split] = self._generate_examples(source, pairs)
        return splits
