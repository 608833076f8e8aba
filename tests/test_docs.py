"""README.md and docs/ cannot drift from the code (issue #28).

Every fenced code block of README.md and docs/**/*.md (but the generated
docs/performance.md) is covered, by its language:

- `python`: parses; every `keras_memseg` name it imports exists; every keyword argument it
  passes to a keras_memseg function, class or method exists (methods are found through
  simple assignments, `model = MemorySegmenter(...)`, then `model.compile(...)`); it uses
  no undefined name (ruff's F821); the other modules it imports are installed. A block
  preceded by the HTML comment `<!-- test: run -->` is also executed, in a temporary
  folder; `<!-- test: run, continues -->` executes it in the namespace of the page's
  previous Python block, and `<!-- test: continues -->` lets only its undefined-name check
  see that block. A `print(...)` whose comment starts like output (a bracket, a digit, a
  quote) must print that text.
- `bash` blocks preceded by `<!-- test: run -->` are also run, in order, one page at a
  time, in a fresh folder (a walkthrough such as docs/guides/own_data.md).
- `bash`: every command names a program this test knows; `python -m keras_memseg.X`,
  `python recipes/X.py` and `python benchmarks/X.py` name a module or script that exists and
  use only flags that command defines (read from its source: absl `DEFINE_*`, argparse
  `add_argument`, the recipes' `RecipeConfig` fields); `pip install` names existing extras.
- `console`: the `$ ` lines are checked as `bash`, the rest is output.
- `text`: output, not checked (but a keras_memseg command in it is checked as above).
- `bibtex`: one well-formed entry.

Any other language, an unlabelled fence, an indented fence and an indented (4-space) code
block fail the test: no block is skipped silently. Inline commands in the prose
(`` `python -m keras_memseg.predict --model ...` ``) are checked as commands too, and every
`--flag` the prose names must be one some command of ours defines. README
stays the front door (at most 300 lines, its links into docs/ exist), and
`mkdocs build --strict` builds the site.
"""

import ast
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import io
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GENERATED = {ROOT / "docs" / "performance.md"}  # written by a script from benchmarks/results
PAGES = [README] + [p for p in sorted((ROOT / "docs").rglob("*.md")) if p not in GENERATED]
LANGUAGES = ("python", "bash", "console", "text", "bibtex")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(.*)$")
MARKER = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->$")
MARKER_WORDS = {"run", "continues"}
OUTPUT_LIKE = re.compile(r"^[(\[{'\"\d-]")
# Programs a shell block may run besides python: nothing of ours, no flags to check.
EXTERNAL = {".", "source", "docker", "ls", "mkdocs", "ruff", "tensorboard"}


@dataclasses.dataclass
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence
    language: str
    text: str
    marks: frozenset
    previous: "Block | None" = None  # the page's previous Python block

    @property
    def where(self):
        return f"{self.page}:{self.line}"

    def chain(self):
        """This block and the blocks it continues, first first."""
        blocks = [self]
        while blocks[0].marks & {"continues"} and blocks[0].previous is not None:
            blocks.insert(0, blocks[0].previous)
        return blocks


def _relative(path):
    return path.relative_to(ROOT).as_posix()


