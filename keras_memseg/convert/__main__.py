"""python -m keras_memseg.convert: a PyTorch checkpoint as a keras_memseg preset folder.

    keras-memseg convert mcibi_deeplabv3_r50_ade20k.pth --preset mcibi_resnet50_ade20k
    keras-memseg convert mcibi_resnet50_ade20k
    python -m keras_memseg.convert mcibi_deeplabv3_resnet50os8_ade20k.pth --out ade20k_r50
    python -m keras_memseg.convert resnet50_v1c-2cccc1ad.pth --preset resnet50_v1c
    python -m keras_memseg.convert resnet50-19c8e357.pth --out torchvision_r50

The architecture is read from the checkpoint (the authors' MCIBI or DeepLabV3, an
open-mmlab ResNet-V1c or a torchvision ResNet); what the weights do not hold comes
from the flags, whose defaults are the paper's. `--out DIR` writes the folder
anywhere; `--preset NAME` writes into `keras_memseg.presets.preset_home()`: a backbone
preset (`DilatedResNetBackbone.presets`, backbone checkpoints) for
`DilatedResNetBackbone.from_preset(NAME)`, or a named MCIBI preset
(`MemorySegmenter.presets`, the authors' published checkpoints) for
`MemorySegmenter.from_preset(NAME)`. A published checkpoint is known by its file name
(`mcibi_deeplabv3_r50_ade20k.pth`): without `--out`/`--preset` it goes to its named preset,
and the source may be the preset's name (its file is then looked for in the current
folder). Every checkpoint's SHA-256 is printed and recorded in metadata.json; a
published one whose table entry has a hash must match it. A segmentor gets the class
names, palette, test resize and inference mode of `--dataset NAME` (default: a named
preset's dataset, else the dataset its file name names, `..._ade20k.pth`, when the class
counts match; else a one-line note). Bad input prints one line and exits with status 2.
"""

import argparse
import hashlib
import os
import sys

from keras_memseg.console import OneLineErrorParser
from keras_memseg.console import quiet_libraries

EXIT_BAD_INPUT = 2
PROG = "python -m keras_memseg.convert"
# What a named preset's architecture is, where its config does not say otherwise.
_PRESET_DEFAULTS = {
    "depth": 50,
    "base_channels": 64,
    "stem_channels": 32,
    "stem": "deep",
    "shortcut": "conv",
}


