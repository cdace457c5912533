"""Griffe extension for the API reference: Sphinx roles in docstrings to Markdown.

The docstrings are numpydoc with a few Sphinx constructs that mkdocstrings does
not render: ``:math:`x``` (inline maths), ``.. math::`` blocks and cross-reference
roles such as ``:func:`name```. This extension rewrites them, before the
docstrings are parsed, into what the site's Markdown understands:
``$x$`` and ``$$ ... $$`` (pymdownx.arithmatex, rendered by MathJax) and code
spans. mkdocs.yml loads it as ``docs/_griffe_rst.py:SphinxRoles``.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(
    r":(?:py:)?(?:mod|func|class|meth|data|attr|obj|exc|const|ref|term):`~?([^`]+)`"
)
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
#: an ``&`` that is not ``\&``, or a line break: the block needs an aligned env
_ALIGNED = re.compile(r"(?<!\\)&|\\\\")
_SECTION_RULE = re.compile(r"^[ \t]*-{3,}[ \t]*$")
_PARAMETER_SECTIONS = {"Parameters", "Other Parameters", "Attributes"}
#: ``a, b, c : type``, numpydoc's grouped parameters
_GROUPED = re.compile(
    r"^(?P<indent>[ \t]*)(?P<names>[*\w]+(?:[ \t]*,[ \t]*[*\w]+)+)[ \t]*:(?P<rest>.*)$"
)


def _xref(match: re.Match[str]) -> str:
    target = match.group(1)
    if "<" in target and target.endswith(">"):  # :func:`text <target>`
        target = target[: target.index("<")].strip()
    elif match.group(0).split("`")[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _display(indent: str, body: str) -> list[str]:
    """One ``$$`` block per equation (equations are separated by blank lines)."""
    out: list[str] = []
    for equation in re.split(r"\n[ \t]*\n", body.strip("\n")):
        tex = equation.strip()
        if not tex:
            continue
        if _ALIGNED.search(tex):
            tex = "\\begin{aligned}\n" + tex + "\n\\end{aligned}"
        out += ["", f"{indent}$$"]
        out += [f"{indent}{line}" if line else "" for line in tex.splitlines()]
        out += [f"{indent}$$", ""]
    return out


def _ungroup(lines: list[str]) -> list[str]:
    """Split ``a, b : type`` entries into one entry per name.

    griffe gives every name of a group the default of the first one; one entry
    per name (with the same type and description) lets each show its own.
    """
    out: list[str] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and _SECTION_RULE.match(lines[i + 1]) and line.strip():
            section = line.strip()
        match = _GROUPED.match(line) if section in _PARAMETER_SECTIONS else None
        if match is None:
            out.append(line)
            i += 1
            continue
        indent = match.group("indent")
        body = []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i])
            i += 1
        trailing = []
        while body and not body[-1].strip():
            trailing.append(body.pop())
        for name in match.group("names").split(","):
            out.append(f"{indent}{name.strip()} :{match.group('rest')}")
            out += body
        out += trailing
    return out


def convert(text: str) -> str:
    """Return ``text`` with its Sphinx maths and cross-reference roles rewritten.

    Parameters
    ----------
    text : str
        A docstring.

    Returns
    -------
    str
        The docstring in the site's Markdown.
    """
    lines = _ungroup(text.splitlines())
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group("indent")
        block = [match.group("rest")] if match.group("rest") else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            block.append(lines[i])
            i += 1
        out += _display(indent, textwrap.dedent("\n".join(block)))
    converted = "\n".join(out)
    converted = _MATH_ROLE.sub(lambda m: f"${m.group(1).strip()}$", converted)
    return _XREF_ROLE.sub(_xref, converted)


class SphinxRoles(griffe.Extension):
    """Rewrite each docstring as it is loaded (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Convert the docstring of a newly created object.

        Parameters
        ----------
        obj : griffe.Object
            The object (module, class, function, attribute).
        **kwargs : Any
            Other event arguments, unused.
        """
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
