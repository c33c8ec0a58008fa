"""Sphinx configuration of the course site: the seven notebooks, from their committed outputs, and four pages.

The stack is Jupyter Book 1's (Sphinx, myst-nb, sphinx-book-theme), configured here
directly so that one command builds it with every warning an error:

    make site            # or: python -m sphinx -W --keep-going -b html -c book . site

The source folder is the repository's root (the notebooks stay where students open
them); ``include_patterns`` picks the book's pages and the notebooks. Nothing is
executed, and nothing is fetched: the theme's fonts and scripts ship with it, and
MathJax is served from the site (sphinx-mathjax-offline), so the site builds and reads
without a network.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "Denoising autoencoders on MNIST"
author = "the course's authors"
copyright = "2026, the course's authors"

extensions = [
    "myst_nb",  # notebooks and MyST Markdown
    "sphinx_book_theme",
    "sphinx-mathjax-offline",  # MathJax 3 served from _static/, not a CDN
    "course_site",  # the notebooks' exercises folded; a root index.html; the widgets' still pictures
]

root_doc = "book/index"
include_patterns = ["book/*.md", "notebooks/0*.ipynb"]
exclude_patterns = [".venv", "site", "runs", "checkpoints", "student", "**/.ipynb_checkpoints"]

# The committed outputs are the lesson: never execute, never cache.
nb_execution_mode = "off"
# Notebooks are read by course_site.read_notebook: nbgrader's solution cells come folded.
nb_custom_formats = {".ipynb": ["course_site.read_notebook", {}, False]}
# No widget JavaScript from a CDN: a live widget needs a kernel anyway, so the page shows the still
# picture each explorer saves beside its widget view (course_site drops the view, and records' JSON).
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
nb_output_stderr = "remove"  # progress bars' leftovers, warnings already discussed in the text
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # every heading gets a stable, linkable id

html_theme = "sphinx_book_theme"
html_title = "Denoising autoencoders on MNIST"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_copy_source = True  # the download button offers each notebook as .ipynb
html_show_sourcelink = False  # the download button is the link
