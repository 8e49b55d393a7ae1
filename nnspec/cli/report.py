"""``nnspec report``: run the conformance checks, benchmarks, oracle self-test and decay sweeps,
and write ``reports/`` (nnspec.report)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser("report", help="run the conformance checks and write reports/")
    p.add_argument("--impl", help="comma-separated implementations (default: the shipped "
                   "torch CPU/CUDA ones and the reference)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--size", choices=("default", "large"), default="default",
                   help="default: a few minutes here; large: every benchmark size and "
                        "longer decay sweeps")
    p.add_argument("--no-bench", action="store_true", help="skip the benchmarks")
    p.add_argument("--no-decay", action="store_true", help="skip the decay sweeps")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the oracle self-test catalogue")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnspec import report
    from nnspec.checks.harness.implementation import DEFAULT

    impls = [i.strip() for i in (args.impl or ",".join(DEFAULT)).split(",") if i.strip()]
    return report.main(impls, Path(args.out), args.pytest_args, size=args.size,
                       bench=not args.no_bench, decay=not args.no_decay,
                       oracle=not args.no_oracle)
