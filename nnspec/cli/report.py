"""``nnspec report``: run the conformance checks, benchmarks, oracle self-test and decay sweeps,
and write ``reports/`` (nnspec.report).

Each ``--impl`` module is imported first, as ``nnspec check`` imports it (the current directory
on the path, as ``python -m`` would): one that cannot be used stops the command at once, in one
line, with exit status 2. Ctrl-C stops it with exit status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nnspec.cli import options


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser("report", help="run the conformance checks and write reports/",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", help="comma-separated implementations: shipped short names or "
                   "module paths, imported from the current directory as by nnspec check "
                   "(default: the shipped torch CPU/CUDA ones and the reference)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--size", choices=("default", "large"), default="default",
                   help="default: a few minutes here; large: every benchmark size and "
                        "longer decay sweeps")
    p.add_argument("--seed", type=options.seed, default=0,
                   help="seed of the conformance checks (pytest's --nnspec-seed; when not 0 it "
                        "seeds Hypothesis' search too; default 0)")
    p.add_argument("--no-bench", action="store_true", help="skip the benchmarks")
    p.add_argument("--no-decay", action="store_true", help="skip the decay sweeps")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the oracle self-test catalogue")
    p.add_argument("--atlas", action="store_true",
                   help="also run the framework atlas (nnspec atlas: every installed adapter, "
                        "about 10 minutes here) and write atlas.md and atlas.json")
    options.add_run_options(p, size_flag="--sequence-size")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nnspec import report, speclib
    from nnspec.checks.harness.implementation import (
        DEFAULT,
        ImplementationLoadError,
        ImplementationUnavailable,
        load,
    )

    impls = [i.strip() for i in (args.impl or ",".join(DEFAULT)).split(",") if i.strip()]
    if os.getcwd() not in sys.path:  # import --impl modules as `python -m` would, from here
        sys.path.insert(0, os.getcwd())
    jobs = options.workers(args, len(speclib.load()), "report")
    try:
        for name in impls:
            try:
                # In a worker when isolated, as the run will: a module that ends its process on
                # import ends the worker, not the report. A serial run reuses the loaded worker;
                # a parallel one's workers start their own, so this one stops.
                loaded = load(name, **options.load_options(args))
                if jobs > 1:
                    loaded.close()
            except ImplementationUnavailable:  # CUDA without a GPU: its column says unavailable
                pass
            except ImplementationLoadError as exc:
                print(f"nnspec report: {exc}", file=sys.stderr)
                return 2
            except SystemExit as exc:
                print(f"nnspec report: importing implementation {name!r} called "
                      f"sys.exit({exc.code!r})", file=sys.stderr)
                return 2
        seed = [f"--nnspec-seed={args.seed}"] if args.seed else []
        return report.main(impls, Path(args.out),
                           [*seed, *options.pytest_args(args), *args.pytest_args],
                           size=args.size, bench=not args.no_bench, decay=not args.no_decay,
                           oracle=not args.no_oracle, atlas=args.atlas,
                           progress=options.progress(args), jobs=jobs)
    except KeyboardInterrupt:
        print("nnspec report: interrupted", file=sys.stderr)
        return 130
