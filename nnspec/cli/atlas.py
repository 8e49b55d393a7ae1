"""``nnspec atlas``: run every installed framework adapter through the checks and write the
conformance atlas (reports/atlas.md and reports/atlas.json; nnspec.atlas)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnspec.cli import options


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``atlas`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser("atlas", help="run every installed framework adapter (Keras, Flax, ONNX, "
                       "torch…) through the checks and write reports/atlas.md and atlas.json")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--examples", type=int, default=10, metavar="N",
                   help="Hypothesis examples per check (default 10)")
    p.add_argument("--seed", type=options.seed, default=0,
                   help="seed of the checks, as nnspec check's (default 0)")
    p.add_argument("--only", action="extend", nargs="+", default=[], metavar="FRAMEWORK",
                   help="run only these adapters, by their atlas key (e.g. keras_torch flax_nnx; "
                        "the first column of atlas.md's verdicts; an unknown key is refused "
                        "with the list)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the atlas and write it; 2 for an unknown adapter or a bad --examples."""
    from nnspec import atlas

    keys = [a.key for a in atlas.ADAPTERS]
    unknown = [k for k in args.only if k not in keys]
    if unknown:
        print(f"nnspec atlas: unknown adapter {', '.join(unknown)}; the adapters are "
              f"{', '.join(keys)}", file=sys.stderr)
        return 2
    if args.examples < 1:
        print(f"nnspec atlas: --examples must be at least 1, got {args.examples}", file=sys.stderr)
        return 2
    chosen = [a for a in atlas.ADAPTERS if not args.only or a.key in args.only]
    data = atlas.run(chosen, examples=args.examples, seed=args.seed,
                     progress=lambda line: print(f"nnspec atlas: {line}", file=sys.stderr))
    md, js = atlas.write(data, Path(args.out))
    ran = [f for f in data["frameworks"] if f["status"] == "ran"]
    failed = sum(r["verdict"] == "fail" for f in ran for r in f["rows"])
    print(f"nnspec atlas: {len(ran)} frameworks ran, {len(data['frameworks']) - len(ran)} "
          f"skipped; {failed} failing rows; wrote {md} and {js}")
    return 0
