"""``python -m rlm_toolkit [options] COMMAND [ARGS...]`` is ``rlm-instrument``."""

from __future__ import annotations

from rlm_toolkit.auto.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
