"""Run the conformance checks programmatically and collect a spec id × implementation matrix.

Used by ``nnspec report``, ``nnspec check`` and :func:`nnspec.oracle.check`. The checks run
through pytest exactly as ``pytest`` runs them; a small plugin records, for every check, its spec
ids, its implementation, its outcome and the contract functions it called, and for a failed check
the :class:`~nnspec.checks.harness.failure.Failure` the checks recorded on its report (data, never
read back from the traceback's text).

A check counts for a spec id it is marked with only if it called one of the contract functions
that compute that id (``functions`` in spec/*.md): a check marked ``gru.cell.pytorch`` and
``gru.cell.textbook`` that called only ``gru_cell_textbook`` says nothing about
``gru.cell.pytorch``. (A failure raised before any of its ids' functions was called counts for
all of them: a failure is never dropped.) Per spec id and implementation the verdict is then
*fail* if any counted check failed, *pass* if at least one passed and none failed, and *not
provided* otherwise — every check skipped (the first skip reason is kept), or none called the id's
functions.
"""

from __future__ import annotations

import io
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


class _Collector:
    def __init__(self) -> None:
        self.meta: dict[str, tuple[list[str], str | None]] = {}
        self.cells: dict[tuple[str, str], Cell] = {}
        self.totals = {"passed": 0, "failed": 0, "skipped": 0}
        self.functions = {sid: set(entry.functions) for sid, entry in speclib.load().items()}

    def counts(self, sid: str, ids: list[str], outcome: str, called: set[str] | None) -> bool:
        """Whether a check marked with ``ids`` that called ``called`` counts for ``sid``."""
        own = self.functions.get(sid, set())
        if called is None or not own or outcome == "skipped" or called & own:
            return True
        return outcome == "failed" and not any(called & self.functions.get(s, set()) for s in ids)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids = [sid for m in item.iter_markers("spec") for sid in m.args]
            callspec = getattr(item, "callspec", None)
            impl = callspec.params.get("impl") if callspec else None
            self.meta[item.nodeid] = (ids, impl)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.skipped or report.failed):
            return
        outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        self.totals[outcome] += 1
        ids, impl = self.meta.get(report.nodeid, ([], None))
        failure = _failure(report, impl) if outcome == "failed" else None
        called = next((set(cast(list[str], v)) for k, v in report.user_properties
                       if k == "nnspec_called"), None)
        for sid in ids:
            if not self.counts(sid, ids, outcome, called):
                continue
            cell = self.cells.setdefault((sid, impl or "(implementation-independent)"), Cell())
            cell.functions |= (called or set()) & self.functions.get(sid, set())
            setattr(cell, outcome, getattr(cell, outcome) + 1)
            if outcome != "passed" and len(cell.messages) < 3:
                cell.messages.append(failure.headline if failure else _skip_reason(report))
            if failure:
                cell.failures.append(failure)
                cell.failed_checks.append(report.nodeid)
                cell.diagnoses += [line for line in failure.diagnosis if line not in cell.diagnoses]


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


def run(implementations: list[str], *, extra_args: list[str] | None = None,
        quiet: bool = False, plugins: Sequence[object] = ()) -> Conformance:
    """Run every check against ``implementations`` and return the matrix; ``plugins`` are more
    pytest plugin objects for the run (e.g. a progress display)."""
    checks_dir = Path(next(iter(nnspec.checks.__path__)))
    collector = _Collector()
    # checks/meta tests the tool itself; a conformance run is the checks alone.
    args = [str(checks_dir), "--ignore", str(checks_dir / "meta"), "--rootdir", str(checks_dir.parent),
            "--import-mode=importlib",
            "-p", "no:cacheprovider", "--benchmark-disable", "-q", "-m", "not slow",
            "--impl", ",".join(implementations), *(extra_args or [])]
    start = time.perf_counter()
    if quiet:
        with redirect_stdout(io.StringIO()):
            code = pytest.main(args, plugins=[collector, *plugins])
    else:
        code = pytest.main(args, plugins=[collector, *plugins])
    return Conformance(implementations=implementations, cells=collector.cells,
                       totals=collector.totals, seconds=time.perf_counter() - start,
                       exit_code=int(code))
