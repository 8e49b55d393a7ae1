"""Run the pytest-benchmark suites of ``bench/`` and summarise them as ratios.

Every comparison is a ratio of medians measured in one run: reference over torch for the same
cell and sizes (at the target size T = 100, B = 32, H = 128 the layers are timed in alternating
rounds against nn.RNN/GRU/LSTM's forward, and the ratio is the median of the rounds' ratios),
each gradient-check tool over ``gradcheck(fast_mode=True)``, and the naive decay
measurement over the single sweep. The naive method takes about a minute per cell at T = 1,000,
so the decay benchmarks run at ``--size large`` only; the default report takes the same figures
from the decay stage's own timings.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import nnspec.bench

#: pytest ``-k`` selections per report size; "large" runs every case.
SELECTIONS = {
    "default": "layer_forward_interleaved or (cell_forward and 32-128) or gradient "
               "or isolation or layer_bound_cost",
    "large": "",
}


#: The case each group's ratios are taken against.
BASELINES = ("torch", "torch.autograd.gradcheck(fast_mode=True)", "single sweep", "in-process")


def run(size: str = "default", *, quiet: bool = True) -> dict[str, Any]:
    """Run the benchmarks of ``size`` and return pytest-benchmark's JSON plus our ratios."""
    bench_dir = Path(next(iter(nnspec.bench.__path__)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        args = [str(bench_dir), "--rootdir", str(bench_dir.parent), "--import-mode=importlib",
                "-p", "no:cacheprovider", "--benchmark-enable", f"--benchmark-json={out}",
                "--benchmark-max-time=0.5", "--benchmark-min-rounds=3",
                "-q" if quiet else "-v"]
        if SELECTIONS[size]:
            args += ["-k", SELECTIONS[size]]
        if size == "large":
            args.append("--run-slow-gradcheck")
        code = pytest.main(args)
        data = json.loads(out.read_text()) if out.exists() else {"benchmarks": []}
    data["exit_code"] = int(code)
    data["ratios"] = ratios(data["benchmarks"])
    return data


def ratios(benchmarks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group, every case's median over the group's baseline (torch, or gradcheck fast); an
    interleaved case (bench/test_recurrent.py; a bound against the reference, bench/test_bounds.py)
    carries both sides and its ratio itself."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rows = []
    for b in benchmarks:
        info = b.get("extra_info", {})
        if info.get("what") == "interleaved":
            for case, ratio in (("reference", info["ratio"]), ("torch", 1.0)):
                rows.append({"group": b["group"], "case": case, "median_s": info[f"{case}_median_s"],
                             "baseline": "torch", "ratio": ratio, "threads": info["threads"]})
        elif "bound_median_s" in info:
            for case, ratio in (("bound", info["ratio"]), ("reference", 1.0)):
                rows.append({"group": b["group"], "case": case, "median_s": info[f"{case}_median_s"],
                             "baseline": "reference", "ratio": ratio})
        else:
            groups[b["group"]].append(b)
    for group, cases in groups.items():
        def label(b: dict[str, Any]) -> str:
            info = b.get("extra_info", {})
            return info.get("impl") or info.get("tool") or b["name"]

        base = next((b for b in cases if label(b) in BASELINES), None)
        for b in cases:
            median = b["stats"]["median"]
            rows.append({"group": group, "case": label(b), "median_s": median,
                         "baseline": label(base) if base else None,
                         "ratio": median / base["stats"]["median"] if base else None})
    return rows
