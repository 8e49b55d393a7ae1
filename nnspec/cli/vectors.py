"""``nnspec vectors``: export language-neutral test vectors of every contract function, with
their bounds (nnspec.vectors)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``vectors`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser("vectors", help="export language-neutral test vectors (JSON + .npz) of "
                       "every contract function, with their bounds")
    p.add_argument("--out", default="vectors", help="output folder (default: vectors)")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export into ``--out`` and print what was written; 2 when the folder holds something other
    than a previous export."""
    from nnspec import vectors

    out = Path(args.out)
    try:
        index = vectors.export(out, seed=args.seed,
                               command=f"nnspec vectors --out {args.out} --seed {args.seed}")
    except FileExistsError as exc:
        print(f"nnspec vectors: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    ids = sorted({c["spec_id"] for c in index["cases"]})
    print(f"nnspec vectors: {len(index['cases'])} cases for {len(ids)} spec ids in {out} "
          f"({size / 1024:.0f} KiB); {len(index['skipped'])} ids or functions skipped, with "
          f"reasons, in index.json")
    return 0
