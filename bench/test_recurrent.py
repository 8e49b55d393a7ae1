"""Reference (float64 NumPy) against torch on the CPU (float64), cells and sequences.

Each case runs both implementations in one session, so the ratio in the report is measured in one
run. Sizes span T, batch and hidden; the issue's target case is T = 100, batch 32, hidden 128.
"""

from __future__ import annotations

import numpy as np
import pytest

GATES = {"rnn": 1, "gru": 3, "lstm": 4}

#: (T, batch, hidden); input size = hidden.
SEQUENCE_SIZES = [(100, 32, 128), (100, 1, 128), (1000, 32, 32), (10, 32, 512)]
CELL_SIZES = [(32, 128), (32, 512), (1, 128)]


def _params(rng: np.random.Generator, kind: str, D: int, H: int) -> list[np.ndarray]:
    s = 1.0 / np.sqrt(H)
    g = GATES[kind]
    return [rng.uniform(-s, s, shape) for shape in ((g * H, D), (g * H, H), (g * H,), (g * H,))]


@pytest.mark.parametrize("impl_name", ["reference", "torch"])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize(("T", "B", "H"), SEQUENCE_SIZES)
def test_sequence_forward(benchmark, implementations, rng, impl_name, kind, T, B, H):
    impl = implementations[impl_name]
    x = rng.standard_normal((T, B, H))
    states = [np.zeros((B, H))] * (2 if kind == "lstm" else 1)
    fn = getattr(impl.module, f"{kind}_layer")
    benchmark.group = f"{kind}_layer T={T} B={B} H={H}"
    benchmark.extra_info.update(kind=kind, T=T, B=B, H=H, impl=impl_name, what="sequence")
    benchmark(fn, x, *states, *_params(rng, kind, H, H))


@pytest.mark.parametrize("impl_name", ["reference", "torch"])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize(("B", "H"), CELL_SIZES)
def test_cell_forward(benchmark, implementations, rng, impl_name, kind, B, H):
    impl = implementations[impl_name]
    x = rng.standard_normal((B, H))
    states = [rng.standard_normal((B, H))] * (2 if kind == "lstm" else 1)
    fn = getattr(impl.module, f"{kind}_cell")
    benchmark.group = f"{kind}_cell B={B} H={H}"
    benchmark.extra_info.update(kind=kind, B=B, H=H, impl=impl_name, what="cell")
    benchmark(fn, x, *states, *_params(rng, kind, H, H))
