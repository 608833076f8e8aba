"""SavedModel export: signatures vs model.predict in a TensorFlow-only process, TF Serving
protos, saved_model_cli, errors, versioned layout."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import CONTEXTS
from tests.export.conftest import reference_logits
from tests.export.conftest import run_python
from tests.export.conftest import softmax

SIZES = ((40, 48), (24, 32))  # two images of different sizes for the encoded signatures

# Runs with TensorFlow only, as TF Serving would. `import tensorflow` (2.21) eagerly imports
# keras when it is installed (try/except ImportError around `keras.src.optimizers`), so the
# process blocks keras, tf_keras and keras_memseg first: a `None` entry in sys.modules makes
# their import fail. The check below then asserts that no real module of them was loaded.
_TF_ONLY = r"""
import json, sys
for _name in ("keras", "tf_keras", "keras_memseg"):
    sys.modules[_name] = None
import numpy as np
import tensorflow as tf

path, data_path, out_path = sys.argv[1:4]
data = np.load(data_path)
model = tf.saved_model.load(path)
result = {"signatures": sorted(model.signatures)}
out = {}
for key, value in model.signatures["serving_default"](images=tf.constant(data["images"])).items():
    out["default/" + key] = value.numpy()
encoded = [data["png_%d" % i].tobytes() for i in range(int(data["num_png"]))]
for key, value in model.signatures["serving_image_bytes"](
        image_bytes=tf.constant(encoded)).items():
    out["bytes/" + key] = value.numpy()
examples = [tf.train.Example(features=tf.train.Features(feature={"image/encoded":
            tf.train.Feature(bytes_list=tf.train.BytesList(value=[e]))})).SerializeToString()
            for e in encoded]
for key, value in model.signatures["serving_tf_example"](examples=tf.constant(examples)).items():
    out["example/" + key] = value.numpy()
writes = set()
for name, fn in model.signatures.items():
    graph = fn.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    writes |= {n.op for n in nodes if n.op.startswith(("Assign", "ResourceScatter"))}
result["variable_writes"] = sorted(writes)
out["memory"] = model.feature_memory[0].numpy()
result["keras_imported"] = sorted(
    name for name, module in sys.modules.items() if module is not None
    and name.split(".")[0] in ("keras", "tf_keras", "keras_memseg"))
np.savez(out_path, **out)
print(json.dumps(result))
"""


def _images(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3)).astype("uint8") for h, w in SIZES]


@pytest.mark.parametrize("context", CONTEXTS)
def test_signatures_match_predict_without_keras(context, models, saved_models, tmp_path):
    model, path = models(context), saved_models(context)
    images = _images()
    batch = np.stack([images[0], images[0][::-1]]).astype("float32")  # (2, 40, 48, 3)
    pngs = [tf.io.encode_png(image).numpy() for image in images]
    data = {"images": batch, "num_png": len(pngs)}
    data.update({f"png_{i}": np.frombuffer(p, np.uint8) for i, p in enumerate(pngs)})
    np.savez(tmp_path / "data.npz", **data)
    stdout = run_python(_TF_ONLY, path, tmp_path / "data.npz", tmp_path / "out.npz")
    result = json.loads(stdout.strip().splitlines()[-1])
    out = np.load(tmp_path / "out.npz")

    assert result["keras_imported"] == []
    assert result["signatures"] == ["serving_default", "serving_image_bytes",
                                    "serving_tf_example"]
    assert result["variable_writes"] == []  # serving never updates the memory
    np.testing.assert_array_equal(out["memory"], model.memory.memory.numpy())

    logits = reference_logits(model, batch)
    np.testing.assert_allclose(out["default/logits"], logits, atol=1e-4)
    np.testing.assert_allclose(out["default/probabilities"], softmax(logits), atol=1e-4)
    np.testing.assert_array_equal(out["default/labels"], logits.argmax(-1))
    assert out["default/labels"].dtype == np.int32

    for prefix in ("bytes", "example"):
        np.testing.assert_array_equal(out[f"{prefix}/image_size"], np.array(SIZES))
        labels = out[f"{prefix}/labels"]
        assert labels.shape == (2, 40, 48)
        for i, (image, (h, w)) in enumerate(zip(images, SIZES)):
            ref = reference_logits(model, image[None])[0]
            np.testing.assert_array_equal(labels[i, :h, :w], ref.argmax(-1))
            np.testing.assert_allclose(out[f"{prefix}/probabilities"][i, :h, :w],
                                       softmax(ref), atol=1e-4)
            assert (labels[i, h:] == -1).all() and (labels[i, :, w:] == -1).all()


def test_saved_model_cli_lists_signatures(saved_models):
    proc = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
         saved_models("aspp"), "--all"], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("serving_default", "serving_image_bytes", "serving_tf_example"):
        assert f"signature_def['{name}']" in proc.stdout
    assert "dtype: DT_FLOAT" in proc.stdout and "shape: (-1, -1, -1, 3)" in proc.stdout


def test_predict_request_round_trip(models, saved_models):
    predict_pb2 = pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2",
        reason="tensorflow-serving-api is not installed (pip install tensorflow-serving-api)")
    model, loaded = models("aspp"), tf.saved_model.load(saved_models("aspp"))
    images = np.stack(_images()[:1] * 2).astype("float32")

    request = predict_pb2.PredictRequest()  # what a gRPC client sends
    request.model_spec.name = "memseg"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())

    signature = loaded.signatures[request.model_spec.signature_name]
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    response = predict_pb2.PredictResponse()  # what the server packs
    for key, value in signature(**inputs).items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    response = predict_pb2.PredictResponse.FromString(response.SerializeToString())

    labels = tf.make_ndarray(response.outputs["labels"])
    np.testing.assert_array_equal(labels, reference_logits(model, images).argmax(-1))
    assert set(response.outputs) == {"logits", "probabilities", "labels"}


def test_bad_inputs_raise_clear_errors(saved_models):
    loaded = tf.saved_model.load(saved_models("aspp"))
    default = loaded.signatures["serving_default"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        default(images=tf.zeros((1, 32, 32, 3), tf.int32))  # wrong dtype
    for bad in (tf.zeros((32, 32, 3)), tf.zeros((1, 32, 32, 4))):  # wrong rank, not RGB
        with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                           match=r"not compatible with expected shape \[\?,\?,\?,3\]"):
            default(images=bad)
    good = tf.io.encode_png(np.zeros((16, 16, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="invalid image"):
        loaded.signatures["serving_image_bytes"](image_bytes=tf.constant([good, b"not a png"]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serving_tf_example"](examples=tf.constant([b"\x00garbage"]))
    # The process is still healthy.
    out = loaded.signatures["serving_image_bytes"](image_bytes=tf.constant([good]))
    assert out["labels"].shape == (1, 16, 16)


def test_versioned_layout(saved_models, models):
    from keras_memseg.export import export_saved_model
    from keras_memseg.export import next_version

    path = saved_models("aspp")
    root, version = os.path.split(path)
    assert version == "1" and os.path.basename(root) == "memseg"
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    assert [d for d in os.listdir(root)] == ["1"]  # no staging folder left behind
    assert next_version(root) == 2
    with pytest.raises(FileExistsError, match="overwrite"):
        export_saved_model(models("aspp"), os.path.dirname(root), name="memseg", version=1)
