"""Sphinx glue for the course site: fold the model answers, and give the site a root ``index.html``.

- Solution cells (nbgrader's ``solution`` cells, which hold the model answer between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``) are read with myst-nb's ``hide-input``
  tag, so a reader sees the exercise, not its answer, until they open it. The open
  questions' model answers are ``<details>`` blocks in the notebooks, already folded.
- Outputs keep what a page can show without a kernel: an explorer's widget view is
  dropped for the still picture saved beside it, and ``runtime.record``'s JSON for its
  printed text.
- myst-nb writes the outputs' images among the doctrees, not into the repository's root.
- The book's first page is ``book/index``; ``site/index.html`` forwards to it, so the
  site opens at its root.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from sphinx.application import Sphinx

FOLDED = "hide-input"
#: Output types a static page cannot use: a live widget's view, and the course's machine-readable records.
DROPPED_MIMETYPES = ("application/vnd.jupyter.widget-view+json", "application/vnd.dae-utils.record+json")
REDIRECT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Denoising autoencoders on MNIST</title>
<meta http-equiv="refresh" content="0; url=book/index.html"></head>
<body><p><a href="book/index.html">Denoising autoencoders on MNIST</a></p></body></html>
"""


def read_notebook(text: str) -> nbformat.NotebookNode:
    """Read a notebook: each nbgrader solution cell tagged ``hide-input``, the outputs a page cannot show dropped."""
    notebook = nbformat.reads(text, as_version=4)
    notebook.metadata.pop("widgets", None)  # the saved widget state: only a live kernel could use it
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for mimetype in DROPPED_MIMETYPES:
                output.get("data", {}).pop(mimetype, None)
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            tags = cell.metadata.setdefault("tags", [])
            if FOLDED not in tags:
                tags.append(FOLDED)
    return notebook


def keep_outputs_in_the_build(app: Sphinx) -> None:
    """Write myst-nb's output images among the doctrees (its default is the output folder's parent)."""
    app.env.mystnb_config = app.env.mystnb_config.copy(
        output_folder=str(Path(app.doctreedir).resolve() / "jupyter_execute"))


def write_root_index(app: Sphinx, exception: Exception | None) -> None:
    """Write ``index.html`` at the site's root, forwarding to the book's first page."""
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(REDIRECT, encoding="utf-8")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", keep_outputs_in_the_build, priority=900)  # after myst-nb's own
    app.connect("build-finished", write_root_index)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
