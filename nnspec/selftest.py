"""The oracle's self-test: every entry of the catalogue (checks/oracle/catalogue.py) run through
the oracle (nnspec.oracle.check), with what it said — verdicts, the variants and bugs it named —
and the rates per kind that the report and checks/meta/test_oracle.py state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nnspec.checks.harness.failure import Failure
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


def run(entry: Entry, *, seed: int = 0) -> Outcome:
    """Run the oracle on ``entry``: its spec ids only, the checks that call it only, and
    :data:`EXAMPLES` Hypothesis examples per check."""
    start = time.perf_counter()
    result = check(entry.module(), only=entry.only, examples=EXAMPLES, seed=seed,
                          implementation_only=True)
    return Outcome(entry=entry, verdicts=result.verdicts,
                   diagnoses=[line for sid in result.diagnoses for line in result.diagnoses[sid]],
                   failures=[f for sid in entry.only for f in result.failures.get(sid, [])],
                   seconds=time.perf_counter() - start)


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


def detection(*, seed: int = 0) -> dict[str, Any]:
    """Run the whole catalogue: the rates per kind and the per-entry table, ready for JSON
    (for the report to write beside conformance.json)."""
    outcomes = [run(entry, seed=seed) for entry in ENTRIES]
    return {
        "rates": rates(outcomes),
        "entries": [{"name": o.entry.name, "kind": o.entry.kind, "exhibits": o.entry.exhibits,
                     "only": list(o.entry.only), "origin": o.entry.origin,
                     "verdicts": o.verdicts, "detected": o.detected, "diagnosed": o.diagnosed,
                     "passed": o.passed, "named": o.named, "seconds": round(o.seconds, 2)}
                    for o in outcomes],
        "unreachable": UNREACHABLE,
    }

