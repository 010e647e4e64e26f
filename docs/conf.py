"""Sphinx configuration of synthgen's documentation site.

Build (warnings are errors): ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
The Markdown pages in ``docs/`` are the user guide (myst-parser); the API reference is generated from the
numpydoc docstrings (autosummary); the examples under ``examples/`` run during the build (sphinx-gallery).
"""

from pathlib import Path

import torch

import synthgen

# The gallery runs in this process: small models train several times faster on one thread of a busy CPU.
torch.set_num_threads(1)

DOCS = Path(__file__).resolve().parent

project = "synthgen"
author = "the synthgen developers"
copyright = "the synthgen developers"
release = synthgen.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
templates_path = ["_templates"]
# Unlabelled fences in the user guide are layouts, messages and shell lines, not Python.
highlight_language = "text"

# Markdown: headings get anchors (links such as ``tabular.md#fairness``), ``$`` math and ```{directive}``.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "dollarmath"]

# API reference: one page per public name, documented from its public import path.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "backreferences_dir": "generated/backrefs",
    "doc_module": ("synthgen",),          # every plot_*.py example runs during the build
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "show_memory": False,
    "plot_gallery": "True",
}

html_theme = "alabaster"
html_title = f"synthgen {release}"
html_static_path = []
html_theme_options = {"description": "Privacy-safe synthetic data", "fixed_sidebar": True}


def _cli_page_in_toctree(app, docname, source):
    """List the CLI reference (``docs/cli.md``) in the index's toctree once that page exists."""
    if docname == "index" and (DOCS / "cli.md").exists():
        source[0] = source[0].replace("\napi\n", "\napi\ncli\n", 1)


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods that scikit-learn generates for metadata routing."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("source-read", _cli_page_in_toctree)
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
