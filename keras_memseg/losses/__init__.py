"""Losses: ignore-aware pixel cross-entropy."""

from keras_memseg.losses.segmentation_cross_entropy import SegmentationCrossEntropy
from keras_memseg.losses.segmentation_cross_entropy import masked_cross_entropy
