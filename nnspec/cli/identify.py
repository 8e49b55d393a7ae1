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

A cell's first call at each size carries its framework's first-call costs (JAX compiles), and
the probe calls CELL at two sizes, the checks at many: a JAX cell is fastest jitted once per size
with its modules built abstractly (jax.eval_shape, nnx.eval_shape), since their parameters come
from each call (README.md, "nnspec identify", gives the times measured both ways).

The identification runs in a child process (a fresh Python running this command), so that a cell
that hangs, crashes, calls os._exit or sys.exit, or takes down the interpreter cannot end this
command with a false status: the result counts only when the child hands it over complete; a
child that ends without it, or runs past --timeout (then it is killed with its process group), is
a one-line error with status 2. What the cell prints goes to stderr.

Exit status: 0 when a layout was identified and the checks passed; 1 when none fits or the checks
fail (a bug of spec/ identified fails them, and the diagnosis names it); 2 when CELL cannot be
used (it cannot be loaded, raises, ends the process, or does not finish within --timeout); 130
when interrupted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, TextIO

from nnspec.cli import options

#: Seconds the whole identification may take by default: the probe takes under 1 s once a
#: framework has compiled the cell (up to 8 s with JAX's first compile), the verification 3-16 s on
#: a loaded two-core machine, and importing PyTorch or JAX in the child a few seconds more.
DEFAULT_TIMEOUT = 120.0

#: The schema of the ``--json`` output.
SCHEMA = "nnspec-identify/1"


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
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"wall-clock limit of the whole identification (probe and verification), "
                        f"which runs in a child process; past it the child is killed and the "
                        f"status is 2 (default {DEFAULT_TIMEOUT:g})")
    # Internal: set on the child process, which identifies in its own process and writes the
    # result here as its very last act.
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _data(target: str, found: Any) -> dict[str, Any]:
    v = found.verification
    return {"schema": SCHEMA, "cell": target, "kind": found.kind,
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
    if v.diagnoses:
        # One line per failing call would repeat itself: the first, then what the others name.
        from nnspec.checks.oracle.diagnosis import named_ids

        print(f"  diagnosis: {v.diagnoses[0]}", file=out)
        if others := v.diagnoses[1:]:
            named = sorted({sid for line in others for sid in named_ids(line)})
            print(f"  ({len(others)} more failing call{'s' * (len(others) > 1)} diagnosed"
                  + (f", naming {', '.join(named)})" if named else ")"), file=out)
    state = {"pass": "verified", "fail": f"the checks of {v.spec_id} FAIL with it"}.get(
        v.verdict, f"not verified: the checks of {v.spec_id} gave no verdict on it")
    print(f"\n# The conversion ({state}):\n{found.source}", file=out, end="")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``nnspec identify`` for parsed arguments; print to ``out`` (stdout); return the exit
    status. The identification runs in a child process (see the module's text); the child itself
    (``--result-file``) runs it here and writes its output and status to that file."""
    out = out or sys.stdout
    if args.result_file is not None:
        return _child(args)
    try:
        if args.examples is not None and args.examples < 1:
            raise ValueError(f"--examples must be at least 1, got {args.examples}")
        if not args.timeout > 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
        return _isolated(args, out)
    except KeyboardInterrupt:
        return _fail(args, out, "interrupted", 130)
    except ValueError as exc:
        return _fail(args, out, str(exc), 2)


def _fail(args: argparse.Namespace, out: TextIO, message: str, status: int) -> int:
    """Say in one line on stderr why no finding came; with ``--json``, also as the object."""
    print(f"nnspec identify: {message}", file=sys.stderr)
    if args.json:
        out.write(json.dumps({"schema": SCHEMA, "cell": args.cell, "error": message,
                              "exit_status": status}) + "\n")
    return status


def _child_command(args: argparse.Namespace, result: str) -> list[str]:
    argv = [sys.executable, "-m", "nnspec", "identify", args.cell, "--seed", str(args.seed),
            "--result-file", result]
    if args.kind:
        argv += ["--kind", args.kind]
    if args.examples is not None:
        argv += ["--examples", str(args.examples)]
    if args.json:
        argv.append("--json")
    return argv


def _stderr_fd() -> int | None:
    """This process's stderr as a file descriptor the child can write to directly, or None where
    stderr is not a file (captured by a test): then the child's output is relayed after it ends."""
    try:
        sys.stderr.flush()
        return sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _isolated(args: argparse.Namespace, out: TextIO) -> int:
    """Run the child, wait at most ``args.timeout`` seconds, and print its result; raise
    ValueError with the reason where it ended without one."""
    # Imported here: every nnspec command imports this module, and the harness pulls in NumPy.
    from nnspec.checks.harness.isolation import kill_group

    # The child imports nnspec from where this process did, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with tempfile.TemporaryDirectory(prefix="nnspec-identify-") as tmp:
        result = os.path.join(tmp, "result.json")
        fd = _stderr_fd()
        with tempfile.TemporaryFile() as log:
            sink: int | IO[bytes] = log if fd is None else fd
            # A session of its own: on a timeout the child and whatever it started are killed
            # together, and a Ctrl-C here reaches the child only through the kill below.
            child = subprocess.Popen(_child_command(args, result), stdin=subprocess.DEVNULL,
                                     stdout=sink, stderr=sink, env=env, start_new_session=True)
            try:
                code: int | None = child.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                kill_group(child)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
        if code is None:
            raise ValueError(f"did not finish within {args.timeout:g} s (--timeout)")
        try:
            data = json.loads(Path(result).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ValueError(f"the cell ended the process ({_ending(code)}) before "
                             f"identification finished") from None
    out.write(data["output"])
    return int(data["status"])


def _ending(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _child(args: argparse.Namespace) -> int:
    """The child's side: identify here, then write the output and status to the result file,
    atomically and last, so that a file that exists is a finished identification."""
    buffer = io.StringIO()
    status = _identify(args, buffer)
    partial = args.result_file + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump({"status": status, "output": buffer.getvalue()}, f)
    os.replace(partial, args.result_file)
    return status


def _identify(args: argparse.Namespace, out: TextIO) -> int:
    """Load and identify the cell in this process; print the finding to ``out``."""
    from nnspec.identify import IdentifyError, identify, load

    try:
        cell, params, settings = load(args.cell)
        kind = args.kind or settings.get("kind")
        if kind is None:
            raise IdentifyError(f"{args.cell} defines no KIND: give --kind gru, lstm or rnn")
        found = identify(cell, params, kind=kind, input_size=settings.get("input_size"),
                         hidden_size=settings.get("hidden_size"), dtype=settings.get("dtype"),
                         seed=args.seed, examples=args.examples)
    except ValueError as exc:  # IdentifyError, or a cell that returns the wrong shapes
        return _fail(args, out, str(exc), 2)
    status = 0 if found.ok else 1
    if args.json:
        data = _data(args.cell, found)
        data["exit_status"] = status
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        _text(args.cell, found, out)
    return status
