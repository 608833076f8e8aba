"""TensorFlow serving functions of a segmenter: the graphs behind the SavedModel signatures.

Every function takes raw RGB pixels on the 0-255 scale, resizes them to the model's
evaluation scale (`test_scale`, the reference's test `Resize`), normalises them inside
the graph (`ImageNormalization`, ImageNet mean/std), runs the model in inference mode
(`training=False`: the feature memory is only read, never assigned), resizes the logits
back to the input size (bilinear, half-pixel) and returns a dict with a subset of

    "logits":        float32 (B, H, W, K)  at the input resolution
    "probabilities": float32 (B, H, W, K)  softmax of the logits
    "labels":        int32   (B, H, W)     argmax of the logits (always present)

Running at `test_scale` bounds the model's memory for any request size (MCIBI's
context module attends over all positions at 1/8 resolution: O((H*W/64)^2) memory at
the request's own size). `test_scale=None` runs at the request's size (unbounded).

The encoded-image functions (`image_bytes`, `tf_example`) run the model one image
at a time (`tf.map_fn`), since the images of a request may differ in size. Their
outputs are padded to the largest image of the batch (labels with -1, scores with
0) and come with `"image_size"`: int32 (B, 2) = (height, width) of each image, so
`labels[i, :h_i, :w_i]` is image i's label map at its original size.

Requests are checked in the graph; a bad one fails with `InvalidArgumentError` whose
message says what is wrong: an empty batch, more than `max_batch_size` images, an
image above `max_input_pixels` (read from the file header, before decoding), NaN/inf
pixels, a string that is not an image or not a serialized `tf.Example`, an
`image_size` below 1 asked of `serving_config`.

TensorFlow-only by design (STYLE.md habit 1: export code lives in modules named for it).
"""

import tensorflow as tf

from keras_memseg.export.contract import DEFAULT_MAX_BATCH_SIZE
from keras_memseg.export.contract import DEFAULT_MAX_INPUT_PIXELS
from keras_memseg.export.contract import DEFAULT_OUTPUTS
from keras_memseg.export.contract import check_outputs
from keras_memseg.layers.image_normalization import ImageNormalization

IMAGE_KEY = "image/encoded"
_LABEL_PAD = -1
_HEADER_BYTES = 32
_HEX = [f"{i:02x}" for i in range(256)]


def _positive_pair(name, value):
    try:
        first, second = (v for v in value)
        if any(isinstance(v, bool) or int(v) != v for v in (first, second)):
            raise ValueError
        first, second = int(first), int(second)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of positive integers, got {value!r}") from None
    if first < 1 or second < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return first, second


def check_input_size(input_size):
    """None or a (height, width) pair of positive ints."""
    return None if input_size is None else _positive_pair("input_size", input_size)


def check_test_scale(test_scale):
    """None or a pair of positive ints (the reference's `Resize` scale convention)."""
    return None if test_scale is None else _positive_pair("test_scale", test_scale)


