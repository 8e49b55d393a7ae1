"""Run the conformance checks programmatically and collect a spec id × implementation matrix.

Used by ``nnspec report``, ``nnspec check`` and :func:`nnspec.oracle.check`. The checks run
through pytest exactly as ``pytest`` runs them; a small plugin records, for every check, its spec
ids, its implementation, its outcome and the contract functions it called, and for a failed check
the :class:`~nnspec.checks.harness.failure.Failure` the checks recorded on its report (data, never
read back from the traceback's text).

A check counts for a spec id it is marked with only if it called one of the contract functions
that compute that id (``functions`` in spec/*.md): a check marked ``gru.cell.pytorch`` and
``gru.cell.textbook`` that called only ``gru_cell_textbook`` says nothing about
``gru.cell.pytorch``. One case of a check parametrized by ``spec_id`` (a test vector, a
``(fn, spec_id)`` case) counts for that id alone, whatever the check's marks (those of a vector
check list its whole family, for the traceability table): a vector of ``losses.sequence_mean``
says nothing of ``losses.cross_entropy``, though both are computed by ``cross_entropy``. A failed
check that called the functions of several of its ids (a layer against its own cell step by step,
the identity tanh(x) = 2σ(2x) − 1) cannot tell which one is wrong: it counts for those of them
that also fail a check of their own functions alone — and for every id computed by the same
functions as one of those, which no check can tell apart from it — and for all of them when none
does. A failure raised before any of its ids' functions was called counts for all of them: a
failure is never dropped; one that names no spec id (a NaN found on an output alone) takes the
id of each cell it counts for. A skip counts for the ids whose function was found
missing. Per spec id and implementation the verdict is then *fail* if any counted check failed,
*pass* if at least one passed and none failed, and *not provided* otherwise — every check skipped
(the first skip reason is kept), or none called the id's functions.

A function that raised ``NotImplementedError`` for some examples of a Hypothesis check only (an
``rnn_cell`` without ReLU) leaves the check running on the others
(checks/harness/implementation.py); a counted check that did not skip then adds its "partly
provided: …" note to :attr:`Cell.partly` of the ids that function computes (of all its counted
ids, when it computes none of them), so that a *pass* says it covered only what was supported. A
check skipped because the function refused too many of its examples adds its note, with its
counts, too, to the ids that another check passed or failed: a pass that rests on a vector
without biases, the formula checks having given up, says what was left unchecked.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shlex
import sys
import time
from collections.abc import Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pytest

import nnspec.checks
from nnspec import speclib
from nnspec.checks.harness.failure import Failure

VERDICTS = ("fail", "pass", "not provided")


@dataclass
class Cell:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    #: The headlines of the first three failed or skipped checks (a skip's is its reason).
    messages: list[str] = field(default_factory=list)
    #: Every diagnosis line of the failed checks, once each.
    diagnoses: list[str] = field(default_factory=list)
    #: Per failed check, in the order they ran: what it found, and its node id.
    failures: list[Failure] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    #: The contract functions the counted checks called.
    functions: set[str] = field(default_factory=set)
    #: "partly provided: rnn_cell() raised NotImplementedError for nonlinearity='relu' (…)":
    #: what the counted checks that ran could not check, once each.
    partly: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.failed:
            return "fail"
        return "pass" if self.passed else "not provided"


@dataclass
class Conformance:
    implementations: list[str]
    cells: dict[tuple[str, str], Cell]
    totals: dict[str, int]
    seconds: float
    exit_code: int
    #: The pytest-xdist workers the checks ran in (1: in the calling process).
    jobs: int = 1


@dataclass(frozen=True)
class _Record:
    """One check's outcome, as the collector saw it."""

    nodeid: str
    ids: tuple[str, ...]
    impl: str | None
    outcome: str
    #: The contract functions it called (None: it takes no implementation).
    called: frozenset[str] | None
    #: For a skip, the contract functions found missing.
    missing: frozenset[str]
    failure: Failure | None
    reason: str
    #: (function, note) for each function that refused some of its examples.
    partly: tuple[tuple[str, str], ...] = ()


