"""The cost of a recurrent layer's bound against the reference's own forward (issue 11, item 4:
≤ 2×), both timed in one session at T = 500, B = 8, H = 256, so their ratio is one run's.

The bound is the smaller of the running worst case and the first-order probabilistic one
(checks/bounds/propagation.py); the worst-case run stops once it is the looser, so at this size
nearly all the time is the probabilistic pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.reference import gru as gru_ref
from nnspec.reference import lstm as lstm_ref

T, B, H = 500, 8, 256

LAYERS = {"lstm": (4, lstm_ref.lstm_layer, lstm_bounds.lstm_layer),
          "gru": (3, gru_ref.gru_layer, gru_bounds.gru_layer)}


@pytest.mark.parametrize("what", ["reference forward", "bound float32"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_bound_cost(benchmark, rng, kind, what):
    gates, forward, bound = LAYERS[kind]
    s = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, B, H)).astype(np.float32).astype(np.float64)
    params = [rng.uniform(-s, s, shape).astype(np.float32).astype(np.float64)
              for shape in ((gates * H, H), (gates * H, H), (gates * H,), (gates * H,))]
    states = [np.zeros((B, H))] * (2 if kind == "lstm" else 1)
    benchmark.group = f"{kind}_layer bound cost T={T} B={B} H={H}"
    benchmark.extra_info.update(kind=kind, T=T, B=B, H=H, what=what)
    if what == "reference forward":
        benchmark.pedantic(forward, args=(x, *states, *params), rounds=3)
    else:
        benchmark.pedantic(bound, args=(x, *states, *params), kwargs={"dtype": np.float32}, rounds=3)
