"""Command line: label maps and overlays with a legend for image files and folders.

    python -m keras_memseg.predict --model runs/sample photos/ street.jpg --out predictions \\
        [--dataset camvid] [--test_scale H,W | --full_size] [--mode whole|slide] \\
        [--slide_window H,W] [--slide_stride H,W] [--max_size 1024] \\
        [--scales 0.75,1.0,1.25] [--flip] [--recursive] [--overwrite] [--verbose 0|1|2]

--model: a .keras file, a run folder (holding model.keras), a preset folder (config.json +
model.weights.h5) or an exported SavedModel (version folder, or the model folder: its
highest version). Class names, palette, test resize and inference mode come from the
model (set by training or conversion) unless --dataset or the flags say otherwise. Writes
`<out>/<stem>.png` (palette PNG, pixel value = class id) and `<out>/<stem>_overlay.png`.
Exit status: 0 all images done (or skipped: outputs exist), 1 an input failed (not an
image, or too large for the memory left: one line naming it, its size and the memory it
needs), 2 bad --model or flags (an --out that cannot be written: a read-only location).
"""

import argparse
import os
import shutil
import sys
import time
import warnings

from keras_memseg.console import chosen_dataset
from keras_memseg.console import data_option


def _scales(text):
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected positive numbers like 0.75,1.0,1.25, got {text!r}"
        )
    return values


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text!r}")
    return value


