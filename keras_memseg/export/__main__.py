"""Command line: export a saved `.keras` segmenter as a SavedModel or a TFLite file.

    python -m keras_memseg.export --checkpoint model.keras --format saved_model \\
        --output saved_models --name memseg --dataset ade20k [--version 3] \\
        [--outputs labels,probabilities] [--max_input_pixels 50000000]
    python -m keras_memseg.export --checkpoint model.keras --format tflite \\
        --output memseg_int8.tflite --input_size 512,512 --quantization int8 \\
        [--representative_images "calib/*.jpg"] [--overwrite]

The SavedModel resizes each image to the evaluation scale: --dataset NAME takes the
dataset's test resize, --test_scale 2048,512 [--no-keep_ratio] sets it, --test_scale
none runs at the request's size (unbounded memory), --input_size H,W at a fixed size;
default 2048,512 keeping the ratio. A bad flag is a one-line error (exit code 2), and
so is an --output that cannot be written (a read-only location), before anything loads.
"""

import argparse
import glob
import os
import sys

from keras_memseg.console import OneLineErrorParser
from keras_memseg.export.saved_model import check_model_name
from keras_memseg.export.signatures import DEFAULT_MAX_BATCH_SIZE
from keras_memseg.export.signatures import DEFAULT_MAX_INPUT_PIXELS
from keras_memseg.export.signatures import DEFAULT_TEST_SCALE
from keras_memseg.export.signatures import check_outputs
from keras_memseg.writable import file_problem
from keras_memseg.writable import folder_problem

PROG = "python -m keras_memseg.export"
# Flags that only mean something for one format (argparse default None = not given).
_SAVED_MODEL_ONLY = (
    "name",
    "version",
    "test_scale",
    "keep_ratio",
    "dataset",
    "max_input_pixels",
    "max_batch_size",
)
_TFLITE_ONLY = ("quantization", "representative_images")
_NONE = "none"  # what the type functions return for "none" (None means: flag not given)


def _pair(text):
    try:
        first, second = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two integers A,B (e.g. 512,512), got {text!r}"
        ) from None
    if first < 1 or second < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return first, second


def _optional_pair(text):
    return _NONE if text.strip().lower() == _NONE else _pair(text)


def _optional_positive(text):
    if text.strip().lower() == _NONE:
        return _NONE
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or none, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or none, got {text!r}")
    return value


def _flag(dest):
    return "--" + dest