def _parse_page(path):
    """(blocks, problems) of one page."""
    lines = path.read_text().splitlines()
    blocks, problems, previous_python = [], [], None
    number = 0
    while number < len(lines):
        match = FENCE.match(lines[number])
        if not match:
            number += 1
            continue
        indent, fence, info = match.groups()
        where = f"{_relative(path)}:{number + 1}"
        end = next(
            (
                i
                for i in range(number + 1, len(lines))
                if lines[i].strip() == fence and lines[i].startswith(indent)
            ),
            None,
        )
        if end is None:
            problems.append(f"{where}: a fence that is never closed")
            break
        if indent:
            problems.append(f"{where}: an indented fence (start code blocks at the margin)")
        language = info.split()[0] if info.strip() else ""
        before = next((row for row in reversed(lines[:number]) if row.strip()), "")
        marker = MARKER.match(before.strip())
        marks = frozenset(w.strip() for w in marker.group(1).split(",")) if marker else frozenset()
        if marks - MARKER_WORDS:
            problems.append(f"{where}: unknown test marker words {sorted(marks - MARKER_WORDS)}")
        if marks and language not in ("python", "bash"):
            problems.append(f"{where}: test markers are for python and bash blocks")
        if language == "bash" and marks - {"run"}:
            problems.append(f"{where}: a bash block can only be marked `run`")
        if language not in LANGUAGES:
            problems.append(
                f"{where}: a {language or 'unlabelled'!r} block: label it one of {LANGUAGES} "
                "(`text` for output)"
            )
        block = Block(
            _relative(path), number + 1, language, "\n".join(lines[number + 1 : end]) + "\n", marks
        )
        if language == "python":
            block.previous = previous_python
            if "continues" in marks and previous_python is None:
                problems.append(f"{where}: continues, but no Python block comes before it")
            elif {"run", "continues"} <= marks and "run" not in previous_python.marks:
                problems.append(f"{where}: runs on from a block that does not run")
            previous_python = block
        blocks.append(block)
        number = end + 1
    return blocks, problems


def _all_blocks():
    blocks, problems = [], []
    for page in PAGES:
        found, wrong = _parse_page(page)
        blocks += found
        problems += wrong
    return blocks, problems


BLOCKS, PARSE_PROBLEMS = _all_blocks()


def _blocks(language):
    return [b for b in BLOCKS if b.language == language]


def _ids(blocks):
    return [b.where for b in blocks]


def test_every_code_block_is_one_the_test_can_check():
    assert PARSE_PROBLEMS == [], "\n".join(PARSE_PROBLEMS)
    assert {"python", "bash"} <= {b.language for b in BLOCKS}


def _prose(path):
    """The page's lines outside fenced blocks (fences blanked, line numbers kept)."""
    lines = path.read_text().splitlines()
    out, fence = [], None
    for row in lines:
        match = FENCE.match(row)
        if fence is None and match:
            fence = match.group(2)
            out.append("")
        elif fence is not None:
            out.append("")
            if row.strip() == fence:
                fence = None
        else:
            out.append(row)
    return out


def test_no_indented_code_blocks():
    """A 4-space indented block after a blank line is code that no test would see."""
    found = []
    for page in PAGES:
        lines = _prose(page)
        for number, row in enumerate(lines, 1):
            previous = lines[number - 2] if number > 1 else ""
            if row.startswith("    ") and row.strip() and not previous.strip():
                found.append(f"{_relative(page)}:{number}: {row.strip()[:60]}")
    assert found == [], "write code in fenced blocks:\n" + "\n".join(found)


# -- Python blocks -------------------------------------------------------------------


def _names_from_import(node):
    """[(local name, the object it binds or None)] of a keras_memseg import."""
    out = []
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_memseg"):
        module = importlib.import_module(node.module)
        for alias in node.names:
            if hasattr(module, alias.name):
                value = getattr(module, alias.name)
            else:
                value = importlib.import_module(f"{node.module}.{alias.name}")
            out.append((alias.asname or alias.name, value))
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("keras_memseg"):
                module = importlib.import_module(alias.name)
                if alias.asname:
                    out.append((alias.asname, module))
                else:
                    out.append(("keras_memseg", importlib.import_module("keras_memseg")))
    return out


