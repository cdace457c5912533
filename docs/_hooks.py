"""MkDocs hooks of the documentation site (loaded by mkdocs.yml).

The command-line reference is generated at build time from the parser that the
``htmp-infer`` command itself uses, so it cannot go stale: the page ``cli.md``
holds a marker line that is replaced by one section per subcommand (usage, then a
table of its arguments and options with their defaults).
"""

from __future__ import annotations

import argparse
import html
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = "<!-- cli-reference -->"
#: where the parser factory may live: the CLI module, or the module that holds
#: ``main`` once the CLI is a package
_PARSER_MODULES = ("htmp_infer.cli.app", "htmp_infer.cli.app.main")
_PARSER_FACTORIES = ("_parser", "build_parser", "parser")
_TYPE_WORDS = {int: "integer", float: "number", str: "text"}


def _find_parser() -> argparse.ArgumentParser:
    """Build the ``htmp-infer`` parser, wherever the CLI module keeps its factory."""
    tried = []
    for module_name in _PARSER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            tried.append(f"{module_name} ({exc})")
            continue
        for name in _PARSER_FACTORIES:
            factory = getattr(module, name, None)
            if callable(factory):
                parser = factory()
                if isinstance(parser, argparse.ArgumentParser):
                    return parser
        tried.append(f"{module_name} (no {'/'.join(_PARSER_FACTORIES)})")
    raise PluginError("cli.md: no htmp-infer parser found in " + "; ".join(tried))


def _text(value: str) -> str:
    """Escape text for a Markdown table cell."""
    value = html.escape(" ".join(value.split()), quote=False)
    return re.sub(r"([\\`*_|\[\]])", r"\\\1", value)


def _type_word(action: argparse.Action) -> str:
    if action.choices is not None:
        return " \\| ".join(f"`{choice}`" for choice in action.choices)
    kind: Callable[..., Any] | None = action.type  # type: ignore[assignment]
    if kind is None:
        return "text"
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    name = getattr(kind, "__name__", type(kind).__name__)
    words = name.strip("_").replace("_", " ")
    return {"Path": "path"}.get(words, words.replace("nonnegative", "non-negative"))


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _rows(parser: argparse.ArgumentParser) -> Iterator[tuple[str, list[str]]]:
    formatter = parser._get_formatter()
    for group in parser._action_groups:
        rows = []
        for action in group._group_actions:
            if action.help == argparse.SUPPRESS or isinstance(
                action, argparse._HelpAction
            ):
                continue
            if action.option_strings:
                name = ", ".join(f"`{o}`" for o in action.option_strings)
            else:
                name = f"`{action.dest}`"
            takes_value = action.nargs != 0
            value = _type_word(action) if takes_value else "flag"
            default = action.default
            if not takes_value or default in (None, argparse.SUPPRESS):
                default_text = "required" if action.required else ""
            else:
                default_text = f"`{default}`"
            if not action.option_strings:
                default_text = "required"
            description = formatter._expand_help(action) if action.help else ""
            rows.append(f"| {name} | {value} | {default_text} | {_text(description)} |")
        if rows:
            title = group.title or "arguments"
            yield title, rows


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """Markdown for every subcommand of ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``htmp-infer`` parser.

    Returns
    -------
    str
        One section per subcommand: its help, usage and argument tables.
    """
    lines = []
    for name, help_text, sub in _subcommands(parser):
        sub.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=88)
        lines += [f"## `{name}`", "", _text(help_text[:1].upper() + help_text[1:])]
        lines += ["", "```text", sub.format_usage().strip(), "```", ""]
        for title, rows in _rows(sub):
            lines += [f"**{title[:1].upper() + title[1:]}**", ""]
            lines += ["| argument | value | default | meaning |", "|---|---|---|---|"]
            lines += [*rows, ""]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Fill the marker of ``cli.md`` with the generated reference."""
    if page.file.src_uri != "cli.md":
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"cli.md: the marker {MARKER!r} is missing")
    return markdown.replace(MARKER, cli_reference(_find_parser()))