def _build_parser():
    parser = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .keras file saved by model.save")
    parser.add_argument("--format", required=True, choices=("saved_model", "tflite"))
    parser.add_argument(
        "--output",
        required=True,
        help="saved_model: base folder (saved_models); tflite: the .tflite file",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="saved_model: the model name folder, one folder name (default memseg)",
    )
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="saved_model: version folder (default: the next integer)",
    )
    parser.add_argument(
        "--input_size",
        type=_pair,
        default=None,
        help="H,W: tflite input size (required); saved_model: run at this fixed size",
    )
    parser.add_argument(
        "--test_scale",
        type=_optional_pair,
        default=None,
        help="saved_model: evaluation resize scale, e.g. 2048,512 (default "
        f"{DEFAULT_TEST_SCALE[0]},{DEFAULT_TEST_SCALE[1]}); 'none' runs at the "
        "request's size (unbounded memory)",
    )
    parser.add_argument(
        "--keep_ratio",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="saved_model: keep the aspect ratio when resizing to --test_scale (default: keep)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="saved_model: take --test_scale and --keep_ratio from this "
        "dataset's evaluation resize (ade20k, cityscapes, lip, ...)",
    )
    parser.add_argument(
        "--max_input_pixels",
        type=_optional_positive,
        default=None,
        help="saved_model: largest H*W per image a request may carry "
        f"(default {DEFAULT_MAX_INPUT_PIXELS}; 'none': no limit)",
    )
    parser.add_argument(
        "--max_batch_size",
        type=_optional_positive,
        default=None,
        help="saved_model: most images per request "
        f"(default {DEFAULT_MAX_BATCH_SIZE}; 'none': no limit)",
    )
    parser.add_argument(
        "--quantization",
        default=None,
        choices=("none", "fp16", "dynamic", "int8"),
        help="tflite only (default none)",
    )
    parser.add_argument(
        "--representative_images",
        default=None,
        help="tflite int8: glob of calibration images (default: the sample set)",
    )
    parser.add_argument(
        "--outputs",
        default="probabilities,labels",
        help="comma-separated subset of logits,probabilities,labels",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version folder / .tflite file"
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    return parser


def parse_args(argv=None):
    """Parses and checks the flags; a bad flag exits with a one-line error (code 2)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    given = {key for key, value in vars(args).items() if value is not None}
    if args.format == "tflite":
        for key in _SAVED_MODEL_ONLY:
            if key in given:
                parser.error(f"{_flag(key)} applies to --format saved_model only")
        if args.input_size is None:
            parser.error("--format tflite needs --input_size H,W (TFLite shapes are static)")
        if args.representative_images is not None:
            if args.quantization != "int8":
                parser.error("--representative_images applies to --quantization int8 only")
            matches = glob.glob(args.representative_images)
            if not matches:
                parser.error(
                    f"--representative_images {args.representative_images!r} matches no file"
                )
            for path in matches:
                if not os.path.isfile(path):  # a folder, FIFO, device: never read
                    parser.error(f"--representative_images: {path} is not a regular file")
        if os.path.exists(args.output) and not args.overwrite:
            parser.error(f"--output {args.output} exists; pass --overwrite to replace it")
        problem = file_problem(args.output)
        if problem:
            parser.error(f"--output {args.output}: {problem}")
        args.quantization = args.quantization or "none"
    else:
        for key in _TFLITE_ONLY:
            if key in given:
                parser.error(f"{_flag(key)} applies to --format tflite only")
        _resolve_scale(parser, args, given)
        if args.version is not None and args.version < 0:
            parser.error(f"--version must be a non-negative integer, got {args.version}")
        args.name = "memseg" if args.name is None else args.name
        try:
            check_model_name(args.name)  # one folder: nothing is written outside --output
        except ValueError as error:
            parser.error(f"--{error}")  # "--name must be one folder name ..."
        # The version folder is made in <output>/<name>: that (or its nearest existing
        # parent) must be writable, checked before the checkpoint is loaded.
        problem = folder_problem(os.path.join(args.output, args.name))
        if problem:
            parser.error(f"--output {args.output}: {problem}")
        for key, default in (
            ("max_input_pixels", DEFAULT_MAX_INPUT_PIXELS),
            ("max_batch_size", DEFAULT_MAX_BATCH_SIZE),
        ):
            value = getattr(args, key)
            setattr(args, key, default if value is None else None if value == _NONE else value)
    try:
        args.outputs = check_outputs(tuple(v.strip() for v in args.outputs.split(",") if v.strip()))
    except ValueError as error:
        parser.error(f"--outputs: {error}")
    if not os.path.exists(args.checkpoint):
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    if not os.path.isfile(args.checkpoint):  # a folder, FIFO, device: never opened
        parser.error(f"--checkpoint {args.checkpoint}: {_not_a_file(args.checkpoint)}")
    return args


def _not_a_file(path):
    """What `path` is instead of a regular file (a folder, a FIFO, a device, ...)."""
    from keras_memseg.file_kinds import special_file_kind

    kind = "a folder" if os.path.isdir(path) else special_file_kind(path) or "not a file"
    return f"{kind}, not a .keras file"


def _resolve_scale(parser, args, given):
    """Sets args.test_scale / args.keep_ratio from --dataset, --test_scale, --input_size."""
    chosen = [key for key in ("dataset", "test_scale", "input_size") if key in given]
    if len(chosen) > 1:
        parser.error(
            f"{_flag(chosen[1])} cannot be combined with {_flag(chosen[0])}: "
            "pick one way to set the serving resolution"
        )
    if args.keep_ratio is not None and chosen and chosen[0] != "test_scale":
        parser.error(f"--keep_ratio applies to --test_scale only, not to {_flag(chosen[0])}")
    if args.dataset is not None:
        from keras_memseg.datasets import augment_config_for

        try:
            config = augment_config_for(args.dataset)
        except (KeyError, ValueError) as error:
            parser.error(f"--dataset: {error}")
        args.test_scale, args.keep_ratio = tuple(config.test_scale), config.test_keep_ratio
    elif not chosen:
        args.test_scale = DEFAULT_TEST_SCALE
    elif args.test_scale == _NONE:
        if args.keep_ratio is not None:
            parser.error("--keep_ratio has no effect with --test_scale none")
        args.test_scale = None
    args.keep_ratio = True if args.keep_ratio is None else args.keep_ratio


def _images_from_glob(pattern):
    import tensorflow as tf

    for path in sorted(glob.glob(pattern)):
        yield tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def main(argv=None):
    args = parse_args(argv)
    from keras_memseg.console import quiet_libraries

    quiet_libraries(args.verbose)
    import keras

    import keras_memseg.models  # noqa: F401  (registers the serializable classes)
    from keras_memseg.export import export_saved_model
    from keras_memseg.export import export_tflite

    try:
        model = keras.saving.load_model(args.checkpoint, compile=False)
    except Exception as error:  # any loading failure is a bad --checkpoint
        return _fail(
            2, f"--checkpoint {args.checkpoint}: cannot load it: {type(error).__name__}: {error}"
        )
    try:
        if args.format == "saved_model":
            path = export_saved_model(
                model,
                args.output,
                name=args.name,
                version=args.version,
                outputs=args.outputs,
                test_scale=args.test_scale,
                keep_ratio=args.keep_ratio,
                input_size=args.input_size,
                max_input_pixels=args.max_input_pixels,
                max_batch_size=args.max_batch_size,
                overwrite=args.overwrite,
            )
        else:
            data = (
                _images_from_glob(args.representative_images)
                if args.representative_images
                else None
            )
            path = export_tflite(
                model,
                args.output,
                input_size=args.input_size,
                quantization=args.quantization,
                representative_data=data,
                outputs=args.outputs,
                overwrite=args.overwrite,
            )
    except FileExistsError as error:
        return _fail(2, f"--output: {error} (--overwrite replaces it)")
    except OSError as error:  # made unwritable since the check, a full disk
        return _fail(1, f"--output {args.output}: cannot write it: {error}")
    except (TypeError, ValueError) as error:
        return _fail(1, str(error))
    print(path)
    return 0


def _fail(code, message):
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
