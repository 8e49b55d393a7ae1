"""``nnspec soak``: run the checks under many seeds and count the red cells (nnspec.soak)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _seeds(value: str) -> list[int]:
    """``20`` (seeds 1…20) or ``3-7`` or ``1,4,9``."""
    try:
        if "-" in value:
            low, high = (int(v) for v in value.split("-", 1))
            seeds = list(range(low, high + 1))
        elif "," in value:
            seeds = [int(v) for v in value.split(",")]
        else:
            seeds = list(range(1, int(value) + 1))
    except ValueError:
        seeds = []
    if not seeds:
        raise argparse.ArgumentTypeError(f"{value!r} names no seeds: give a count (20), a range "
                                         f"(3-7) or a list (1,4,9)")
    return seeds


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``soak`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser(
        "soak", help="run every check on torch, torch_float32, the reference and every correct "
                     "alternative under many seeds; any red cell is a false alarm",
        description=__doc__)
    p.add_argument("--seeds", type=_seeds, default=_seeds("20"), metavar="SEEDS",
                   help="a count (20: seeds 1…20, the default), a range (3-7) or a list (1,4,9)")
    p.add_argument("--examples", type=int, default=40, metavar="N",
                   help="Hypothesis examples per check (default 40)")
    p.add_argument("--jobs", type=int, default=2, metavar="J",
                   help="seeds run at the same time, one process each (default 2)")
    p.add_argument("--out", default="reports", help="folder for soak.json and soak.md "
                   "(default reports)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the seeds, write ``soak.json`` and ``soak.md``; 1 when any cell was red."""
    from nnspec import soak

    if args.examples < 1 or args.jobs < 1:
        print("nnspec soak: --examples and --jobs must be at least 1", file=sys.stderr)
        return 2
    data = soak.run(args.seeds, examples=args.examples, jobs=args.jobs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (out / "soak.md").write_text(soak.markdown(data), encoding="utf-8")
    print(f"nnspec soak: {len(args.seeds)} seeds × {args.examples} examples, {data['red']} red "
          f"cells ({data['seconds']:.0f} s); {out / 'soak.md'}")
    return 1 if data["red"] else 0
