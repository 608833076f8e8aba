"""Test-time inference (whole, sliding window, multi-scale + flip): it lives with the
models now (`keras_memseg.models.segmenter.inference`, used by `Segmenter.segment`);
its names are re-exported here so that every `keras_memseg.evaluation` import works."""

from keras_memseg.models.segmenter.inference import InferenceConfig
from keras_memseg.models.segmenter.inference import infer
from keras_memseg.models.segmenter.inference import infer_runs
from keras_memseg.models.segmenter.inference import slide_inference
from keras_memseg.models.segmenter.inference import swap_channels
from keras_memseg.models.segmenter.inference import whole_inference
from keras_memseg.models.segmenter.inference import window_starts

__all__ = [
    "InferenceConfig",
    "infer",
    "infer_runs",
    "slide_inference",
    "swap_channels",
    "whole_inference",
    "window_starts",
]
