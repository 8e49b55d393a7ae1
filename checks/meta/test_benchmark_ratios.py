"""The report's benchmark rows (nnspec/benchmarks.py, nnspec/report.py): an interleaved
benchmark carries both sides and its own ratio, and the bound-cost benchmarks
(bench/test_bounds.py) reach the report's table and its performance targets."""

from __future__ import annotations

from nnspec import benchmarks, report


def _bound_cost(kind: str, what: str, ratio: float) -> dict:
    return {"group": f"{kind}_layer bound cost ({what}) T=500 B=8 H=256, interleaved",
            "name": f"test_layer_bound_cost[{kind}-{what}]", "stats": {"median": 0.5},
            "extra_info": {"what": what, "ratio": ratio, "reference_median_s": 0.2,
                           "bound_median_s": 0.2 * ratio, "cpu_ratio": ratio}}


def test_a_bound_cost_benchmark_gives_a_bound_row_against_the_reference():
    rows = benchmarks.ratios([_bound_cost("lstm", "forward", 2.5)])
    bound = next(r for r in rows if r["case"] == "bound")
    assert bound["baseline"] == "reference" and bound["ratio"] == 2.5
    assert bound["median_s"] == 0.5
    assert any(r["case"] == "reference" and r["ratio"] == 1.0 for r in rows)


def test_the_bound_cost_has_a_performance_target_in_the_report():
    data = {"ratios": benchmarks.ratios([_bound_cost("lstm", "forward", 2.5),
                                         _bound_cost("gru", "vjp", 1.5)])}
    text = "\n".join(report.benchmark_section(data))
    assert "| bound on lstm_layer bound cost (forward): ≤ 2× reference | 2.50× | missed by 1.25× |" in text
    assert "| bound on gru_layer bound cost (vjp): ≤ 2× reference | 1.50× | met |" in text
    assert "| bound on gru_layer bound cost (forward): ≤ 2× reference | not measured | — |" in text
