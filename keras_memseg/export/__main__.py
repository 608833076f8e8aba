"""Command line: export a saved segmenter as a SavedModel or a TFLite file.

    keras-memseg export --model runs/ade20k --format saved_model \\
        --out saved_models --name memseg [--dataset ade20k] [--version 3] \\
        [--outputs labels,probabilities] [--max_input_pixels 50000000]
    keras-memseg export --model model.keras --format tflite \\
        --out memseg_int8.tflite --input_size 512,512 --quantization int8 \\
        [--representative_images "calib/*.jpg"] [--overwrite]

`--model` is a `.keras` file, a preset folder (`keras-memseg convert X.pth --out P`) or a
run folder written by training (its `model.keras`). The SavedModel resizes each image to
the evaluation scale: --dataset NAME (or --data ROOT) takes the dataset's test resize,
--test_scale 512,2048 [--no-keep_ratio] sets it (height,width), --test_scale none runs
at the request's size (unbounded memory), --input_size H,W at a fixed size; without
these, the model's own test scale (`model.preprocessor`), else its run's dataset's, else
2048x512 keeping the ratio. A bad flag is a one-line error (exit code 2), and so is an
--out that cannot be written (a read-only location), before anything loads. Old
spellings (`--checkpoint`, `--output`) still work and print a note.
"""

import argparse
import glob
import os
import sys

from keras_memseg.console import OneLineErrorParser
from keras_memseg.console import alias_of
from keras_memseg.console import chosen_dataset
from keras_memseg.console import data_option
from keras_memseg.console import dataset_option
from keras_memseg.console import pair_hw
from keras_memseg.console import verbose_option
from keras_memseg.export.contract import DEFAULT_MAX_BATCH_SIZE
from keras_memseg.export.contract import DEFAULT_MAX_INPUT_PIXELS
from keras_memseg.export.contract import DEFAULT_TEST_SCALE
from keras_memseg.export.contract import check_model_name
from keras_memseg.export.contract import check_outputs
from keras_memseg.file_kinds import resolve_model_path
from keras_memseg.file_kinds import run_config_path
from keras_memseg.file_kinds import run_dataset
from keras_memseg.writable import file_problem
from keras_memseg.writable import folder_problem

PROG = "python -m keras_memseg.export"  # `keras-memseg export` runs the same `main`
# Flags that only mean something for one format (argparse default None = not given).
_SAVED_MODEL_ONLY = (
    "name",
    "version",
    "test_scale",
    "keep_ratio",
    "dataset",
    "data",
    "max_input_pixels",
    "max_batch_size",
)
_TFLITE_ONLY = ("quantization", "representative_images")
_NONE = "none"  # what the type functions return for "none" (None means: flag not given)


def _optional_pair(text):
    """`H,W` -> mmseg's (w, h) (`keras_memseg.export`'s test_scale), or "none"."""
    if text.strip().lower() == _NONE:
        return _NONE
    height, width = pair_hw(text)
    return width, height


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