def _resolve(node, bound):
    """The keras_memseg object an expression names (`datasets.load`, `model.compile`)."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, bound)
        if owner is not None:
            return getattr(owner, node.attr, None)
    return None


def _accepted_keywords(target, klass=None):
    """The keyword names `target` takes, or None when it takes any (**kwargs that we cannot
    follow). A method's **kwargs are followed to the next definition of the same method in
    the MRO of `klass`, the class it was looked up on (mixins included)."""
    if inspect.isclass(target):
        klass, function = target, target.__init__
    else:
        function = target
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    names = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        return names
    if klass is None or not getattr(function, "__module__", "").startswith("keras_memseg"):
        return None  # a function's, or Keras' own, **kwargs: not ours to follow
    mro = inspect.getmro(klass)
    name = function.__name__
    here = next((i for i, c in enumerate(mro) if vars(c).get(name) is function), None)
    if here is None:
        return None
    for base in mro[here + 1 :]:
        if name in vars(base):
            inherited = _accepted_keywords(vars(base)[name], klass)
            return None if inherited is None else names | inherited
    return None


def _check_python(text, where):
    """Problems of a Python source: imports and keyword arguments against the code."""
    tree = ast.parse(text, where)
    problems, bound = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            continue  # `from .spec import SPEC`: the example's own package
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [module] if module else [a.name for a in node.names]
            for name in names:
                if name.startswith("keras_memseg"):
                    continue
                if importlib.util.find_spec(name.split(".")[0]) is None:
                    problems.append(f"{where}: imports {name}, which is not installed")
            try:
                bound.update(_names_from_import(node))
            except (ImportError, AttributeError) as error:
                problems.append(f"{where}: {error}")
    for node in ast.walk(tree):  # instances: `model = MemorySegmenter(...)`
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            made = _resolve(node.value.func, bound)
            if inspect.isclass(made):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        bound[target.id] = made
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = _resolve(node.func, bound)
        if target is None or not callable(target):
            continue
        owner = _resolve(node.func.value, bound) if isinstance(node.func, ast.Attribute) else None
        accepted = _accepted_keywords(target, owner if inspect.isclass(owner) else None)
        if accepted is None:
            continue
        for keyword in node.keywords:
            if keyword.arg is not None and keyword.arg not in accepted:
                name = ast.unparse(node.func)
                problems.append(f"{where}: {name}() has no argument {keyword.arg!r}")
    return problems


@pytest.mark.parametrize("block", _blocks("python"), ids=_ids(_blocks("python")))
def test_python_block_names_exist(block):
    source = "\n".join(b.text for b in block.chain())
    problems = _check_python(source, block.where)
    assert problems == [], "\n".join(problems)


def test_python_blocks_use_no_undefined_name():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the [test] extra)")
    problems = []
    for block in _blocks("python"):
        chain = block.chain()
        before = "".join(b.text for b in chain[:-1])
        offset = before.count("\n")
        proc = subprocess.run(
            [ruff, "check", "--isolated", "--select", "F821", "--output-format", "json", "-"],
            input=before + block.text,
            capture_output=True,
            text=True,
        )
        for found in json.loads(proc.stdout or "[]"):
            row = found["location"]["row"] - offset
            if row >= 1:  # in this block, not in the one it continues
                problems.append(f"{block.where} (+{row}): {found['message']}")
    assert problems == [], "\n".join(problems)


_EXECUTED = {}  # the namespace after a chain of blocks, by their texts


def _run_chain(chain):
    key = ()
    namespace = {"__name__": "__docs__"}
    for block in chain:
        key += (block.text,)
        if key in _EXECUTED:
            namespace = dict(_EXECUTED[key])
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.text, block.where, "exec"), namespace)
        _check_printed(block, printed.getvalue())
        _EXECUTED[key] = dict(namespace)
    return namespace


def _check_printed(block, output):
    """A print() whose comment reads like output must print it."""
    for row in block.text.splitlines():
        if row.startswith("print(") and "  # " in row:
            expected = row.split("  # ", 1)[1].strip()
            if OUTPUT_LIKE.match(expected):
                assert expected in output, f"{block.where}: printed\n{output[-2000:]}"


RUN = [b for b in _blocks("python") if "run" in b.marks]


@pytest.mark.parametrize("block", RUN, ids=_ids(RUN))
def test_python_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run_chain(block.chain())


def test_readme_usage_and_compile_examples_run():
    readme = [b for b in RUN if b.page == "README.md"]
    assert any("MemorySegmenter(" in b.text and ".fit(" in b.text for b in readme)
    assert any("model.compile(" in b.text and "TorchSGD" in b.text for b in readme)


SHELL_RUN = [b for b in _blocks("bash") if "run" in b.marks]
SHELL_RUN_PAGES = sorted({b.page for b in SHELL_RUN})


@pytest.mark.parametrize("page", SHELL_RUN_PAGES)
def test_shell_blocks_run(page, tmp_path):
    """The `<!-- test: run -->` bash blocks of a page, run in order in one fresh folder
    (a walkthrough: each block may use what the blocks before it wrote), with the
    installed `keras-memseg` on the PATH and a private preset home."""
    script = "\n".join(b.text for b in SHELL_RUN if b.page == page)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["KERAS_MEMSEG_HOME"] = str(tmp_path / "home")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"{page}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


# -- commands --------------------------------------------------------------------------

COMMAND = re.compile(
    r"python3? (?:-m (keras_memseg[\w.]*)|((?:recipes|benchmarks)/\w+\.py))|keras-memseg \w+"
)


def _flags_in(source):
    names = set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", source))
    names |= {f"no{n}" for n in re.findall(r"DEFINE_bool\(\s*\"(\w+)\"", source)}
    for found in re.finditer(r"add_argument\(\s*((?:\"-[\w-]+\",\s*)+)", source):
        for flag in re.findall(r"\"--([\w-]+)\"", found.group(1)):
            names.add(flag)
            tail = source[found.end() : found.end() + 300]
            if re.match(r"[^)]*BooleanOptionalAction", tail, flags=re.S):
                names.add(f"no-{flag}")
    return names


def _accepted_flags(module, script):
    """The flags a command defines, read from its source."""
    if script and script.startswith("recipes/train_"):
        from keras_memseg.training.cli import flag_names

        return flag_names()
    if script == "recipes/evaluate.py":  # an alias of the package's evaluate command
        path = ROOT / "keras_memseg" / "training" / "evaluate_cli.py"
    elif script:
        path = ROOT / script
    else:
        spec = importlib.util.find_spec(module)
        path = pathlib.Path(spec.origin)
        if path.name == "__init__.py":
            path = path.with_name("__main__.py")
    return _flags_in(path.read_text()) | {"help", "helpfull"}


def _extras():
    text = (ROOT / "setup.cfg").read_text()
    section = text.split("[options.extras_require]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^(\w[\w-]*)\s*=", section, flags=re.M))


def _simple_commands(text):
    """The simple commands of a shell text: continuations joined, comments dropped, split
    on `&&`, `||`, `;` and `|`."""
    out = []
    for row in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(row, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = []
        for token in lexer:
            if token and set(token) <= set(";&|"):
                if words:
                    out.append(words)
                words = []
            else:
                words.append(token)
        if words:
            out.append(words)
    return out


def _check_command(words, where):
    """Problems of one simple command."""
    while words and re.match(r"^[A-Za-z_]\w*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return []
    program, args = words[0], words[1:]
    if program in EXTERNAL:
        return []
    if program == "pip":
        extras = _extras()
        wanted = {e for a in args for e in re.findall(r"^\.?\[([\w,-]+)\]$", a.lstrip("."))}
        missing = {e for group in wanted for e in group.split(",")} - extras
        return [f"{where}: pip extras {sorted(missing)} are not in setup.cfg"] if missing else []
    if program == "keras-memseg":
        return _check_console_command(args, where)
    if program not in ("python", "python3"):
        return [f"{where}: {program!r} is not a command this test knows (tests/test_docs.py)"]
    if not args:
        return [f"{where}: python without a script or module"]
    module = script = None
    if args[0] == "-m":
        module, rest = args[1], args[2:]
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            module.startswith("keras_memseg") and importlib.util.find_spec(module) is None
        ):
            return [f"{where}: no module {module}"]
        if not module.startswith("keras_memseg"):
            return []  # venv, pip, pytest, mkdocs: not ours
    elif args[0] == "-c":
        return _check_python(args[1], where)
    else:
        script, rest = args[0], args[1:]
        if not (ROOT / script).is_file():
            return [f"{where}: {script} does not exist"]
        if not script.startswith(("recipes/", "benchmarks/")):
            return []
    accepted = _accepted_flags(module, script)
    if rest[:1] == ["--"]:  # a benchmark passing the rest to a recipe
        rest = []
    used = {a[2:].split("=")[0] for a in rest if a.startswith("--") and a != "--"}
    unknown = sorted(used - accepted)
    return [f"{where}: {unknown} not defined by {module or script}"] if unknown else []


def _check_console_command(args, where):
    """`keras-memseg COMMAND ...` as the command it dispatches to (keras_memseg.cli)."""
    from keras_memseg.cli import COMMANDS
    from keras_memseg.cli import RECIPE_ALIASES

    if not args or args[0] in ("-h", "--help", "help"):
        return []
    if args[0] not in COMMANDS:
        return [f"{where}: keras-memseg has no command {args[0]!r}"]
    if args[0] == "train":
        if len(args) < 2:
            return []
        if args[1].startswith("-"):  # --recipe NAME / --data ROOT: the recipes' flags
            return _check_command(["python", "recipes/train_sample.py", *args[1:]], where)
        recipe = RECIPE_ALIASES.get(args[1], args[1])
        if not (ROOT / "recipes" / f"train_{recipe}.py").is_file():
            return [f"{where}: keras-memseg train has no recipe {args[1]!r}"]
        return _check_command(["python", f"recipes/train_{recipe}.py", *args[2:]], where)
    if args[0] == "evaluate":
        return _check_command(["python", "recipes/evaluate.py", *args[1:]], where)
    module = COMMANDS[args[0]][0].removesuffix(".__main__")
    return _check_command(["python", "-m", module, *args[1:]], where)


def _commands_of(block):
    if block.language == "bash":
        return [(block.where, words) for words in _simple_commands(block.text)]
    if block.language == "console":
        text = block.text.replace("\\\n", " ")
        rows = [r[2:] for r in text.splitlines() if r.startswith("$ ")]
        return [(block.where, words) for row in rows for words in _simple_commands(row)]
    if block.language == "text":  # output; a command of ours in it is still checked
        rows = [r for r in block.text.splitlines() if COMMAND.search(r)]
        return [(block.where, _simple_commands(COMMAND.search(r).group(0))[0]) for r in rows]
    return []


def _inline_commands():
    """Commands of ours quoted in the prose: `python -m keras_memseg.X --flag ...`."""
    out = []
    for page in PAGES:
        for number, row in enumerate(_prose(page), 1):
            for span in re.findall(r"`([^`]+)`", row):
                if COMMAND.match(span):
                    out.append((f"{_relative(page)}:{number}", shlex.split(span)))
    return out


SHELL = [b for b in BLOCKS if b.language in ("bash", "console", "text")]


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_block_commands_exist_with_their_flags(block):
    problems = []
    for where, words in _commands_of(block):
        problems += _check_command(words, where)
    assert problems == [], "\n".join(problems)


def test_inline_commands_exist_with_their_flags():
    commands = _inline_commands()
    assert commands, "the prose quotes no command: is the span pattern broken?"
    problems = [p for where, words in commands for p in _check_command(words, where)]
    assert problems == [], "\n".join(problems)


# Flags the prose names that belong to other programs.
OTHER_FLAGS = {
    "strict": "mkdocs build",
    "grpc_max_receive_message_length": "TF Serving's model server",
    "logdir": "tensorboard",
}


def _our_flags():
    """Every flag of every command of ours (recipes, benchmarks, `python -m keras_memseg.X`)
    and the test suite's own options."""
    flags = set(OTHER_FLAGS)
    scripts = ["recipes/train_sample.py", "recipes/evaluate.py"]
    scripts += [_relative(p) for p in sorted((ROOT / "benchmarks").glob("*.py"))]
    for script in scripts:
        flags |= _accepted_flags(None, script)
    for main in sorted((ROOT / "keras_memseg").rglob("__main__.py")):
        flags |= _flags_in(main.read_text())
    flags |= _flags_in((ROOT / "keras_memseg" / "datasets" / "make_sample.py").read_text())
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    return flags | set(re.findall(r"addoption\(\s*\"--([\w-]+)\"", conftest))


