"""python -m keras_memseg.convert: a PyTorch checkpoint as a keras_memseg preset folder.

    python -m keras_memseg.convert mcibi_deeplabv3_resnet50os8_ade20k.pth --out ade20k_r50
    python -m keras_memseg.convert resnet50_v1c-2cccc1ad.pth --preset resnet50_v1c
    python -m keras_memseg.convert resnet50-19c8e357.pth --out torchvision_r50

The architecture is read from the checkpoint (the authors' MCIBI or DeepLabV3, an
open-mmlab ResNet-V1c or a torchvision ResNet); what the weights do not hold comes
from the flags, whose defaults are the paper's. `--out DIR` writes the folder
anywhere; `--preset NAME` writes a backbone into `keras_memseg.presets.preset_home()`
so that `DilatedResNetBackbone.from_preset(NAME)` finds it. Bad input prints one
line and exits with status 2.
"""

import argparse
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


def _parser():
    p = OneLineErrorParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("source", help="a PyTorch checkpoint (.pth)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="the preset folder to write")
    where.add_argument(
        "--preset",
        help="a DilatedResNetBackbone preset name (backbone "
        "checkpoints): write it into the preset home",
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


def _target_folder(args, model):
    from keras_memseg import presets as preset_io
    from keras_memseg.backbones import DilatedResNetBackbone

    if args.out:
        return args.out
    if not isinstance(model, DilatedResNetBackbone):
        raise ValueError(
            f"--preset is for backbone checkpoints; {args.source} holds a "
            f"{type(model).__name__}: use --out DIR"
        )
    expected = {**_PRESET_DEFAULTS, **DilatedResNetBackbone.presets[args.preset]["config"]}
    got = model.get_config()
    wrong = {key: got[key] for key in _PRESET_DEFAULTS if got[key] != expected[key]}
    if wrong:
        raise ValueError(
            f"{args.source} does not hold preset {args.preset!r} ({expected}): its {wrong}"
        )
    return os.path.join(preset_io.preset_home(), args.preset)


def main(argv=None):
    args = _parser().parse_args(argv)
    quiet_libraries(args.verbose)
    try:
        from keras_memseg import presets as preset_io
        from keras_memseg.backbones import DilatedResNetBackbone
        from keras_memseg.convert.from_torch import convert_checkpoint

        if args.preset and args.preset not in DilatedResNetBackbone.presets:
            raise ValueError(
                f"unknown backbone preset {args.preset!r}; one of "
                f"{sorted(DilatedResNetBackbone.presets)}"
            )
        model, mapping = convert_checkpoint(
            args.source,
            output_stride=args.output_stride,
            aspp_rates=args.aspp_rates,
            ppm_bins=args.ppm_bins,
            activation=args.activation,
            dropout=args.dropout,
            hard_aggregate=args.hard_aggregate,
        )
        folder = _target_folder(args, model)
        if preset_io.is_preset_dir(folder) and not args.overwrite:
            raise ValueError(f"{folder} already holds a preset (pass --overwrite to replace it)")
        model.save_to_preset(
            folder,
            metadata={
                "converted_from": os.path.basename(args.source),
                "converter": "keras_memseg.convert",
                "source_format": "pytorch",
            },
        )
    except (ValueError, OSError, ImportError) as error:
        message = " ".join(str(error).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.print_mapping:
        for key, path in mapping:
            print(f"{key}\t{path}")
    print(f"{type(model).__name__} ({len(mapping)} tensors from {args.source}) -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
