"""How long `--help` takes: `keras-memseg --help`, each subcommand's `--help` and `python
recipes/train_cocostuff.py --help`, each in a fresh process (the import of the package and
of what the command needs, the parser, the printing, the exit).

    python benchmarks/cli_help.py [--repeats 5] [--commands train,predict]
        [--out benchmarks/results/cli_help.json]

Runs every command `--repeats` times, round-robin (a burst of load touches every command
alike), and prints a table (command, median seconds, max); writes the times, whether
each run exited 0, the command, commit and machine as JSON, and the table as Markdown
beside it. It asserts nothing: a help that imports TensorFlow shows as seconds instead of
tenths. The row "tensorflow" (`python -c "import tensorflow"`) is measured in the same
rounds: the floor of a help that imports TensorFlow before parsing, as each did before.
"""

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

DEFAULT_OUT = str(HERE / "results" / "cli_help.json")
SUBCOMMANDS = ("train", "evaluate", "predict", "export", "convert", "analyze", "datasets")
RECIPE = "recipes/train_cocostuff.py"


def commands(selected=None):
    """{label: argv}: `keras-memseg --help` ("help"), each subcommand's ("train", ...) and
    the recipe script's ("recipe"); `selected` (labels) keeps only those."""
    program = shutil.which("keras-memseg")
    console = [program] if program else [sys.executable, "-m", "keras_memseg.cli"]
    table = {"help": [*console, "--help"]}
    table.update({name: [*console, name, "--help"] for name in SUBCOMMANDS})
    table["recipe"] = [sys.executable, str(ROOT / RECIPE), "--help"]
    # Side by side: what every help cost while the commands imported TensorFlow first.
    table["tensorflow"] = [sys.executable, "-c", "import tensorflow"]
    if selected:
        unknown = sorted(set(selected) - set(table))
        if unknown:
            raise SystemExit(f"error: --commands: unknown {unknown}; one of: {', '.join(table)}")
        table = {label: argv for label, argv in table.items() if label in selected}
    return table


def shown(argv):
    """The command as a user types it."""
    if argv[0] == sys.executable:
        return "python " + " ".join(
            str(pathlib.Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a
            for a in argv[1:]
        )
    return " ".join(["keras-memseg", *argv[1:]])


def measure(table, repeats, timeout=300):
    """{label: {"command", "seconds": [...], "exit_codes": [...]}}, round-robin."""
    out = {
        label: {"command": shown(argv), "seconds": [], "exit_codes": []}
        for label, argv in table.items()
    }
    for _ in range(repeats):
        for label, argv in table.items():
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=timeout)
            out[label]["seconds"].append(round(time.perf_counter() - start, 3))
            out[label]["exit_codes"].append(proc.returncode)
    for row in out.values():
        row["median_s"] = round(statistics.median(row["seconds"]), 3)
        row["max_s"] = round(max(row["seconds"]), 3)
        row["ok"] = all(code == 0 for code in row["exit_codes"])
    return out


def markdown(payload):
    """The table of a result, with its provenance line."""
    lines = [
        f"`{payload['command']}` at `{(payload['commit'] or '?')[:7]}`, "
        f"{payload['hardware'].get('cpu', '?')}, {payload['repeats']} runs each",
        "",
        "| command | median s | max s | exit 0 |",
        "|---|---|---|---|",
    ]
    for row in payload["runs"].values():
        ok = "yes" if row["ok"] else "no"
        lines.append(f"| `{row['command']}` | {row['median_s']:.2f} | {row['max_s']:.2f} | {ok} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command")
    parser.add_argument(
        "--commands",
        default="",
        help="comma-separated labels to run (help, " + ", ".join(SUBCOMMANDS) + ", recipe)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="the JSON result file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    selected = [c for c in args.commands.split(",") if c]
    table = commands(selected)
    argv_shown = list(sys.argv[1:] if argv is None else argv)
    argv_shown = [a.replace(args.out, _common.repo_path(args.out)) for a in argv_shown]
    record = _common.run_record("cli_help", argv_shown)
    runs = measure(table, args.repeats)
    payload = {
        "benchmark": "cli_help",
        **record,
        "repeats": args.repeats,
        "runs": runs,
        "load_average_at_end": _common.load_average(),
    }
    width = max(len(row["command"]) for row in runs.values())
    print(f"{'command':<{width}}  median s  max s")
    for row in runs.values():
        flag = "" if row["ok"] else "  (exit " + ",".join(map(str, row["exit_codes"])) + ")"
        print(f"{row['command']:<{width}}  {row['median_s']:8.2f}  {row['max_s']:5.2f}{flag}")
    path = pathlib.Path(args.out)
    _common.write_json(path, payload)
    path.with_suffix(".md").write_text(markdown(payload))
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
