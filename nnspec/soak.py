"""Many seeds, no red: the checks run again and again with different random searches.

A false alarm that shows once in twenty seeds is still a false alarm. :func:`run` repeats, for
each seed k, what a user's CI would run with that seed — every check against torch (float64 and
float32) and the reference, with ``--nnspec-examples N --hypothesis-seed k --nnspec-seed k`` —
and the oracle on every correct implementation of the project (the corpus of correct alternatives,
checks/oracle/alternatives.py, and the catalogue's correct entries) with the same seeds. Every
failure is a defect of nnspec, to be explained, never retried away. Each seed runs in a process of
its own (``python -m nnspec.soak SEED EXAMPLES``), ``jobs`` at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: The shipped implementations every seed checks, whole suite.
IMPLEMENTATIONS = ("torch", "torch_float32", "reference")


def one_seed(seed: int, examples: int) -> dict[str, Any]:
    """Every check on :data:`IMPLEMENTATIONS`, and the oracle on every correct entry, at ``seed``."""
    from nnspec import selftest
    from nnspec.checks.harness.implementation import ImplementationUnavailable
    from nnspec.checks.oracle.alternatives import CORPUS
    from nnspec.checks.oracle.catalogue import CORRECT
    from nnspec.conformance import run

    seeds = [f"--hypothesis-seed={seed}", f"--nnspec-seed={seed}"]
    start = time.perf_counter()
    suite = run(list(IMPLEMENTATIONS), extra_args=[f"--nnspec-examples={examples}", *seeds], quiet=True)
    red: list[dict[str, Any]] = [
        {"implementation": impl, "spec_id": sid, "failure": cell.failures[0].headline if cell.failures
         else "; ".join(cell.messages)}
        for (sid, impl), cell in suite.cells.items() if cell.verdict == "fail"]
    if suite.totals["failed"] and not red:  # failed checks that carry no spec id
        red.append({"implementation": ",".join(IMPLEMENTATIONS), "spec_id": None,
                    "failure": f"{suite.totals['failed']} checks failed outside any spec id"})
    if suite.exit_code not in (0, 1):
        red.append({"implementation": ",".join(IMPLEMENTATIONS), "spec_id": None,
                    "failure": f"pytest exit status {suite.exit_code}"})
    entries, skipped = 0, []
    for entry in (*CORPUS, *CORRECT):
        try:
            outcome = selftest.run(entry, seed=seed, examples=examples,
                                   extra_args=[f"--hypothesis-seed={seed}"])
        except ImplementationUnavailable as exc:
            skipped.append(f"{entry.name}: {exc}")
            continue
        entries += 1
        failed = [sid for sid, verdict in outcome.verdicts.items() if verdict == "fail"]
        red += [{"implementation": entry.name, "spec_id": sid, "failure": outcome.why(sid)}
                for sid in failed]
        red += [{"implementation": entry.name, "spec_id": sid, "failure": "never checked"}
                for sid in entry.only if outcome.verdicts.get(sid) != "pass" and sid not in failed]
    return {"seed": seed, "examples": examples, "checks": suite.totals, "correct_entries": entries,
            "unavailable": skipped, "red": red, "seconds": round(time.perf_counter() - start, 1)}


def run(seeds: list[int], *, examples: int = 40, jobs: int = 2) -> dict[str, Any]:
    """:func:`one_seed` for every seed, ``jobs`` processes at a time; the results and a summary."""

    def launch(seed: int) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "nnspec.soak", str(seed), str(examples)],
                              capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"seed": seed, "examples": examples, "red": [
                {"implementation": None, "spec_id": None,
                 "failure": f"the seed's run ended with status {done.returncode}: {' / '.join(tail)}"}]}
        return dict(json.loads(lines[-1]))

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(launch, seeds))
    return {"seeds": seeds, "examples": examples, "implementations": list(IMPLEMENTATIONS),
            "runs": results, "red": sum(len(r["red"]) for r in results),
            "seconds": round(time.perf_counter() - start, 1)}


def markdown(data: dict[str, Any]) -> str:
    """The summary for reports/: one row per seed, then every red cell."""
    lines = [f"# Seed soak: {len(data['seeds'])} seeds, {data['examples']} Hypothesis examples per check",
             "",
             f"Implementations, whole suite: {', '.join(data['implementations'])}; and the oracle on "
             f"every correct entry (checks/oracle/alternatives.py, the catalogue's correct entries). "
             f"Command: `nnspec soak --seeds {len(data['seeds'])} --examples {data['examples']}` "
             f"({data['seconds']:.0f} s here). Red cells in all: **{data['red']}**.", "",
             "| seed | checks passed | failed | correct entries run | red | seconds |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in data["runs"]:
        checks = r.get("checks", {})
        lines.append(f"| {r['seed']} | {checks.get('passed', '–')} | {checks.get('failed', '–')} | "
                     f"{r.get('correct_entries', '–')} | {len(r['red'])} | {r.get('seconds', '–')} |")
    reds = [(r["seed"], red) for r in data["runs"] for red in r["red"]]
    if reds:
        lines += ["", "## Red", ""]
        lines += [f"- seed {seed}: {red['implementation']} {red['spec_id']}: {red['failure']}"
                  for seed, red in reds]
    unavailable = sorted({u for r in data["runs"] for u in r.get("unavailable", [])})
    if unavailable:
        lines += ["", "Not run here (framework absent): " + "; ".join(unavailable)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(one_seed(int(sys.argv[1]), int(sys.argv[2]))))
