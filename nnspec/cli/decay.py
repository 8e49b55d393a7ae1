"""``nnspec decay``: measure how fast ‖∂L/∂h_{T−k}‖ decays or grows with k (spec/decay.md).

For each cell it draws ``--seeds`` independent sets of weights, inputs and cotangent, runs the
reference's single log-space backward sweep, fits the per-step rate, optionally computes the top
Lyapunov exponents by QR, and runs torch autograd in float32 and float64 on the first draw to
show where plain floating point underflows or overflows (nnspec.decay.summary). It prints a table
and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``decay`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser("decay", help="measure how fast ‖∂L/∂h_(T−k)‖ decays with k "
                       "(spec/decay.md): rates per cell, where torch underflows")
    p.add_argument("--cell", choices=["rnn", "gru", "lstm", "all"], default="all")
    p.add_argument("--hidden", type=int, default=32, help="hidden size H (default 32)")
    p.add_argument("--input-size", type=int, help="input size D (default: H)")
    p.add_argument("--length", type=int, default=1000, help="sequence length T (default 1000)")
    p.add_argument("--scale", type=float, default=1.0, help="factor on w_hh (default 1)")
    p.add_argument("--init", choices=["pytorch", "xavier", "orthogonal"], default="pytorch")
    p.add_argument("--forget-bias", type=float, help="LSTM forget-gate bias b_f")
    p.add_argument("--nonlinearity", choices=["tanh", "relu", "sigmoid", "linear"],
                   default="tanh", help="the RNN's φ (default tanh)")
    p.add_argument("--input-std", type=float, default=1.0, help="x_t ~ N(0, std²·I)")
    p.add_argument("--seeds", type=int, default=8, help="independent draws (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first draw")
    p.add_argument("--lyapunov", type=int, default=1,
                   help="Lyapunov exponents to compute by QR (default 1; 0: none)")
    p.add_argument("--no-torch", action="store_true",
                   help="skip the torch autograd float32/float64 comparison")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--out", help="also write the JSON to this file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Measure every selected cell, print the table (or JSON) and write ``--out``; 2 when the
    settings are invalid or a forward run overflows."""
    from nnspec.decay import summary
    from nnspec.reference import decay, decay_measure

    kinds = ["rnn", "gru", "lstm"] if args.cell == "all" else [args.cell]
    if args.hidden < 1 or args.length < 2 or args.seeds < 1:
        print(f"nnspec decay: need --hidden ≥ 1, --length ≥ 2, --seeds ≥ 1 (got {args.hidden}, "
              f"{args.length}, {args.seeds})", file=sys.stderr)
        return 2
    rows = []
    for kind in kinds:
        cell = decay.Cell(kind, args.nonlinearity if kind == "rnn" else "tanh")
        try:
            m = decay_measure.measure(cell, hidden=args.hidden, length=args.length,
                                      init=args.init, scale=args.scale,
                              forget_bias=args.forget_bias if kind == "lstm" else None,
                              input_std=args.input_std, draws=args.seeds,
                              input_size=args.input_size, seed=args.seed)
        except (ValueError, FloatingPointError) as exc:
            print(f"nnspec decay: {cell}: {exc}", file=sys.stderr)
            return 2
        rows.append(summary.summarise(m, lyapunov=args.lyapunov, torch=not args.no_torch,
                                      curves=bool(args.json or args.out)))
    document = {"generated_by": "nnspec decay " + " ".join(sys.argv[2:]), "results": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(document, indent=1))
    else:
        print(summary.table(rows))
        print(f"\ninputs: {rows[0]['inputs']}; rate fitted over k ∈ "
              f"[{rows[0]['rate']['k_min']}, {rows[0]['rate']['k_max']}]; torch on draw 0 only")
    return 0
