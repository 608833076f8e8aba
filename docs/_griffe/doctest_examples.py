"""A griffe extension for the API reference: keras_memseg's docstrings write their
`Example:` section's doctest lines at the section's own indentation, where the Google
parser wants them indented under it. This indents them (in the rendered docs only; the
source and its doctests are untouched), so the examples render as code."""

import re

import griffe

_SECTION = re.compile(
    r"^(Args|Arguments|Returns|Raises|Yields|Attributes|Note|Notes|Examples?)\s*:\s*$"
)


class DoctestExamples(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.docstring is None or obj.is_alias:
            return
        lines = obj.docstring.value.splitlines()
        out, inside = [], False
        for line in lines:
            if re.match(r"^Examples?\s*:\s*$", line):
                inside = True
                out.append("Examples:")  # "Example:" would be an admonition of prose
                continue
            if inside and _SECTION.match(line):
                inside = False
            if inside and line and not line.startswith(" "):
                line = "    " + line
            out.append(line)
        obj.docstring.value = "\n".join(out)
