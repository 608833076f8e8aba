"""Datasets: one registered `DatasetSpec` per dataset folder, TFDS builders reading
user-downloaded files, and the tf.data pipelines.

Public API:
    dataset_names() -> the registered names
    get_info(name) -> DatasetSpec (classes, palette, splits, augmentation, evaluation
        defaults, layout; builds nothing)
    load(name, split, data_dir, manual_dir) -> tf.data.Dataset of {"image", "label"}
    prepare(name, ...) -> the prepared TFDS builder
    train_pipeline, eval_pipeline: the reference's training and test transforms
    missing_data_message(name), DatasetNotFoundError, BadExampleError
"""

from keras_memseg.datasets.errors import BadExampleError
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message
from keras_memseg.datasets.loader import load
from keras_memseg.datasets.loader import prepare
from keras_memseg.datasets.pipeline import augment_config_for
from keras_memseg.datasets.pipeline import eval_pipeline
from keras_memseg.datasets.pipeline import train_pipeline
from keras_memseg.datasets.registry import dataset_names
from keras_memseg.datasets.registry import get_info
from keras_memseg.datasets.spec import AugmentConfig
from keras_memseg.datasets.spec import DatasetSpec
from keras_memseg.datasets.spec import EvalDefaults