def test_flags_named_in_the_prose_exist():
    """`--output_stride 8` in a sentence: some command of ours defines it."""
    known, unknown = _our_flags(), []
    for page in PAGES:
        for number, row in enumerate(_prose(page), 1):
            for flag in re.findall(r"(?<![\w-])--([a-z][\w-]*)(?![\w*-])", row):
                if flag not in known:
                    unknown.append(f"{_relative(page)}:{number}: --{flag}")
    assert unknown == [], "\n".join(unknown)


def test_the_checker_sees_the_commands_users_type():
    seen = {
        (words[2] if words[1:2] == ["-m"] else words[1])
        for block in SHELL
        for _, words in _commands_of(block)
        if words[0].startswith("python") and len(words) > 2
    }
    assert {"recipes/train_sample.py", "recipes/evaluate.py", "keras_memseg.export"} <= seen


def test_command_checker_catches_drift():
    assert _check_command(["python", "recipes/evaluate.py", "--modle=x"], "x")
    assert _check_command(["python", "-m", "keras_memseg.predict", "--nope"], "x")
    assert _check_command(["python", "recipes/no_such_recipe.py"], "x")
    assert _check_command(["pip", "install", "-e", ".[no_such_extra]"], "x")
    assert _check_command(["keras-memseg", "train", "sample", "--no_such_flag=1"], "x")
    assert _check_command(["keras-memseg", "evaluate", "--modle=x"], "x")
    assert _check_command(["keras-memseg", "predict", "--nope"], "x")
    assert _check_command(["keras-memseg", "fly"], "x")
    assert not _check_command(["keras-memseg", "train", "cocostuff", "--config_only"], "x")
    assert _check_command(["wget", "http://example.com"], "x")
    assert not _check_command(["python", "recipes/train_sample.py", "--max_steps=2"], "x")
    assert not _check_command(
        ["python", "-m", "keras_memseg.export", "--no-keep_ratio", "--checkpoint", "m"], "x"
    )


