"""The README's usage example must run as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    usage = next(b for b in blocks if "MemorySegmenter(" in b and "fit(" in b)
    exec(compile(usage, "README.md", "exec"), {})
    assert "(4, 64, 64, 5) (5, 1, 64)" in capsys.readouterr().out