def _build_parser(prog=PROG):
    parser = OneLineErrorParser(prog=prog, description=__doc__.splitlines()[0])
    model = parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help="a .keras file, a preset folder or a run folder written by training "
        "(required; e.g. --model runs/sample)",
    )
    parser.add_argument("--checkpoint", **alias_of(model))
    parser.add_argument(
        "--format",
        required=True,
        choices=("saved_model", "tflite"),
        help="what to write (required; e.g. --format saved_model)",
    )
    out = parser.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="saved_model: the base folder; tflite: the .tflite file (required; e.g. "
        "--out saved_models or --out memseg.tflite)",
    )
    parser.add_argument("--output", **alias_of(out))
    parser.add_argument(
        "--name",
        default=None,
        help="saved_model: the model name folder, one folder name (default: memseg; e.g. "
        "--name memseg_ade20k)",
    )
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="saved_model: version folder (default: the next integer; e.g. --version 3)",
    )
    parser.add_argument(
        "--input_size",
        type=pair_hw,
        default=None,
        metavar="H,W",
        help="height,width: tflite input size (required there); saved_model: run at this "
        "fixed size (default: none; e.g. --input_size 512,512)",
    )
    parser.add_argument(
        "--test_scale",
        type=_optional_pair,
        default=None,
        metavar="H,W",
        help="saved_model: evaluation resize target, height,width; with --keep_ratio the "
        "image fits inside max(H,W) x min(H,W), mmseg's (long, short), else it becomes "
        "HxW, stored as mmseg's (w, h); 'none' runs at the request's size (unbounded "
        "memory) (default: the model's, else its run's dataset's, else "
        f"{DEFAULT_TEST_SCALE[1]},{DEFAULT_TEST_SCALE[0]}; e.g. --test_scale 512,2048)",
    )
    parser.add_argument(
        "--keep_ratio",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="saved_model: keep the aspect ratio when resizing to --test_scale (default: "
        "keep; e.g. --no-keep_ratio)",
    )
    parser.add_argument(
        "--dataset",
        **dataset_option(
            "the model's test scale; saved_model only: take --test_scale and --keep_ratio "
            "from this dataset's evaluation resize"
        ),
    )
    parser.add_argument("--data", **data_option())
    parser.add_argument(
        "--max_input_pixels",
        type=_optional_positive,
        default=None,
        help="saved_model: largest H*W per image a request may carry "
        f"(default: {DEFAULT_MAX_INPUT_PIXELS}; 'none': no limit; e.g. "
        "--max_input_pixels 10000000)",
    )
    parser.add_argument(
        "--max_batch_size",
        type=_optional_positive,
        default=None,
        help="saved_model: most images per request "
        f"(default: {DEFAULT_MAX_BATCH_SIZE}; 'none': no limit; e.g. --max_batch_size 8)",
    )
    parser.add_argument(
        "--quantization",
        default=None,
        choices=("none", "fp16", "dynamic", "int8"),
        help="tflite only (default: none; e.g. --quantization int8)",
    )
    parser.add_argument(
        "--representative_images",
        default=None,
        help="tflite int8: glob of calibration images (default: the sample set; e.g. "
        "--representative_images 'calib/*.jpg')",
    )
    parser.add_argument(
        "--outputs",
        default="probabilities,labels",
        help="comma-separated subset of logits,probabilities,labels (default: "
        "probabilities,labels; e.g. --outputs labels)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing version folder / .tflite file (default: refuse; e.g. "
        "--overwrite)",
    )
    parser.add_argument("--verbose", **verbose_option())
    return parser


def parse_args(argv=None, prog=PROG):
    """Parses and checks the flags; a bad flag exits with a one-line error (code 2)."""
    parser = _build_parser(prog)
    args = parser.parse_args(argv)
    for key in ("model", "out"):  # not argparse-required: their old spellings count
        if getattr(args, key) is None:
            parser.error(f"the following arguments are required: --{key}")
    chosen_dataset(parser, args)
    given = {key for key, value in vars(args).items() if value is not None}
    args.scale_source = "flags"  # or "default", "run": see _resolve_scale
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
        if os.path.exists(args.out) and not args.overwrite:
            parser.error(f"--out {args.out} exists; pass --overwrite to replace it")
        problem = file_problem(args.out)
        if problem:
            parser.error(f"--out {args.out}: {problem}")
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
            check_model_name(args.name)  # one folder: nothing is written outside --out
        except ValueError as error:
            parser.error(f"--{error}")  # "--name must be one folder name ..."
        # The version folder is made in <output>/<name>: that (or its nearest existing
        # parent) must be writable, checked before the checkpoint is loaded.
        problem = folder_problem(os.path.join(args.out, args.name))
        if problem:
            parser.error(f"--out {args.out}: {problem}")
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
    _resolve_model(parser, args)
    if args.scale_source == "default":  # no flag chose it: the run's dataset, if any
        config = run_config_path(args.model_path)
        name = run_dataset(config) if config else None
        if name is not None:
            _scale_of_dataset(parser, args, name, f"{config} names dataset {name!r}")
            args.scale_source = "run"
    return args