def test_python_checker_catches_drift():
    assert _check_python("from keras_memseg.models import NoSuchModel\n", "x")
    assert _check_python(
        "from keras_memseg.models import MemorySegmenter\n"
        "m = MemorySegmenter('resnet18_v1c', num_classes=3)\n"
        "m.compile(memory_momentun=0.9)\n",
        "x",
    )
    assert not _check_python(
        "from keras_memseg.models import MemorySegmenter\n"
        "m = MemorySegmenter('resnet18_v1c', num_classes=3)\n"
        "m.compile(memory_momentum=0.9, jit_compile=False)\n",
        "x",
    )


# -- other languages ---------------------------------------------------------------------

BIBTEX = re.compile(r"^@\w+\{[\w:.-]+,\s*(?:\w+\s*=\s*\{.*\},?\s*)+\}\s*$", flags=re.S)


@pytest.mark.parametrize("block", _blocks("bibtex"), ids=_ids(_blocks("bibtex")))
def test_bibtex_block_is_one_entry(block):
    depth = 0
    for char in block.text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0, f"{block.where}: unbalanced braces"
    assert depth == 0 and BIBTEX.match(block.text), f"{block.where}: not a BibTeX entry"


# -- README, links, the site -------------------------------------------------------------


def test_readme_is_the_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move details to docs/"


def test_readme_relative_links_exist():
    missing = []
    for number, row in enumerate(_prose(README), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", row):
            if re.match(r"^(?:[a-z]+:|#)", target):
                continue
            if not (ROOT / target.split("#")[0]).exists():
                missing.append(f"README.md:{number}: {target}")
    assert missing == [], "\n".join(missing)


def test_readme_links_into_the_docs():
    targets = set(re.findall(r"\]\((docs/[^)#\s]+)", README.read_text()))
    assert {"docs/get_started.md", "docs/performance.md", "docs/index.md"} <= targets


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="MkDocs is in the [test] extra"
)
def test_mkdocs_build_strict(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (tmp_path / "reference" / "models" / "index.html").is_file()
