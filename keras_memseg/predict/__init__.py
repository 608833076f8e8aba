"""Prediction on image files: palette label maps and overlays with a legend, and a CLI.

Public API:
    predict_files(model, inputs, out_dir, dataset=None, ...) -> PredictResult
    load_predictor(path) -> LoadedSegmenter (.keras file, preset folder or SavedModel)
    predict_image(segmenter, image, config, size) -> (H, W) class ids
    output_names(paths) -> unique output base names

CLI: `python -m keras_memseg.predict --model PATH INPUT... --out DIR [--dataset NAME]`
"""

from typing import TYPE_CHECKING

from keras_memseg.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: `--help` answers before TensorFlow is imported
    from keras_memseg.predict.loading import EmptyMemoryWarning
    from keras_memseg.predict.loading import LoadedSegmenter
    from keras_memseg.predict.loading import ModelLoadError
    from keras_memseg.predict.loading import load_predictor
    from keras_memseg.predict.run import IMAGE_EXTENSIONS
    from keras_memseg.predict.run import ImageReadError
    from keras_memseg.predict.run import PredictResult
    from keras_memseg.predict.run import collect_inputs
    from keras_memseg.predict.run import inference_size
    from keras_memseg.predict.run import output_names
    from keras_memseg.predict.run import predict_files
    from keras_memseg.predict.run import predict_image
    from keras_memseg.predict.run import read_image

__getattr__, __dir__ = lazy_exports(__name__, __file__)
