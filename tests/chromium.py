"""Where the browser tests find Chromium, and how they start it: Debian's, never Playwright's own download."""

import os

import pytest

CHROMIUM = os.environ.get("DAE_CHROMIUM", "/usr/bin/chromium")
# Chromium without the flags that make it reach for the network at start-up (there is none here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
needs_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)
