"""What nbgrader runs differently while it autogrades the course: heavy experiments that no exercise needs are skipped.

``python -m dae_utils.course nbgrader`` writes an ``nbgrader_config.py`` that puts
``SkipWhileGrading`` first among nbgrader's autograde preprocessors. It empties the
code cells tagged ``skip-while-grading`` (notebook 3's sweep over noise levels, which
denoises and judges 80,000 images; notebook 6's clustering comparison and its moonshot,
which train, embed and cluster 60,000 images) before the notebook runs,
so a submission is graded in minutes. No grade cell depends on them: each check
makes its own inputs. The notebooks say which sections are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

#: The cell tag that marks a code cell as not needed for grading.
SKIP_TAG = "skip-while-grading"
#: What a skipped cell holds instead, in the autograded copy.
SKIPPED_SOURCE = f"# Not run while autograding: no exercise depends on this cell (tagged {SKIP_TAG})."


class SkipWhileGrading(NbGraderPreprocessor):
    """Empty every code cell tagged ``skip-while-grading`` (its source becomes a comment, its outputs go)."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int
                        ) -> tuple[NotebookNode, dict[str, Any]]:
        if cell.cell_type == "code" and SKIP_TAG in cell.metadata.get("tags", []):
            if cell.metadata.get("nbgrader", {}).get("grade") or cell.metadata.get("nbgrader", {}).get("solution"):
                return cell, resources  # an exercise or its check always runs, tag or not
            cell.source = SKIPPED_SOURCE
            cell.outputs = []
            cell.execution_count = None
        return cell, resources


def run_nbgrader(course_dir: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader *args`` in ``course_dir`` with this environment's ``bin/`` on the PATH.

    That is how book/instructors.md runs it: nbgrader runs ``alembic`` (its database migrations) by name, so
    without that it fails. Returns the finished process with its output; the caller decides what a non-zero
    exit means.
    """
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PATH": path})