class _Collector:
    """Records every check's outcome from its reports alone, as they reach the process that runs
    the session: the checks' own process, or pytest-xdist's controller, which has no items and
    receives the reports in the order its workers finish them. So what a check is (its spec ids,
    its implementation) comes from the report's ``user_properties`` (nnspec/pytest_plugin.py), and
    the records are put back in the order of collection before the verdicts are made."""

    def __init__(self) -> None:
        self.records: list[_Record] = []
        self.totals = {"passed": 0, "failed": 0, "skipped": 0}
        self.functions = {sid: frozenset(entry.functions) for sid, entry in speclib.load().items()}
        #: Node id → its place in the collection (every worker collects the same checks).
        self.order: dict[str, int] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.order = {item.nodeid: i for i, item in enumerate(session.items)}

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's, on its controller
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.order = self.order or {nodeid: i for i, nodeid in enumerate(ids)}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.skipped or report.failed):
            return
        outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        self.totals[outcome] += 1
        props = dict(report.user_properties)
        ids = cast(list[str], props.get("nnspec_spec_ids", []))
        # One case of a check parametrized by spec id (a test vector of losses.sequence_mean,
        # marked with every id of its family for the traceability table) checks that id alone.
        case = cast("str | None", props.get("nnspec_case_id"))
        if case in ids:
            ids = [case]
        impl = cast("str | None", props.get("nnspec_impl"))
        called = props.get("nnspec_called")
        self.records.append(_Record(
            report.nodeid, tuple(ids), impl, outcome,
            None if called is None else frozenset(cast(list[str], called)),
            frozenset(cast(list[str], props.get("nnspec_missing", []))),
            _failure(report, impl) if outcome == "failed" else None,
            _skip_reason(report) if outcome == "skipped" else "",
            tuple((fn, note) for fn, note in cast(list[list[str]], props.get("nnspec_partly", [])))))

    def candidates(self, record: _Record) -> set[str]:
        """The ids of a check whose contract functions it called."""
        return {sid for sid in record.ids if record.called and record.called & self.functions.get(sid, set())}

    def counts(self, sid: str, record: _Record, dedicated: set[tuple[str | None, str]]) -> bool:
        """Whether ``record`` counts for ``sid``, one of its ids (spelled out in the module's text).

        ``dedicated`` holds (implementation, id) pairs that failed a check exercising that id's
        functions alone: a failed check that called the functions of several ids (a layer
        against its cell step by step, an identity between σ and tanh) blames only those of them
        that fail on their own, if any.
        """
        own = self.functions.get(sid, frozenset())
        if record.called is None or not own:
            return True
        if record.outcome == "skipped":
            known = record.missing & frozenset().union(*(self.functions.get(s, frozenset())
                                                        for s in record.ids))
            return not known or bool(record.missing & own)
        if record.outcome == "passed":
            return bool(record.called & own)
        blamed = self.candidates(record)
        if not blamed:
            return True  # it failed before calling any of its ids' functions: never drop it
        if sid not in blamed:
            return False
        alone = {s for s in blamed if (record.impl, s) in dedicated}
        # Ids computed by the same functions as one that fails alone (losses.cross_entropy and
        # losses.sequence_mean share cross_entropy()) cannot be told apart by it: blamed alike.
        mine = record.called & own
        return not alone or any(mine == record.called & self.functions.get(s, frozenset())
                                for s in alone)

    def cells(self) -> dict[tuple[str, str], Cell]:
        """Per spec id and implementation, the checks that count for it."""
        dedicated = {(r.impl, next(iter(c))) for r in self.records if r.outcome == "failed"
                     and len(c := self.candidates(r)) == 1}
        cells: dict[tuple[str, str], Cell] = {}
        #: The notes of checks skipped after refusals, per cell: they join its notes if another
        #: check of it ran (a pass then says what it did not check), never a *not provided*.
        skipped_notes: dict[tuple[str, str], list[str]] = {}
        # In the order of collection, whichever worker ran what when: the first failure and the
        # first messages of a cell are the same in a parallel run as in a serial one.
        last = len(self.order)
        for record in sorted(self.records, key=lambda r: self.order.get(r.nodeid, last)):
            for sid in record.ids:
                if not self.counts(sid, record, dedicated):
                    continue
                key = (sid, record.impl or "(implementation-independent)")
                cell = cells.setdefault(key, Cell())
                cell.functions |= (record.called or frozenset()) & self.functions.get(sid, frozenset())
                setattr(cell, record.outcome, getattr(cell, record.outcome) + 1)
                failure = record.failure
                if failure is not None and failure.spec_id is None:
                    # Found on an output alone (a NaN, a wrong shape), it names no id: the cell's.
                    failure = replace(failure, spec_id=sid)
                if record.outcome != "passed" and len(cell.messages) < 3:
                    cell.messages.append(failure.headline if failure else record.reason)
                if failure:
                    cell.failures.append(failure)
                    cell.failed_checks.append(record.nodeid)
                    cell.diagnoses += [line for line in failure.diagnosis if line not in cell.diagnoses]
                notes = cell.partly if record.outcome != "skipped" else skipped_notes.setdefault(key, [])
                notes += [note for note in self.partly(sid, record) if note not in notes]
        for key, notes in skipped_notes.items():
            if cells[key].passed or cells[key].failed:
                cells[key].partly += [note for note in notes if note not in cells[key].partly]
        return cells

    def partly(self, sid: str, record: _Record) -> list[str]:
        """The "partly provided" notes of ``record`` that concern ``sid``: those of the functions
        that compute it, and of functions that compute none of the check's ids (a helper)."""
        own = self.functions.get(sid, frozenset())
        theirs = frozenset().union(*(self.functions.get(s, frozenset()) for s in record.ids))
        return [note for fn, note in record.partly if fn in own or fn not in theirs]


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return "skipped"