def _resolve_model(parser, args):
    """args.model_path: the file or preset folder `--model` names (a FIFO, a device, a
    missing path or a folder that is neither a preset nor a run: one line, never opened)."""
    try:
        args.model_path = resolve_model_path(args.model)
    except ValueError as error:
        parser.error(f"--model: {error}")


def _resolve_scale(parser, args, given):
    """Sets args.test_scale / args.keep_ratio from --dataset, --test_scale, --input_size."""
    if "data" in given:  # --data ROOT is --dataset ROOT
        given = (given - {"data"}) | {"dataset"}
        args.dataset = args.data
    chosen = [key for key in ("dataset", "test_scale", "input_size") if key in given]
    if len(chosen) > 1:
        parser.error(
            f"{_flag(chosen[1])} cannot be combined with {_flag(chosen[0])}: "
            "pick one way to set the serving resolution"
        )
    if args.keep_ratio is not None and chosen and chosen[0] != "test_scale":
        parser.error(f"--keep_ratio applies to --test_scale only, not to {_flag(chosen[0])}")
    if args.dataset is not None:
        _scale_of_dataset(parser, args, args.dataset, "--dataset")
    elif not chosen:
        args.test_scale = DEFAULT_TEST_SCALE
        args.scale_source = "default"
    elif args.test_scale == _NONE:
        if args.keep_ratio is not None:
            parser.error("--keep_ratio has no effect with --test_scale none")
        args.test_scale = None
    args.keep_ratio = True if args.keep_ratio is None else args.keep_ratio


def _scale_of_dataset(parser, args, name, where):
    """args.test_scale / args.keep_ratio: dataset `name`'s evaluation resize."""
    from keras_memseg.datasets import get_info

    try:
        augment = get_info(name).augment
    except (KeyError, ValueError) as error:
        parser.error(f"{where}: {str(error).splitlines()[0]}")
    args.test_scale, args.keep_ratio = tuple(augment.test_scale), augment.test_keep_ratio


def _model_scale(model, args):
    """The model's own test resize (`model.preprocessor`, None for older models) when no
    flag chose one: sets args.test_scale / args.keep_ratio."""
    preprocessor = getattr(model, "preprocessor", None)
    if args.scale_source == "flags" or preprocessor is None:
        return
    if getattr(preprocessor, "test_scale", None) is not None:
        args.test_scale = tuple(preprocessor.test_scale)  # mmseg's (w, h) / (long, short)
        args.keep_ratio = bool(getattr(preprocessor, "keep_ratio", True))


def _images_from_glob(pattern):
    import tensorflow as tf

    for path in sorted(glob.glob(pattern)):
        yield tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def main(argv=None, prog=PROG):
    """Runs `keras-memseg export ARGV...` (`argv` without the program name); returns the
    exit status. Flags are parsed and checked before TensorFlow loads."""
    args = parse_args(argv, prog)
    from keras_memseg.console import quiet_libraries

    quiet_libraries(args.verbose >= 2)
    import keras

    import keras_memseg.models  # noqa: F401  (registers the serializable classes)
    from keras_memseg.export import export_saved_model
    from keras_memseg.export import export_tflite
    from keras_memseg.models import load_segmenter

    try:
        if os.path.isdir(args.model_path):  # a preset folder
            model = load_segmenter(args.model_path)
        else:
            model = keras.saving.load_model(args.model_path, compile=False)
    except Exception as error:  # any loading failure is a bad --model
        return _fail(2, f"--model {args.model}: cannot load it: {type(error).__name__}: {error}")
    _model_scale(model, args)
    try:
        if args.format == "saved_model":
            path = export_saved_model(
                model,
                args.out,
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
                args.out,
                input_size=args.input_size,
                quantization=args.quantization,
                representative_data=data,
                outputs=args.outputs,
                overwrite=args.overwrite,
            )
    except FileExistsError as error:
        return _fail(2, f"--out: {error} (--overwrite replaces it)")
    except OSError as error:  # made unwritable since the check, a full disk
        return _fail(1, f"--out {args.out}: cannot write it: {error}")
    except (TypeError, ValueError) as error:
        return _fail(1, str(error))
    print(path)
    return 0


def _fail(code, message):
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
