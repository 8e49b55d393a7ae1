"""The decay measurement (spec/decay.md): one backward sweep against one pass per length.

Targets of the benchmark issue: the curves for T = 10,000 for all three cells in under 10 s on
this machine (``test_decay_curves``, one group per cell: add the three), and the single sweep at
least 100× faster than the naive method at T = 1,000 (the ratio within each ``sweep vs naive``
group).
"""

from __future__ import annotations

import pytest

from nnspec.reference import decay, decay_measure

HIDDEN, DRAWS = 32, 8


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_decay_curves(benchmark, kind):
    benchmark.group = f"decay curves T=10000 H={HIDDEN} draws={DRAWS}"
    benchmark.extra_info.update(tool=f"{kind}: forward run + single sweep")
    benchmark.pedantic(decay_measure.measure, (decay.Cell(kind),),
                       {"hidden": HIDDEN, "length": 10_000, "draws": DRAWS}, rounds=1)


@pytest.mark.parametrize("method", ["single sweep", "naive"])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_sweep_against_naive(benchmark, kind, method):
    m = decay_measure.measure(decay.Cell(kind), hidden=HIDDEN, length=1000, draws=DRAWS)
    benchmark.group = f"decay {kind} sweep vs naive T=1000 H={HIDDEN}"
    benchmark.extra_info.update(tool=method)
    fn = decay.gradient_norms if method == "single sweep" else decay.naive_gradient_norms
    benchmark.pedantic(fn, (m.trajectory, m.v), rounds=1 if method == "naive" else 5)