def _failure(report: pytest.TestReport, impl: str | None) -> Failure:
    """What a failed check found: the failures the checks' conftest recorded on the report (the
    last one raised, with every diagnosis line of them all) or, for an exception that is not a
    check's own, its type and first line."""
    found = [Failure.from_dict(cast(dict[str, Any], value))
             for name, value in report.user_properties if name == "nnspec_failure"]
    if found:
        return replace(found[-1], diagnosis=list(dict.fromkeys(
            line for f in found for line in f.diagnosis)))
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "failed")
    return Failure(implementation=impl, message=first)


def parallel_available() -> bool:
    """Whether pytest-xdist is installed, which :func:`run` needs for ``jobs`` > 1."""
    return importlib.util.find_spec("xdist") is not None


def parallel_args(jobs: int) -> list[str]:
    """The pytest arguments that run the checks in ``jobs`` pytest-xdist workers (none for one).

    A worker starts with the ``sys.path`` pytest-xdist saw when it was first imported; this
    process's own, which may have gained the directory of the implementation under test since
    (nnspec check imports from the current directory), goes to the workers as pytest's
    ``pythonpath``, ahead of theirs.
    """
    if jobs <= 1:
        return []
    here = [os.path.abspath(p or os.curdir) for p in sys.path if os.path.isdir(p or os.curdir)]
    return ["-n", str(jobs), "-o", "pythonpath=" + " ".join(shlex.quote(p) for p in here)]


def run(implementations: list[str], *, extra_args: list[str] | None = None,
        quiet: bool = False, plugins: Sequence[object] = (), jobs: int = 1) -> Conformance:
    """Run every check against ``implementations`` and return the matrix; ``plugins`` are more
    pytest plugin objects for the run (e.g. a progress display). With ``jobs`` > 1 the checks
    run in that many pytest-xdist workers (serially when it is not installed); the matrix is
    the one a serial run gives (the collector reads only what the workers' reports carry)."""
    checks_dir = Path(next(iter(nnspec.checks.__path__)))
    collector = _Collector()
    jobs = max(1, jobs) if parallel_available() else 1
    # checks/meta tests the tool itself; a conformance run is the checks alone.
    args = [str(checks_dir), "--ignore", str(checks_dir / "meta"), "--rootdir", str(checks_dir.parent),
            "--import-mode=importlib",
            "-p", "no:cacheprovider", "--benchmark-disable", "-q", "-m", "not slow",
            "--impl", ",".join(implementations),
            *parallel_args(jobs), *(extra_args or [])]
    start = time.perf_counter()
    if quiet:
        with redirect_stdout(io.StringIO()):
            code = pytest.main(args, plugins=[collector, *plugins])
    else:
        code = pytest.main(args, plugins=[collector, *plugins])
    return Conformance(implementations=implementations, cells=collector.cells(),
                       totals=collector.totals, seconds=time.perf_counter() - start,
                       exit_code=int(code), jobs=jobs)
