"""``nnspec spec [--check]``: the traceability table, spec id → reference → checks, or (--check)
its gaps."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``spec`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser("spec", help="print the traceability table: id → reference → checks")
    p.add_argument("--check", action="store_true",
                   help="exit non-zero, naming the gap, unless every id is traced both ways")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the table (or, with --check, the gaps); 1 when --check finds a gap, 2 when the spec
    cannot be read."""
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
