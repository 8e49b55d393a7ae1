"""What ``nnspec check`` prints about an oracle run: the verdict table, one block per failed spec
id (its first failure, the diagnosis, the failed checks and the command that reproduces them),
and the conclusion with its exit status; and the same as data for ``nnspec check --json``.

Everything here reads :class:`nnspec.oracle.OracleResult` and the
:class:`~nnspec.checks.harness.failure.Failure` objects it holds; nothing runs a check.
"""

from __future__ import annotations

import difflib
import shlex
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from nnspec.checks.harness.loading import public_callables
from nnspec.checks.oracle.localise_findings import Finding, fields, short

if TYPE_CHECKING:
    from nnspec.checks.harness.failure import Failure
    from nnspec.oracle import OracleResult

#: Verdicts in the order the table lists them.
RANK = {"fail": 0, "pass": 1, "not provided": 2}


def examples(n: int | None) -> str:
    """How many Hypothesis examples each check ran, in words."""
    if n is None:
        return "the ci profile's Hypothesis examples"
    return f"{n} Hypothesis example{'s' if n != 1 else ''}"


def checks(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''}"


def ids(n: int) -> str:
    return f"{n} spec id{'s' if n != 1 else ''}"


def provides_nothing(module: ModuleType | SimpleNamespace, name: str,
                     contract: dict[str, str]) -> str:
    """The message for a module without any contract function, naming near misses."""
    own = public_callables(module)
    near = {n: m[0] for n in own if (m := difflib.get_close_matches(n, list(contract), n=1,
                                                                      cutoff=0.75))}
    hint = "; ".join(f"{n} is not {m}" for n, m in near.items())
    return (f"nnspec check: {name} provides none of the contract functions (checks/harness/contract.py), "
            f"so nothing can be checked and it does not conform"
            + (f" ({hint}: names must match exactly)" if hint else ""))


def ordered(result: OracleResult, order: Sequence[str]) -> list[str]:
    """The spec ids of ``result``: failed first, then passed, then not provided; within each, in
    the spec's ``order``."""
    return sorted(result.verdicts, key=lambda s: (RANK[result.verdicts[s]],
                                                  order.index(s) if s in order else len(order), s))


def table(result: OracleResult, order: Sequence[str]) -> list[str]:
    """The verdict table: spec id, verdict, the checks' outcomes and a note (why not provided;
    for a pass, what the module refused with NotImplementedError: "partly provided: …")."""
    rows = [(sid, result.verdicts[sid].upper() if result.verdicts[sid] == "fail"
             else result.verdicts[sid], _counts(result, sid), _note(result, sid))
            for sid in ordered(result, order)]
    header = ("spec id", "verdict", "checks", "note")
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, tuple("-" * w for w in widths), *rows]]


def failure_block(result: OracleResult, sid: str, reproduce: str) -> list[str]:
    """What ``nnspec check`` says about a failed spec id: how many checks failed, the first
    failure's headline and its diagnosis — and, where that names nothing, the diagnosis of the
    first failure that does (:func:`lead`) — the failed checks and the command reproducing them."""
    cell = result.conformance.cells[(sid, result.implementation)]
    first, other = cell.failures[0], lead(cell.failures)
    names = dict.fromkeys(n.split("::")[-1].split("[")[0] for n in cell.failed_checks)
    more = [] if other is first else [
        f"  another failure, {other.call or other.headline}:",
        *(f"  diagnosis: {line}" for line in distinct(other.diagnosis)),
        *(f"  where: {where}" for where in located(other.diagnosis))]
    return [f"FAIL {sid}: {checks(len(cell.failures))} failed",
            f"  first failure: {first.headline}",
            *(f"  diagnosis: {line}" for line in distinct(first.diagnosis)),
            *(f"  where: {where}" for where in located(first.diagnosis)),
            *more,
            f"  failed checks: {', '.join(names)}",
            f"  reproduce: {reproduce}"]


def lead(failures: Sequence[Failure]) -> Failure:
    """The failure whose diagnosis speaks for the spec id: the first, unless its diagnosis names
    nothing (only notes, or "could not localise") and a later one's does. A shrunk example can be
    too small to tell: a float64-declared ``linear`` computing in float32 failed first on a 1×1
    call that matched nothing, while its stored vectors named float32 rounding."""
    def names(failure: Failure) -> bool:
        return any(isinstance(line, Finding) and line.kind not in ("note", "unlocalised")
                   for line in failure.diagnosis)
    return next((f for f in failures if names(f)), failures[0])


