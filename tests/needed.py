"""What some tests need beyond the pip packages, and what happens without it: a skip for a user, a failure in CI.

``.ci/run`` installs Chromium (Debian's), JupyterLab and the site's extra, and sets
``DAE_CI=1``: there a missing one fails the test with the command that installs it, so
no test passes as skipped. A user's ``make test`` skips those tests instead, and the
run's summary lists what was skipped and how to install it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: The variable ``.ci/run`` sets.
CI_ENV = "DAE_CI"
#: What this run lacked, and the command that installs it (for the run's summary).
MISSING: dict[str, str] = {}


def in_ci() -> bool:
    return os.environ.get(CI_ENV, "").strip() == "1"


def missing(what: str, install: str) -> NoReturn:
    """Skip the test for want of ``what`` (fail it in CI), naming the command that installs it."""
    MISSING[what] = install
    if in_ci():
        pytest.fail(f"{what}: CI runs every test ({CI_ENV}=1), so install it: {install}", pytrace=False)
    pytest.skip(f"{what} (install it: {install}; CI runs this test)")
