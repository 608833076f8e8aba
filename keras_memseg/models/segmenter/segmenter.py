"""`Segmenter`: what MemorySegmenter and the DeepLabV3 baseline share.

Architecture lives in the constructor (backbone, classes, heads); training policy
lives in `compile()` (`training_policy.py`), as KerasHub's `ImageSegmenter.compile`.

One training formulation for every backend: `call(images, training=True)` returns a
dict of training outputs (`logits`, `stage1`, `aux` upsampled to the input,
`features` at feature resolution); `call(images)` returns the final float32 logits
`(B, H, W, K)`. The losses (and MemorySegmenter's memory write) are computed in
`compute_loss`, which Keras calls inside its own `train_step` on TensorFlow, JAX
(`stateless_compute_loss` returns the assigned variables) and PyTorch, so `fit()`
needs no per-backend `train_step`. A model with `FORWARD_TAKES_LABELS` (MemorySegmenter)
gets `(images, labels, step)` as the input of its training forward pass in `fit()`.

The class is assembled from one module per concern: `training_policy.py` (compile,
losses, the step clock, metrics), `guards.py` (non-finite batches, labels, broken
weights), `keras_workarounds.py` (multi-worker hooks), `compat.py` (old configs),
`checks.py` (arguments and input arrays), `metadata.py` (class names and colours),
`preprocessor.py` (normalisation, test resize, inference mode), `segment.py` (raw
images to label maps) and `inference.py` (whole / slide / multi-scale + flip).
"""

import keras
from keras import ops

from keras_memseg import presets as preset_io
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.backbones import pyramid_feature_model
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers.resize import bilinear_resize
from keras_memseg.models.segmenter.checks import check_ignore_class
from keras_memseg.models.segmenter.checks import check_image_arrays
from keras_memseg.models.segmenter.checks import check_int
from keras_memseg.models.segmenter.checks import check_label_arrays
from keras_memseg.models.segmenter.compat import migrate_config
from keras_memseg.models.segmenter.guards import StepGuards
from keras_memseg.models.segmenter.keras_workarounds import MultiWorkerWorkarounds
from keras_memseg.models.segmenter.metadata import check_class_names
from keras_memseg.models.segmenter.metadata import check_palette
from keras_memseg.models.segmenter.metadata import default_class_names
from keras_memseg.models.segmenter.metadata import default_palette
from keras_memseg.models.segmenter.metadata import spec_labels
from keras_memseg.models.segmenter.new_classes import for_classes
from keras_memseg.models.segmenter.preprocessor import SegmenterPreprocessor
from keras_memseg.models.segmenter.segment import segment
from keras_memseg.models.segmenter.training_policy import TrainingPolicy
from keras_memseg.models.segmenter.training_policy import split_inputs


def resize_to(x, reference):
    """Bilinear (half-pixel) resize of `x` to the spatial size of `reference`, float32."""
    return bilinear_resize(ops.cast(x, "float32"), ops.shape(reference)[1:3])


def resolve_backbone(backbone, output_stride=8, sync_batchnorm=False, dtype=None):
    """A backbone model from a preset name (random weights) or the model itself."""
    if isinstance(backbone, str):
        return DilatedResNetBackbone.from_preset(
            backbone,
            load_weights=False,
            output_stride=output_stride,
            sync_batchnorm=sync_batchnorm,
            dtype=dtype,
        )
    return backbone


