"""``nnspec report``: measure and write ``reports/``.

Stages, each announced as it starts: the conformance checks (spec id × implementation matrix),
the benchmarks (ratios measured in one run, with the performance targets), and the
gradient-norm decay sweeps (rate table and plots). Writes ``reports/README.md`` (the report a
person reads), the raw ``conformance.json``, ``benchmarks.json`` and ``decay.json``, and PNG plots.
Every generated file says it is generated.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnspec import speclib
from nnspec.checks.oracle.localise_findings import Finding, fields
from nnspec.conformance import Conformance, run
from nnspec.progress import Progress

SYMBOL = {"pass": "✅ pass", "fail": "❌ fail", "not provided": "— not provided",
          "unavailable": "⊘ unavailable"}

#: Performance targets of the benchmark issue: (group prefix, case, baseline, largest ratio).
TARGETS = [
    # issue 11: the reference's GRU and LSTM layers within 1.3× torch (same threads, one run)
    ("gru_layer T=100 B=32 H=128, interleaved", "reference", "torch", 1.3),
    ("lstm_layer T=100 B=32 H=128, interleaved", "reference", "torch", 1.3),
    ("rnn_layer T=100 B=32 H=128, interleaved", "reference", "torch", 1.3),
    # issue 11: a layer's bound within 2× the reference's own forward (bench/test_bounds.py)
    ("lstm_layer bound cost (forward)", "bound", "reference", 2.0),
    ("gru_layer bound cost (forward)", "bound", "reference", 2.0),
    ("lstm_layer bound cost (vjp)", "bound", "reference", 2.0),
    ("gru_layer bound cost (vjp)", "bound", "reference", 2.0),
    ("gradient check", "nnspec check_gradient (complex)", "gradcheck fast mode", 10.0),
    ("gradient check", "nnspec check_gradient (richardson)", "gradcheck fast mode", 10.0),
]


def environment() -> dict[str, str]:
    """Machine and library versions, recorded with every report."""
    import hypothesis
    import scipy
    import torch

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "hypothesis": hypothesis.__version__,
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "cuda": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name(0)
        env["cudnn"] = str(torch.backends.cudnn.version())
        env["cudnn_allow_tf32 (default)"] = str(torch.backends.cudnn.allow_tf32)
        env["matmul_allow_tf32 (default)"] = str(torch.backends.cuda.matmul.allow_tf32)
    return env


def _verdict(cell: Any) -> str:
    if cell.verdict == "not provided" and cell.messages and all(
            " unavailable: " in m for m in cell.messages):
        return "unavailable"
    return cell.verdict


def conformance_section(result: Conformance) -> list[str]:
    entries, gaps = speclib.traceability()
    impls = result.implementations
    ids = list(entries) + sorted({sid for sid, _ in result.cells} - set(entries))
    lines = [
        "## Conformance",
        "",
        f"{result.totals['passed']} checks passed, {result.totals['failed']} failed, "
        f"{result.totals['skipped']} skipped, in {result.seconds:.0f} s "
        + (f"({result.jobs} pytest-xdist workers, " if result.jobs > 1 else "(")
        + f"pytest exit code {result.exit_code}).",
        "",
        "One row per spec id (spec/*.md), one column per implementation under test. A cell is "
        "*fail* if any check of that id failed, *pass* if at least one passed and none failed, "
        "*not provided* if every check skipped because the implementation lacks the function, "
        "*unavailable* if the implementation cannot run on this machine. "
        "*reference-only* ids are checked on the reference alone (no contract function).",
        "",
        "| spec id | " + " | ".join(impls) + " |",
        "| --- |" + " --- |" * len(impls),
    ]
    reasons: dict[str, set[str]] = {}
    for sid in ids:
        row = []
        for impl in impls:
            cell = result.cells.get((sid, impl))
            if cell is None:
                shared = (sid, "(implementation-independent)") in result.cells
                row.append("reference-only" if shared else "—")
                continue
            verdict = _verdict(cell)
            row.append(SYMBOL[verdict])
            if verdict in ("fail", "not provided") and cell.messages:
                key = f"`{sid}` × {impl}: {cell.messages[0]}"
                reasons.setdefault(key, set()).update(cell.diagnoses)
            elif verdict == "unavailable":
                reasons.setdefault(f"{impl}: {cell.messages[0]}", set())
        lines.append(f"| `{sid}` | " + " | ".join(row) + " |")
    lines += ["", "### Reasons behind failed, not-provided and unavailable cells", ""]
    if not reasons:
        lines.append("None: every cell passed.")
    for key in sorted(reasons):
        lines.append(f"- {key}")
        lines += [f"  - Diagnosis: {d}{_located(d)}" for d in sorted(reasons[key])]
    lines += ["", "### Spec traceability", "",
              f"{len(entries)} spec ids, each with its reference function(s) and checks "
              "(`nnspec spec` prints the table)." if not gaps
              else f"{len(entries)} spec ids; {len(gaps)} gaps:"]
    lines += [f"- {g}" for g in gaps]
    return lines


def _located(line: str) -> str:
    """A diagnosis line's structured finding, as a suffix: kind, location, confidence."""
    if not isinstance(line, Finding) or line.kind == "note":
        return ""
    return f" — *{line.short}, confidence {line.confidence}*"