def _ints(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _parser(prog=PROG):
    p = OneLineErrorParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument(
        "source",
        help="a PyTorch checkpoint (.pth), or the name of a published MCIBI preset "
        "(its file is then read from the current folder)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", help="the preset folder to write")
    where.add_argument(
        "--preset",
        help="write into the preset home as this named preset: a DilatedResNetBackbone "
        "preset (backbone checkpoints) or an MCIBI preset (the authors' published "
        "checkpoints; the default for a file of theirs)",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="the dataset a segmentor was trained on (a registered name or a dataset "
        "folder): class names, palette, test scale; default: from the file name",
    )
    p.add_argument("--output_stride", type=int, choices=(8, 16, 32), default=8)
    p.add_argument(
        "--aspp_rates",
        type=_ints,
        default=(1, 12, 24, 36),
        help="ASPP dilations, comma separated (1,12,24,36)",
    )
    p.add_argument(
        "--ppm_bins", type=_ints, default=(1, 2, 3, 6), help="PPM bins, comma separated (1,2,3,6)"
    )
    p.add_argument("--activation", choices=("relu", "leaky_relu"), default="relu")
    p.add_argument("--dropout", type=_rate, default=0.1)
    p.add_argument(
        "--hard_aggregate",
        action="store_true",
        help="read the memory with the argmax (use_hard_aggregate)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the preset in a folder that already holds one",
    )
    p.add_argument(
        "--print_mapping", action="store_true", help="print the PyTorch key -> Keras weight table"
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    return p


def _sha256(path):
    """The SHA-256 of the file at `path` (hex), or None for something else (a folder)."""
    if not os.path.isfile(path):
        return None  # convert_checkpoint says what is wrong with it
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _published(args, table):
    """`(name, path)`: the named MCIBI preset this command converts (None: none) and
    the checkpoint file to read. `table`: `MemorySegmenter.presets`."""
    from keras_memseg import presets as preset_io

    path, name = args.source, None
    if args.source in table and not os.path.exists(args.source):
        name, path = args.source, table[args.source]["file"]  # in the current folder
    else:
        by_file = [n for n, e in table.items() if e["file"] == os.path.basename(args.source)]
        name = by_file[0] if by_file else None
    if args.preset in table:
        if name is not None and name != args.preset:
            raise ValueError(
                f"{args.source} is the published checkpoint of preset {name!r}, not of "
                f"--preset {args.preset!r}"
            )
        name = args.preset
    if name is None:
        return None, path
    entry = table[name]
    if not entry["convertible"]:
        raise ValueError(preset_io.unsupported_message(name, entry))
    if args.source == name and not os.path.isfile(path):
        raise ValueError(
            f"{path} is not in {os.getcwd()}: download {entry['source']} into this folder "
            f"(or pass its path), then run: {entry['convert_command']}"
        )
    return name, path


def _check_sha256(path, digest, name, table):
    expected = table[name]["sha256"] if name is not None else None
    if expected is not None and digest != expected:
        raise ValueError(
            f"{path}: sha256 {digest} is not the published checkpoint's {expected} "
            f"(preset {name!r}): a different file or a broken download; nothing written"
        )


def _target_folder(args, model, name):
    from keras_memseg import presets as preset_io
    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import MemorySegmenter

    if args.out:
        return args.out
    if args.preset is None or args.preset not in DilatedResNetBackbone.presets:
        if not isinstance(model, MemorySegmenter):
            raise ValueError(
                f"{args.source} holds a {type(model).__name__}, not the MemorySegmenter of "
                f"preset {name!r}"
            )
        return os.path.join(preset_io.preset_home(), name)
    if not isinstance(model, DilatedResNetBackbone):
        raise ValueError(
            f"--preset {args.preset} is a backbone preset, for backbone checkpoints; "
            f"{args.source} holds a {type(model).__name__}: use --out DIR (or --preset "
            "with the name of its published MCIBI preset)"
        )
    expected = {**_PRESET_DEFAULTS, **DilatedResNetBackbone.presets[args.preset]["config"]}
    got = model.get_config()
    wrong = {key: got[key] for key in _PRESET_DEFAULTS if got[key] != expected[key]}
    if wrong:
        raise ValueError(
            f"{args.source} does not hold preset {args.preset!r} ({expected}): its {wrong}"
        )
    return os.path.join(preset_io.preset_home(), args.preset)


def _dataset_name(dataset, model, path):
    """The dataset whose metadata `model` got (None: none, or a backbone)."""
    if not getattr(model, "has_class_names", False):
        return None
    if dataset is not None:
        return dataset
    from keras_memseg.convert.metadata import dataset_from_filename

    return dataset_from_filename(path)


def _source_url(name, args, table):
    """Where the converted file was published (None: not a named preset's file)."""
    from keras_memseg.backbones import DilatedResNetBackbone

    if name is not None:
        return table[name]["source"]
    return DilatedResNetBackbone.presets.get(args.preset or "", {}).get("source") or None


def main(argv=None, prog=PROG):
    parser = _parser(prog)
    args = parser.parse_args(argv)
    quiet_libraries(args.verbose)
    import warnings

    try:
        from keras_memseg import presets as preset_io
        from keras_memseg.backbones import DilatedResNetBackbone
        from keras_memseg.convert.from_torch import convert_checkpoint
        from keras_memseg.models import MemorySegmenter

        table = MemorySegmenter.presets
        if args.preset and args.preset not in DilatedResNetBackbone.presets:
            if args.preset not in table:
                raise ValueError(
                    f"unknown preset {args.preset!r}: not a backbone preset "
                    f"({', '.join(sorted(DilatedResNetBackbone.presets))}) nor an MCIBI "
                    f"preset ({', '.join(sorted(table))})"
                )
        name, path = _published(args, table)
        if not args.out and not args.preset and name is None:
            parser.error(
                "one of the arguments --out --preset is required (the authors' published "
                "checkpoints, MemorySegmenter.presets, go to their named preset by default)"
            )
        digest = _sha256(path)
        _check_sha256(path, digest, name, table)
        dataset = args.dataset
        if dataset is None and name is not None:
            dataset = table[name]["dataset"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            model, mapping = convert_checkpoint(
                path,
                output_stride=args.output_stride,
                aspp_rates=args.aspp_rates,
                ppm_bins=args.ppm_bins,
                activation=args.activation,
                dropout=args.dropout,
                hard_aggregate=args.hard_aggregate,
                dataset=dataset,
            )
        notes = [str(w.message) for w in caught if "class names" in str(w.message)]
        folder = _target_folder(args, model, name)
        if preset_io.is_preset_dir(folder) and not args.overwrite:
            raise ValueError(f"{folder} already holds a preset (pass --overwrite to replace it)")
        model.save_to_preset(
            folder,
            metadata={
                "converted_from": os.path.basename(path),
                "converter": "keras_memseg.convert",
                "source_format": "pytorch",
                "dataset": _dataset_name(dataset, model, path),
                "preset": name or args.preset,
                "source": _source_url(name, args, table),
                "sha256": digest,
            },
        )
    except (ValueError, OSError, ImportError) as error:
        message = " ".join(str(error).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for note in notes:  # after success: an error stays the only line
        print(f"note: {note}", file=sys.stderr)
    if args.print_mapping:
        for key, weight in mapping:
            print(f"{key}\t{weight}")
    if digest is not None:
        print(f"sha256 {digest}  {path}")
    print(f"{type(model).__name__} ({len(mapping)} tensors from {path}) -> {folder}")
    if name is not None and not args.out:
        print(f"load it with {type(model).__name__}.from_preset({name!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
