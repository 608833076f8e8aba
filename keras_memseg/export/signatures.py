"""TensorFlow serving functions of a segmenter: the graphs behind the SavedModel signatures.

Every function takes raw RGB pixels on the 0-255 scale, normalises them inside the
graph (`ImageNormalization`, ImageNet mean/std), runs the model in inference mode
(`training=False`: the feature memory is only read, never assigned) and returns a
dict with a subset of

    "logits":        float32 (B, H, W, K)  at the input resolution
    "probabilities": float32 (B, H, W, K)  softmax of the logits
    "labels":        int32   (B, H, W)     argmax of the logits (always present)

The encoded-image functions (`image_bytes`, `tf_example`) run the model one image
at a time (`tf.map_fn`), since the images of a request may differ in size. Their
outputs are padded to the largest image of the batch (labels with -1, scores with
0) and come with `"image_size"`: int32 (B, 2) = (height, width) of each image, so
`labels[i, :h_i, :w_i]` is image i's label map at its original size.

TensorFlow-only by design (STYLE.md habit 1: export code lives in modules named for it).
"""

import tensorflow as tf

from keras_memseg.layers.image_normalization import ImageNormalization

OUTPUT_KEYS = ("logits", "probabilities", "labels")
DEFAULT_OUTPUTS = ("probabilities", "labels")
IMAGE_KEY = "image/encoded"
_LABEL_PAD = -1


def check_outputs(outputs):
    """Validates an `outputs` selection; "labels" is always added. Returns a tuple."""
    if isinstance(outputs, str):
        outputs = (outputs,)
    unknown = [key for key in outputs if key not in OUTPUT_KEYS]
    if unknown:
        raise ValueError(f"unknown outputs {unknown}; choose from {OUTPUT_KEYS}")
    return tuple(key for key in OUTPUT_KEYS if key in outputs or key == "labels")


def check_input_size(input_size):
    """None or a (height, width) pair of positive ints."""
    if input_size is None:
        return None
    try:
        height, width = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (height, width), got {input_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    return height, width


class SegmentationServer:
    """Builds the tf.functions served by `export_saved_model` around a built segmenter.

    Args:
        model: a built `MemorySegmenter` / `DeepLabV3` taking normalised images.
        outputs: which of "logits", "probabilities", "labels" to return.
        input_size: None to run at the input resolution, or (H, W): the image is
            bilinearly resized to it, and the logits resized back to the input size.

    Example:
    >>> import numpy as np, tensorflow as tf
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import MemorySegmenter
    >>> model = MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), 3,
    ...                         feats_channels=16, transform_channels=8, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> server = SegmentationServer(model)
    >>> out = server.predict_images(tf.zeros((2, 40, 24, 3)))
    >>> tuple(out["labels"].shape), out["labels"].dtype.name
    ((2, 40, 24), 'int32')
    """

    def __init__(self, model, outputs=DEFAULT_OUTPUTS, input_size=None):
        self.model = model
        self.outputs = check_outputs(outputs)
        self.input_size = check_input_size(input_size)
        self.normalize = ImageNormalization(name="serving_normalization")
        # One tf.function per signature; the encoded-image functions call the image
        # function, so the model is traced once and shared by the three signatures.
        self.serve_images = tf.function(self.predict_images, autograph=False, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        self.serve_image_bytes = tf.function(
            self.predict_encoded, autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        self.serve_tf_example = tf.function(
            self.predict_tf_example, autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string, name="examples")])

    # -- the core: (B, H, W, 3) float 0-255 -> dict at (H, W) -------------------
    def predict_images(self, images):
        """Float32 (B, H, W, 3) RGB 0-255 -> dict of outputs at (H, W)."""
        # Loaded signatures do not check shapes: EnsureShape does, at run time.
        images = tf.ensure_shape(tf.convert_to_tensor(images), [None, None, None, 3],
                                 name="images_must_be_B_H_W_3")
        size = tf.shape(images)[1:3]
        with tf.control_dependencies([tf.debugging.assert_positive(
                size, message="images must have height and width >= 1")]):
            x = self.normalize(tf.cast(images, tf.float32))  # (B, H, W, 3) normalised
        if self.input_size is not None:
            x = tf.image.resize(x, self.input_size, method="bilinear")
        logits = tf.cast(self.model(x, training=False), tf.float32)  # (B, h, w, K)
        if self.input_size is not None:
            logits = tf.image.resize(logits, size, method="bilinear")  # (B, H, W, K)
        return self._heads(logits)

    def _heads(self, logits):
        result = {}
        if "logits" in self.outputs:
            result["logits"] = logits
        if "probabilities" in self.outputs:
            result["probabilities"] = tf.nn.softmax(logits, axis=-1)
        result["labels"] = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return result

    # -- encoded images: decode one by one, pad to the largest -------------------
    def predict_encoded(self, image_bytes):
        """String (B,) JPEG/PNG/GIF/BMP -> padded outputs and "image_size" (B, 2)."""
        encoded = tf.convert_to_tensor(image_bytes, tf.string)
        count = tf.shape(encoded)[0]
        sizes = tf.map_fn(lambda s: tf.shape(self._decode(s, count))[:2], encoded,
                          fn_output_signature=tf.int32)  # (B, 2)
        max_size = tf.reduce_max(tf.concat([sizes, tf.ones((1, 2), tf.int32)], 0), axis=0)
        signature = {key: tf.TensorSpec(None, tf.int32 if key == "labels" else tf.float32)
                     for key in self.outputs}

        def one(s):
            image = self._decode(s, count)[None]  # (1, h, w, 3)
            out = self.serve_images(tf.cast(image, tf.float32))
            return {key: self._pad(value[0], max_size, key) for key, value in out.items()}

        result = tf.map_fn(one, encoded, fn_output_signature=signature)
        k = self.model.num_classes
        for key in result:  # restore the static ranks lost in map_fn
            shape = [None, None, None] + ([] if key == "labels" else [k])
            result[key] = tf.ensure_shape(result[key], shape)
        result["image_size"] = sizes
        return result

    def predict_tf_example(self, examples):
        """String (B,) serialized tf.Example with `image/encoded` -> as `predict_encoded`."""
        features = tf.io.parse_example(
            examples, {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        return self.serve_image_bytes(features[IMAGE_KEY])

    @staticmethod
    def _decode(encoded, count):
        head = tf.strings.substr(encoded, 0, 4)
        valid = tf.reduce_any(tf.stack([
            tf.io.is_jpeg(encoded),
            tf.equal(head, b"\x89PNG"),
            tf.equal(tf.strings.substr(encoded, 0, 3), b"GIF"),
            tf.equal(tf.strings.substr(encoded, 0, 2), b"BM"),
        ]))
        check = tf.debugging.Assert(valid, [
            "invalid image: an element of the batch of", count, "encoded images is not a "
            "JPEG/PNG/GIF/BMP file; its first bytes:", tf.strings.substr(encoded, 0, 8)])
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return tf.ensure_shape(image, [None, None, 3])  # uint8 (h, w, 3)

    @staticmethod
    def _pad(value, max_size, key):
        pad_h = max_size[0] - tf.shape(value)[0]
        pad_w = max_size[1] - tf.shape(value)[1]
        paddings = [[0, pad_h], [0, pad_w]] + ([] if key == "labels" else [[0, 0]])
        fill = _LABEL_PAD if key == "labels" else 0.0
        return tf.pad(value, paddings, constant_values=fill)