def benchmark_section(data: dict[str, Any]) -> list[str]:
    rows = data["ratios"]
    lines = ["## Benchmarks", "",
             "Medians from pytest-benchmark (`bench/`), every ratio measured within one run "
             "against the baseline named in its row.", "",
             "| comparison | case | median | baseline | ratio |", "| --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["group"], r["ratio"] or 0)):
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "—"
        lines.append(f"| {r['group']} | {r['case']} | {r['median_s'] * 1e3:.3g} ms | "
                     f"{r['baseline'] or '—'} | {ratio} |")
    lines += ["", "### Performance targets", "", "| target | measured | verdict |",
              "| --- | --- | --- |"]
    for group, case, baseline, limit in TARGETS:
        found = [r for r in rows if r["group"].startswith(group) and r["case"] == case]
        if not found or found[0]["ratio"] is None:
            lines.append(f"| {case} on {group}: ≤ {limit:g}× {baseline} | not measured | — |")
            continue
        ratio = found[0]["ratio"]
        verdict = "met" if ratio <= limit else f"missed by {ratio / limit:.2f}×"
        lines.append(f"| {case} on {group}: ≤ {limit:g}× {baseline} | {ratio:.2f}× | {verdict} |")
    return lines


def oracle_section(data: dict[str, Any]) -> list[str]:
    lines = ["## Oracle self-test", "",
             "Every catalogued implementation (checks/oracle/catalogue.py) run through the oracle: known "
             "bugs and variants handed in where the spec is asked for must fail and be named; "
             "correct implementations in other parametrisations must pass.", "",
             "| kind | entries | detected | named by the diagnosis | passed |",
             "| --- | --- | --- | --- | --- |"]
    for kind, row in data["rates"].items():
        lines.append(f"| {kind} | {row['entries']} | {row.get('detected', '—')} | "
                     f"{row.get('diagnosed', '—')} | {row.get('passed', '—')} |")
    lines += ["", "| entry | kind | detected | named | passed |", "| --- | --- | --- | --- | --- |"]
    for e in data["entries"]:
        named = ", ".join(e["named"]) or "—"
        lines.append(f"| {e['name']} | {e['kind']} | {e['detected']} | {named} | {e['passed']} |")
    lines += ["", "Bug ids that no implementation can exhibit through the contract:", ""]
    lines += [f"- `{sid}`: {why}" for sid, why in data["unreachable"].items()]
    return lines + alternatives_lines(data.get("alternatives"))


def alternatives_lines(corpus: dict[str, Any] | None) -> list[str]:
    """The corpus of correct alternatives (checks/oracle/alternatives.py): the pass rate and one
    row per entry, a failure's first message, or why the entry could not run here."""
    if corpus is None:
        return []
    lines = ["", "### Correct alternatives", "",
             "Implementations that compute a formula another legitimate way (checks/oracle/"
             "alternatives.py); every one must pass, so a failure here is a false alarm of the "
             "oracle.", "",
             f"Correct alternatives passed: {corpus['passed']}/{corpus['ran']}"
             + (f" ({len(corpus['entries']) - corpus['ran']} not run here: framework absent)"
                if len(corpus["entries"]) > corpus["ran"] else ""), "",
             "| entry | computes | dtype | spec ids | result |", "| --- | --- | --- | --- | --- |"]
    for e in corpus["entries"]:
        if not e["available"]:
            result = f"not run: {e['reason']}"
        elif e["passed"]:
            result = "pass"
        else:
            failed = [sid for sid, v in e["verdicts"].items() if v != "pass"]
            first = e["failures"][0] if e["failures"] else ""
            result = f"FAIL {', '.join(failed)}: {first}"
        cells = (e["name"], e["computes"], e["dtype"], ", ".join(e["only"]), result)
        # A formula's |x| would end a table cell.
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def atlas_section(path: Path) -> list[str]:
    """A pointer to the framework atlas beside the report, with the line that says when and how
    it was generated (it is run by ``nnspec atlas`` or ``nnspec report --atlas``)."""
    generated = next((line for line in path.read_text(encoding="utf-8").splitlines()
                      if line.startswith("Generated")), "")
    return ["## The framework atlas", "",
            f"Which formula Keras, Flax, ONNX and torch compute, per spec id: `{path.name}` "
            f"beside this file (and `atlas.json`). {generated}"]


def environment_section(env: dict[str, str]) -> list[str]:
    return ["## Environment", "", "| what | value |", "| --- | --- |",
            *[f"| {k} | {v} |" for k, v in env.items()]]


def _dump(path: Path, data: Any, command: str) -> None:
    payload = {"generated_by": command, **data} if isinstance(data, dict) else data
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")


def main(implementations: list[str], out_dir: Path, extra_args: list[str], *,
         size: str = "default", bench: bool = True, decay: bool = True,
         oracle: bool = True, atlas: bool = False, progress: Progress | None = None,
         jobs: int = 1) -> int:
    """Run the stages and write ``out_dir``; ``extra_args`` go to the conformance run's pytest,
    which runs in ``jobs`` pytest-xdist workers (its matrix is a serial run's), and
    ``progress`` shows how far it has got (default: on stderr when it is a terminal). A Ctrl-C
    during the conformance checks raises KeyboardInterrupt, as it does in the other stages."""
    command = "nnspec report" + ("".join(f" {a}" for a in sys.argv[2:]) if len(sys.argv) > 2
                                 else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    env = environment()
    sections: list[list[str]] = []

    print(f"nnspec report [1/4]: conformance checks for {', '.join(implementations)}", flush=True)
    progress = progress or Progress()
    result = run(implementations, extra_args=extra_args, plugins=[progress], jobs=jobs)
    if progress.interrupted:  # pytest caught it and returned; stop here, not at the next stage
        raise KeyboardInterrupt
    sections.append(conformance_section(result))
    _dump(out_dir / "conformance.json", {
        "implementations": implementations, "totals": result.totals, "seconds": result.seconds,
        "matrix": {f"{sid} × {impl}": {"verdict": _verdict(c), "passed": c.passed,
                                       "failed": c.failed, "skipped": c.skipped,
                                       "messages": c.messages, "diagnoses": c.diagnoses,
                                       "findings": [fields(d) for d in c.diagnoses],
                                       "failures": [f.to_dict() for f in c.failures]}
                   for (sid, impl), c in result.cells.items()}}, command)

    if bench:
        from nnspec import benchmarks

        print(f"nnspec report [2/4]: benchmarks ({size})", flush=True)
        data = benchmarks.run(size)
        sections.append(benchmark_section(data))
        _dump(out_dir / "benchmarks.json", data, command)
    if oracle:
        from nnspec import selftest

        print("nnspec report [3/4]: oracle self-test catalogue", flush=True)
        data = selftest.detection()
        sections.append(oracle_section(data))
        _dump(out_dir / "oracle.json", data, command)
    if decay:
        from nnspec.decay import report as decay_report

        print(f"nnspec report [4/4]: gradient-norm decay sweeps ({size})", flush=True)
        sections.append(decay_report.section(out_dir, size, command))
    if atlas:
        from nnspec import atlas as framework_atlas

        print("nnspec report [atlas]: every installed framework adapter", flush=True)
        framework_atlas.write(framework_atlas.run(), out_dir)
    if (out_dir / "atlas.md").exists():
        sections.append(atlas_section(out_dir / "atlas.md"))

    elapsed = time.perf_counter() - started
    lines = ["<!-- Generated by `nnspec report`; do not edit by hand. -->", "",
             "# nnspec report", "",
             f"Generated {when} by `{command}` in {elapsed:.0f} s, on the machine described "
             "under Environment. Raw data: `conformance.json`, `benchmarks.json`, `oracle.json`, "
             "`decay.json` beside this file.", ""]
    for section in [*sections, environment_section(env)]:
        lines += [*section, ""]
    report = out_dir / "README.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    print(f"nnspec report: wrote {report} in {elapsed:.0f} s "
          f"({result.totals['passed']} checks passed, {result.totals['failed']} failed)")
    return 0 if result.totals["failed"] == 0 else 1
