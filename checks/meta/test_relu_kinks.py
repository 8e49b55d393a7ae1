"""Checks of the ReLU kink term of the gradients' bound (checks/bounds/backpropagation.flips;
spec/tolerances.md, "Gradients", "Kinks").

Where a ReLU pre-activation lies within its bound of 0, an implementation may compute it with the
other sign and take the other derivative: the bound covers every subset of such flips exactly
(brute force over all of them on a small layer, the term for a flip's change reaching another
unsure unit included) and of small float32 layers (a flip meeting the forward's error of h);
an implementation that flips every unsure unit of a long float32 layer stays within it while
the bound without the term is exceeded 10³-fold; torch float32 holds it; a wrong gradient is
still caught next to the kinks; and an exactly computed 0 is not a kink.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nnspec.checks.bounds import backpropagation as BP
from nnspec.checks.bounds import propagation as P
from nnspec.checks.bounds import rnn as rnn_bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import sizes
from nnspec.reference import rnn as ref

GRADIENTS = ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")


def _vjp(g, args, flip):
    """nn.RNN(relu)'s VJP in float64, its derivative indicator flipped where ``flip`` (T, B, H):
    an implementation whose computed pre-activations there had the other sign."""
    x, h0, w_ih, w_hh, b_ih, b_hh = args
    T = x.shape[0]
    hs, pre = [h0], []
    for t in range(T):
        pre.append(x[t] @ w_ih.T + hs[-1] @ w_hh.T + b_ih + b_hh)
        hs.append(np.maximum(pre[-1], 0.0))
    gy, ghT = g
    gh = gy[-1] + ghT
    dx, dw_ih, dw_hh, db = np.zeros_like(x), np.zeros_like(w_ih), np.zeros_like(w_hh), 0.0
    for t in reversed(range(T)):
        ga = gh * ((pre[t] > 0) ^ flip[t])
        dx[t] = ga @ w_ih
        dw_ih, dw_hh, db = dw_ih + ga.T @ x[t], dw_hh + ga.T @ hs[t], db + ga.sum(0)
        gh = ga @ w_hh + (gy[t - 1] if t > 0 else 0.0)
    return dx, gh, dw_ih, dw_hh, db, db


def _problem(T: int, B: int, H: int, seed: int) -> tuple[tuple, tuple]:
    return sizes.float32_layer_vjp("rnn", sizes.Size(T=T, B=B, H=H, D=H),
                                   np.random.default_rng(seed))


def _unsure(args: tuple, dtype: np.dtype) -> tuple[np.ndarray, list]:
    """The forward's unsure units (T, B, H), as vjp_rnn_layer finds them (an exact a, V_a = 0,
    is not), and its tape."""
    x, h0, w_ih, w_hh, b_ih, b_hh = args
    scale = P.scale(dtype, x.shape[0] * h0.size + h0.size)
    tape: list = []
    P.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, "relu", scale, tape=tape)
    return np.stack([tol.near_kink(a, scale * np.sqrt(Va)) for a, Va in tape]), tape


def _bound_terms(g: tuple, args: tuple, unsure: np.ndarray, tape: list) -> dict[str, np.ndarray]:
    """backpropagation.flips on the given unsure units, from the reference's g_h per step."""
    x, h0, w_ih, w_hh, b_ih, b_hh = args
    GH = np.empty(unsure.shape)
    gh = g[0][-1] + g[1]
    for t in reversed(range(x.shape[0])):
        GH[t] = gh
        gh = (gh * (tape[t][0] > 0)) @ w_hh + (g[0][t - 1] if t > 0 else 0.0)
    y = ref.rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, "relu")[0]  # float64: exact inputs here
    return BP.flips(unsure, GH, tape, np.abs(x), np.abs(np.concatenate([h0[None], y[:-1]])),
                    w_ih, w_hh)


