"""Show docstrings written as plain text verbatim instead of mis-parsing them.

HDeepRM's docstrings are reStructuredText for their roles and literals (``:class:`X```,
````x````), but several lay out tables and lists as plain text: aligned columns, indented
continuation lines. Parsed as reStructuredText those give "Unexpected indentation" errors
and garbled output. This extension test-parses each paragraph of a docstring (blocks
separated by blank lines) with docutils; a paragraph that would warn is shown as a literal
block, exactly as written, so the build stays warning-free without editing the sources.
``plain_docstrings_report`` (a build-time list) names the docstrings that needed it.
"""

from __future__ import annotations

import io
import re

from docutils import nodes
from docutils.core import publish_doctree
from docutils.utils import SystemMessage

_ROLE = re.compile(r":(?:py:)?[a-z]+:`~?([^`]+)`")
_LITERAL_ROLE = _ROLE
# Explicit markup (``.. note::``): Sphinx's directives need its environment, which a test
# parse does not have; a comment swallows the directive and its indented body.
_DIRECTIVE = re.compile(r"^(\s*)\.\. ([A-Za-z][\w:-]*)::", re.MULTILINE)
_SETTINGS = {"report_level": 5, "halt_level": 5, "warning_stream": io.StringIO(),
             "file_insertion_enabled": False, "raw_enabled": False}

report: list[str] = []


def _warns(text: str) -> bool:
    """Whether docutils reports anything at WARNING level or above for ``text`` (roles
    replaced by literals, since plain docutils does not know Sphinx's)."""
    text = _DIRECTIVE.sub(r"\1.. directive \2", _ROLE.sub(r"``\1``", text))
    try:
        tree = publish_doctree(text, settings_overrides=dict(_SETTINGS, warning_stream=io.StringIO()))
    except SystemMessage:
        return True
    return any(msg["level"] >= 2 for msg in tree.findall(nodes.system_message))


def _blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _verbatim(block: list[str]) -> list[str]:
    # A literal block shows the roles' raw markup; keep only their targets.
    shown = [_LITERAL_ROLE.sub(r"\1", line).replace("``", "") for line in block]
    return ["::", ""] + ["    " + line for line in shown]


def process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    if not lines or not _warns("\n".join(lines)):
        return
    out: list[str] = []
    for block in _blocks(lines):
        out += (_verbatim(block) if _warns("\n".join(block)) else block) + [""]
    if _warns("\n".join(out)):  # paragraphs fine alone but not together: all verbatim
        out = _verbatim([line for block in _blocks(lines) for line in block + [""]][:-1])
    lines[:] = out
    report.append(f"{what} {name}")


def build_finished(app, exception) -> None:
    if report and exception is None:
        from sphinx.util import logging

        logging.getLogger(__name__).info(
            "plain-text docstrings shown verbatim (%d): %s", len(report), ", ".join(sorted(report)))


def setup(app):
    app.connect("autodoc-process-docstring", process_docstring)
    app.connect("build-finished", build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
