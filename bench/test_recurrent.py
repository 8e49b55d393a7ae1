"""Reference (float64 NumPy) against torch on the CPU (float64), cells and sequences.

Each case runs both implementations in one session, so the ratio in the report is measured in one
run. Sizes span T, batch and hidden; the issue's target case is T = 100, batch 32, hidden 128,
where :func:`test_layer_forward_interleaved` times the reference's layer and nn.RNN/GRU/LSTM's
forward in alternating rounds, both on one thread (issue 11: the reference within 1.3× of torch
there).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnspec.bench.timing import interleaved, one_thread

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


#: The issue's target size (T, batch, hidden); input size = hidden.
TARGET = (100, 32, 128)
#: Rounds of the interleaved comparison, each one call of either side.
ROUNDS = 21
MODULES = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_layer_forward_interleaved(benchmark, implementations, rng, kind):
    """The reference's ``{kind}_layer`` against nn.RNN/GRU/LSTM's forward under torch.no_grad with
    the same float64 weights, built once (no conversions timed): each round calls both, the
    first one alternating, and the ratio is the median over rounds of reference / torch, so
    load on the machine falls on both sides alike.

    Both sides run on one thread (bench/timing.py says why): the issue's target."""
    T, B, H = TARGET
    x = rng.standard_normal((T, B, H))
    states = [np.zeros((B, H))] * (2 if kind == "lstm" else 1)
    weights = _params(rng, kind, H, H)
    module = MODULES[kind](H, H, dtype=torch.float64)
    with torch.no_grad():
        for p, w in zip(module.parameters(), weights, strict=True):
            p.copy_(torch.from_numpy(w))
    xt = torch.from_numpy(x)
    st = [torch.from_numpy(s)[None] for s in states]
    st_arg = (st[0], st[1]) if kind == "lstm" else st[0]
    ref_layer = getattr(implementations["reference"].module, f"{kind}_layer")

    def reference() -> None:
        ref_layer(x, *states, *weights)

    def nn_forward() -> None:
        with torch.no_grad():
            module(xt, st_arg)

    benchmark.group = (f"{kind}_layer T={T} B={B} H={H}, interleaved with "
                       f"nn.{MODULES[kind].__name__}, 1 thread")
    with one_thread():
        times = benchmark.pedantic(interleaved, rounds=1, iterations=1,
                                   args=({"reference": reference, "torch": nn_forward}, ROUNDS))
    benchmark.extra_info.update(
        kind=kind, T=T, B=B, H=H, what="interleaved", rounds=ROUNDS, threads=1,
        reference_median_s=float(np.median(times["reference"])),
        torch_median_s=float(np.median(times["torch"])),
        ratio=float(np.median(times["reference"] / times["torch"])))
