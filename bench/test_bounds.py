"""The cost of a recurrent layer's bound against the reference's own evaluation (issue 11, item 4:
≤ 2×) at T = 500, B = 8, H = 256: the forward bound (``{kind}_layer`` of checks/bounds) against
the reference's ``{kind}_layer``, and the gradient bound (``vjp_{kind}_layer``) against the
reference's ``{kind}_layer_vjp``.

The bound is the smaller of the running worst case and the first-order probabilistic one
(checks/bounds/propagation.py, backpropagation.py); the worst-case run stops once it is the
looser, so at this size nearly all the time is the probabilistic pass.

The machine these run on may be shared, so the two sides are interleaved: each round calls
both, the first one alternating, each timed by the wall clock, and the figure is the median over
rounds of bound / reference (``extra_info["ratio"]``, printed with ``-s``), so load falls on
both sides alike. Both sides run on one BLAS thread (bench/timing.py says why). The ratio of
the process's CPU times is recorded too (``extra_info["cpu_ratio"]``), the figure other
processes on the machine disturb least.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.bench.timing import interleaved, one_thread
from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.reference import gru as gru_ref
from nnspec.reference import lstm as lstm_ref

T, B, H = 500, 8, 256
#: Rounds of the interleaved comparison, each one call of either side (and one to warm up).
ROUNDS = 5

#: kind → (gates, reference forward, its bound, reference VJP, its bound).
LAYERS = {"lstm": (4, lstm_ref.lstm_layer, lstm_bounds.lstm_layer, lstm_ref.lstm_layer_vjp,
                   lstm_bounds.vjp_lstm_layer),
          "gru": (3, gru_ref.gru_layer, gru_bounds.gru_layer, gru_ref.gru_layer_vjp,
                  gru_bounds.vjp_gru_layer)}


@pytest.mark.parametrize("what", ["forward", "vjp"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_bound_cost(benchmark, rng, kind, what):
    gates, forward, bound, vjp, vjp_bound = LAYERS[kind]
    s = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, B, H)).astype(np.float32).astype(np.float64)
    params = [rng.uniform(-s, s, shape).astype(np.float32).astype(np.float64)
              for shape in ((gates * H, H), (gates * H, H), (gates * H,), (gates * H,))]
    states = [np.zeros((B, H))] * (2 if kind == "lstm" else 1)
    g = (rng.standard_normal((T, B, H)), *(rng.standard_normal((B, H)) for _ in states))
    if what == "forward":
        sides = {"reference": lambda: forward(x, *states, *params),
                 "bound": lambda: bound(x, *states, *params, dtype=np.float32)}
    else:
        sides = {"reference": lambda: vjp(g, x, *states, *params),
                 "bound": lambda: vjp_bound(g, x, *states, *params, dtype=np.float32)}
    benchmark.group = f"{kind}_layer bound cost ({what}) T={T} B={B} H={H}, interleaved"
    with one_thread():
        times = benchmark.pedantic(interleaved, args=(sides, ROUNDS), rounds=1, iterations=1)
    ratios = times["bound"] / times["reference"]
    cpu_ratios = times["cpu bound"] / times["cpu reference"]
    benchmark.extra_info.update(
        kind=kind, T=T, B=B, H=H, what=what, rounds=ROUNDS,
        reference_median_s=float(np.median(times["reference"])),
        bound_median_s=float(np.median(times["bound"])), ratio=float(np.median(ratios)),
        cpu_ratio=float(np.median(cpu_ratios)))
    print(f"\n{kind} {what}: bound / reference = {np.median(ratios):.2f} (median of {ROUNDS} "
          f"interleaved rounds; reference {np.median(times['reference']):.3f} s, bound "
          f"{np.median(times['bound']):.3f} s; CPU time {np.median(cpu_ratios):.2f})")
