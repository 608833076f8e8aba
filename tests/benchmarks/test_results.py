"""benchmarks/results/ and the pages that cite it (issue #28: benchmarks that reproduce).

- The manifest lists exactly the files in benchmarks/results/, each with the command that
  wrote it, a commit that exists, the machine and the date; the command writes that very
  file (its `--out`, or the script's default at that commit), or a file that git shows was
  copied to this name; no result file names a temporary path.
- docs/performance.md is what `benchmarks/report.py` writes from those files now.
- The hand-written pages (README.md, docs/**/*.md but performance.md) cite no benchmark
  figure (a time, a speed-up, a throughput): they link to performance.md instead.
"""

import json
import pathlib
import re
import shlex
import subprocess

import pytest
from benchmark_scripts import BENCHMARKS
from benchmark_scripts import load_script

ROOT = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"
MANIFEST = json.loads((RESULTS / "manifest.json").read_text())
RUNS = MANIFEST["runs"]
TEMPORARY = re.compile(r"(?<![\w.])(?:/tmp|/var/tmp|/root/out|/private/tmp)/")
# The reference checkout's path is no part of a result (its commit is).
REFERENCE_DIR = re.compile(r"[^\s\"']*sssegmentation(?=[\s\"'])")


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def _id(run):
    return run["files"][0]


def test_manifest_lists_exactly_the_result_files():
    listed = [name for run in RUNS for name in run["files"]]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    present = {p.name for p in RESULTS.iterdir() if p.is_file()} - {"manifest.json"}
    assert sorted(present - set(listed)) == [], "result files missing from the manifest"
    assert sorted(set(listed) - present) == [], "manifest entries without a file"


@pytest.mark.parametrize("run", RUNS, ids=_id)
def test_every_run_names_command_commit_machine_and_date(run):
    for field in ("command", "commit", "commit_source", "machine", "date"):
        assert run.get(field), f"{_id(run)}: no {field}"
    assert run["command"].startswith("python benchmarks/"), run["command"]
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]), run["commit"]
    assert _git("cat-file", "-e", f"{run['commit']}^{{commit}}").returncode == 0, run["commit"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run["date"]), run["date"]
    assert run["commit_source"] in ("recorded", "inferred")
    if run["commit_source"] == "inferred":
        assert run.get("commit_note"), f"{_id(run)}: say how the commit was inferred"
    data = _load(run["files"][0])
    if isinstance(data, dict):
        hardware = data.get("hardware") or {}
        if hardware.get("cpu"):
            assert hardware["cpu"] in run["machine"]
        if hardware.get("cpu_count"):
            assert f"{hardware['cpu_count']} cores" in run["machine"]
        if data.get("command") and "recorded_command" not in run:
            assert data["command"] == run["command"], "the manifest's command is the file's"


def _load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.suffix == ".json" else None


def _script_source(script, commit):
    """benchmarks/<script>.py as it was at `commit` (the command must have existed)."""
    shown = _git("show", f"{commit}:benchmarks/{script}.py")
    assert shown.returncode == 0, f"benchmarks/{script}.py does not exist at {commit}"
    return shown.stdout


def _out_of(words):
    """The value of --out in a command's words (None if it has none)."""
    for i, word in enumerate(words):
        if word.startswith("--out="):
            return word.split("=", 1)[1]
        if word == "--out":
            return words[i + 1]
    return None


@pytest.mark.parametrize("run", RUNS, ids=_id)
def test_the_command_writes_the_file(run):
    words = shlex.split(run["command"].split(" && ")[0])
    script = pathlib.Path(words[1]).stem
    source = _script_source(script, run["commit"])
    out = _out_of(words)
    if out is None:
        default = re.search(r'"results" / "([\w.]+\.json)"', source)
        assert default, f"benchmarks/{script}.py at {run['commit']} has no default --out"
        out = f"benchmarks/results/{default.group(1)}"
    main = run["files"][0]
    written = f"benchmarks/results/{run.get('written_as', main)}"
    assert out == written, f"{run['command']} writes {out}, not {written}"
    for companion in run["files"][1:]:
        stem = pathlib.Path(companion).stem
        assert stem == pathlib.Path(main).stem or companion in source, (
            f"{companion}: neither beside {main} nor named by benchmarks/{script}.py"
        )
    if "written_as" in run:  # copied in a commit: git holds both, byte for byte
        commit = run["copied_in"]
        for name in run["files"]:
            old = pathlib.Path(run["written_as"]).with_suffix(pathlib.Path(name).suffix).name
            before = _git("show", f"{commit}^:benchmarks/results/{old}")
            after = _git("show", f"{commit}:benchmarks/results/{name}")
            assert before.returncode == 0 and after.returncode == 0, (old, name, commit)
            same = REFERENCE_DIR.sub("<reference>", before.stdout)
            assert same == REFERENCE_DIR.sub("<reference>", after.stdout), (old, name)


