"""The ``nnspec`` command: ``nnspec spec [--check]`` and ``nnspec report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _spec(args: argparse.Namespace) -> int:
    from nnspec import speclib

    try:
        entries, gaps = speclib.traceability()
    except speclib.SpecError as exc:
        print(f"nnspec spec: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if gaps:
            print(f"nnspec spec --check: {len(gaps)} gap(s) between spec, reference and checks:",
                  file=sys.stderr)
            for gap in gaps:
                print(f"  - {gap}", file=sys.stderr)
            return 1
        print(f"nnspec spec --check: {len(entries)} spec ids, each with a reference function "
              f"and at least one check; no dangling ids.")
        return 0
    print("| spec id | reference | checks | tolerance | sources |")
    print("| --- | --- | --- | --- | --- |")
    for e in entries.values():
        refs = "<br>".join(r.removeprefix("nnspec.reference.") for r in e.references) or "—"
        checks = "<br>".join(e.checks) or "—"
        sources = "<br>".join(f"{s.file[:3]} {s.section}" for s in e.sources)
        print(f"| `{e.id}` | {refs} | {checks} | {e.tolerance} | {sources} |")
    if gaps:
        print(f"\n{len(gaps)} gap(s); `nnspec spec --check` lists them.")
    return 0


def _report(args: argparse.Namespace) -> int:
    from nnspec import report
    from nnspec.checks.implementation import DEFAULT

    impls = [i.strip() for i in (args.impl or ",".join(DEFAULT)).split(",") if i.strip()]
    return report.main(impls, Path(args.out), args.pytest_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnspec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_spec = sub.add_parser("spec", help="print the traceability table: id → reference → checks")
    p_spec.add_argument("--check", action="store_true",
                        help="exit non-zero, naming the gap, unless every id is traced both ways")
    p_spec.set_defaults(run=_spec)
    p_report = sub.add_parser("report", help="run the conformance checks and write reports/")
    p_report.add_argument("--impl", help="comma-separated implementations (default: the shipped "
                          "torch CPU/CUDA ones and the reference)")
    p_report.add_argument("--out", default="reports", help="output folder (default: reports)")
    p_report.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    p_report.set_defaults(run=_report)
    args = parser.parse_args(argv)
    return int(args.run(args))
