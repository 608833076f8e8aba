"""README's code blocks cannot drift from the code (issue #28).

- The usage example runs as written, and the `compile` block after it, in its namespace.
- Every Python block parses, every `keras_memseg` name it imports exists, and no block
  uses a name it never defines (ruff's F821; a block that goes on from the usage
  example may use its names).
- Every command in a shell block (`python recipes/X.py`, `python benchmarks/X.py`,
  `python -m keras_memseg.X`) names a script or module that exists, and each of its
  `--flags` is one that command defines (read from the command's source: absl
  `DEFINE_*`, argparse `add_argument`, or the recipe's `RecipeConfig` fields).
"""

import ast
import importlib
import importlib.util
import inspect
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest

from keras_memseg.training.config import field_types

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)
COMMAND = re.compile(r"python3? (?:-m (keras_memseg\.\w+)|((?:recipes|benchmarks)/\w+\.py))(.*)")


def blocks(kind=None):
    """[(document, line, language, text)] of every fenced block (of `kind`)."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            if kind is None or match.group(1) == kind:
                out.append((doc.name, line, match.group(1), match.group(2)))
    return out


def _usage_and_compile():
    python = [b[3] for b in blocks("python")]
    usage = next(b for b in python if "MemorySegmenter(" in b and "fit(" in b)
    compiling = next(b for b in python if "model.compile(" in b and "TorchSGD" in b)
    return usage, compiling


def test_readme_usage_example_and_compile_block_run(capsys):
    usage, compiling = _usage_and_compile()
    namespace = {}
    exec(compile(usage, "README.md", "exec"), namespace)
    assert "(4, 64, 64, 5) (5, 1, 64)" in capsys.readouterr().out
    exec(compile(compiling, "README.md", "exec"), namespace)
    assert namespace["model"].optimizer is not None


@pytest.mark.parametrize("where", [f"{d}:{n}" for d, n, _, _ in blocks("python")])
def test_python_blocks_parse_and_their_keras_memseg_names_exist(where):
    text = next(b[3] for b in blocks("python") if f"{b[0]}:{b[1]}" == where)
    tree = ast.parse(text, where)
    imported = {}  # local name -> the keras_memseg object
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_memseg"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{where}: {node.module} has no {alias.name}"
                imported[alias.asname or alias.name] = getattr(module, alias.name, None)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_memseg"):
                    importlib.import_module(alias.name)
    # Keyword arguments of calls to keras_memseg functions and classes exist.
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = imported.get(node.func.id)
            if target is None or not callable(target):
                continue
            parameters = inspect.signature(target).parameters.values()
            if any(p.kind is p.VAR_KEYWORD for p in parameters):
                continue
            names = {p.name for p in parameters}
            for keyword in node.keywords:
                assert keyword.arg is None or keyword.arg in names, (
                    f"{where}: {node.func.id}() has no argument {keyword.arg!r}"
                )


def test_python_blocks_use_no_undefined_name():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the [test] extra)")
    usage, compiling = _usage_and_compile()
    problems = []
    for doc, line, _, text in blocks("python"):
        source = usage + "\n" + text if text == compiling else text  # it goes on from usage
        proc = subprocess.run(
            [ruff, "check", "--select", "F821", "--output-format", "concise", "-"],
            input=source,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            found = [x for x in proc.stdout.splitlines() if "F821" in x]
            problems += [f"{doc}:{line}: {x.split(' ', 1)[-1]}" for x in found]
    assert problems == [], "\n".join(problems)


def _accepted_flags(module, script):
    """The flags a command defines, read from its source."""
    if script and script.startswith("recipes/train_"):
        return set(field_types()) | {"config_only"}
    path = ROOT / script if script else ROOT / module.replace(".", "/") / "__main__.py"
    source = path.read_text()
    names = set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", source))
    names |= {n.lstrip("-") for n in re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", source)}
    names |= set(re.findall(r"add_argument\(\s*\"-\w\",\s*\"--([\w-]+)\"", source))
    return names | {"help", "helpfull"}


def _indented_blocks():
    """[(document, line, text)] of the indented (4-space) code blocks outside fences."""
    out = []
    for doc in DOCS:
        text = BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), doc.read_text())
        lines = text.splitlines()
        for number, row in enumerate(lines, 1):
            previous = lines[number - 2] if number > 1 else ""
            if row.startswith("    ") and row.strip() and not previous.strip():
                block = []
                for later in lines[number - 1 :]:
                    if later.strip() and not later.startswith("    "):
                        break
                    block.append(later)
                out.append((doc.name, number - 1, "\n".join(block)))
    return out


def _commands():
    """[(where, module, script, argv)] of the commands in the shell, text and indented
    blocks."""
    sources = [(d, n, t) for d, n, k, t in blocks() if k != "python"] + _indented_blocks()
    out = []
    for doc, line, text in sources:
        joined = text.replace("\\\n", " ")
        for offset, row in enumerate(joined.splitlines()):
            match = COMMAND.search(row)
            if match:
                rest = match.group(3).split(" #")[0]
                rest = rest.split("|")[0].split("&&")[0].split("`")[0]
                argv = shlex.split(rest, comments=True)
                out.append((f"{doc}:{line + 1 + offset}", match.group(1), match.group(2), argv))
    return out


def test_there_are_commands_to_check():
    kinds = {module or script for _, module, script, _ in _commands()}
    assert {"recipes/train_sample.py", "recipes/evaluate.py", "keras_memseg.export"} <= kinds


@pytest.mark.parametrize("where, module, script, argv", _commands(), ids=lambda v: str(v))
def test_shell_commands_name_existing_scripts_and_flags(where, module, script, argv):
    if script:
        assert (ROOT / script).is_file(), f"{where}: {script} does not exist"
    else:
        assert importlib.util.find_spec(module), f"{where}: no module {module}"
    accepted = _accepted_flags(module, script)
    used = {a[2:].split("=")[0] for a in argv if a.startswith("--")}
    assert used <= accepted, f"{where}: {sorted(used - accepted)} not defined by the command"