class Segmenter(TrainingPolicy, StepGuards, MultiWorkerWorkarounds, keras.Model):
    """Backbone resolution, auxiliary head, forward pass, metadata, config and preset I/O.

    Subclasses build their heads and implement `forward_heads`; `LOSS_TERMS` lists
    the loss names they can report (a class attribute, so nothing depends on the
    order of attribute assignments in constructors).

    A string `backbone` is built with random weights: for ImageNet weights build the
    backbone yourself and load them (`keras_memseg.convert.load_resnet_weights`, or
    `DilatedResNetBackbone.from_preset(name)` once the preset is converted).

    Metadata arguments (saved in the config, so `.keras` files and presets carry them;
    `set_dataset_info(spec)` sets all three from a dataset):
        class_names: K class names (default `class_<i>`).
        palette: K (r, g, b) colours, 0-255 (default: deterministic distinct colours).
        preprocessor: a `SegmenterPreprocessor` (or its config): normalisation, test
            resize and inference mode used by `segment()` (default: ImageNet
            normalisation, each image at its own size, whole inference).
    """

    LOSS_TERMS = ("stage2", "aux")
    # The train step hands `(images, labels, step)` to `call` (see `train_step`).
    FORWARD_TAKES_LABELS = False

    def __init__(
        self,
        backbone,
        num_classes,
        aux=True,
        aux_channels=512,
        dropout=0.1,
        activation="relu",
        ignore_class=255,
        output_stride=8,
        sync_batchnorm=False,
        dtype=None,
        class_names=None,
        palette=None,
        preprocessor=None,
        **kwargs,
    ):
        super().__init__(dtype=dtype, **kwargs)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self._set_metadata(class_names, palette, preprocessor)
        self.ignore_class = check_ignore_class(ignore_class, self.num_classes)
        self.output_stride = check_int("output_stride", output_stride, 1)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.backbone = resolve_backbone(backbone, self.output_stride, self.sync_batchnorm, dtype)
        self.pyramid = pyramid_feature_model(self.backbone)
        self.aux = bool(aux)
        self.aux_channels = check_int("aux_channels", aux_channels, 1)
        self.dropout = float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.activation = activation
        self.aux_head = None
        if self.aux:
            self.aux_head = SegmentationDecoder(
                self.num_classes,
                self.aux_channels,
                kernel_size=3,
                dropout=self.dropout,
                activation=activation,
                sync_batchnorm=self.sync_batchnorm,
                name="aux_head",
                dtype=self.dtype_policy,
            )
        self.init_training_policy()

    # -- metadata ------------------------------------------------------------------
    def _set_metadata(self, class_names, palette, preprocessor):
        names = check_class_names(class_names, self.num_classes)
        colours = check_palette(palette, self.num_classes)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        if preprocessor is not None and not isinstance(preprocessor, SegmenterPreprocessor):
            raise ValueError(
                "preprocessor must be a SegmenterPreprocessor (or its config), got "
                f"{type(preprocessor).__name__}"
            )
        # Plain attributes, not tracked sublayers: the preprocessor has no weights, and
        # setting it on a built model (JAX: stateless) or loading an older file must
        # not change the model's layer tree.
        object.__setattr__(self, "_class_names", names)
        object.__setattr__(self, "_palette", colours)
        object.__setattr__(self, "_preprocessor", preprocessor)
        if preprocessor is None and getattr(self, "_default_preprocessor", None) is None:
            # Made once, here: a property that made one per access would build a layer
            # each time Keras' saving walks the model's attributes.
            object.__setattr__(self, "_default_preprocessor", SegmenterPreprocessor())

    @property
    def class_names(self):
        """The K class names: those given, else `("class_0", ..., "class_{K-1}")`."""
        return self._class_names or default_class_names(self.num_classes)

    @property
    def palette(self):
        """The K (r, g, b) colours: those given, else deterministic distinct ones."""
        return self._palette or default_palette(self.num_classes)

    @property
    def preprocessor(self):
        """The `SegmenterPreprocessor` of `segment()` (a default one when none was set)."""
        return self._preprocessor or self._default_preprocessor

    @property
    def has_class_names(self):
        """Whether class names were given (not the generated `class_<i>`)."""
        return self._class_names is not None

    def set_metadata(self, class_names=None, palette=None, preprocessor=None):
        """Sets (replaces) the class names, palette and preprocessor; None clears one."""
        self._set_metadata(class_names, palette, preprocessor)

    def set_dataset_info(self, spec, **preprocessor_overrides):
        """Takes class names, palette, ignore class and test settings from a dataset.

        Works before or after the model is built; `model.save` and `save_to_preset`
        then carry them.

        Args:
            spec: a `DatasetSpec` (`keras_memseg.datasets.get_info(name)`), duck-typed:
                `class_names`, `palette`, `ignore_class`, `augment.test_scale`,
                `augment.test_keep_ratio`, `evaluation`, `flip_pairs` (a COCO-Stuff spec
                with another class count gives its variant's names).
            **preprocessor_overrides: `SegmenterPreprocessor` arguments to replace.

        Raises:
            ValueError: the dataset's class count is not the model's.
        """
        names, colours = spec_labels(spec, self.num_classes)
        preprocessor = SegmenterPreprocessor.from_dataset(spec, **preprocessor_overrides)
        ignore = getattr(spec, "ignore_class", None)
        if ignore is not None:
            self.ignore_class = check_ignore_class(ignore, self.num_classes)
        self._set_metadata(names, colours, preprocessor)
        return self

    def metadata(self):
        """`{"class_names", "palette", "test_scale", "keep_ratio", "mode", ...}`: what
        the model knows about its outputs, JSON-friendly (preset metadata, exports)."""
        pre = self.preprocessor.get_config()
        return {
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "ignore_class": self.ignore_class,
            **{
                key: pre[key]
                for key in ("test_scale", "keep_ratio", "mode", "slide_window", "slide_stride")
            },
        }

    def segment(self, images, return_probabilities=False, full_size=False):
        """Class-id maps of raw images, at each image's own size.

        Each image is resized to the preprocessor's test scale (bilinear; not with
        `full_size=True`), normalised, run whole or by sliding window at its scales /
        flips, and its scores resized back to the image's size before the argmax.

        Args:
            images: one RGB image (a uint8 or 0-255 float (H, W, 3) array, a PIL image,
                or a file path: read with Pillow, EXIF orientation applied), a list of
                them (any sizes), or a (B, H, W, 3) array.
            return_probabilities: also return the (H, W, K) float32 probabilities.
            full_size: run at each image's own size instead of the test scale.

        Returns:
            Label maps (uint8 when K <= 255, else int32): one (H, W) array for one
            image, a list for a list, a (B, H, W) array for a batch array; with
            `return_probabilities`, `(labels, probabilities)` shaped alike.

        Raises:
            ValueError: one line naming the bad input (dtype, shape, unreadable file).

        Example:
        >>> import numpy as np
        >>> from keras_memseg.backbones import DilatedResNetBackbone
        >>> from keras_memseg.models import DeepLabV3
        >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), 3,
        ...                   feats_channels=16, aux_channels=8, class_names=["a", "b", "c"])
        >>> labels = model.segment(np.zeros((40, 56, 3), "uint8"))
        >>> labels.shape, labels.dtype
        ((40, 56), dtype('uint8'))
        """
        return segment(self, images, return_probabilities, full_size)

    # -- to implement ------------------------------------------------------------
    def forward_heads(self, images, training=False):
        """A dict of feature-resolution outputs, `logits` at least (see the subclasses).

        Not named `forward`: on the PyTorch backend a Keras layer is a
        `torch.nn.Module` whose `__call__` dispatches to `forward`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward_heads")

    # -- forward -----------------------------------------------------------------
    def call(self, images, training=False):
        images, labels, step = split_inputs(images)
        # The state a training step may change besides the weights, read before the
        # forward pass updates it: restored when the batch turns out non-finite.
        state = (
            [ops.copy(ops.convert_to_tensor(v)) for v in self.guarded_state()] if training else []
        )
        extra = {"labels": labels, "step": step} if training and labels is not None else {}
        out = self.forward_heads(images, training=training, **extra)
        logits = resize_to(out["logits"], images)
        if not training:
            return logits
        result = {"logits": logits, "state": state}
        for key in ("stage1", "aux"):
            if key in out:
                result[key] = resize_to(out[key], images)
        for key in ("features", "memory_update"):
            if key in out:
                result[key] = out[key]
        return result

    # -- inputs checked before any step ----------------------------------------------
    def input_channels(self):
        """The image channels the backbone takes (3 for RGB), or None when unknown."""
        try:
            return int(self.backbone.input_shape[-1])
        except (AttributeError, TypeError, ValueError, IndexError):
            return None

    def predict(self, x=None, *args, **kwargs):
        self.check_finite("predict")
        check_image_arrays(x, "predict", self.input_channels())
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_finite("evaluate")
        check_image_arrays(x, "evaluate", self.input_channels())
        check_label_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        # Arrays are checked here, before any step: a second `fit` is traced with
        # relaxed (unknown) shapes, where only graph assertions could catch them.
        check_image_arrays(x, "fit", self.input_channels())
        check_label_arrays(x, y)
        return super().fit(x, y, *args, **kwargs)

    # -- serialization -----------------------------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "aux": self.aux,
            "aux_channels": self.aux_channels,
            "dropout": self.dropout,
            "activation": self.activation,
            "ignore_class": self.ignore_class,
            "output_stride": self.output_stride,
            "sync_batchnorm": self.sync_batchnorm,
            "class_names": None if self._class_names is None else list(self._class_names),
            "palette": None if self._palette is None else [list(c) for c in self._palette],
            "preprocessor": (
                None
                if self._preprocessor is None
                else keras.saving.serialize_keras_object(self._preprocessor)
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = migrate_config(cls, config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    def save_to_preset(self, preset_dir, metadata=None):
        """Saves config and weights (memory included) as a local preset folder; its
        `metadata.json` also records `metadata()` (class names, palette, test scale)."""
        preset_io.save_to_preset(self, preset_dir, {**self.metadata(), **(metadata or {})})

    @classmethod
    def from_preset(cls, preset, load_weights=True, num_classes=None, class_names=None):
        """Loads a preset folder, or a named preset once converted. Nothing is downloaded.

        Args:
            preset: a folder written by `save_to_preset` or `keras-memseg convert`, or
                a name of `cls.presets` (`MemorySegmenter.presets`: the authors'
                published MCIBI checkpoints), converted once with `keras-memseg convert
                FILE --preset NAME` into `keras_memseg.presets.preset_home()/NAME`. A
                name not converted yet raises a FileNotFoundError naming the file to
                download and the command to run; an unknown name a ValueError listing
                the known ones.
            load_weights: False builds the saved architecture with fresh weights.
            num_classes, class_names: fine-tune to another class set: the classifiers
                (and the memory's rows) start fresh for `num_classes` (or
                `len(class_names)`) classes, every other weight is the preset's
                (`keras_memseg.models.segmenter.new_classes.with_num_classes`).

        Example:
        >>> from keras_memseg.models import MemorySegmenter
        >>> "mcibi_resnet50_ade20k" in MemorySegmenter.presets
        True
        >>> try:
        ...     MemorySegmenter.from_preset("mcibi_resnet50_ade21k")
        ... except ValueError as error:
        ...     print(str(error)[:70])
        unknown preset 'mcibi_resnet50_ade21k': not a preset folder, and not a
        """
        named, pending = {}, [cls]
        while pending:  # the presets of `cls` and of its subclasses (Segmenter: all)
            klass = pending.pop()
            named.update(vars(klass).get("presets", {}))
            pending.extend(klass.__subclasses__())
        folder = preset_io.named_preset_folder(preset, named, owner=cls.__name__)
        model = preset_io.load_from_preset(folder, load_weights)
        if not isinstance(model, cls):
            raise ValueError(
                f"preset {folder} holds a {type(model).__name__}, not a {cls.__name__}"
            )
        return for_classes(model, num_classes, class_names)
