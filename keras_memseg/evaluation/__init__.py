"""Evaluation: whole / slide / multi-scale + flip inference, dataset scoring, overlays.

`inference` and `overlays` are backend-agnostic (keras.ops / NumPy);
`evaluate_dataset` (tf.data in) is imported from `evaluation.evaluator`.
"""

from keras_memseg.evaluation.evaluator import compiled_forward
from keras_memseg.evaluation.evaluator import evaluate_dataset
from keras_memseg.evaluation.evaluator import report_to_json
from keras_memseg.evaluation.inference import InferenceConfig
from keras_memseg.evaluation.inference import infer
from keras_memseg.evaluation.inference import infer_runs
from keras_memseg.evaluation.inference import slide_inference
from keras_memseg.evaluation.inference import swap_channels
from keras_memseg.evaluation.inference import whole_inference
from keras_memseg.evaluation.inference import window_starts
from keras_memseg.evaluation.overlays import colorize
from keras_memseg.evaluation.overlays import overlay_panel
from keras_memseg.evaluation.overlays import save_png
