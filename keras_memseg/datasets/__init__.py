"""Datasets: TFDS builders reading user-downloaded files, and tf.data pipelines.

Public API:
    load(name, split, data_dir, manual_dir) -> tf.data.Dataset of {"image", "label"}
    get_info(name) -> DatasetInfo (class names, palette, ...; builds nothing)
    missing_data_message(name), DatasetNotFoundError, BadExampleError
    AugmentConfig, augment_config_for(name), train_pipeline, eval_pipeline, distribute
"""

from keras_memseg.datasets.errors import BadExampleError
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message
from keras_memseg.datasets.info import DatasetInfo
from keras_memseg.datasets.info import get_info
from keras_memseg.datasets.info import known_names
from keras_memseg.datasets.loader import load
from keras_memseg.datasets.loader import prepare
from keras_memseg.datasets.pipeline import AugmentConfig
from keras_memseg.datasets.pipeline import augment_config_for
from keras_memseg.datasets.pipeline import distribute
from keras_memseg.datasets.pipeline import eval_pipeline
from keras_memseg.datasets.pipeline import train_pipeline