@pytest.mark.parametrize("name", sorted(n for run in RUNS for n in run["files"]))
def test_no_result_file_names_a_temporary_path(name):
    path = RESULTS / name
    if path.suffix == ".png":
        return
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert not TEMPORARY.search(line), f"{name}:{number}: {line.strip()[:200]}"


def test_performance_page_is_what_the_generator_writes():
    report = load_script("report")
    assert (ROOT / "docs" / "performance.md").read_text() == report.render(), (
        "docs/performance.md is out of date: run python benchmarks/report.py"
    )


def test_the_generator_reads_only_listed_files():
    report = load_script("report")
    results = report.Results()
    with pytest.raises(KeyError, match="not listed"):
        results.json("compare_reference.json")


# -- hand-written pages cite no benchmark figure ------------------------------------------
_NUMBER = r"(?<![\w.\-/])\d+(?:[.,]\d+)*"
FIGURES = re.compile(
    "|".join(
        [
            # a duration: 12 ms, 3.5 s, 60s, 2 min, 4 h, 120 ms/step
            _NUMBER + r"\s?(?:ms|µs|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?)(?![\w-])",
            # a decimal multiplier (1.3x, 2.05 ×) or an integer one said of speed or size
            r"(?<![\w.])\d+\.\d+\s?[x×](?![\w\d])",
            _NUMBER + r"\s?[x×]\s+(?:faster|slower|quicker|speed|as fast|smaller|larger|less"
            r"|more|fewer|the speed|the time)\b",
            _NUMBER + r"-fold\b",
            r"speed-?ups? (?:of )?~?" + _NUMBER,
            # a throughput or a FLOP count
            _NUMBER + r"\s?(?:img/s|images/s|images per second|it/s|steps/s|samples/s|fps"
            r"|[GTM]FLOP/s|[GTM]FLOPS?|[GTM]FLOPs)\b",
            # a relative time: 17 % faster, 6 % per step
            _NUMBER + r"\s?%\s+(?:faster|slower|quicker|less time|more time|per step"
            r"|of the step)\b",
        ]
    ),
    re.IGNORECASE,
)
ALLOW = "<!-- not a benchmark figure -->"


def benchmark_figures(text):
    """[(line number, figure)] of every timing, speed-up or throughput figure in `text`
    (a line holding ALLOW is skipped: a constant of the code, not a measurement)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if ALLOW not in line:
            found += [(number, m.group(0)) for m in FIGURES.finditer(line)]
    return found


@pytest.mark.parametrize(
    "line",
    [
        "MCIBI's step took 7.28 s against 13.75 s for the authors'.",
        "ours is 1.89x faster",
        "TFLite dynamic-range is 2x faster than predict",
        "the sample recipe runs in 60s on 2 cores",
        "a step of 250 ms/step",
        "about 35 minutes on the 2-core machine",
        "oneDNN's matmul runs at ~150 GFLOP/s here",
        "the steady step is ~17 % faster",
        "a speed-up of 1.7",
        "42.44 images/s with the full augmentation",
        "MCIBI 784.2 GFLOPs against 578.9",
        "3 min 25 s",
    ],
)
def test_figures_are_found(line):
    assert benchmark_figures(line), line


@pytest.mark.parametrize(
    "line",
    [
        "ResNet-50-V1c OS8, 512x512 crops, batch 2, 3x3 and 1x1 convolutions",
        "`python benchmarks/train_step.py --steps 20 --warmup 5 --timeout 600`",
        "momentum 0.9, weight decay 5e-4, 40k iterations, K = 150 classes",
        "features (B, H/8, W/8, C) -> (B*H*W/64, C); TensorFlow 2.21, Keras 3.15.1",
        "mIoU 44.39 % on ADE20K (the authors' checkpoint), 2 steps, 16 images",
        "see [Performance](performance.md) for the measurements",
        "`--segment_s 6.5`, `--max_input_pixels 20000000`, x86_64, v1c",
        "the autotuner wakes after 10 ms and doubles <!-- not a benchmark figure -->",
    ],
)
def test_plain_numbers_are_not_figures(line):
    assert benchmark_figures(line) == [], line


def test_a_page_without_figures_passes_and_one_with_a_figure_names_its_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Training\n\nTrain with `--max_steps 300`.\nSee performance.md.\n")
    assert benchmark_figures(page.read_text()) == []
    page.write_text("# Training\n\nIt takes 61.3 s.\n")
    assert benchmark_figures(page.read_text()) == [(3, "61.3 s")]


def _hand_written_pages():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in pages if p.name != "performance.md"]


@pytest.mark.parametrize("page", _hand_written_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hand_written_pages_cite_no_benchmark_figure(page):
    found = benchmark_figures(page.read_text())
    where = [f"{page.relative_to(ROOT)}:{line}: {figure}" for line, figure in found]
    assert not where, (
        "benchmark figures belong in docs/performance.md (generated from "
        "benchmarks/results/); link to it instead:\n" + "\n".join(where[:40])
    )
