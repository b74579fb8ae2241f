"""``python -m recfile``: tools that belong to the Python side (the ``rec`` CLI does the rest)."""

from __future__ import annotations

import argparse
import sys

from . import RecfileError
from .dimos import import_pickle_dir


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m recfile", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-dimos", help="convert a dimos folder of NNN.pickle files into a .rec stream")
    imp.add_argument("dir", help="the folder of 000.pickle, 001.pickle, … files")
    imp.add_argument("out", help="the .rec file to write (appended as a new session when it exists)")
    imp.add_argument("--stream", help="stream name (default: the folder's name)")
    args = parser.parse_args(argv)
    if args.command == "import-dimos":
        try:
            n = import_pickle_dir(args.dir, args.out, stream=args.stream)
        except (OSError, ValueError, RecfileError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"imported {n} frame{'s' if n != 1 else ''} from {args.dir} into {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
