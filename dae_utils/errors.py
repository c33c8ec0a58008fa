"""The errors a student or instructor can cause and fix: a parameter, a data folder, a checkpoint, a command.

Each is a ``ValueError``, so code that catches one keeps working; in Jupyter (and
IPython) it shows its message alone, without a traceback, as an exercise check's
``NotYet`` does: the message says what was wrong and what to do, and the traceback
would only bury it. This module imports nothing else of the package.
"""

from __future__ import annotations


class CourseValueError(ValueError):
    """A value the course cannot use; the message says what was wrong and what to do."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback.
        return [f"\u2717 {type(self).__name__}: {self}"]


class ParameterError(CourseValueError):
    """A notebook parameter (or a function's argument) of the wrong kind or out of range."""


class DataError(CourseValueError):
    """A data source or folder the course cannot load MNIST from."""


class CourseError(RuntimeError):
    """A command (a run, an edition, a grading) that cannot start or did not finish; the message says what to do."""
