"""Serve the fairaudit dashboard for one run folder, or two (run A and run B).

    python dashboards/app.py RUN [RUN_B] [--host 127.0.0.1] [--port 8050]

A thin entry over :func:`fairaudit.dashboard.serve`; the app itself lives in the library.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fairaudit.dashboard import serve
from fairaudit.exceptions import FairauditError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve the fairaudit dashboard for a run folder (and optionally a second "
        "run folder, B, to compare against)."
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="one or two run folders")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on")
    parser.add_argument("--debug", action="store_true", help="Dash debug mode")
    args = parser.parse_args(argv)
    if len(args.runs) > 2:
        parser.error("give one run folder, or two (A and B)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        serve(args.runs, host=args.host, port=args.port, debug=args.debug)
    except FairauditError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
