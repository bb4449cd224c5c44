"""Command line of the reference runtime.

``migrate-ml`` forwards ``sample-data ...`` and ``reference ...`` here (lazily, so the codemod
never imports torch); ``python -m migrate_ml_reference ...`` takes the same arguments.
Bad input prints one ``error: ...`` line naming the file and line where there is one, and
exits 2.
"""

from __future__ import annotations

import argparse
import sys


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print full usage; keep errors to one line
        raise _UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="migrate-ml", description="migrate-ml reference runtime")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sample = sub.add_parser("sample-data", help="write offline multi-label sample data (PNGs + labels.csv)")
    sample.add_argument("dir", help="output folder")
    sample.add_argument("--kind", choices=("digits", "shapes"), default="digits")
    sample.add_argument("--n", type=int, default=1000, help="total images, split 80/10/10 train/val/test")
    sample.add_argument("--image-size", type=int, default=32, help="side in pixels (even)")
    sample.add_argument("--seed", type=int, default=0)
    return parser


def _sample_data(args: argparse.Namespace) -> int:
    from .sample import write_sample_data

    out = write_sample_data(args.dir, kind=args.kind, n=args.n, image_size=args.image_size, seed=args.seed)
    print(f"wrote {args.n} {args.kind} images to {out} (labels.csv, classes.txt, images/)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``sample-data ...`` or ``reference train|eval ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    from .dataset import DatasetFormatError

    try:
        args = _build_parser().parse_args(argv)
        return _sample_data(args)
    except (_UsageError, DatasetFormatError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
