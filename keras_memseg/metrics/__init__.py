"""Metrics: the confusion-matrix segmentation metric (aAcc, mIoU, mAcc, per class)."""

from keras_memseg.metrics.confusion_matrix import ConfusionMatrixMetric
from keras_memseg.metrics.confusion_matrix import format_table
