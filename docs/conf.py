"""Sphinx configuration of HDeepRM's documentation site.

Build it with ``tox -e docs`` (warnings are errors), or by hand:

    pip install -c constraints.txt -e '.[docs]'
    python -m sphinx -W --keep-going -b html docs build/docs/html

Pages are Markdown (MyST); the API reference (``api/``) is generated from the docstrings
with autodoc. ``HDEEPRM_LINKCHECK=1 tox -e docs`` also checks the external links (needs the
internet); internal links and cross-references are always checked, as warnings.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import hdeeprm  # noqa: E402

project = "HDeepRM"
author = "HDeepRM contributors"
copyright = "HDeepRM contributors"
release = hdeeprm.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "plain_docstrings",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "dev/emulators"]

# Markdown: ``$...$`` / ``$$...$$`` maths, ``:::`` fences, definition lists, and anchors for
# headings down to level 3, so that ``[text](page.md#a-heading)`` links are checked.
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "amsmath"]
myst_heading_anchors = 3

# The API reference: members in source order, type hints in the signatures.
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Every documented module imports without the optional extras (torch, matplotlib, pyzmq,
# ray), which the docs extra does not install; hdeeprm.rl.agent, which needs torch at import
# time, is left out of the API reference for that reason.

# The docstrings are reStructuredText, some with plain-text layouts (aligned columns,
# indented continuations): _ext/plain_docstrings.py shows those paragraphs verbatim.
add_module_names = False
python_display_short_literal_types = True

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"HDeepRM {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

# Link checking (``-b linkcheck``). Internal links and cross-references are checked by every
# build (a broken one is a warning); external ones only when HDEEPRM_LINKCHECK=1 asks for it,
# since they need the internet (CI is offline): otherwise the link checker ignores them.
linkcheck_timeout = 20
linkcheck_retries = 2
if os.environ.get("HDEEPRM_LINKCHECK") != "1":
    linkcheck_ignore = [r"^[a-z][a-z0-9+.-]*://"]
