"""The oracle's self-test: every entry of the catalogue (checks/oracle/catalogue.py) run through
the oracle (nnspec.oracle.check), with what it said — verdicts, the variants and bugs it named —
and the rates per kind that the report and checks/meta/test_oracle.py state; beside it, the corpus
of correct alternatives (checks/oracle/alternatives.py), every one of which must pass.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nnspec.checks.harness.failure import Failure
from nnspec.checks.harness.implementation import ImplementationUnavailable
from nnspec.checks.oracle.alternatives import CORPUS
from nnspec.checks.oracle.catalogue import ENTRIES, EXAMPLES, KINDS, UNREACHABLE, Entry
from nnspec.checks.oracle.diagnosis import named_ids
from nnspec.oracle import check


@dataclass
class Outcome:
    """What the oracle said about one entry."""

    entry: Entry
    verdicts: dict[str, str]
    diagnoses: list[str]
    failures: list[Failure]
    seconds: float
    #: Per spec id, what the checks said beside their failures: a check that failed without a
    #: NonConformance (an error, a Hypothesis health check) says it only here.
    messages: dict[str, list[str]]

    def why(self, spec_id: str) -> str:
        """The first failure of ``spec_id``, else its first message: never empty for a fail."""
        first = next((f.headline for f in self.failures if f.spec_id == spec_id), None)
        return first or "; ".join(self.messages.get(spec_id, [])) or "failed without a message"

    @property
    def named(self) -> list[str]:
        """The variant and bug ids the diagnosis named, in order, once each."""
        return list(dict.fromkeys(sid for line in self.diagnoses for sid in named_ids(line)))

    @property
    def detected(self) -> bool:
        return all(self.verdicts.get(sid) == "fail" for sid in self.entry.only)

    @property
    def diagnosed(self) -> bool:
        return any(sid in self.named for sid in self.entry.expected_names)

    @property
    def passed(self) -> bool:
        return all(self.verdicts.get(sid) == "pass" for sid in self.entry.only) and (
            "fail" not in self.verdicts.values())


def run(entry: Entry, *, seed: int = 0, examples: int = EXAMPLES,
        extra_args: Sequence[str] = ()) -> Outcome:
    """Run the oracle on ``entry``: its spec ids only, the checks that call it only, and
    ``examples`` Hypothesis examples per check (:data:`EXAMPLES` by default)."""
    start = time.perf_counter()
    result = check(entry.module(), only=entry.only, examples=examples, seed=seed,
                   implementation_only=True, extra_args=extra_args)
    return Outcome(entry=entry, verdicts=result.verdicts,
                   diagnoses=[line for sid in result.diagnoses for line in result.diagnoses[sid]],
                   failures=[f for sid in entry.only for f in result.failures.get(sid, [])],
                   seconds=time.perf_counter() - start,
                   messages={sid: result.messages.get(sid, []) for sid in entry.only})


def rates(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Per kind: how many entries, how many detected, diagnosed (bugs and variants) or passed."""
    table: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        of_kind = [o for o in outcomes if o.entry.kind == kind]
        row = {"entries": len(of_kind)}
        if kind == "correct":
            row["passed"] = sum(o.passed for o in of_kind)
        else:
            row["detected"] = sum(o.detected for o in of_kind)
        if kind in ("bug", "variant"):
            row["diagnosed"] = sum(o.diagnosed for o in of_kind)
        table[kind] = row
    return table


def alternatives(*, seed: int = 0) -> dict[str, Any]:
    """Run the corpus of correct alternatives: how many of those whose framework is installed
    passed ("correct alternatives passed: k/n"), and per entry what it computes differently, why
    that is legitimate, its verdicts and the first failures, or why it could not run here."""
    rows: list[dict[str, Any]] = []
    for entry in CORPUS:
        row: dict[str, Any] = {"name": entry.name, "computes": entry.origin,
                               "legitimate": entry.legitimate, "only": list(entry.only),
                               "dtype": entry.dtype.__name__}
        try:
            o = run(entry, seed=seed)
        except ImplementationUnavailable as exc:
            rows.append({**row, "available": False, "passed": None, "reason": str(exc)})
            continue
        rows.append({**row, "available": True, "passed": o.passed,
                     "verdicts": {sid: o.verdicts.get(sid, "not run") for sid in entry.only},
                     "failures": [f.headline for f in o.failures[:3]],
                     "diagnoses": o.diagnoses[:3], "seconds": round(o.seconds, 2)})
    ran = [r for r in rows if r["available"]]
    return {"passed": sum(bool(r["passed"]) for r in ran), "ran": len(ran), "entries": rows}


def detection(*, seed: int = 0) -> dict[str, Any]:
    """Run the whole catalogue and the corpus of correct alternatives: the rates per kind, the
    per-entry table and :func:`alternatives`, ready for JSON (for the report to write beside
    conformance.json)."""
    outcomes = [run(entry, seed=seed) for entry in ENTRIES]
    return {
        "rates": rates(outcomes),
        "entries": [{"name": o.entry.name, "kind": o.entry.kind, "exhibits": o.entry.exhibits,
                     "only": list(o.entry.only), "origin": o.entry.origin,
                     "verdicts": o.verdicts, "detected": o.detected, "diagnosed": o.diagnosed,
                     "passed": o.passed, "named": o.named, "seconds": round(o.seconds, 2)}
                    for o in outcomes],
        "unreachable": UNREACHABLE,
        "alternatives": alternatives(seed=seed),
    }

