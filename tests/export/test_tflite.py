"""TFLite export: runs under ai-edge-litert in a separate process, close to the model;
the fixed input size is enforced with a clear error; only builtin ops; never overwrites
an existing file unless asked, never leaves a half-written one."""

import os
import stat

import numpy as np
import pytest

from tests.export.conftest import CONTEXTS
from tests.export.conftest import reference_logits
from tests.export.conftest import run_python
from tests.export.conftest import softmax

SIZE = (40, 48)
QUANTIZATIONS = {"aspp": ("none", "fp16", "int8"), "ppm": ("none", "int8")}

_LITERT = r"""
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

images = np.load(sys.argv[1])["images"]
result = {}
for path in sys.argv[3:]:
    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("serving_default")
    outs = [runner(images=image[None]) for image in images]
    result[path] = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    ops = {d["op_name"] for d in interpreter._get_ops_details()}
    result[path + "/ops"] = np.array(sorted(ops))
np.savez(sys.argv[2], **{f"{p}|{k}": v for p, d in result.items() if isinstance(d, dict)
                         for k, v in d.items()},
         **{k: v for k, v in result.items() if not isinstance(v, dict)})
print("ok")
"""


@pytest.fixture(scope="module")
def tflite_files(models, tmp_path_factory):
    from keras_memseg.export import export_tflite

    rng = np.random.default_rng(3)
    calibration = [rng.integers(0, 256, (SIZE[0], SIZE[1], 3)).astype("uint8") for _ in range(8)]
    files = {}
    for context, quantizations in QUANTIZATIONS.items():
        folder = tmp_path_factory.mktemp(f"tflite_{context}")
        for q in quantizations:
            files[context, q] = export_tflite(
                models(context),
                str(folder / f"{q}.tflite"),
                input_size=SIZE,
                quantization=q,
                representative_data=calibration if q == "int8" else None,
            )
    return files


@pytest.mark.parametrize("context", CONTEXTS)
def test_litert_matches_model(context, models, tflite_files, tmp_path):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (3, SIZE[0], SIZE[1], 3)).astype("float32")
    np.savez(tmp_path / "in.npz", images=images)
    paths = [tflite_files[context, q] for q in QUANTIZATIONS[context]]
    run_python(_LITERT, tmp_path / "in.npz", tmp_path / "out.npz", *paths)
    out = np.load(tmp_path / "out.npz")
    logits = reference_logits(models(context), images)
    probs, labels = softmax(logits), logits.argmax(-1)
    tolerance = {"none": 1e-4, "fp16": 1e-2}
    for q, path in zip(QUANTIZATIONS[context], paths):
        ops = set(out[path + "/ops"])
        assert not {op for op in ops if op.startswith("Flex") or op == "CUSTOM"}, ops
        assert "RESIZE_BILINEAR" in ops
        assert out[f"{path}|labels"].dtype == np.int32
        agreement = (out[f"{path}|labels"] == labels).mean()
        if q == "int8":
            assert agreement >= 0.95, f"{context} int8 label agreement {agreement:.3f}"
        else:
            np.testing.assert_allclose(
                out[f"{path}|probabilities"], probs, atol=tolerance[q], err_msg=f"{context} {q}"
            )


def test_input_contract(tflite_files):
    from keras_memseg.export import tflite_predict

    path = tflite_files["aspp", "none"]
    out = tflite_predict(path, np.zeros((2, *SIZE, 3), np.uint8))
    assert out["labels"].shape == (2, *SIZE) and out["probabilities"].shape == (2, *SIZE, 5)
    assert tflite_predict(path, np.zeros((*SIZE, 3)))["labels"].shape == (1, *SIZE)
    with pytest.raises(ValueError, match=r"shape \(40, 48, 3\).*fixed input size.*\(32, 48, 3\)"):
        tflite_predict(path, np.zeros((1, 32, 48, 3)))
    with pytest.raises(ValueError, match="shape"):
        tflite_predict(path, np.zeros((1, 1, *SIZE, 3)))  # wrong rank
    with pytest.raises(TypeError, match="numeric RGB images"):
        tflite_predict(path, np.array([["a"]], dtype=object))
    images = np.zeros((2, *SIZE, 3), np.float32)
    images[1, 3, 4, 0] = np.nan
    images[1, 5, 4, 2] = -np.inf
    with pytest.raises(ValueError, match="the images hold 2 NaN or inf pixel values"):
        tflite_predict(path, images)


def test_export_arguments_are_checked(models):
    from keras_memseg.export import export_tflite

    with pytest.raises(ValueError, match="quantization must be one of"):
        export_tflite(models("aspp"), "x.tflite", input_size=SIZE, quantization="int4")
    with pytest.raises(ValueError, match="input_size"):
        export_tflite(models("aspp"), "x.tflite", input_size=None)
    with pytest.raises(ValueError, match="unknown outputs"):
        export_tflite(models("aspp"), "x.tflite", input_size=SIZE, outputs=("scores",))


def test_overwrite_and_atomic_write(models, tmp_path, monkeypatch):
    from keras_memseg.export import export_tflite
    from keras_memseg.export.tflite_runtime import tflite_input_size

    model, path = models("aspp"), tmp_path / "m.tflite"
    previous = os.umask(0o077)  # mkstemp's 0600 and the umask must not leak
    try:
        assert export_tflite(model, path, input_size=(32, 32)) == str(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    content = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_tflite(model, path, input_size=(40, 48))
    assert path.read_bytes() == content

    def interrupted(fd):  # the process dies between writing and renaming
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_tflite(model, path, input_size=(40, 48), overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        export_tflite(model, tmp_path / "new.tflite", input_size=(40, 48))
    monkeypatch.undo()
    assert path.read_bytes() == content  # the old file is intact, no partial new one
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]  # and no temporary file is left

    export_tflite(model, path, input_size=(40, 48), overwrite=True)
    assert tflite_input_size(path) == (40, 48)


def test_empty_batch_and_mixed_sizes_are_value_errors(models, tmp_path):
    # One export of its own (the `tflite_files` fixture converts five models).
    from keras_memseg.export import export_tflite
    from keras_memseg.export import tflite_predict

    path = export_tflite(models("aspp"), tmp_path / "m.tflite", input_size=SIZE)
    expected = r"takes RGB images of shape \(40, 48, 3\) \(the fixed input size chosen at export\)"
    with pytest.raises(ValueError, match=expected + r", got an empty batch of shape \(0, 40, 48"):
        tflite_predict(path, np.zeros((0, *SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match=expected + r", got images of different shapes"):
        tflite_predict(path, [np.zeros((*SIZE, 3)), np.zeros((32, 48, 3))])
    with pytest.raises(ValueError, match=expected + r", got an image of shape \(32, 48, 3\)"):
        tflite_predict(path, np.zeros((2, 32, 48, 3), np.uint8))
    assert tflite_predict(path, [np.zeros((*SIZE, 3))] * 2)["labels"].shape == (2, *SIZE)
