"""Export: TF Serving SavedModels (three signatures), TFLite files, and a CLI.

Public API:
    export_saved_model(model, path, name="memseg", version=None, ...) -> version folder
    export_tflite(model, path, input_size=(H, W), quantization="none", ...) -> path
    tflite_predict(path, images) -> dict of numpy outputs (checks the input contract)
    tflite_ops(path) -> sorted op names of a .tflite file (to spot flex/custom ops)

CLI: `python -m keras_memseg.export --model model.keras --format saved_model ...`
"""

from typing import TYPE_CHECKING

from keras_memseg.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: `--help` answers before TensorFlow is imported
    from keras_memseg.export.saved_model import export_saved_model
    from keras_memseg.export.saved_model import next_version
    from keras_memseg.export.tflite import export_tflite
    from keras_memseg.export.tflite_runtime import tflite_ops
    from keras_memseg.export.tflite_runtime import tflite_predict

__getattr__, __dir__ = lazy_exports(__name__, __file__)
