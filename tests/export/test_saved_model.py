"""SavedModel export: signatures vs model.predict and vs the evaluation path in a
TensorFlow-only process, bounded serving of a large JPEG, request limits and clear errors,
TF Serving protos, saved_model_cli, versioned layout and permissions, refused models."""

import json
import os
import re
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import CONTEXTS
from tests.export.conftest import evaluation_logits
from tests.export.conftest import make_model
from tests.export.conftest import reference_logits
from tests.export.conftest import run_python
from tests.export.conftest import softmax

SIZES = ((40, 48), (24, 32))  # two images of different sizes for the encoded signatures
SIGNATURES = ["serving_config", "serving_default", "serving_image_bytes", "serving_tf_example"]

# Runs with TensorFlow only, as TF Serving would. `import tensorflow` (2.21) eagerly imports
# keras when it is installed (try/except ImportError around `keras.src.optimizers`), so the
# process blocks keras, tf_keras and keras_memseg first: a `None` entry in sys.modules makes
# their import fail. The check below then asserts that no real module of them was loaded.
# It calls every signature on the inputs of `data_path` and reports time and peak memory.
_TF_ONLY = r"""
import json, resource, sys, time
for _name in ("keras", "tf_keras", "keras_memseg"):
    sys.modules[_name] = None
import numpy as np
import tensorflow as tf

path, data_path, out_path = sys.argv[1:4]
data = np.load(data_path)
model = tf.saved_model.load(path)
result = {"signatures": sorted(model.signatures), "seconds": {}}
out = {}

def call(name, prefix, **inputs):
    start = time.perf_counter()
    for key, value in model.signatures[name](**inputs).items():
        out[prefix + "/" + key] = value.numpy()
    result["seconds"][prefix] = round(time.perf_counter() - start, 3)

call("serving_default", "default", images=tf.constant(data["images"]))
encoded = [data["encoded_%d" % i].tobytes() for i in range(int(data["num_encoded"]))]
call("serving_image_bytes", "bytes", image_bytes=tf.constant(encoded))
examples = [tf.train.Example(features=tf.train.Features(feature={"image/encoded":
            tf.train.Feature(bytes_list=tf.train.BytesList(value=[e]))})).SerializeToString()
            for e in encoded]
call("serving_tf_example", "example", examples=tf.constant(examples))
call("serving_config", "config", image_size=tf.constant(data["config_sizes"], tf.int32))
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
result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
np.savez(out_path, **out)
print(json.dumps(result))
"""


def _images(seed=1, sizes=SIZES):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3)).astype("uint8") for h, w in sizes]


def _serve_without_keras(path, batch, encoded, tmp_path):
    """Runs `_TF_ONLY` on a float batch and encoded images; (json result, outputs)."""
    data = {
        "images": batch,
        "num_encoded": len(encoded),
        "config_sizes": np.array([image.shape[:2] for image in batch] + [(3000, 4000)], np.int32),
    }
    data.update({f"encoded_{i}": np.frombuffer(e, np.uint8) for i, e in enumerate(encoded)})
    np.savez(tmp_path / "data.npz", **data)
    stdout = run_python(_TF_ONLY, path, tmp_path / "data.npz", tmp_path / "out.npz")
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["keras_imported"] == []
    assert result["signatures"] == SIGNATURES
    assert result["variable_writes"] == []  # serving never updates the memory
    return result, np.load(tmp_path / "out.npz")


@pytest.mark.parametrize("context", CONTEXTS)
def test_signatures_match_predict_without_keras(context, models, saved_models, tmp_path):
    # test_scale=None: the request's own size, so the reference is model.predict itself.
    model, path = models(context), saved_models(context, test_scale=None)
    images = _images()
    batch = np.stack([images[0], images[0][::-1]]).astype("float32")  # (2, 40, 48, 3)
    pngs = [tf.io.encode_png(image).numpy() for image in images]
    result, out = _serve_without_keras(path, batch, pngs, tmp_path)
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
            np.testing.assert_allclose(
                out[f"{prefix}/probabilities"][i, :h, :w], softmax(ref), atol=1e-4
            )
            assert (labels[i, h:] == -1).all() and (labels[i, :, w:] == -1).all()
    np.testing.assert_array_equal(out["config/model_size"], [[40, 48], [40, 48], [3000, 4000]])
    np.testing.assert_array_equal(out["config/test_scale"], [0, 0])  # 0, 0: request's size