def _alpha(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _pair(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected two positive integers H,W, got {text!r}")
    return values


def _verbosity(text):
    if text not in ("0", "1", "2"):
        raise argparse.ArgumentTypeError(f"expected 0, 1 or 2, got {text!r}")
    return int(text)


# Old spellings: (old flag, new flag, the value the new one gets; None: the old one's).
ALIASES = (("--quiet", "--verbose", "0"),)


def _translate_aliases(argv, stream=None):
    """`argv` with every old flag spelling replaced by the new one, and one line
    `note: --old is now --new` on `stream` (stderr) per old flag used."""
    stream = sys.stderr if stream is None else stream
    out, noted = [], set()
    for index, token in enumerate(argv):
        following = argv[index + 1] if index + 1 < len(argv) else None
        if token == "--verbose" and following not in ("0", "1", "2"):
            out.append("--verbose=2")  # bare: not followed by an input path's name
            continue
        name, eq, value = token.partition("=")
        for old, new, fixed in ALIASES:
            if name == old and token.startswith("--"):
                if old not in noted:
                    shown = f"{new} {fixed}" if fixed is not None else new
                    print(f"note: {old} is now {shown}", file=stream)
                    noted.add(old)
                token = f"{new}={fixed}" if fixed is not None else new + eq + value
                break
        out.append(token)
    return out


def parse_args(argv=None, prog="python -m keras_memseg.predict"):
    argv = _translate_aliases(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files (PNG, JPEG, BMP, ...) and folders of images (e.g. photos/ street.jpg)",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a run folder (its model.keras), a .keras file, a preset folder or a SavedModel "
        "folder (required; e.g. --model runs/sample)",
    )
    parser.add_argument(
        "--out", required=True, help="output folder, created (required; e.g. --out predictions)"
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="dataset name or folder (camvid, ade20k, ...): its test resize, inference mode, "
        "class names and palette (default: the model's own; e.g. --dataset ade20k)",
    )
    parser.add_argument("--data", **data_option())
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--test_scale",
        type=_pair,
        default=None,
        metavar="H,W",
        help="resize images to H,W (height,width) before the model (keeping the aspect "
        "ratio when the model's/dataset's test resize does: fit within H,W either way "
        "round); default: the model's or dataset's test scale; e.g. --test_scale 512,2048",
    )
    size.add_argument(
        "--full_size",
        action="store_true",
        help="run at each image's own size (default: off; no test resize, memory grows with "
        "the image)",
    )
    parser.add_argument(
        "--mode",
        choices=("whole", "slide"),
        default=None,
        help="whole image or sliding window (default: the model's or dataset's; e.g. --mode slide)",
    )
    parser.add_argument(
        "--slide_window",
        type=_pair,
        default=None,
        metavar="H,W",
        help="sliding window size (default: the model's or dataset's; e.g. --slide_window 512,512)",
    )
    parser.add_argument(
        "--slide_stride",
        type=_pair,
        default=None,
        metavar="H,W",
        help="sliding window step (default: the model's or dataset's; e.g. --slide_stride 341,341)",
    )
    parser.add_argument(
        "--max_size",
        type=_positive_int,
        default=None,
        help="cap the long side the model sees, in pixels; outputs keep the image size "
        "(default: no cap; e.g. --max_size 1024)",
    )
    parser.add_argument(
        "--scales",
        type=_scales,
        default=(1.0,),
        help="test-time scales, e.g. 0.75,1.0,1.25 (default 1.0)",
    )
    parser.add_argument(
        "--flip", action="store_true", help="add horizontally flipped runs (default: off)"
    )
    parser.add_argument(
        "--recursive", action="store_true", help="also read subfolders (default: off)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (default: off: an interrupted run finishes the rest)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.5,
        help="colour weight of the overlay, 0-1 (default 0.5; e.g. --alpha 0.3)",
    )
    parser.add_argument(
        "--verbose",
        type=_verbosity,
        nargs="?",
        const=2,
        default=1,
        metavar="0|1|2",
        help="0: only errors (and the summary if one failed); 1 (default): progress; "
        "2 (bare --verbose): also TensorFlow/absl INFO logs",
    )
    args = parser.parse_args(argv)
    args.dataset = chosen_dataset(parser, args)
    return args


def _set_logging(verbose):
    verbose = verbose >= 2
    # Takes effect for TensorFlow's C++ logs only if TensorFlow is not imported yet.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "1")
    import logging

    from absl import logging as absl_logging

    level = logging.INFO if verbose else logging.WARNING
    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(level)
    if not verbose:
        from keras_memseg.console import quiet_libraries

        quiet_libraries()


class _Progress:
    """One self-rewriting line on a terminal: [=====>    ] 3/16 name."""

    def __init__(self, stream, total):
        self.stream, self.total, self.index, self.name = stream, total, 0, ""

    def _draw(self):
        width = shutil.get_terminal_size((80, 20)).columns
        bar = 24
        done = int(bar * self.index / max(self.total, 1))
        text = (
            f"[{'=' * done}{'>' if done < bar else ''}{' ' * (bar - done - 1)}] "
            f"{self.index}/{self.total} {self.name}"
        )
        self.stream.write("\r\033[K" + text[: max(width - 1, 10)])
        self.stream.flush()

    def update(self, index, name):
        self.index, self.name = index, name
        self._draw()

    def message(self, line):
        self.stream.write("\r\033[K" + line + "\n")
        self._draw()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def main(argv=None, prog="python -m keras_memseg.predict"):
    """Runs the command with `argv` (default: `sys.argv[1:]`); `prog`: the name its
    messages use (`keras-memseg predict` from the console command)."""
    args = parse_args(argv, prog)
    args.quiet = args.verbose == 0
    _set_logging(args.verbose)
    from keras_memseg.predict import ModelLoadError
    from keras_memseg.predict import load_predictor
    from keras_memseg.predict import predict_files
    from keras_memseg.writable import folder_problem

    problem = folder_problem(args.out)  # before the model loads: a read-only --out
    if problem:
        print(f"error: --out {args.out}: {problem}", file=sys.stderr)
        return 2
    if args.dataset is not None:
        from keras_memseg.datasets import get_info

        try:
            get_info(args.dataset)
        except ValueError as error:
            print(f"error: --dataset {' '.join(str(error).split())}", file=sys.stderr)
            return 2
    try:
        segmenter = load_predictor(args.model)
    except ModelLoadError as error:
        print(f"error: --model {error}", file=sys.stderr)
        return 2

    progress = None
    if not args.quiet and sys.stderr.isatty():
        progress = _Progress(sys.stderr, 0)
    last = [time.perf_counter()]

    def callback(index, total, path, status, detail):
        now = time.perf_counter()
        seconds, last[0] = now - last[0], now
        if status == "failed":
            line, stream = f"error: {detail}", sys.stderr
        elif status == "skipped":
            line, stream = f"skipped {path}: {detail}", sys.stdout
        else:
            label_path, overlay_path, (height, width), count = detail
            line, stream = (
                (
                    f"{path} -> {label_path}, {overlay_path} ({width}x{height}, "
                    f"{count} classes, {seconds:.2f} s)"
                ),
                sys.stdout,
            )
        if progress is not None:
            progress.total = total
            if status != "written":
                progress.message(line)
            progress.update(index, os.path.basename(path))
        elif status == "failed" or not args.quiet:
            print(line, file=stream, flush=True)

    def show_warning(message, *args, **kwargs):
        if progress is not None:
            progress.message(f"warning: {message}")
        else:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    began = time.perf_counter()
    try:
        with warnings.catch_warnings():  # library warnings (empty memory, ...): one line
            warnings.simplefilter("default")
            warnings.showwarning = show_warning
            result = predict_files(
                segmenter,
                args.inputs,
                args.out,
                dataset=args.dataset,
                max_size=args.max_size,
                scales=args.scales,
                flip=args.flip,
                recursive=args.recursive,
                overwrite=args.overwrite,
                alpha=args.alpha,
                callback=callback,
                # H,W on the command line; mmsegmentation's (w, h) inside
                test_scale=None if args.test_scale is None else args.test_scale[::-1],
                mode=args.mode,
                slide_window=args.slide_window,
                slide_stride=args.slide_stride,
                full_size=args.full_size,
            )
    except ValueError as error:  # the dataset's class count, --out made unwritable since
        if progress is not None:
            progress.close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    if progress is not None:
        progress.close()
    elapsed = time.perf_counter() - began
    found = len(result.written) + len(result.skipped) + len(result.failed)
    if not found:
        print(
            f"error: no image files in {' '.join(args.inputs)}"
            + (
                f" ({len(result.ignored)} files without an image extension)"
                if result.ignored
                else ""
            ),
            file=sys.stderr,
        )
        return 1
    parts = [f"{len(result.written)} predicted"]
    if result.skipped:
        parts.append(f"{len(result.skipped)} skipped (outputs exist; --overwrite replaces them)")
    if result.failed:
        parts.append(f"{len(result.failed)} failed")
    if result.ignored:
        parts.append(f"{len(result.ignored)} ignored (no image extension)")
    if result.failed or not args.quiet:
        print(
            f"{', '.join(parts)} in {elapsed:.1f} s; outputs in {args.out}",
            file=sys.stderr if result.failed else sys.stdout,
        )
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