UNITS = [(9, 0, 1), (6, 0, 4), (3, 0, 2)]
KEYS = ("dx", "dstate0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _subsets_against(bound: dict[str, np.ndarray], g: tuple, args: tuple) -> float:
    """The largest excess, over every nonempty subset of UNITS flipped, of |its change of each
    gradient| over ``bound``; 10⁻¹² relative slack for the float64 evaluation of both sides."""
    base = _vjp(g, args, np.zeros((12, 2, 6), dtype=bool))
    worst = -np.inf
    for k in range(1, len(UNITS) + 1):
        for subset in itertools.combinations(UNITS, k):
            flip = np.zeros((12, 2, 6), dtype=bool)
            for u in subset:
                flip[u] = True
            for got, want, key in zip(_vjp(g, args, flip), base, KEYS, strict=True):
                slack = 1e-12 * (np.max(np.abs(want)) + np.max(bound[key]))
                worst = max(worst, float(np.max(np.abs(got - want) - bound[key] - slack)))
    return worst


def _small() -> tuple[tuple, tuple, np.ndarray, list]:
    """A small layer with UNITS — three units of one row, each passing (a > 0) so that its flip
    stops it and the change of a later flip reaches it — marked unsure whatever their |a|: the
    indicator's flip is the same linear change of the backward pass at any a."""
    g, args = _problem(12, 2, 6, seed=1)
    _, tape = _unsure(args, np.dtype(np.float64))
    unsure = np.zeros((12, 2, 6), dtype=bool)
    for u in UNITS:
        assert tape[u[0]][0][u[1:]] > 0
        unsure[u] = True
    return g, args, unsure, tape


def test_the_kink_term_covers_every_subset_of_flips():
    g, args, unsure, tape = _small()
    worst = _subsets_against(_bound_terms(g, args, unsure, tape), g, args)
    assert worst <= 0, f"a subset of flips exceeds the term by {worst:.3g}"


def test_the_flips_interact_so_their_single_changes_do_not_bound_them():
    # Σ over units of |the change of flipping it alone|: what the term would be without the
    # changes that reach a later-flipped unit. Some subset exceeds it: the reach is needed.
    g, args, _, _ = _small()
    base = _vjp(g, args, np.zeros((12, 2, 6), dtype=bool))
    alone = dict.fromkeys(KEYS, 0.0)
    for u in UNITS:
        flip = np.zeros((12, 2, 6), dtype=bool)
        flip[u] = True
        for key, got, want in zip(KEYS, _vjp(g, args, flip), base, strict=True):
            alone[key] = alone[key] + np.abs(got - want)
    assert _subsets_against(alone, g, args) > 0


def _long() -> tuple[tuple, tuple, np.ndarray]:
    """A float32 layer at T = 200, B = 4, H = 128 whose forward has units within their bound of
    the kink (two, seed 3), and those units."""
    g, args = _problem(200, 4, 128, seed=3)
    unsure, _ = _unsure(args, np.dtype(np.float32))
    assert unsure.any(), "the draw no longer has a unit near the kink"
    return g, args, unsure


def _excess(got, want, bounds) -> float:
    """The largest |got − want| / bound; where a bound is 0 (an exact result), 0 if got is want
    and ∞ if not, as the harness compares (|got − want| > bound fails)."""
    worst = 0.0
    for a, w, b in zip(got, want, bounds, strict=True):
        err = np.abs(a - w)
        ratio = np.divide(err, b.atol, out=np.where(err > 0, np.inf, 0.0), where=b.atol > 0)
        worst = max(worst, float(np.max(ratio)))
    return worst


def test_a_layer_that_flips_every_unsure_unit_holds_the_bound(monkeypatch):
    g, args, unsure = _long()
    got, want = _vjp(g, args, unsure), ref.rnn_layer_vjp(g, *args, nonlinearity="relu")
    bounds = rnn_bounds.vjp_rnn_layer(g, *args, nonlinearity="relu", dtype=np.float32)
    assert all(np.all(np.isfinite(b.atol)) for b in bounds)
    assert _excess(got, want, bounds) <= 1
    real = BP.flips
    monkeypatch.setattr(BP, "flips", lambda *a: {k: 0 * v for k, v in real(*a).items()})
    without = rnn_bounds.vjp_rnn_layer(g, *args, nonlinearity="relu", dtype=np.float32)
    assert _excess(got, want, without) > 1e3, "the flips are not what the term is for"


def test_torch_float32_relu_gradients_hold_the_bound_near_kinks():
    from nnspec.implementations import torch_cpu_float32  # torch is a pinned dependency

    g, args, _ = _long()
    got = [np.asarray(a, dtype=np.float64)
           for a in torch_cpu_float32.vjp_rnn_layer(g, *args, nonlinearity="relu")]
    bounds = rnn_bounds.vjp_rnn_layer(g, *args, nonlinearity="relu", dtype=np.float32)
    assert _excess(got, ref.rnn_layer_vjp(g, *args, nonlinearity="relu"), bounds) <= 1


@pytest.mark.parametrize("mutant", ["dw_hh scaled by 1 + 1e-2", "step 1's share of dw_ih dropped"])
def test_a_wrong_weight_gradient_is_still_caught_next_to_the_kinks(mutant):
    # Two flips move this layer's weight gradients by ≈ 0.1 % (the term's median share, and the
    # flipping layer's change is 0.65–0.9 of it): a 1 % error, or one step's share missing, is
    # not within what they allow.
    g, args, _ = _long()
    want = ref.rnn_layer_vjp(g, *args, nonlinearity="relu")
    if mutant.startswith("dw_hh"):
        k, wrong = 3, want[3] * (1 + 1e-2)
    else:
        h1 = ref.rnn_layer(args[0][:1], *args[1:], nonlinearity="relu")[1]
        k, wrong = 2, ref.rnn_layer_vjp((g[0][1:], g[1]), args[0][1:], h1, *args[2:],
                                        nonlinearity="relu")[2]
    bound = rnn_bounds.vjp_rnn_layer(g, *args, nonlinearity="relu", dtype=np.float32)[k].atol
    assert np.mean(np.abs(wrong - want[k]) > bound) > 0.5, mutant


def _float32_vjp(g, args, flip):
    """The flipped layer of :func:`_vjp` evaluated in float32, forward and backward: its h carry
    float32 roundings, so a flip from off to on meets h's error (a review's counterexample)."""
    x, h0, w_ih, w_hh, b_ih, b_hh = (np.asarray(a, dtype=np.float32) for a in args)
    on = [((a > 0) ^ f) for a, f in zip(_pre_activations(args), flip, strict=True)]
    hs = [h0]
    for t in range(x.shape[0]):
        a = x[t] @ w_ih.T + hs[-1] @ w_hh.T + b_ih + b_hh
        hs.append(np.where(on[t], np.maximum(a, np.float32(0)), np.float32(0)))
    gy, ghT = (np.asarray(a, dtype=np.float32) for a in g)
    gh = gy[-1] + ghT
    dx, dw_ih, dw_hh = np.zeros_like(x), np.zeros_like(w_ih), np.zeros_like(w_hh)
    db = np.zeros(w_hh.shape[0], np.float32)
    for t in reversed(range(x.shape[0])):
        ga = gh * on[t]
        dx[t] = ga @ w_ih
        dw_ih, dw_hh, db = dw_ih + ga.T @ x[t], dw_hh + ga.T @ hs[t], db + ga.sum(0)
        gh = ga @ w_hh + (gy[t - 1] if t > 0 else np.float32(0))
    return [np.asarray(v, dtype=np.float64) for v in (dx, gh, dw_ih, dw_hh, db, db)]


def _pre_activations(args):
    x, h, w_ih, w_hh, b_ih, b_hh = args
    out = []
    for x_t in x:
        out.append(x_t @ w_ih.T + h @ w_hh.T + b_ih + b_hh)
        h = np.maximum(out[-1], 0.0)
    return out


def _near_kinks(rng: np.random.Generator) -> tuple[tuple, tuple]:
    """A small float32 layer with up to four units put at their kink by solving for one input
    (rounding leaves them within a few ulps of 0, on either side), cotangents with holes."""
    T, B, H, D = (int(rng.integers(1, n)) for n in (7, 3, 5, 4))
    def f32(a):
        return np.asarray(a, dtype=np.float32).astype(np.float64)
    x = f32(rng.standard_normal((T, B, D)))
    h0, w_ih = f32(np.abs(rng.standard_normal((B, H)))), f32(rng.standard_normal((H, D)))
    w_hh = f32(rng.standard_normal((H, H)) / np.sqrt(H))
    b_ih, b_hh = (f32(rng.standard_normal(H) * 0.3 * rng.integers(2)) for _ in range(2))
    for _ in range(int(rng.integers(1, 5))):
        t, b, j, d = (int(rng.integers(n)) for n in (T, B, H, D))
        a = _pre_activations((x, h0, w_ih, w_hh, b_ih, b_hh))[t]
        x[t, b, d] = f32(x[t, b, d] - a[b, j] / w_ih[j, d])
    gy = f32(rng.standard_normal((T, B, H)) * (rng.random((T, 1, 1)) < 0.7))
    return (gy, f32(rng.standard_normal((B, H)))), (x, h0, w_ih, w_hh, b_ih, b_hh)


def test_every_subset_of_flips_of_a_float32_layer_holds_the_bound(monkeypatch):
    # The probabilistic bound alone (the worst case, finite at these sizes, is not run), on 40
    # small layers, every subset of unsure units flipped, computed in float32 throughout.
    monkeypatch.setattr(rnn_bounds, "_layer", lambda *a: [])
    rng, tried, worst = np.random.default_rng(9), 0, 0.0  # its 16th meets a flip after an h ≈ 0
    while tried < 40:
        g, args = _near_kinks(rng)
        unsure, _ = _unsure(args, np.dtype(np.float32))
        units = list(zip(*np.nonzero(unsure), strict=True))
        if not units:
            continue
        tried += 1
        want = ref.rnn_layer_vjp(g, *args, nonlinearity="relu")
        bounds = rnn_bounds.vjp_rnn_layer(g, *args, nonlinearity="relu", dtype=np.float32)
        for k in range(len(units) + 1):
            for subset in itertools.combinations(units, k):
                flip = np.zeros_like(unsure)
                flip[tuple(np.array(subset, dtype=int).reshape(-1, 3).T)] = True
                worst = max(worst, _excess(_float32_vjp(g, args, flip), want, bounds))
    assert worst <= 1, f"{worst:.3g}× the bound"


def test_an_exact_zero_is_not_a_kink():
    # Zero input for 100 steps from h0 = 0 without biases: a = 0 exactly, V_a = 0, and ReLU'(0)
    # = 0 is the spec's, so nothing can flip there (counted as unsure, the term compounded from
    # step to step to 10⁷⁵ and then NaN).
    g, args = _problem(200, 4, 128, seed=0)
    x, h0, w_ih, w_hh, _, _ = args
    x = x.copy()
    x[:100] = 0.0
    layer = (x, np.zeros_like(h0), w_ih, w_hh, None, None)
    unsure, _ = _unsure((x, np.zeros_like(h0), w_ih, w_hh, np.zeros(128), np.zeros(128)),
                        np.dtype(np.float32))
    assert not unsure.any()
    bounds = rnn_bounds.vjp_rnn_layer(g, *layer, nonlinearity="relu", dtype=np.float32)
    want = ref.rnn_layer_vjp(g, *layer, nonlinearity="relu")
    assert np.all(want[0][:100] == 0) and np.all(bounds[0].atol[:100] < 1e-20)
    assert all(np.all(np.isfinite(b.atol)) for b in bounds if b is not None)


def test_an_exact_zero_takes_the_spec_derivative_in_the_worst_case_bound(monkeypatch):
    # A short float32 layer, the running worst case run to the end so that it decides (it would
    # stop once the probabilistic bound is tighter, which has the rule too): three steps of zero input
    # from h0 = 0 with zero biases, so a = 0 exactly and its worst-case bound is 0 too (a sum of
    # exact zeros rounds nothing). The one rule (tol.near_kink) makes no unit unsure there: an
    # implementation taking ReLU'(0) = 1, which passes g_h on to ∂x and ∂b, fails; the spec's 0
    # and torch hold. Counted as unsure, as the worst case's own rule did, both passed.
    from nnspec.implementations import torch_cpu_float32  # torch is a pinned dependency

    g, args = _problem(6, 2, 4, seed=0)
    x, h0, w_ih, w_hh, _, _ = args
    x = x.copy()
    x[:3] = 0.0
    zero = np.zeros(w_hh.shape[0])
    layer = (x, np.zeros_like(h0), w_ih, w_hh, zero, zero)
    at_zero = np.stack([a == 0 for a in _pre_activations(layer)])
    assert at_zero[:3].all() and not at_zero[3:].any()
    monkeypatch.setattr(BP, "worst_case_stop", lambda traj, dtype: lambda t, errors: False)
    bounds = rnn_bounds.vjp_rnn_layer(g, *layer, nonlinearity="relu", dtype=np.float32)
    want = ref.rnn_layer_vjp(g, *layer, nonlinearity="relu")
    subgradient_one = _vjp(g, layer, at_zero)
    assert _excess(subgradient_one, want, bounds) > 1e3
    spec = [np.asarray(a, dtype=np.float64)
            for a in torch_cpu_float32.vjp_rnn_layer(g, *layer, nonlinearity="relu")]
    assert _excess(spec, want, bounds) <= 1