@pytest.mark.parametrize("test_scale, keep_ratio", [((64, 32), True), ((40, 24), False)])
def test_bounded_signatures_match_evaluation_without_keras(
    test_scale, keep_ratio, models, saved_models, tmp_path
):
    # The oracle is the evaluation path: eval_pipeline's resize + normalisation,
    # model.predict, then a NumPy bilinear resize of the logits back to the image size.
    model = models("aspp")
    path = saved_models("aspp", test_scale=test_scale, keep_ratio=keep_ratio)
    images = _images(seed=2)
    batch = np.stack([images[0], images[0][:, ::-1]]).astype("float32")  # (2, 40, 48, 3)
    pngs = [tf.io.encode_png(image).numpy() for image in images]
    result, out = _serve_without_keras(path, batch, pngs, tmp_path)

    for i in range(2):
        ref, model_size = evaluation_logits(model, batch[i], test_scale, keep_ratio)
        np.testing.assert_allclose(out["default/logits"][i], ref, atol=1e-4)
        np.testing.assert_array_equal(out["config/model_size"][i], model_size)
    assert out["default/labels"].shape == (2, 40, 48)
    for prefix in ("bytes", "example"):
        np.testing.assert_array_equal(out[f"{prefix}/image_size"], np.array(SIZES))
        for i, (image, (h, w)) in enumerate(zip(images, SIZES)):
            ref, _ = evaluation_logits(model, image, test_scale, keep_ratio)
            np.testing.assert_allclose(out[f"{prefix}/logits"][i, :h, :w], ref, atol=1e-4)
            assert (out[f"{prefix}/labels"][i, h:] == -1).all()
    np.testing.assert_array_equal(out["config/test_scale"], test_scale)
    assert bool(out["config/keep_ratio"]) == keep_ratio
    assert int(out["config/num_classes"]) == 5
    assert int(out["config/max_input_pixels"]) == 50_000_000
    assert int(out["config/max_batch_size"]) == 32


def test_large_jpeg_runs_at_the_test_scale(models, tmp_path):
    # A 4000x3000 photo at its own size would need a (1, 187500, 187500) attention map
    # (140 GB); at the default test scale (2048, 512) the model runs at 512x683.
    from keras_memseg.export import export_saved_model

    model = models("aspp")
    path = export_saved_model(model, tmp_path, name="memseg", outputs=("labels",))
    rng = np.random.default_rng(5)
    small = rng.integers(0, 256, (30, 40, 3)).astype("uint8")
    image = np.kron(small, np.ones((100, 100, 1), "uint8"))  # (3000, 4000, 3), smooth-ish
    jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
    decoded = tf.io.decode_jpeg(jpeg).numpy()  # what the server sees
    result, out = _serve_without_keras(path, small[None].astype("float32"), [jpeg], tmp_path)
    print("4000x3000 JPEG:", result["seconds"], "max RSS MB", result["max_rss_mb"])

    np.testing.assert_array_equal(out["config/model_size"][-1], (512, 683))
    np.testing.assert_array_equal(out["bytes/image_size"], [[3000, 4000]])
    labels = out["bytes/labels"]
    assert labels.shape == (1, 3000, 4000)
    rows, cols = np.arange(0, 3000, 37), np.arange(0, 4000, 41)
    ref, size = evaluation_logits(model, decoded, (2048, 512), True, rows, cols)
    assert size == (512, 683)
    top2 = np.sort(ref, -1)
    clear = top2[..., -1] - top2[..., -2] > 1e-3  # skip near ties of the float32 argmax
    np.testing.assert_array_equal(labels[0][np.ix_(rows, cols)][clear], ref.argmax(-1)[clear])
    np.testing.assert_array_equal(out["example/labels"], labels)


def _message(error):
    """The text of a failed signature call."""
    return str(error.value)


