"""nnspec check MODULE: does one implementation under test conform to the spec?

Runs the checks that call the implementation (all of them, or those of --only) through
nnspec.oracle.check and prints, per spec id, pass, FAIL or not provided; for each failure its
first headline, the oracle's diagnosis (a known variant or bug the implementation matches, a lower
precision than it declares) and the pytest command that reproduces it.

Exit status: 0 when every spec id that was checked passed; 1 when one failed, or when nothing
could be checked (a module that provides none of the selected contract functions has not shown
that it conforms to anything); 2 when the command is misused or the module cannot be used at all
(it does not import, raises on import, lacks DTYPE or declares a non-float one). Problems are
reported as one clear line each, never as a traceback.

MODULE is imported as `python -m` would import it: the current directory is on the path.
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import sys
from contextlib import redirect_stdout
from typing import TextIO

#: The only tolerance policy; see :func:`_policy`.
STRICT = "strict"


def _policy(value: str) -> str:
    """``--tolerance-policy``: only ``strict`` exists, and the refusal says why."""
    if value != STRICT:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a policy; the only one is 'strict'. Bounds are derived from the "
            f"precision the module declares in DTYPE (spec/tolerances.md), never chosen: to be "
            f"judged as float32, declare DTYPE = numpy.float32 in the module (or pass "
            f"dtype=numpy.float32 to an nnspec.adapters function)")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``check`` subcommand to the ``nnspec`` command's subparsers."""
    p = sub.add_parser(
        "check", help="check one implementation (an importable module) against the spec",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("module", nargs="?", metavar="MODULE",
                   help="importable module path (e.g. examples.seed004_lstm) or a shipped short "
                        "name (torch, torch_float32, reference, torch_cuda, torch_cuda_float32)")
    p.add_argument("--only", action="extend", nargs="+", default=[], metavar="SPEC_ID",
                   help="check only these spec ids (repeatable or space-separated; a family "
                        "prefix ending in '.', such as 'gru.', selects all its ids)")
    p.add_argument("--examples", type=int, metavar="N",
                   help="Hypothesis examples per check (default: the 'ci' profile's 20)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the checks' generators (default 0); the same seed reproduces")
    p.add_argument("--tolerance-policy", type=_policy, default=STRICT, metavar="strict",
                   help="'strict' (the only policy): the tolerance model as it is, at the "
                        "precision the module declares in DTYPE; there is no looser one")
    p.set_defaults(run=run)


class _Usage(Exception):
    """A misuse of the command or an unusable module: exit status 2."""


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``nnspec check`` for parsed arguments; print to ``out`` (stdout) and return the status."""
    out = out or sys.stdout
    try:
        return _check(args, out)
    except _Usage as exc:
        print(f"nnspec check: {exc}", file=out)
        return 2


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from nnspec import oracle, speclib, verdicts
    from nnspec.checks.harness import contract
    from nnspec.checks.harness.implementation import ImplementationLoadError, ImplementationUnavailable, load

    if not args.module:
        hint = (" (--only takes several ids, so it swallowed the module name: put MODULE first, "
                "or write --only=ID)") if args.only else ""
        raise _Usage(f"name the module to check, e.g. nnspec check mypkg.my_lstm{hint}")
    if args.examples is not None and args.examples < 1:
        raise _Usage(f"--examples must be at least 1, got {args.examples}")
    entries = speclib.load()
    order = list(entries)
    known = set(order) | {bug for entry in entries.values() for bug in entry.bugs}
    for sid in args.only:
        if not (sid in known or (sid.endswith(".") and any(k.startswith(sid) for k in known))):
            close = difflib.get_close_matches(sid, sorted(known) + sorted(
                {k.split(".")[0] + "." for k in known}), n=3)
            raise _Usage(f"--only {sid!r} is neither a spec id nor a family prefix ending in '.'"
                         + (f"; did you mean {', '.join(close)}?" if close else
                            "; `nnspec spec` lists the ids"))

    if os.getcwd() not in sys.path:  # import MODULE as `python -m` would, from here
        sys.path.insert(0, os.getcwd())
    try:
        impl = load(args.module)
    except ImplementationLoadError as exc:
        raise _Usage(str(exc)) from exc
    except ImplementationUnavailable as exc:
        raise _Usage(f"implementation {args.module!r} cannot run here: {exc}") from exc
    except SystemExit as exc:
        raise _Usage(f"importing implementation {args.module!r} called sys.exit({exc.code!r})") from exc

    provided = [fn for fn in contract.ALL if impl.provides(fn)]
    listed = ", ".join(provided) if len(provided) <= 8 else f"{len(provided)} of them"
    print(f"nnspec check {args.module}: DTYPE {impl.dtype}; of the {len(contract.ALL)} contract "
          f"functions it provides {listed or 'none'}", file=out)
    if not provided:
        print(verdicts.provides_nothing(impl.module, args.module, contract.ALL), file=out)
        return 1

    pytest_output = io.StringIO()
    with redirect_stdout(pytest_output):
        result = oracle.check(args.module, only=args.only, examples=args.examples,
                              seed=args.seed, quiet=False, implementation_only=True)
    totals, code = result.conformance.totals, result.conformance.exit_code
    if code not in (0, 1, 5):
        tail = "\n".join(pytest_output.getvalue().strip().splitlines()[-15:])
        raise _Usage(f"pytest could not run the checks (exit code {code}):\n{tail}")
    selected = f"--only {' '.join(args.only)}" if args.only else "every spec id"
    if not result.verdicts and not totals["failed"]:
        raise _Usage(f"{selected} selects no check that calls an implementation: those ids "
                     f"are checked on the reference only (by ./dev test)")
    print(f"{selected}, seed {args.seed}, "
          f"{verdicts.examples(args.examples)} per check, tolerance policy "
          f"{args.tolerance_policy}: {verdicts.checks(totals['passed'])} passed, "
          f"{totals['failed']} failed, {totals['skipped']} not provided "
          f"({result.conformance.seconds:.1f} s)\n", file=out)
    print("\n".join(verdicts.table(result, order)), file=out)
    for sid in verdicts.ordered(result, order):
        if result.verdicts[sid] == "fail":
            block = verdicts.failure_block(
                result, sid, verdicts.reproduce(args.module, [sid], args.seed, args.examples))
            print("\n" + "\n".join(block), file=out)
    text, status = verdicts.conclusion(
        result, order, args.module, selected,
        verdicts.reproduce(args.module, args.only, args.seed, args.examples))
    print(f"\n{text}", file=out)
    return status
