"""``rlm-view FILE.jsonl [-o OUT.html] [--open]``: one self-contained HTML page for a run."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from rlm_toolkit.exporters._view_html import write_html

PROG = "rlm-view"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (2 with one line on stderr for bad input)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write one self-contained HTML file (no server, no network) showing the runs "
        "in an OTLP JSON lines file, e.g. one from `rlm-instrument --jsonl run.jsonl ...`.",
    )
    parser.add_argument("path", help="the JSONL file (OTLP JSON lines: spans, logs, metrics)")
    parser.add_argument("-o", "--output", help="the HTML file to write (default: PATH with .html)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    args = parser.parse_args(argv)
    output = args.output or str(Path(args.path).with_suffix(".html"))
    if os.path.isdir(output):
        print(
            f"{PROG}: error: {output}: is a directory (give a file name, e.g. -o run.html)", file=sys.stderr
        )
        return 2
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        print(f"{PROG}: error: {parent}: no such directory for -o (create it first)", file=sys.stderr)
        return 2
    try:
        written = write_html(args.path, output)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(written)
    if args.open:
        webbrowser.open(Path(written).as_uri())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
