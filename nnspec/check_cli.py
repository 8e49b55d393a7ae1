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
import shlex
import sys
from contextlib import redirect_stdout, suppress
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from nnspec.oracle import OracleResult

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
    p.set_defaults(run=main)


class _Usage(Exception):
    """A misuse of the command or an unusable module: exit status 2."""


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``nnspec check`` for parsed arguments; print to ``out`` (stdout) and return the status."""
    out = out or sys.stdout
    try:
        return _check(args, out)
    except _Usage as exc:
        print(f"nnspec check: {exc}", file=out)
        return 2


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from nnspec import oracle, speclib
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
        print(_provides_nothing(impl.module, args.module, contract.ALL), file=out)
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
          f"{_examples(args.examples)} per check, tolerance policy "
          f"{args.tolerance_policy}: {_checks(totals['passed'])} passed, {totals['failed']} failed, "
          f"{totals['skipped']} not provided ({result.conformance.seconds:.1f} s)\n", file=out)

    rank = {"fail": 0, "pass": 1, "not provided": 2}
    ids = sorted(result.verdicts, key=lambda s: (rank[result.verdicts[s]],
                                                 order.index(s) if s in order else len(order), s))
    rows = [(sid, result.verdicts[sid].upper() if result.verdicts[sid] == "fail"
             else result.verdicts[sid], _counts(result, sid), _note(result, sid)) for sid in ids]
    _table(("spec id", "verdict", "checks", "note"), rows, out)

    failed = [sid for sid in ids if result.verdicts[sid] == "fail"]
    for sid in failed:
        cell = result.conformance.cells[(sid, result.implementation)]
        print(f"\nFAIL {sid}: {_checks(len(cell.failures))} failed", file=out)
        print(f"  first failure: {cell.failures[0]}", file=out)
        for line in _distinct(cell.failure_diagnoses[0]):
            print(f"  diagnosis: {line}", file=out)
        names = dict.fromkeys(n.split("::")[-1].split("[")[0] for n in cell.failed_checks)
        print(f"  failed checks: {', '.join(names)}", file=out)
        print(f"  reproduce: {_reproduce(args, sid)}", file=out)

    checked = [s for s, v in result.verdicts.items() if v != "not provided"]
    print("", file=out)
    if failed:
        print(f"{args.module} does not conform: {_ids(len(failed))} failed "
              f"({', '.join(failed)}), {len(checked) - len(failed)} passed.", file=out)
        return 1
    if totals["failed"]:
        print(f"{args.module} does not conform: {_checks(totals['failed'])} without a spec id "
              f"failed; run the checks under pytest to see them:\n  "
              f"{_reproduce(args, None)}", file=out)
        return 1
    if not checked:
        print(f"{args.module} was not checked: it provides none of the functions that "
              f"{selected} needs, so nothing shows that it conforms.", file=out)
        return 1
    print(f"{args.module} conforms: {_ids(len(checked))} passed, "
          f"{len(result.verdicts) - len(checked)} not provided.", file=out)
    return 0


def _distinct(lines: list[str]) -> list[str]:
    """One diagnosis line per finding: the same match at another distance (from another call the
    check made) says nothing new."""
    return list({line.split(" (relative distance")[0]: line for line in reversed(lines)}.values())[::-1]


def _examples(n: int | None) -> str:
    if n is None:
        return "the ci profile's Hypothesis examples"
    return f"{n} Hypothesis example{'s' if n != 1 else ''}"


def _checks(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''}"


def _ids(n: int) -> str:
    return f"{n} spec id{'s' if n != 1 else ''}"


def _provides_nothing(module: object, name: str, contract: dict[str, str]) -> str:
    """The message for a module without any contract function, naming near misses."""
    own = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
    near = {n: m[0] for n in own if (m := difflib.get_close_matches(n, list(contract), n=1,
                                                                      cutoff=0.75))}
    hint = "; ".join(f"{n} is not {m}" for n, m in near.items())
    return (f"nnspec check: {name} provides none of the contract functions (checks/contract.py), "
            f"so nothing can be checked and it does not conform"
            + (f" ({hint}: names must match exactly)" if hint else ""))


def _counts(result: OracleResult, sid: str) -> str:
    cell = result.conformance.cells[(sid, result.implementation)]
    parts = [f"{n} {what}" for n, what in ((cell.failed, "failed"), (cell.passed, "passed"),
                                           (cell.skipped, "not provided")) if n]
    return ", ".join(parts)


def _note(result: OracleResult, sid: str) -> str:
    verdict = result.verdicts[sid]
    if verdict == "fail":
        return "see below"
    if verdict == "not provided":
        reason = next(iter(result.messages[sid]), "")
        return reason.removeprefix("not provided: ").removeprefix(f"{result.implementation} ")
    return ""


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _reproduce(args: argparse.Namespace, sid: str | None) -> str:
    """The pytest command that runs the failing spec id's checks (or all the selected ones)
    again, from this directory."""
    python = Path(sys.executable)
    with suppress(ValueError):  # outside the current directory, the absolute path
        python = python.relative_to(Path.cwd())
    only = [sid] if sid else args.only
    cmd = [str(python), "-m", "pytest", "--pyargs", "nnspec.checks", "--impl", args.module,
           *(arg for s in only for arg in ("--only", s)), "--nnspec-seed", str(args.seed)]
    if args.examples is not None:
        cmd += ["--nnspec-examples", str(args.examples)]
    return shlex.join(cmd)
