"""The ``nnspec`` command: ``nnspec spec [--check]``, ``nnspec check``, ``nnspec report``,
``nnspec decay`` and ``nnspec vectors``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nnspec import check_cli


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
    from nnspec.checks.harness.implementation import DEFAULT

    impls = [i.strip() for i in (args.impl or ",".join(DEFAULT)).split(",") if i.strip()]
    return report.main(impls, Path(args.out), args.pytest_args, size=args.size,
                       bench=not args.no_bench, decay=not args.no_decay,
                       oracle=not args.no_oracle)


def _decay(args: argparse.Namespace) -> int:
    from nnspec.decay_cli import main as decay_main

    return decay_main(args)


def _vectors(args: argparse.Namespace) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnspec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_spec = sub.add_parser("spec", help="print the traceability table: id → reference → checks")
    p_spec.add_argument("--check", action="store_true",
                        help="exit non-zero, naming the gap, unless every id is traced both ways")
    p_spec.set_defaults(run=_spec)
    check_cli.add_parser(sub)
    p_report = sub.add_parser("report", help="run the conformance checks and write reports/")
    p_report.add_argument("--impl", help="comma-separated implementations (default: the shipped "
                          "torch CPU/CUDA ones and the reference)")
    p_report.add_argument("--out", default="reports", help="output folder (default: reports)")
    p_report.add_argument("--size", choices=("default", "large"), default="default",
                          help="default: a few minutes here; large: every benchmark size and "
                               "longer decay sweeps")
    p_report.add_argument("--no-bench", action="store_true", help="skip the benchmarks")
    p_report.add_argument("--no-decay", action="store_true", help="skip the decay sweeps")
    p_report.add_argument("--no-oracle", action="store_true",
                          help="skip the oracle self-test catalogue")
    p_report.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    p_report.set_defaults(run=_report)
    p_decay = sub.add_parser("decay", help="measure how fast ‖∂L/∂h_(T−k)‖ decays with k "
                             "(spec/decay.md): rates per cell, where torch underflows")
    p_decay.add_argument("--cell", choices=["rnn", "gru", "lstm", "all"], default="all")
    p_decay.add_argument("--hidden", type=int, default=32, help="hidden size H (default 32)")
    p_decay.add_argument("--input-size", type=int, help="input size D (default: H)")
    p_decay.add_argument("--length", type=int, default=1000, help="sequence length T (default 1000)")
    p_decay.add_argument("--scale", type=float, default=1.0, help="factor on w_hh (default 1)")
    p_decay.add_argument("--init", choices=["pytorch", "xavier", "orthogonal"], default="pytorch")
    p_decay.add_argument("--forget-bias", type=float, help="LSTM forget-gate bias b_f")
    p_decay.add_argument("--nonlinearity", choices=["tanh", "relu", "sigmoid", "linear"],
                         default="tanh", help="the RNN's φ (default tanh)")
    p_decay.add_argument("--input-std", type=float, default=1.0, help="x_t ~ N(0, std²·I)")
    p_decay.add_argument("--seeds", type=int, default=8, help="independent draws (default 8)")
    p_decay.add_argument("--seed", type=int, default=0, help="seed of the first draw")
    p_decay.add_argument("--lyapunov", type=int, default=1,
                         help="Lyapunov exponents to compute by QR (default 1; 0: none)")
    p_decay.add_argument("--no-torch", action="store_true",
                         help="skip the torch autograd float32/float64 comparison")
    p_decay.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p_decay.add_argument("--out", help="also write the JSON to this file")
    p_decay.set_defaults(run=_decay)
    p_vectors = sub.add_parser("vectors", help="export language-neutral test vectors (JSON + "
                               ".npz) of every contract function, with their bounds")
    p_vectors.add_argument("--out", default="vectors", help="output folder (default: vectors)")
    p_vectors.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
    p_vectors.set_defaults(run=_vectors)
    args = parser.parse_args(argv)
    return int(args.run(args))
