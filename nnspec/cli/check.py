"""nnspec check MODULE: does one implementation under test conform to the spec?

Runs the checks that call the implementation (all of them, or those of --only) through
nnspec.oracle.check and prints, per spec id, pass, FAIL or not provided; for each failure its
first headline, the oracle's diagnosis (a known variant or bug the implementation matches, a lower
precision than it declares, or where a fault outside the catalogue is — an ignored argument, a
gate, a step — and on what evidence, else that it could not be localised; the table's note gives
it in a few words) and the pytest command that reproduces it.

Exit status: 0 when every spec id that was checked passed; 1 when one failed, or when nothing
could be checked (a module that provides none of the selected contract functions has not shown
that it conforms to anything); 2 when the command is misused or the module cannot be used at all
(it does not import, raises on import, lacks DTYPE or declares a non-float one); 130 when
interrupted (Ctrl-C). Problems are reported as one clear line each, never as a traceback.

With --json, stdout holds one JSON object and nothing else (the schema is in README.md, "nnspec
check --json"); the exit status is the same.

MODULE is imported as `python -m` would import it: the current directory is on the path.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from typing import TYPE_CHECKING, Any, TextIO

from nnspec.cli import options

if TYPE_CHECKING:
    import pytest

    from nnspec.checks.harness.implementation import Implementation

#: The only tolerance policy; see :func:`_policy`.
STRICT = "strict"

#: The ``schema`` of the ``--json`` output; README.md describes its fields.
SCHEMA = "nnspec-check/1"


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
    p.add_argument("--seed", type=options.seed, default=0,
                   help="seed of the checks' NumPy generators and, when not 0, of Hypothesis' "
                        "search (default 0: each check's fixed derandomized search); the same "
                        "seed reproduces the run")
    p.add_argument("--tolerance-policy", type=_policy, default=STRICT, metavar="strict",
                   help="'strict' (the only policy): the tolerance model as it is, at the "
                        "precision the module declares in DTYPE; there is no looser one")
    p.add_argument("--json", action="store_true",
                   help="print the verdicts, failures and diagnoses as one JSON object on stdout "
                        "instead of the table (README.md describes it); same exit status")
    options.add_run_options(p)
    p.set_defaults(run=run)


class _Usage(Exception):
    """A misuse of the command or an unusable module: exit status 2."""


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``nnspec check`` for parsed arguments; print to ``out`` (stdout) and return the status.

    With ``--json`` the table goes nowhere and ``out`` receives the JSON object alone: whatever
    else would reach stdout while the checks run (pytest, the module's own prints, a worker
    process's) goes to stderr.
    """
    out = out or sys.stdout
    data: dict[str, Any] = {"schema": SCHEMA, "module": args.module}
    text = io.StringIO() if args.json else out
    try:
        with _stdout_to_stderr() if args.json else nullcontext():
            status = _check(args, text, data)
    except _Usage as exc:
        data["error"], status = str(exc), 2
        print(f"nnspec check: {exc}", file=sys.stderr if args.json else out)
    except KeyboardInterrupt:
        data["error"], status = "interrupted", 130
        print("nnspec check: interrupted", file=sys.stderr if args.json else out)
    if args.json:
        data["exit_status"] = status
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return status


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send Python's and the file descriptor's stdout to stderr, for child processes too."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _Header:
    """A pytest plugin that loads the implementation once the checks are collected, and prints
    the header (DTYPE, the contract functions provided) or ends the run with why it cannot go on:
    ``usage`` (the module cannot be used: exit 2) or ``nothing`` (it provides no contract
    function: exit 1). A parallel run loads it before pytest starts (:meth:`load`): its
    controller collects nothing, and stopping workers that are still collecting takes seconds."""

    def __init__(self, args: argparse.Namespace, out: TextIO, data: dict[str, Any]) -> None:
        self.args, self.out, self.data = args, out, data
        self.usage: str | None = None
        self.nothing: str | None = None
        self.loaded = False
        self.impl: Implementation | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        import pytest

        if not self.loaded:
            self.load()
        if self.usage:
            pytest.exit(self.usage, returncode=2)
        if self.nothing:
            pytest.exit(self.nothing, returncode=1)

    def load(self) -> None:
        """Load the implementation and print the header, or set ``usage`` or ``nothing``."""
        from nnspec import verdicts
        from nnspec.checks.harness import contract
        from nnspec.checks.harness.implementation import (
            ImplementationLoadError,
            ImplementationUnavailable,
            load,
        )

        name = self.args.module
        try:
            impl = load(name, **options.load_options(self.args))
        except ImplementationLoadError as exc:
            self.usage = str(exc)
        except ImplementationUnavailable as exc:
            self.usage = f"implementation {name!r} cannot run here: {exc}"
        except SystemExit as exc:
            self.usage = f"importing implementation {name!r} called sys.exit({exc.code!r})"
        self.loaded = True
        if self.usage:
            return
        self.impl = impl
        provided = [fn for fn in contract.ALL if impl.provides(fn)]
        self.data.update(dtype=str(impl.dtype), provides=provided)
        listed = ", ".join(provided) if len(provided) <= 8 else f"{len(provided)} of them"
        print(f"nnspec check {name}: DTYPE {impl.dtype}; of the {len(contract.ALL)} contract "
              f"functions it provides {listed or 'none'}", file=self.out)
        if not provided:
            impl.close()
            self.nothing = verdicts.provides_nothing(impl.module, name, contract.ALL)


