"""The Cityscapes benchmark server's format for test-set predictions.

The server (and `cityscapesscripts`' `evalPixelLevelSemanticLabeling`) takes one PNG
per test image holding **label ids** (7 = road, ..., 33 = bicycle), not train ids,
named after the image (`berlin_000000_000019_leftImg8bit.png`); zip the folder to
upload it.
"""

import os

import numpy as np

from keras_memseg.datasets.cityscapes.classes import LABEL_ID_TO_TRAIN_ID

TRAIN_ID_TO_LABEL_ID = np.zeros(256, np.uint8)  # unknown train ids -> 0 (unlabeled)
for _label_id, _train_id in LABEL_ID_TO_TRAIN_ID.items():
    TRAIN_ID_TO_LABEL_ID[_train_id] = _label_id


def submission_file(prediction, file_name):
    """`(png name, uint8 label-id map)` of a train-id `prediction` (H, W) of `file_name`.

    Example:
    >>> name, ids = submission_file(np.array([[0, 18]]), "leftImg8bit/test/berlin/b_leftImg8bit.png")
    >>> name, ids.tolist()
    ('b_leftImg8bit.png', [[7, 33]])
    """
    name = os.path.splitext(os.path.basename(str(file_name)))[0] + ".png"
    return name, TRAIN_ID_TO_LABEL_ID[np.asarray(prediction, np.int64)]
