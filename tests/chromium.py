"""Where the browser tests find Chromium, and how they start it: Debian's, never Playwright's own download."""

import os

import pytest

CHROMIUM = os.environ.get("DAE_CHROMIUM", "/usr/bin/chromium")
# Chromium without the flags that make it reach for the network at start-up (there is none here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
#: Tests that drive Chromium: skipped without it on a user's machine, failed in CI (tests/needed.py).
needs_chromium = pytest.mark.usefixtures("chromium")