def check_limit(name, value):
    """None (no limit) or a positive int."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or int(value) != value
        or value < 1
    ):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def serving_size(height, width, test_scale, keep_ratio):
    """(h, w) int32 the model runs at for an image of (height, width).

    The reference's test `Resize` (mmseg `Resize(img_scale=test_scale,
    keep_ratio=...)` at ratio 1): with `keep_ratio` the image is scaled by
    `min(max(test_scale) / max(H, W), min(test_scale) / min(H, W))` (long side at
    most max(test_scale), short side at most min(test_scale), up- or down-scaled);
    without it, `test_scale` is (w, h). Sizes are rounded half up and kept >= 1.
    `test_scale=None` returns (height, width) unchanged.

    Example:
    >>> [int(v) for v in serving_size(3000, 4000, (2048, 512), True)]
    [512, 683]
    >>> [int(v) for v in serving_size(100, 60, (473, 473), False)]
    [473, 473]
    """
    height = tf.convert_to_tensor(height)
    width = tf.convert_to_tensor(width)
    if test_scale is None:
        return tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    if keep_ratio:
        long_side = tf.constant(float(max(test_scale)), tf.float32)
        short_side = tf.constant(float(min(test_scale)), tf.float32)
        factor = tf.minimum(long_side / tf.maximum(h, w), short_side / tf.minimum(h, w))
        new_h, new_w = h * factor, w * factor
    else:
        new_w = tf.zeros_like(w) + float(test_scale[0])
        new_h = tf.zeros_like(h) + float(test_scale[1])
    # Same float32 arithmetic as the evaluation pipeline; >= 1 only matters for
    # absurd aspect ratios (the reference would fail on a zero-sized image there).
    return (
        tf.maximum(tf.cast(new_h + 0.5, tf.int32), 1),
        tf.maximum(tf.cast(new_w + 0.5, tf.int32), 1),
    )


def _format(template, values):
    """`template` with each "{}" replaced by a value: numbers as text, strings as they are
    (`tf.strings.format` would quote and escape them)."""
    parts = template.split("{}")
    pieces = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        value = tf.convert_to_tensor(value)
        pieces += [value if value.dtype == tf.string else tf.strings.as_string(value), part]
    return tf.strings.join(pieces)


def _check(condition, template, values=()):
    """An Assert whose message is one formatted string (printed as `[message]`)."""
    return tf.debugging.Assert(condition, [_format(template, values)])


def _hex(data):
    """Hex text of a short byte string (error messages must stay valid UTF-8)."""
    return tf.strings.reduce_join(
        tf.gather(tf.constant(_HEX), tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32))
    )


class SegmentationServer:
    """Builds the tf.functions served by `export_saved_model` around a built segmenter.

    Args:
        model: a built `MemorySegmenter` / `DeepLabV3` taking normalised images.
        outputs: which of "logits", "probabilities", "labels" to return.
        test_scale: None to run the model at the request's resolution (memory grows
            with the request), or the evaluation `Resize` scale, e.g. (2048, 512)
            (see `serving_size`); logits are resized back to the input size.
        keep_ratio: keep the aspect ratio when resizing to `test_scale`.
        input_size: (H, W) to run every image at a fixed size; shorthand for
            `test_scale=(W, H), keep_ratio=False` (which it replaces).
        max_input_pixels: None or the largest H*W accepted per image (and for the
            padded outputs of an encoded batch); larger requests fail.
        max_batch_size: None or the largest number of images per request.

    Example:
    >>> import numpy as np, tensorflow as tf
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import MemorySegmenter
    >>> model = MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), 3,
    ...                         feats_channels=16, transform_channels=8, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> server = SegmentationServer(model, test_scale=(64, 32))
    >>> out = server.predict_images(tf.zeros((2, 40, 24, 3)))
    >>> tuple(out["labels"].shape), out["labels"].dtype.name
    ((2, 40, 24), 'int32')
    >>> [int(v) for v in server.serving_config(tf.constant([[40, 24]]))["model_size"][0]]
    [53, 32]
    """

    def __init__(
        self,
        model,
        outputs=DEFAULT_OUTPUTS,
        test_scale=None,
        keep_ratio=True,
        input_size=None,
        max_input_pixels=DEFAULT_MAX_INPUT_PIXELS,
        max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    ):
        self.model = model
        self.outputs = check_outputs(outputs)
        input_size = check_input_size(input_size)
        if input_size is not None:
            test_scale, keep_ratio = (input_size[1], input_size[0]), False
        self.test_scale = check_test_scale(test_scale)
        if not isinstance(keep_ratio, bool):
            raise ValueError(f"keep_ratio must be True or False, got {keep_ratio!r}")
        self.keep_ratio = keep_ratio
        self.max_input_pixels = check_limit("max_input_pixels", max_input_pixels)
        self.max_batch_size = check_limit("max_batch_size", max_batch_size)
        self.normalize = ImageNormalization(name="serving_normalization")
        # One tf.function per signature; the encoded-image functions call the image
        # function, so the model is traced once and shared by the signatures.
        self.serve_images = tf.function(
            self.predict_images,
            autograph=False,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")],
        )
        self.serve_image_bytes = tf.function(
            self.predict_encoded,
            autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
        )
        self.serve_tf_example = tf.function(
            self.predict_tf_example,
            autograph=False,
            input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
        )
        self.serve_config = tf.function(
            self.serving_config,
            autograph=False,
            input_signature=[tf.TensorSpec([None, 2], tf.int32, name="image_size")],
        )

    # -- what the export runs at, readable by clients -----------------------------
    def serving_config(self, image_size):
        """Int32 (B, 2) image sizes -> the sizes the model runs at, and the settings.

        Returns "model_size" int32 (B, 2); "test_scale" int32 (2,) ((0, 0): the
        request's size); "keep_ratio" bool; "max_input_pixels" int64 and
        "max_batch_size" int32 (0: no limit); "num_classes" int32. A size below 1
        fails with `InvalidArgumentError` naming the first such row.
        """
        image_size = tf.ensure_shape(tf.convert_to_tensor(image_size, tf.int32), [None, 2])
        bad = tf.reduce_any(image_size < 1, axis=1)  # (B,)
        # The first bad row (B when none: the appended row keeps an empty batch valid).
        first = tf.argmax(tf.concat([tf.cast(bad, tf.int32), [1]], 0), output_type=tf.int32)
        row = tf.gather(tf.concat([image_size, tf.ones((1, 2), tf.int32)], 0), first)
        with tf.control_dependencies(
            [
                _check(
                    tf.logical_not(tf.reduce_any(bad)),
                    "`image_size[{}]` is {}x{}: image sizes are (height, width) pairs >= 1",
                    (first, row[0], row[1]),
                )
            ]
        ):
            image_size = tf.identity(image_size)
        height, width = serving_size(
            image_size[:, 0], image_size[:, 1], self.test_scale, self.keep_ratio
        )
        return {
            "model_size": tf.stack([height, width], axis=1),
            "test_scale": tf.constant(self.test_scale or (0, 0), tf.int32),
            "keep_ratio": tf.constant(self.keep_ratio),
            "max_input_pixels": tf.constant(self.max_input_pixels or 0, tf.int64),
            "max_batch_size": tf.constant(self.max_batch_size or 0, tf.int32),
            "num_classes": tf.constant(int(self.model.num_classes), tf.int32),
        }

    # -- the core: (B, H, W, 3) float 0-255 -> dict at (H, W) -------------------
    def predict_images(self, images):
        """Float32 (B, H, W, 3) RGB 0-255 -> dict of outputs at (H, W), after checks."""
        # Loaded signatures do not check shapes: EnsureShape does, at run time.
        images = tf.ensure_shape(
            tf.convert_to_tensor(images), [None, None, None, 3], name="images_must_be_B_H_W_3"
        )
        shape = tf.shape(images)
        height, width = shape[1], shape[2]
        checks = self._batch_checks(shape[0], "images")
        checks.append(
            _check(
                tf.logical_and(height >= 1, width >= 1),
                "images must have height and width >= 1, got {}x{}",
                (height, width),
            )
        )
        checks += self._pixel_checks(height, width, "`images` are a batch of {}x{} images")
        with tf.control_dependencies(checks):
            finite = tf.math.is_finite(images)
        bad = tf.size(finite, tf.int64) - tf.math.count_nonzero(finite, dtype=tf.int64)
        with tf.control_dependencies(
            [
                _check(
                    tf.equal(bad, 0),
                    "`images` hold {} NaN or inf pixel values; send finite RGB values (0-255)",
                    (bad,),
                )
            ]
        ):
            images = tf.identity(images)
        return self.run_model(images)

    def run_model(self, images):
        """The unchecked core: float32 (B, H, W, 3) 0-255 -> dict at (H, W)."""
        images = tf.cast(images, tf.float32)
        size = tf.shape(images)[1:3]
        if self.test_scale is not None:
            model_size = tf.stack(serving_size(size[0], size[1], self.test_scale, self.keep_ratio))
            # Resize then normalise, as the evaluation pipeline does.
            images = tf.image.resize(images, model_size, method="bilinear")  # (B, h', w', 3)
        logits = tf.cast(self.model(self.normalize(images), training=False), tf.float32)
        if self.test_scale is not None:
            logits = tf.image.resize(logits, size, method="bilinear")  # (B, H, W, K)
        return self._heads(logits)

    def _heads(self, logits):
        # Finite but huge pixels (1e30) pass the input checks and give NaN logits: an
        # error for the client instead of NaN probabilities and all-zero labels.
        finite = tf.math.is_finite(logits)
        bad = tf.size(finite, tf.int64) - tf.math.count_nonzero(finite, dtype=tf.int64)
        check = _check(
            tf.equal(bad, 0),
            "the model's output holds {} NaN or inf values for these images; send RGB "
            "values in 0-255",
            (bad,),
        )
        with tf.control_dependencies([check]):
            logits = tf.identity(logits)
        result = {}
        if "logits" in self.outputs:
            result["logits"] = logits
        if "probabilities" in self.outputs:
            result["probabilities"] = tf.nn.softmax(logits, axis=-1)
        result["labels"] = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return result

    def _batch_checks(self, count, name):
        checks = [
            _check(
                count > 0,
                f"empty batch: `{name}` holds no image; send at least "
                "one (batch size 0 is not a valid request)",
            )
        ]
        if self.max_batch_size is not None:
            checks.append(
                _check(
                    count <= self.max_batch_size,
                    f"`{name}` holds {{}} images, above max_batch_size={self.max_batch_size} "
                    "(set at export); split the request",
                    (count,),
                )
            )
        return checks

    def _pixel_checks(self, height, width, what, values=(), advice="downscale first"):
        if self.max_input_pixels is None:
            return []
        pixels = tf.cast(height, tf.int64) * tf.cast(width, tf.int64)
        return [
            _check(
                pixels <= self.max_input_pixels,
                what + " = {} pixels, above max_input_pixels="
                f"{self.max_input_pixels} (set at export); {advice}",
                (*values, height, width, pixels),
            )
        ]

    # -- encoded images: decode one by one, pad to the largest -------------------
    def predict_encoded(self, image_bytes):
        """String (B,) JPEG/PNG/GIF/BMP -> padded outputs and "image_size" (B, 2)."""
        return self._predict_encoded(image_bytes, "image_bytes")

    def predict_tf_example(self, examples):
        """String (B,) serialized tf.Example with `image/encoded` -> as `predict_encoded`."""
        return self._predict_encoded(self._parse_examples(examples), "examples")

    def _predict_encoded(self, encoded, name):
        encoded = tf.convert_to_tensor(encoded, tf.string)
        count = tf.shape(encoded)[0]
        index = tf.range(count)
        with tf.control_dependencies(self._batch_checks(count, name)):
            # Sizes from the file headers: nothing is decoded before the limits pass.
            sizes = tf.map_fn(
                lambda a: self._header_size(a[0], a[1], name),
                (index, encoded),
                fn_output_signature=tf.int32,
            )  # (B, 2)
        max_size = tf.reduce_max(tf.concat([sizes, tf.ones((1, 2), tf.int32)], 0), axis=0)
        checks = self._pixel_checks(
            max_size[0],
            max_size[1],
            "the outputs of this request are padded to its largest height and width, {}x{}",
            advice="send these images in separate requests",
        )
        signature = {
            key: tf.TensorSpec(None, tf.int32 if key == "labels" else tf.float32)
            for key in self.outputs
        }

        def one(args):
            i, data, size = args
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image = tf.ensure_shape(image, [None, None, 3])  # uint8 (h, w, 3)
            with tf.control_dependencies(
                [
                    _check(
                        tf.reduce_all(tf.equal(tf.shape(image)[:2], size)),
                        f"invalid image: `{name}[{{}}]` decodes to {{}}x{{}} pixels but its header "
                        "says {}x{}",
                        (i, tf.shape(image)[0], tf.shape(image)[1], size[0], size[1]),
                    )
                ]
            ):
                out = self.serve_images(tf.cast(image[None], tf.float32))
            return {key: self._pad(value[0], max_size, key) for key, value in out.items()}

        with tf.control_dependencies(checks):
            # One image at a time (parallel_iterations=1): memory of one model run.
            result = tf.map_fn(
                one, (index, encoded, sizes), fn_output_signature=signature, parallel_iterations=1
            )
        k = self.model.num_classes
        for key in result:  # restore the static ranks lost in map_fn
            shape = [None, None, None] + ([] if key == "labels" else [k])
            result[key] = tf.ensure_shape(result[key], shape)
        result["image_size"] = sizes
        return result

    def _header_size(self, i, data, name):
        """Int32 (height, width) of an encoded JPEG/PNG/GIF/BMP, read from its header."""
        head = tf.strings.substr(
            tf.strings.join([tf.strings.substr(data, 0, _HEADER_BYTES), "\0" * _HEADER_BYTES]),
            0,
            _HEADER_BYTES,
        )
        b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)  # (32,)
        is_jpeg = tf.io.is_jpeg(data)
        is_png = tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n")
        is_gif = tf.equal(tf.strings.substr(head, 0, 3), b"GIF")
        is_bmp = tf.equal(tf.strings.substr(head, 0, 2), b"BM")
        valid = tf.reduce_any(tf.stack([is_jpeg, is_png, is_gif, is_bmp]))
        with tf.control_dependencies(
            [
                _check(
                    valid,
                    f"invalid image: `{name}[{{}}]` is not a JPEG/PNG/GIF/BMP file; its first "
                    "bytes (hex): {}",
                    (i, _hex(tf.strings.substr(data, 0, 8))),
                )
            ]
        ):
            b = tf.identity(b)

        def big_endian(k):  # uint32 at byte k
            return b[k] * 16777216 + b[k + 1] * 65536 + b[k + 2] * 256 + b[k + 3]

        def little_endian(k, n):  # unsigned int of n bytes at byte k
            return sum(b[k + j] * (256**j) for j in range(n))

        bmp_height = little_endian(22, 4)
        bmp_height = tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)  # top-down
        height = tf.where(is_png, big_endian(20), tf.where(is_gif, little_endian(8, 2), bmp_height))
        width = tf.where(
            is_png, big_endian(16), tf.where(is_gif, little_endian(6, 2), little_endian(18, 4))
        )
        size = tf.cond(
            is_jpeg,
            lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64),
            lambda: tf.stack([height, width]),
        )
        checks = [
            _check(
                tf.reduce_all(size >= 1),
                f"invalid image: `{name}[{{}}]` has a header size of {{}}x{{}}",
                (i, size[0], size[1]),
            )
        ]
        checks += self._pixel_checks(size[0], size[1], f"`{name}[{{}}]` is a {{}}x{{}} image", (i,))
        with tf.control_dependencies(checks):
            return tf.cast(tf.minimum(size, 2**31 - 1), tf.int32)

    def _parse_examples(self, examples):
        """String (B,) serialized tf.Example -> string (B,) `image/encoded`, or a clear error.

        `tf.io.parse_example` fails a request on a malformed string with its own
        message (which may hold the string's raw bytes); parsing in a `tf.data`
        pipeline with `ignore_errors` finds the bad element and names it instead.
        """
        examples = tf.convert_to_tensor(examples, tf.string)
        count = tf.shape(examples)[0]
        spec = {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, default_value="")}
        with tf.control_dependencies(self._batch_checks(count, "examples")):
            index = tf.range(count)
        parsed = (
            tf.data.Dataset.from_tensor_slices((index, examples))
            .map(
                tf.autograph.experimental.do_not_convert(
                    lambda i, s: (i, tf.io.parse_single_example(s, spec)[IMAGE_KEY])
                )
            )
            .ignore_errors()
        )
        sentinel = tf.data.Dataset.from_tensors((tf.constant(-1), tf.constant("")))
        ok_index, encoded = (
            parsed.concatenate(sentinel).batch(tf.cast(count, tf.int64) + 1).get_single_element()
        )  # (n_ok + 1,): ..., -1
        first_bad = tf.argmax(
            tf.not_equal(ok_index, tf.range(tf.size(ok_index))), output_type=tf.int32
        )
        encoded = encoded[:-1]
        empty = tf.equal(tf.strings.length(encoded), 0)
        parsed_all = _check(
            tf.equal(tf.size(ok_index), count + 1),
            f"`examples[{{}}]` is not a serialized tf.Example with one bytes feature `{IMAGE_KEY}`",
            (first_bad,),
        )
        with tf.control_dependencies([parsed_all]):  # indices below hold once all parsed
            has_image = _check(
                tf.logical_not(tf.reduce_any(empty)),
                f"`examples[{{}}]` has no feature `{IMAGE_KEY}` (or an empty "
                "one); put the encoded image there",
                (tf.argmax(empty, output_type=tf.int32),),
            )
        with tf.control_dependencies([has_image]):
            return tf.identity(encoded)

    @staticmethod
    def _pad(value, max_size, key):
        pad_h = max_size[0] - tf.shape(value)[0]
        pad_w = max_size[1] - tf.shape(value)[1]
        paddings = [[0, pad_h], [0, pad_w]] + ([] if key == "labels" else [[0, 0]])
        fill = _LABEL_PAD if key == "labels" else 0.0
        return tf.pad(value, paddings, constant_values=fill)
