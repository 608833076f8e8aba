"""Command line: export a saved `.keras` segmenter as a SavedModel or a TFLite file.

    python -m keras_memseg.export --checkpoint model.keras --format saved_model \\
        --output saved_models --name memseg [--version 3] [--outputs labels,probabilities]
    python -m keras_memseg.export --checkpoint model.keras --format tflite \\
        --output memseg_int8.tflite --input_size 512,512 --quantization int8 \\
        [--representative_images "calib/*.jpg"]
"""

import argparse
import glob
import sys


def _pair(text):
    try:
        height, width = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W (e.g. 512,512), got {text!r}") from None
    return height, width


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m keras_memseg.export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .keras file saved by model.save")
    parser.add_argument("--format", required=True, choices=("saved_model", "tflite"))
    parser.add_argument("--output", required=True,
                        help="saved_model: base folder (saved_models); tflite: the .tflite file")
    parser.add_argument("--name", default="memseg", help="saved_model: the model name folder")
    parser.add_argument("--version", type=int, default=None,
                        help="saved_model: version folder (default: the next integer)")
    parser.add_argument("--input_size", type=_pair, default=None,
                        help="H,W: tflite input size (required); saved_model: resize to it")
    parser.add_argument("--quantization", default="none",
                        choices=("none", "fp16", "dynamic", "int8"), help="tflite only")
    parser.add_argument("--representative_images", default=None,
                        help="tflite int8: glob of calibration images (default: the sample set)")
    parser.add_argument("--outputs", default="probabilities,labels",
                        help="comma-separated subset of logits,probabilities,labels")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    args = parser.parse_args(argv)
    if args.format == "tflite" and args.input_size is None:
        parser.error("--format tflite needs --input_size H,W (TFLite shapes are static)")
    return args


def _images_from_glob(pattern):
    import tensorflow as tf

    paths = sorted(glob.glob(pattern))
    if not paths:
        raise SystemExit(f"--representative_images {pattern!r} matches no file")
    for path in paths:
        yield tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_memseg.models  # noqa: F401  (registers the serializable classes)
    from keras_memseg.export import export_saved_model
    from keras_memseg.export import export_tflite

    model = keras.saving.load_model(args.checkpoint, compile=False)
    outputs = tuple(v.strip() for v in args.outputs.split(",") if v.strip())
    if args.format == "saved_model":
        path = export_saved_model(model, args.output, name=args.name, version=args.version,
                                  outputs=outputs, input_size=args.input_size,
                                  overwrite=args.overwrite)
    else:
        data = (_images_from_glob(args.representative_images)
                if args.representative_images else None)
        path = export_tflite(model, args.output, input_size=args.input_size,
                             quantization=args.quantization, representative_data=data,
                             outputs=outputs)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
