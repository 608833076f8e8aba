"""Datasets: one registered `DatasetSpec` per dataset folder, TFDS builders reading
user-downloaded files, and the tf.data pipelines.

Public API:
    dataset_names() -> the registered names
    get_info(name) -> DatasetSpec (classes, palette, splits, augmentation, evaluation
        defaults, layout; builds nothing)
    from_folder(root) -> DatasetSpec of a folder of images and label PNGs; its path
        works wherever a dataset name does (get_info, load, recipes)
    load(name, split, data_dir, manual_dir) -> tf.data.Dataset of {"image", "label"}
    prepare(name, ...) -> the prepared TFDS builder
    train_pipeline, eval_pipeline: the reference's training and test transforms
    missing_data_message(name), DatasetNotFoundError, BadExampleError
"""

from typing import TYPE_CHECKING

from keras_memseg.datasets.errors import BadExampleError
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message
from keras_memseg.datasets.folder_dataset import from_folder
from keras_memseg.datasets.registry import dataset_names
from keras_memseg.datasets.registry import get_info
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec
from keras_memseg.datasets.spec import EvalDefaults
from keras_memseg.lazy import lazy_exports

# The tf.data names, imported on first use: describing a dataset (`get_info`,
# `from_folder`, the commands' `--help`) does not import TensorFlow.
if TYPE_CHECKING:
    from keras_memseg.datasets.loader import load
    from keras_memseg.datasets.loader import prepare
    from keras_memseg.datasets.pipeline import augment_config_for
    from keras_memseg.datasets.pipeline import eval_pipeline
    from keras_memseg.datasets.pipeline import train_pipeline

__getattr__, _lazy_dir = lazy_exports(__name__, __file__)


def __dir__():
    return sorted(set(globals()) | set(_lazy_dir()))
