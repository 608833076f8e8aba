"""DeepLabV3 (Chen et al., 2017): the baseline without the memory."""

from keras_memseg.models.deeplab_v3.deeplab_v3_segmenter import DeepLabV3
