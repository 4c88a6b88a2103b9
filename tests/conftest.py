"""Suite-wide settings and the one fixture every area shares. Area fixtures live in each
folder's own conftest.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Our own internal errors fail the test that hit them (and the subprocesses tests start inherit
# it). Tests that check an injected internal error is swallowed set it to "0" themselves.
os.environ.setdefault("RLM_TOOLKIT_STRICT", "1")

#: A temporary directory every uid may enter (the system's, before any test changes it).
_SHARED_TMP = tempfile.gettempdir() if os.stat(tempfile.gettempdir()).st_mode & 0o001 else "/tmp"


@pytest.fixture
def scratch_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of this test's own where the sandbox makes its scratch dirs: it is
    the process's ``tempfile.tempdir`` (pass it as ``TMPDIR`` to a subprocess) for the test.

    pytest's ``tmp_path`` will not do as root: it lies under a 0700 directory the worker's uid
    (65534) cannot enter, so the sandbox puts its scratch dirs in the shared /tmp instead and a
    "no scratch dir left" check there proves nothing. This one is 0711 under a shared directory,
    and the fixture checks that the sandbox really chooses it before the test runs.
    """
    from rlm_toolkit.sandbox._scratch import make_scratch  # the choice the sandbox makes

    root = Path(tempfile.mkdtemp(prefix="rlm-test-scratch-", dir=_SHARED_TMP))
    root.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        probe = make_scratch()
        shutil.rmtree(probe)
        assert Path(probe).parent == root, f"the sandbox would make scratch dirs in {probe}, not {root}"
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
