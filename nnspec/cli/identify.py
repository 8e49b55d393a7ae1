"""nnspec identify CELL: how do PyTorch's weights map onto a recurrent cell of unknown layout?

CELL is a module file (my_cell.py) or an importable module (mypkg.my_cell) defining

  KIND    "gru", "lstm" or "rnn" (or give --kind)
  PARAMS  {name: shape} of the cell's parameters, or a function (input_size, hidden_size) ->
          {name: shape}; a dict needs INPUT_SIZE and HIDDEN_SIZE (each >= 2, unequal)
  CELL    CELL(x, h, **params) -> h'  (the LSTM: CELL(x, h, c, **params) -> (h', c')), on NumPy
          arrays, at any input and hidden size
  DTYPE   (optional) the precision the cell computes in; by default its output's

The cell is probed with designed inputs to find which PyTorch parameter each of its parameter
entries is (gate order, transposes, per-gate or concatenated matrices, split or folded biases,
a bias offset such as TF1's forget_bias, a flipped update gate) and which formula it computes
(gru.cell.pytorch, gru.cell.textbook, lstm.cell, rnn.cell, or a variant or bug of spec/). The
mapping is printed as code, `from_torch(w_ih, w_hh, b_ih, b_hh) -> {name: array}`, after the full
checks of the formula's spec id have run on the cell with it: the verdict is printed above it.
When no layout fits, it says what was ruled out for each formula.

Exit status: 0 when a layout was identified and the checks passed; 1 when none fits or the checks
fail (a bug of spec/ identified fails them, and the diagnosis names it); 2 when CELL cannot be
used; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from nnspec.cli import options


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``identify`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser(
        "identify", help="find how PyTorch's weights map onto a cell of unknown layout, and "
                         "verify it", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cell", metavar="CELL",
                   help="a module file (path/to/cell.py) or an importable module (pkg.cell) "
                        "defining CELL, PARAMS and KIND")
    p.add_argument("--kind", choices=("gru", "lstm", "rnn"),
                   help="the kind of cell (default: the module's KIND)")
    p.add_argument("--seed", type=options.seed, default=0,
                   help="seed of the probe's random inputs and of the checks (default 0)")
    p.add_argument("--examples", type=int, metavar="N",
                   help="Hypothesis examples per check in the verification (default: the 'ci' "
                        "profile's)")
    p.add_argument("--json", action="store_true",
                   help="print the finding as one JSON object on stdout; same exit status")
    p.set_defaults(run=run)


def _data(target: str, found: Any) -> dict[str, Any]:
    v = found.verification
    return {"schema": "nnspec-identify/1", "cell": target, "kind": found.kind,
            "identified": found.identified, "variant": found.variant, "function": found.function,
            "nonlinearity": found.nonlinearity, "dtype": found.dtype, "notes": found.notes,
            "missing": found.missing, "ruled_out": found.ruled_out, "source": found.source,
            "seconds": round(found.seconds, 3), "cell_calls": found.cell_calls,
            "verification": None if v is None else {
                "spec_id": v.spec_id, "verdict": v.verdict, "passed": v.passed,
                "failed": v.failed, "not_provided": v.not_provided,
                "seconds": round(v.seconds, 3), "diagnoses": v.diagnoses,
                "first_failure": v.first_failure, "problem": v.problem,
                "not_provided_reasons": v.not_provided_reasons,
                "reasons_complete": v.reasons_complete, "partly": v.partly},
            "ok": found.ok}


def _text(target: str, found: Any, out: TextIO) -> None:
    from nnspec.identify import describe

    article = "a" if found.kind == "gru" else "an"
    print(f"nnspec identify {target}: {article} {found.kind.upper()} cell computing in "
          f"{found.dtype}", file=out)
    if not found.identified:
        print(f"\nnot identified ({found.seconds:.2f} s, {found.cell_calls} calls of the cell): "
              f"no layout of PyTorch's parameters explains the cell under any formula tried.",
              file=out)
        print("ruled out:", file=out)
        for line in found.ruled_out:
            print(f"  - {line}", file=out)
        return
    phi = f" with {found.nonlinearity}" if found.nonlinearity else ""
    zero = (f", restricted to PyTorch's {', '.join(found.missing)} = 0 (it has no place for "
            f"{'them' if len(found.missing) > 1 else 'it'}: the conversion is exact only there)"
            if found.missing else "")
    print(f"\nidentified in {found.seconds:.2f} s ({found.cell_calls} calls of the cell): it "
          f"computes {found.variant}{phi} — {describe(found.variant)}{zero}", file=out)
    for note in found.notes:
        print(f"  - {note}", file=out)
    if found.ruled_out:
        print("ruled out:", file=out)
        for line in found.ruled_out:
            print(f"  - {line}", file=out)
    v = found.verification
    reasons = "; ".join(v.not_provided_reasons)
    skipped = f"{v.not_provided} not provided"
    if reasons:
        # The oracle keeps a row's first few messages only: say so when skips went unrecorded.
        skipped += f": {reasons}" if v.reasons_complete else f"; the reasons recorded: {reasons}"
    print(f"\nverification: the checks of {v.spec_id} on CELL(from_torch(...)), as "
          f"{found.function}: {v.verdict.upper() if v.verdict == 'fail' else v.verdict} "
          f"({v.passed} passed, {v.failed} failed, {skipped}; {v.seconds:.1f} s)", file=out)
    for note in v.partly:
        print(f"  {note}", file=out)
    if v.problem:
        print(f"  {v.problem}", file=out)
    if v.first_failure:
        print(f"  first failure: {v.first_failure}", file=out)
    for line in v.diagnoses:
        print(f"  diagnosis: {line}", file=out)
    state = {"pass": "verified", "fail": f"the checks of {v.spec_id} FAIL with it"}.get(
        v.verdict, f"not verified: the checks of {v.spec_id} gave no verdict on it")
    print(f"\n# The conversion ({state}):\n{found.source}", file=out, end="")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``nnspec identify`` for parsed arguments; print to ``out`` (stdout); return the exit
    status."""
    from nnspec.identify import IdentifyError, identify, load

    out = out or sys.stdout
    try:
        if args.examples is not None and args.examples < 1:
            raise IdentifyError(f"--examples must be at least 1, got {args.examples}")
        cell, params, settings = load(args.cell)
        kind = args.kind or settings.get("kind")
        if kind is None:
            raise IdentifyError(f"{args.cell} defines no KIND: give --kind gru, lstm or rnn")
        found = identify(cell, params, kind=kind, input_size=settings.get("input_size"),
                         hidden_size=settings.get("hidden_size"), dtype=settings.get("dtype"),
                         seed=args.seed, examples=args.examples)
    except KeyboardInterrupt:
        print("nnspec identify: interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # IdentifyError, or a cell that returns the wrong shapes
        if args.json:
            out.write(json.dumps({"schema": "nnspec-identify/1", "cell": args.cell,
                                  "error": str(exc), "exit_status": 2}) + "\n")
        else:
            print(f"nnspec identify: {exc}", file=sys.stderr)
        return 2
    status = 0 if found.ok else 1
    if args.json:
        data = _data(args.cell, found)
        data["exit_status"] = status
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        _text(args.cell, found, out)
    return status
