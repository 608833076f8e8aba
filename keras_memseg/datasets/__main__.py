"""`keras-memseg datasets [ROOT]`: list the registered datasets, or check a folder dataset.

    keras-memseg datasets             name, classes and splits of every registered dataset
    keras-memseg datasets ROOT        check the folder dataset ROOT fully (classes.txt,
                                      pairing, every image/label pair decoded): prints its
                                      classes and examples per split, and every problem,
                                      one line each (exit status 2 if there is any)
    keras-memseg datasets NAME        the classes and splits of one registered dataset
    keras-memseg datasets --write_sample DIR
                                      the bundled CamVid sample as a folder dataset in DIR

(also `python -m keras_memseg.datasets ...`). The data modules are imported after the
arguments are parsed, so `--help` answers at once.
"""

import argparse
import sys


def _parser(prog="keras-memseg datasets"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "List the registered datasets, or check a folder of your own images and label "
            "PNGs (ROOT/classes.txt, ROOT/images/<split>/..., ROOT/labels/<split>/...)."
        ),
    )
    parser.add_argument(
        "root",
        nargs="?",
        metavar="ROOT",
        help="a folder dataset to check (or a registered dataset name to describe)",
    )
    parser.add_argument(
        "--write_sample",
        metavar="DIR",
        default=None,
        help="write the bundled CamVid sample (48 train + 16 val frames, 11 classes) as a "
        "folder dataset in DIR, a new or empty folder: a template for your own data, "
        "e.g. --write_sample=my_data",
    )
    return parser


def _splits_text(spec):
    parts = []
    for split in spec.splits:
        text = split
        if split in spec.split_sizes:
            text += f" {spec.split_sizes[split]}"
        if split in spec.unlabelled_splits:
            text += " (unlabelled)"
        parts.append(text)
    return ", ".join(parts)


def _list(registry):
    rows = [(name, registry.get_info(name)) for name in registry.dataset_names()]
    width = max(len(name) for name, _ in rows)
    for name, spec in rows:
        print(f"{name:<{width}}  {spec.num_classes:>4} classes  splits: {_splits_text(spec)}")
    print("Your own data: keras-memseg datasets ROOT checks a folder dataset (see from_folder).")
    return 0


def _describe(spec):
    print(f"{spec.num_classes} classes:")
    for index, (name, colour) in enumerate(zip(spec.class_names, spec.palette)):
        print(f"  {index:>3}  {name}  {','.join(map(str, colour))}")
    print(f"splits: {_splits_text(spec)}")
    print(f"train split: {spec.train_split}, evaluation split: {spec.eval_split}")


def _check(root, folder_dataset):
    spec, problems = folder_dataset.check_folder(root)
    print(f"Folder dataset {spec.root if spec else root}")
    if spec is not None:
        _describe(spec)
    if not problems:
        print("OK: every image/label pair was decoded and checked.")
        return 0
    print(f"{len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(" ".join(problem.split()), file=sys.stderr)  # one line each
    return 2


def main(argv=None, prog="keras-memseg datasets"):
    """Runs the command with `argv` (default: `sys.argv[1:]`); returns the exit status."""
    args = _parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    from keras_memseg.datasets import folder_dataset
    from keras_memseg.datasets import registry

    if args.write_sample:
        from keras_memseg.datasets.sample.as_folder import write_sample_folder

        try:
            counts = write_sample_folder(args.write_sample)
        except OSError as error:
            print(f"error: --write_sample={args.write_sample}: {error}", file=sys.stderr)
            return 2
        sizes = ", ".join(f"{split} {count}" for split, count in counts.items())
        print(f"wrote {args.write_sample}/: classes.txt, images/, labels/ ({sizes})")
        if args.root is None:
            return 0
    if args.root is None:
        return _list(registry)
    if args.root in registry.dataset_names() and not registry.looks_like_path(args.root):
        spec = registry.get_info(args.root)
        print(f"Dataset {spec.name}")
        _describe(spec)
        return 0
    return _check(args.root, folder_dataset)


if __name__ == "__main__":
    sys.exit(main())
