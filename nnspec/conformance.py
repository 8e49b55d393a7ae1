"""Run the conformance checks programmatically and collect a spec id × implementation matrix.

Used by ``nnspec report``. The checks run through pytest exactly as ``pytest`` runs them; a small
plugin records, for every check, its spec ids, its implementation and its outcome. Per spec id and
implementation the verdict is *fail* if any check failed, *pass* if at least one passed and none
failed, and *not provided* if every check was skipped (the first skip reason is kept).
"""

from __future__ import annotations

import io
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import nnspec.checks

VERDICTS = ("fail", "pass", "not provided")


@dataclass
class Cell:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    messages: list[str] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)
    #: Per failed check, in the order they ran: its headline, node id and diagnosis lines.
    failures: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    failure_diagnoses: list[list[str]] = field(default_factory=list)

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
        for sid in ids:
            cell = self.cells.setdefault((sid, impl or "(implementation-independent)"), Cell())
            setattr(cell, outcome, getattr(cell, outcome) + 1)
            if outcome != "passed" and len(cell.messages) < 3:
                cell.messages.append(_headline(report))
            if outcome == "failed":
                cell.failures.append(_headline(report))
                cell.failed_checks.append(report.nodeid)
                cell.failure_diagnoses.append(_diagnoses(report))
                for line in _diagnoses(report):
                    if line not in cell.diagnoses:
                        cell.diagnoses.append(line)


def _headline(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext
    # The oracle's own exceptions first, the last one raised: an exception the implementation
    # raised is printed before the ImplementationError that explains it.
    ours = [line for line in text.splitlines()
            if "NonConformance:" in line or "ImplementationError:" in line]
    for line in ours[-1:] + [line for line in text.splitlines() if line.startswith("E ")]:
        for marker in ("NonConformance: ", "ImplementationError: "):
            if marker in line:
                return line.split(marker, 1)[1].strip()
        return line.split("Error: ", 1)[-1].strip("E ").strip()
    return text.strip().splitlines()[-1] if text.strip() else "failed"


def _diagnoses(report: pytest.TestReport) -> list[str]:
    return [line.split("Diagnosis: ", 1)[1].strip() for line in report.longreprtext.splitlines()
            if "Diagnosis: " in line]


def run(implementations: list[str], *, extra_args: list[str] | None = None,
        quiet: bool = False) -> Conformance:
    """Run every check against ``implementations`` and return the matrix."""
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
            code = pytest.main(args, plugins=[collector])
    else:
        code = pytest.main(args, plugins=[collector])
    return Conformance(implementations=implementations, cells=collector.cells,
                       totals=collector.totals, seconds=time.perf_counter() - start,
                       exit_code=int(code))
