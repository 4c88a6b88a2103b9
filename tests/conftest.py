"""Suite-wide settings. Area fixtures live in each folder's own conftest.py."""

from __future__ import annotations

import os

# Our own internal errors fail the test that hit them (and the subprocesses tests start inherit
# it). Tests that check an injected internal error is swallowed set it to "0" themselves.
os.environ.setdefault("RLM_TOOLKIT_STRICT", "1")
