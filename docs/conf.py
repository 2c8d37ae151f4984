"""Sphinx configuration of frontier-rl's documentation site.

Sphinx rather than MkDocs: autodoc and autosummary read the reStructuredText docstrings the code already has
(``:param:`` fields, double-backtick literals) and napoleon the Google-style ``Args:`` blocks, SB3's own
documentation is Sphinx (its users know the layout), and MyST lets the pages be Markdown. The theme is furo.
Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (warnings are errors, as in CI).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

project = "frontier-rl"
author = "frontier-rl contributors"
copyright = "2026, frontier-rl contributors"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]

myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autosummary_imported_members = False
# A package documents its own members only (the module template adds ``:ignore-module-all:``): what it
# re-exports is documented where it is defined, else a cross-reference to it has two targets. sim2real is the
# exception: its modules are private and the package's ``__all__`` is its API.
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_member_order = "bysource"
# Type hints go into the description, where an unresolved name is plain text: the code's annotations use
# SB3's, torch's and NumPy's names, which this site does not document.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_class_signature = "separated"
# Gymnasium's and SB3's docstrings (Env.step, ...) are theirs, in their own markup: not repeated here.
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# The modules a CLI starts from (``python -m rl``) are not imported by the API reference.
autodoc_mock_imports: list[str] = []

html_theme = "furo"
html_title = "frontier-rl"