def _check(args: argparse.Namespace, out: TextIO, data: dict[str, Any]) -> int:
    """Print the header, table and failure blocks to ``out`` and fill ``data`` with the same, for
    ``--json``; return the exit status (raise :class:`_Usage` for 2)."""
    from nnspec import oracle, speclib, verdicts
    from nnspec.checks.harness.implementation import prestart

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
        if not any(speclib.selects(sid, k) for k in known):
            close = difflib.get_close_matches(sid, sorted(known) + sorted(
                {k.split(".")[0] + "." for k in known}), n=3)
            raise _Usage(f"--only {sid!r} is neither a spec id nor a family prefix ending in '.'"
                         + (f"; did you mean {', '.join(close)}?" if close else
                            "; `nnspec spec` lists the ids"))

    if os.getcwd() not in sys.path:  # import MODULE as `python -m` would, from here
        sys.path.insert(0, os.getcwd())
    # The module is imported where it will run (a worker process, unless --no-isolation): one
    # that ends its process on import cannot end this one. The worker starts importing now and
    # the header is printed once pytest has collected the checks (serially; before pytest starts
    # in parallel): its seconds overlap pytest's, or at least this process's imports.
    prestart(args.module, **options.load_options(args))
    header = _Header(args, out, data)
    run_args = options.pytest_args(args)
    chosen = [sid for sid in order if not args.only
              or any(speclib.selects(w, sid) for w in args.only)]
    jobs = options.workers(args, len(chosen), "check")
    data.update(only=list(args.only), seed=args.seed, examples=args.examples,
                tolerance_policy=args.tolerance_policy,
                isolation="none" if args.no_isolation else "process", timeout=args.timeout,
                jobs=jobs)

    if jobs > 1:
        header.load()
        if header.impl is not None:  # the workers start their own
            header.impl.close()
    if not (header.usage or header.nothing):
        pytest_output = io.StringIO()
        progress = options.progress(args)
        with redirect_stdout(pytest_output):
            result = oracle.check(args.module, only=args.only, examples=args.examples,
                                  seed=args.seed, quiet=False, implementation_only=True,
                                  extra_args=run_args, plugins=[progress, header],
                                  preload=False, jobs=jobs)
    # Before the interruption: pytest.exit, with which the header ends a run, reads as one.
    if header.usage:
        raise _Usage(header.usage)
    if header.nothing:
        data.update(spec_ids=[], conclusion=header.nothing)
        print(header.nothing, file=out)
        return 1
    totals, code = result.conformance.totals, result.conformance.exit_code
    if progress.interrupted:
        raise KeyboardInterrupt
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

    def reproduce(only: list[str]) -> str:
        return verdicts.reproduce(args.module, only, args.seed, args.examples, run_args)

    for sid in verdicts.ordered(result, order):
        if result.verdicts[sid] == "fail":
            block = verdicts.failure_block(result, sid, reproduce([sid]))
            print("\n" + "\n".join(block), file=out)
    text, status = verdicts.conclusion(result, order, args.module, selected, reproduce(args.only))
    print(f"\n{text}", file=out)
    data.update(totals=totals, seconds=round(result.conformance.seconds, 3),
                spec_ids=verdicts.as_data(result, order, reproduce), conclusion=text)
    return status