def located(lines: list[str]) -> list[str]:
    """The structured findings of a failure in one line each: kind, location, confidence and
    evidence; "could not localise" where the experiments placed nothing."""
    out = []
    for line in distinct(lines):
        if not isinstance(line, Finding) or line.kind == "note":
            continue
        where = line.short
        out.append(f"{where} (confidence {line.confidence}; {line.evidence})" if line.evidence
                   else f"{where} (confidence {line.confidence})")
    return list(dict.fromkeys(out))


def distinct(lines: list[str]) -> list[str]:
    """One diagnosis line per finding: the same match at another distance (from another call the
    check made) says nothing new."""
    return list({line.split(" (relative distance")[0]: line for line in reversed(lines)}.values())[::-1]


def _counts(result: OracleResult, sid: str) -> str:
    cell = result.conformance.cells[(sid, result.implementation)]
    parts = [f"{n} {what}" for n, what in ((cell.failed, "failed"), (cell.passed, "passed"),
                                           (cell.skipped, "not provided")) if n]
    return ", ".join(parts)


def _note(result: OracleResult, sid: str) -> str:
    verdict = result.verdicts[sid]
    if verdict == "fail":
        cell = result.conformance.cells[(sid, result.implementation)]
        found = short(lead(cell.failures).diagnosis) if cell.failures else ""
        return f"see below ({found})" if found else "see below"
    if verdict == "not provided":
        reason = next(iter(result.messages[sid]), "")
        return reason.removeprefix("not provided: ").removeprefix(f"{result.implementation} ")
    # A pass on the examples the module supports: what it refused (NotImplementedError) goes with
    # it, and a check not judged at a declared precision (checks/harness/compare.py).
    unjudged = [m for m in result.messages[sid] if m.startswith("not judged")]
    return "; ".join([*result.conformance.cells[(sid, result.implementation)].partly,
                      *unjudged[:1]])


def reproduce(module: str, only: Sequence[str], seed: int, n_examples: int | None,
              run_args: Sequence[str] = ()) -> str:
    """The pytest command that runs the checks of ``only`` on ``module`` again, from this
    directory, with the same seed (which seeds Hypothesis too when not 0: checks/conftest.py),
    examples and run options (``run_args``: ``--nnspec-timeout``, ``--nnspec-isolation``)."""
    python = Path(sys.executable)
    with suppress(ValueError):  # outside the current directory, the absolute path
        python = python.relative_to(Path.cwd())
    cmd = [str(python), "-m", "pytest", "--pyargs", "nnspec.checks", "--impl", module,
           *(arg for s in only for arg in ("--only", s)), "--nnspec-seed", str(seed)]
    if n_examples is not None:
        cmd += ["--nnspec-examples", str(n_examples)]
    return shlex.join([*cmd, *run_args])


def as_data(result: OracleResult, order: Sequence[str],
            reproduce: Callable[[list[str]], str]) -> list[dict[str, Any]]:
    """The verdict table and the failure blocks as JSON-safe data, one entry per spec id in the
    table's order (``nnspec check --json``; README.md describes the fields)."""
    rows = []
    for sid in ordered(result, order):
        cell = result.conformance.cells[(sid, result.implementation)]
        row: dict[str, Any] = {"spec_id": sid, "verdict": result.verdicts[sid],
                               "passed": cell.passed, "failed": cell.failed,
                               "not_provided": cell.skipped, "note": _note(result, sid),
                               "functions": sorted(cell.functions), "partly": list(cell.partly)}
        row["failures"] = [f.to_dict() for f in cell.failures]
        row["diagnoses"] = distinct(cell.diagnoses)
        row["findings"] = [fields(line) for line in row["diagnoses"]]
        row["failed_checks"] = list(cell.failed_checks)
        row["reproduce"] = reproduce([sid]) if cell.failed else None
        rows.append(row)
    return rows


def conclusion(result: OracleResult, order: Sequence[str], module: str, selected: str,
               reproduce_all: str) -> tuple[str, int]:
    """The closing sentence and the exit status: 1 when a spec id failed, a check without a spec
    id failed, or nothing could be checked; 0 when every checked spec id passed."""
    failed = [sid for sid in ordered(result, order) if result.verdicts[sid] == "fail"]
    checked = [s for s, v in result.verdicts.items() if v != "not provided"]
    if failed:
        return (f"{module} does not conform: {ids(len(failed))} failed ({', '.join(failed)}), "
                f"{len(checked) - len(failed)} passed.", 1)
    if n_failed := result.conformance.totals["failed"]:
        return (f"{module} does not conform: {checks(n_failed)} without a spec id failed; run "
                f"the checks under pytest to see them:\n  {reproduce_all}", 1)
    if not checked:
        return (f"{module} was not checked: it provides none of the functions that {selected} "
                f"needs, so nothing shows that it conforms.", 1)
    return (f"{module} conforms: {ids(len(checked))} passed, "
            f"{len(result.verdicts) - len(checked)} not provided.", 0)
