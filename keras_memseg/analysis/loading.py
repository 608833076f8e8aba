"""The analysis's input errors, and loading a model to analyse (one line per problem)."""

import contextlib
import warnings


class AnalysisInputError(ValueError):
    """A bad input to the analysis (model, dataset, layer); the message is one line."""


@contextlib.contextmanager
def quiet_optimizer_warning():
    """Silences Keras's warning that it skips a saved optimizer state (not needed here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        yield


def load_segmenter(path):
    """`keras_memseg.models.load_segmenter(path)` with its errors as `AnalysisInputError`.

    Args:
        path: a `.keras` file (`model.save`) or a preset folder (`save_to_preset`).
    """
    from keras_memseg.models import load_segmenter as load

    try:
        return load(path)
    except (OSError, ValueError) as error:
        text = str(error).strip()
        raise AnalysisInputError(text.splitlines()[0] if text else repr(error)) from None