def test_request_limits(models, saved_models):
    loaded = tf.saved_model.load(
        saved_models("aspp", test_scale=(64, 32), max_input_pixels=1000, max_batch_size=2)
    )
    default = loaded.signatures["serving_default"]
    encoded = loaded.signatures["serving_image_bytes"]
    example = loaded.signatures["serving_tf_example"]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        default(images=tf.zeros((1, 40, 30, 3)))
    assert "40x30 images = 1200 pixels, above max_input_pixels=1000" in _message(error)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        default(images=tf.zeros((3, 8, 8, 3)))
    assert "`images` holds 3 images, above max_batch_size=2" in _message(error)

    png = tf.io.encode_png(np.zeros((40, 30, 3), np.uint8)).numpy()
    small = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        encoded(image_bytes=tf.constant([small, png]))
    assert (
        "`image_bytes[1]` is a 40x30 image = 1200 pixels, above max_input_pixels=1000"
        in _message(error)
    )
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        encoded(image_bytes=tf.constant([small] * 3))
    assert "`image_bytes` holds 3 images, above max_batch_size=2" in _message(error)
    # A tiny PNG whose header claims 100000x100000: rejected before any decoding.
    bomb = png[:16] + (100000).to_bytes(4, "big") * 2 + png[24:]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        encoded(image_bytes=tf.constant([bomb]))
    assert "is a 100000x100000 image = 10000000000 pixels" in _message(error)
    # Each image is under the limit, their padded outputs are not.
    tall = tf.io.encode_png(np.zeros((90, 10, 3), np.uint8)).numpy()
    wide = tf.io.encode_png(np.zeros((10, 90, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        encoded(image_bytes=tf.constant([tall, wide]))
    assert "padded to its largest height and width, 90x90 = 8100 pixels" in _message(error)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        example(examples=tf.constant([_example(png)]))
    assert "`examples[0]` is a 40x30 image = 1200 pixels" in _message(error)
    # Within the limits the process still serves.
    assert encoded(image_bytes=tf.constant([tall]))["labels"].shape == (1, 90, 10)


def _example(encoded=None, key="image/encoded"):
    feature = (
        {}
        if encoded is None
        else {key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))}
    )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_bad_inputs_raise_clear_errors(saved_models):
    loaded = tf.saved_model.load(saved_models("aspp", test_scale=(64, 32), keep_ratio=True))
    default = loaded.signatures["serving_default"]
    encoded = loaded.signatures["serving_image_bytes"]
    example = loaded.signatures["serving_tf_example"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        default(images=tf.zeros((1, 32, 32, 3), tf.int32))  # wrong dtype
    for bad in (tf.zeros((32, 32, 3)), tf.zeros((1, 32, 32, 4))):  # wrong rank, not RGB
        with pytest.raises(
            (ValueError, tf.errors.InvalidArgumentError),
            match=r"not compatible with expected shape \[\?,\?,\?,3\]",
        ):
            default(images=bad)
    config = loaded.signatures["serving_config"]
    good = tf.io.encode_png(np.zeros((16, 16, 3), np.uint8)).numpy()
    cases = [
        (
            config,
            {"image_size": tf.constant([[40, 24], [-5, 10]], tf.int32)},
            "`image_size[1]` is -5x10: image sizes are (height, width) pairs >= 1",
        ),
        (
            config,
            {"image_size": tf.constant([[0, 24]], tf.int32)},
            "`image_size[0]` is 0x24: image sizes are (height, width) pairs >= 1",
        ),
        (default, {"images": tf.zeros((0, 16, 16, 3))}, "empty batch: `images` holds no image"),
        (default, {"images": tf.fill((1, 8, 8, 3), np.nan)}, "`images` hold 192 NaN or inf"),
        (  # finite, but far outside 0-255: NaN logits, refused (issue #34)
            default,
            {"images": tf.fill((1, 8, 8, 3), 1e30)},
            "NaN or inf values for these images; send RGB values in 0-255",
        ),
        (
            default,
            {
                "images": tf.constant(
                    np.where(np.eye(8)[None, :, :, None], np.inf, 1.0) * np.ones((1, 8, 8, 3)),
                    tf.float32,
                )
            },
            "`images` hold 24 NaN or inf pixel values",
        ),
        (
            encoded,
            {"image_bytes": tf.constant([], tf.string)},
            "empty batch: `image_bytes` holds no image",
        ),
        (
            encoded,
            {"image_bytes": tf.constant([good, b"not a png"])},
            "invalid image: `image_bytes[1]` is not a JPEG/PNG/GIF/BMP file; its first bytes "
            "(hex): 6e6f74206120706e",
        ),
        (
            encoded,
            {"image_bytes": tf.constant([b"\xff\x00\xfe garbage"])},
            "`image_bytes[0]` is not a JPEG/PNG/GIF/BMP file",
        ),
        (
            example,
            {"examples": tf.constant([], tf.string)},
            "empty batch: `examples` holds no image",
        ),
        # Raw bytes that are not UTF-8 made TensorFlow's own parse error undecodable.
        (
            example,
            {"examples": tf.constant([_example(good), b"\xff\x00\xfe garbage"])},
            "`examples[1]` is not a serialized tf.Example with one bytes feature `image/encoded`",
        ),
        (
            example,
            {"examples": tf.constant([_example(good), _example()])},
            "`examples[1]` has no feature `image/encoded`",
        ),
        (
            example,
            {"examples": tf.constant([_example(good, key="image/png")])},
            "`examples[0]` has no feature `image/encoded`",
        ),
        (
            example,
            {"examples": tf.constant([_example(b"not an image")])},
            "invalid image: `examples[0]` is not a JPEG/PNG/GIF/BMP file",
        ),
    ]
    for fn, inputs, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            fn(**inputs)
        assert message in _message(error), (message, _message(error)[-600:])
    # The process is still healthy.
    np.testing.assert_array_equal(
        config(image_size=tf.constant([[40, 24]], tf.int32))["model_size"], [[53, 32]]
    )
    assert encoded(image_bytes=tf.constant([good]))["labels"].shape == (1, 16, 16)
    assert example(examples=tf.constant([_example(good)]))["labels"].shape == (1, 16, 16)


def test_saved_model_cli_lists_signatures(saved_models):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorflow.python.tools.saved_model_cli",
            "show",
            "--dir",
            saved_models("aspp"),
            "--all",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in proc.stdout
    assert "dtype: DT_FLOAT" in proc.stdout and "shape: (-1, -1, -1, 3)" in proc.stdout


def test_predict_request_round_trip(models, saved_models):
    predict_pb2 = pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2",
        reason="tensorflow-serving-api is not installed (pip install tensorflow-serving-api)",
    )
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


def _modes(folder):
    """{relative path: permission bits} of `folder` and everything under it."""
    modes = {".": stat.S_IMODE(os.stat(folder).st_mode)}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            modes[os.path.relpath(path, folder)] = stat.S_IMODE(os.stat(path).st_mode)
    return modes


def test_versioned_layout_and_permissions(models, tmp_path):
    from keras_memseg.export import export_saved_model
    from keras_memseg.export import next_version

    model = models("aspp")
    previous = os.umask(0o077)  # a strict umask must not leak into the export
    try:
        path = export_saved_model(model, tmp_path / "base", name="memseg", test_scale=(64, 32))
    finally:
        os.umask(previous)
    root, version = os.path.split(path)
    assert version == "1" and os.path.basename(root) == "memseg"
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    assert os.listdir(root) == ["1"]  # no staging folder left behind
    assert next_version(root) == 2
    modes = _modes(path)
    assert any(os.path.isfile(os.path.join(path, p)) for p in modes)
    for relative, mode in modes.items():
        expected = 0o755 if os.path.isdir(os.path.join(path, relative)) else 0o644
        assert mode == expected, f"{relative}: {oct(mode)}"
    for folder in (tmp_path / "base", root):  # created by the export: readable too
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755

    with pytest.raises(FileExistsError, match="overwrite"):
        export_saved_model(model, tmp_path / "base", name="memseg", version=1)
    written = export_saved_model(
        model, tmp_path / "base", name="memseg", version=1, input_size=(24, 40), overwrite=True
    )  # a fixed size
    config = tf.saved_model.load(written).signatures["serving_config"](
        image_size=tf.constant([[10, 10]])
    )
    np.testing.assert_array_equal(config["model_size"], [[24, 40]])  # the new version
    np.testing.assert_array_equal(config["test_scale"], [40, 24])
    assert not config["keep_ratio"]
    assert sorted(os.listdir(root)) == ["1"]


def test_export_arguments_are_checked(models, tmp_path):
    from keras_memseg.export import export_saved_model

    model = models("aspp")
    for kwargs, message in [
        ({"test_scale": (0, 512)}, "test_scale must be positive"),
        ({"test_scale": "2048,512"}, "test_scale must be a pair"),
        ({"keep_ratio": "yes"}, "keep_ratio must be True or False"),
        ({"max_input_pixels": 0}, "max_input_pixels must be a positive"),
        ({"max_batch_size": 2.5}, "max_batch_size must be a positive"),
        ({"input_size": (32,)}, "input_size must be a pair"),
    ]:
        with pytest.raises(ValueError, match=message):
            export_saved_model(model, tmp_path, **kwargs)
    assert not os.listdir(tmp_path)  # checked before anything is written


def test_export_name_is_one_folder(models, tmp_path):
    # `name` is the model folder under `path`: "../x" would write beside `path`.
    from keras_memseg.export import export_saved_model

    base = tmp_path / "base"
    for name in ("../x", "..", ".", "", "a/b", str(tmp_path / "abs"), "a\\b", 3):
        with pytest.raises(ValueError, match="name must be one folder name") as error:
            export_saved_model(models("aspp"), base, name=name, test_scale=(64, 32))
        assert len(str(error.value).splitlines()) == 1
    assert not os.listdir(tmp_path)  # refused before anything is written


def test_export_refuses_nonfinite_weights(tmp_path):
    from keras_memseg.export import export_saved_model
    from keras_memseg.export import export_tflite

    model = make_model("aspp", seed=7)
    kernel = model.weights[0]
    kernel.assign(
        np.where(np.arange(kernel.numpy().size).reshape(kernel.shape) == 3, np.nan, kernel.numpy())
    )
    with pytest.raises(ValueError, match=f"NaN or inf values: {re.escape(kernel.path)}"):
        export_saved_model(model, tmp_path)
    with pytest.raises(ValueError, match="NaN or inf"):
        export_tflite(model, tmp_path / "m.tflite", input_size=(32, 32))
    model = make_model("aspp", seed=7)
    memory = model.memory.memory
    memory.assign(np.full(memory.shape, np.inf, "float32"))
    with pytest.raises(ValueError, match=f"NaN or inf values: {re.escape(memory.path)}"):
        export_saved_model(model, tmp_path)
    assert not os.listdir(tmp_path)


def test_export_warns_on_empty_memory():
    from keras_memseg.export.saved_model import check_model

    model = make_model("aspp", seed=8)
    model.memory.memory.assign(np.zeros(model.memory.memory.shape, "float32"))
    with pytest.warns(UserWarning, match="feature memory is all zero"):
        check_model(model)  # what both exports call first


def test_export_traces_the_network_once(tmp_path, monkeypatch):
    # The encoded-image signatures reuse the traced `serving_default`, and the save
    # writes the traced functions as they are (no retrace in the save context, no
    # Keras default signature of the model or its sub-models).
    from keras_memseg.export import export_saved_model

    model = make_model("aspp", seed=3)
    calls = []
    call = type(model).call
    monkeypatch.setattr(
        type(model), "call", lambda self, *a, **k: (calls.append(1), call(self, *a, **k))[1]
    )
    path = export_saved_model(model, tmp_path, test_scale=(64, 32))
    assert len(calls) == 1
    loaded = tf.saved_model.load(path)
    images = np.random.default_rng(0).integers(0, 256, (1, 40, 48, 3)).astype("float32")
    by_attribute = loaded.serving_default(tf.constant(images))
    by_signature = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_array_equal(by_attribute["labels"], by_signature["labels"])
    np.testing.assert_array_equal(loaded.feature_memory[0].numpy(), model.memory.memory.numpy())


def test_class_names_and_palette_are_saved_as_assets(tmp_path):
    from keras_memseg.export import export_saved_model
    from keras_memseg.predict import load_predictor
    from tests.export.conftest import NUM_CLASSES

    model = make_model("aspp")
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.memory.memory.assign(np.ones(model.memory.memory.shape, "float32"))
    names = [f"thing {i}" for i in range(NUM_CLASSES)]
    palette = [[i, 2 * i, 255 - i] for i in range(NUM_CLASSES)]
    model.set_metadata(class_names=names, palette=palette)
    path = export_saved_model(model, tmp_path, test_scale=(64, 32))
    with open(os.path.join(path, "assets", "classes.json")) as f:
        info = json.load(f)
    assert info["class_names"] == names and info["palette"] == palette
    assert info["num_classes"] == NUM_CLASSES
    with open(os.path.join(path, "assets", "labels.txt")) as f:
        assert f.read().splitlines() == names
    assert stat.S_IMODE(os.stat(os.path.join(path, "assets", "labels.txt")).st_mode) == 0o644
    # predict reads them back from the SavedModel (no Keras model involved)
    loaded = load_predictor(path)
    assert loaded.class_names == tuple(names)
    assert loaded.palette == tuple(tuple(c) for c in palette)
