"""Checks of spec/decay.md: the log-space decay measurement and the theory it must reproduce."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from nnspec.checks.bounds import decay as bounds
from nnspec.checks.bounds.decay import F64
from nnspec.checks.harness import stats
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import NonConformance, assert_close, fail
from nnspec.checks.harness.gradients import EXTENDED_PRECISION, check_gradient
from nnspec.checks.harness.implementation import describe_args
from nnspec.reference import decay as ref
from nnspec.reference import decay_measure, decay_theory
from nnspec.reference import rnn as rnn_ref
from nnspec.reference.activations import sigmoid, tanh_vjp
from nnspec.reference.gru import gru_cell
from nnspec.reference.lstm import gates as lstm_gates
from nnspec.reference.lstm import lstm_cell
from nnspec.reference.lstm import params_from_torch as lstm_params
from nnspec.reference.rnn import rnn_cell

CELLS = [ref.Cell("rnn", nl) for nl in ref.NONLINEARITIES] + [ref.Cell("gru"), ref.Cell("lstm")]


# ---- the cells as the references define them ------------------------------------------------

def reference_step(cell: ref.Cell, x_t: np.ndarray, s: np.ndarray, w_ih: np.ndarray,
                   w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """One step of the cell references on the state s = h or [h, c]: rnn_cell, gru_cell,
    lstm_cell, and for seed 003's sigmoid g_h and seed 004's linear i2h the RNN's own pieces."""
    if cell.kind == "lstm":
        H = w_hh.shape[1]
        return np.concatenate(lstm_cell(x_t, s[:, :H], s[:, H:], w_ih, w_hh, b_ih, b_hh), axis=1)
    if cell.kind == "gru":
        return gru_cell(x_t, s, w_ih, w_hh, b_ih, b_hh)
    if cell.nonlinearity in ("tanh", "relu"):
        return rnn_cell(x_t, s, w_ih, w_hh, b_ih, b_hh, cell.nonlinearity)
    if cell.nonlinearity == "sigmoid":
        return sigmoid(rnn_ref.pre_activation(x_t, s, *rnn_ref.params_from_torch(w_ih, w_hh, b_ih,
                                                                                 b_hh)))
    return rnn_ref.cell_linear(x_t, s, *rnn_ref.i2h_from_torch(w_ih, w_hh, b_ih, b_hh))


def forward_states(cell: ref.Cell, x: np.ndarray, s0: np.ndarray,
                   params: tuple[np.ndarray, ...]) -> np.ndarray:
    """s_0 … s_T of the cell references over x (T, D) from s0 (1, n), in long double."""
    s = s0.astype(np.longdouble)
    states = [s[0]]
    for x_t in x:
        s = reference_step(cell, x_t[None].astype(np.longdouble), s, *params)
        states.append(s[0])
    return np.stack(states)


def signed_permutation(n: int, rng: np.random.Generator) -> np.ndarray:
    """An orthogonal matrix with one ±1 per row and column: products with it are exact."""
    return np.eye(n)[rng.permutation(n)] * rng.choice([-1.0, 1.0], size=n)


def assert_at_most(got: np.ndarray, limit: np.ndarray, allowance: np.ndarray, *, spec_id: str,
                   call: str, what: str, rule: str) -> None:
    """Fail unless got ≤ limit + allowance everywhere (−inf ≤ −inf holds)."""
    __tracebackhide__ = True
    got, limit = np.broadcast_arrays(np.asarray(got, float), np.asarray(limit, float))
    over = np.where(np.isneginf(got), False, got > limit + allowance)
    if np.any(over):
        i = tuple(int(j) for j in np.argwhere(over)[0])
        fail(spec_id, "reference",
             f"{what}{list(i)} = {got[i]!r} exceeds the bound {limit[i]!r} by "
             f"{got[i] - limit[i]:.3g} > the rounding allowance "
             f"{np.broadcast_to(allowance, got.shape)[i]:.3g} ({rule}); "
             f"{int(over.sum())} of {over.size} values over", call=call)


# ---- decay.gradient_norm -------------------------------------------------------------------------

@st.composite
def decay_problems(draw: st.DrawFn, cell: ref.Cell) -> tuple:
    H, D, T = draw(nst.sizes(max_size=5)), draw(nst.sizes(max_size=4)), draw(nst.sizes())
    rows = cell.gates * H
    params = (draw(nst.float_arrays((rows, D))), draw(nst.float_arrays((rows, H))),
              draw(nst.float_arrays((rows,))), draw(nst.float_arrays((rows,))))
    x = draw(nst.float_arrays((T, D)))
    s0 = draw(nst.float_arrays((1, cell.state_size(H)), magnitude=1.0))
    return params, x, s0


def check_sweep(cell: ref.Cell, params: tuple[np.ndarray, ...], x: np.ndarray, s0: np.ndarray,
                rng: np.random.Generator, *, chain: bool = True) -> None:
    """decay.gradient_norm: the sweep's ∂⟨u, h_T⟩/∂s_0 against the long-double complex step of
    the cell references (tol.fd along a chain); ``chain=False`` is the former rule — float64
    complex step on the reference's own run, bound γ·Σ|g||d| only — kept to show what it missed."""
    __tracebackhide__ = True
    H = params[1].shape[1]
    parts = (s0[:, :H], s0[:, H:]) if cell.kind == "lstm" else (s0,)

    def forward(*state: np.ndarray) -> np.ndarray:
        s = np.concatenate(state, axis=1)
        for x_t in x:
            s = reference_step(cell, x_t[None], s, *params)
        return s[:, :H]

    # The sweep is evaluated on the exact trajectory rounded once to float64 (long double stands
    # in for exact), so each step's VJP sees states off by u·|s| only, as tol.fd's engine bound
    # assumes; the states the reference's own run stores are compared with it under the value
    # bounds of the cells' layers.
    exact_states = forward_states(cell, x, s0, params)
    run = ref.run(cell, ref.stack([params]), x[None], s0).states[0]
    states = np.asarray(exact_states, dtype=F64) if chain else run
    call = f"run[{cell}]{describe_args((x, s0, *params))}"
    got = (run[1:, None, :H], run[-1:, H:])
    want = (exact_states[1:, None, :H], exact_states[-1:, H:])
    value_bounds = bounds.run_states(cell.kind, cell.nonlinearity, x, s0, params)
    # zip stops at the h's for the cells without a c
    for got_i, want_i, bound, what in zip(got, want, value_bounds, ("h_1 … h_T", "c_T"),
                                          strict=False):
        assert_close(got_i, want_i, bound, spec_id="decay.gradient_norm", impl="reference",
                     call=call, what=what)

    def sweep_vjp(u: np.ndarray, *state: np.ndarray) -> tuple[np.ndarray, ...]:
        traj = ref.Trajectory(cell, ref.stack([params]), x[None], states[None])
        norms = ref.gradient_norms(traj, u)
        grad = np.ldexp(norms.mantissa, norms.exponent[:, None])
        return (grad[:, :H], grad[:, H:]) if cell.kind == "lstm" else (grad,)

    def rounding(u: np.ndarray) -> tuple[np.ndarray, ...]:
        return bounds.sweep_rounding(cell.kind, cell.nonlinearity, x, states, params, u)

    check_gradient(forward, sweep_vjp, parts, wrt=tuple(range(len(parts))), rng=rng,
                   method="extended" if chain else "complex", spec_id="decay.gradient_norm",
                   name="reference", vjp_error=rounding if chain else None,
                   call=f"gradient_norms[{cell}]{describe_args((x, s0, *params))}")


needs_long_double = pytest.mark.skipif(
    not EXTENDED_PRECISION, reason="the chain's numeric side needs a long double wider than "
                                   "float64 (tol.fd), which this platform's NumPy lacks")


@needs_long_double
@pytest.mark.spec("decay.gradient_norm")
@pytest.mark.parametrize("cell", CELLS, ids=str)
@given(data=st.data(), rng=nst.generators())
def test_sweep_gradient_is_the_derivative_of_the_reference_cells(cell, data, rng):
    params, x, s0 = data.draw(decay_problems(cell))
    check_sweep(cell, params, x, s0, rng)


def saturated_gru() -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """The soak's counterexample (seed 20): the candidate n ≈ −0.99999 next to h ≈ −0.9975."""
    w_ih = np.full((12, 3), -2.0)
    w_ih[6, 0] = 6.0
    return (w_ih, np.ones((12, 4)), np.zeros(12), np.zeros(12)), \
        np.array([[-1.0, 2.0, 2.0], [2.0, 2.0, 2.0]]), np.zeros((1, 4))


@needs_long_double
@pytest.mark.spec("decay.gradient_norm")
def test_chain_bound_passes_the_saturated_gru_the_final_dot_product_bound_rejected():
    params, x, s0 = saturated_gru()
    check_sweep(ref.Cell("gru"), params, x, s0, np.random.default_rng(0))
    with pytest.raises(NonConformance, match=r"tol\.fd"):
        check_sweep(ref.Cell("gru"), params, x, s0, np.random.default_rng(0), chain=False)


@needs_long_double
@pytest.mark.spec("decay.gradient_norm")
@pytest.mark.parametrize("cell", [ref.Cell("gru"), ref.Cell("lstm"), ref.Cell("rnn")], ids=str)
@pytest.mark.parametrize("entry", [False, True], ids=["1e-9 every step", "1e-6 one entry"])
def test_chain_bound_still_catches_a_step_vjp_slightly_off(cell, entry, monkeypatch, rng):
    H, D, T = 5, 4, 8
    params = decay_measure.draw_params(cell, H, D, init="pytorch", rng=rng, scale=1.0)
    x, s0 = rng.standard_normal((T, D)), 0.5 * rng.standard_normal((1, cell.state_size(H)))
    check_sweep(cell, params, x, s0, rng)
    step_functions = ref._step_functions

    def off(c: ref.Cell) -> tuple:
        step, vjp = step_functions(c)

        def wrong(w: Any, g: np.ndarray, x_t: np.ndarray, s: np.ndarray) -> np.ndarray:
            result = np.array(vjp(w, g, x_t, s))
            if entry:
                result[..., 0] *= 1 + 1e-6
                return result
            return result * (1 + 1e-9)

        return step, wrong

    monkeypatch.setattr(ref, "_step_functions", off)
    with pytest.raises(NonConformance, match=r"tol\.fd"):
        check_sweep(cell, params, x, s0, rng)


@pytest.mark.spec("decay.gradient_norm")
@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_single_sweep_equals_one_backward_pass_per_length(cell, rng):
    H, T, S = 6, 40, 3
    params = ref.stack([decay_measure.draw_params(cell, H, H, init="pytorch", rng=rng, scale=1.5)
                        for _ in range(S)])
    traj = ref.run(cell, params, rng.standard_normal((S, T, H)))
    v = rng.standard_normal((S, H))
    sweep, naive = ref.gradient_norms(traj, v), ref.naive_gradient_norms(traj, v)
    # An exact 0 (every ReLU unit off) is representable; a subnormal or overflowed pass is not.
    in_range = np.isneginf(naive.log_g_state) | (np.abs(naive.log_g_state) < -math.log(
        np.finfo(F64).tiny))
    if not np.all(in_range):
        fail("decay.gradient_norm", "reference", "setup: the naive passes must stay in float64's "
             f"normal range, log g = {naive.log_g_state[~in_range][:3]}")
    n = cell.state_size(H)
    for what in ("log_g", "log_g_c", "log_g_state"):
        want = getattr(naive, what)
        if want is None:
            continue
        # Same arithmetic up to exact powers of two; only the norms (n-term sums, in different
        # orders) and the final logarithms round differently.
        bound = bounds.norm_roundings(want, n, rule=f"tol.accumulated(1, n = {n}) for the two norms")
        assert_close(getattr(sweep, what), want, bound, spec_id="decay.gradient_norm",
                     impl="reference", what=what, call=f"gradient_norms[{cell}] vs naive (T = {T})")


@pytest.mark.spec("decay.gradient_norm", "decay.linear_orthogonal")
def test_plain_backward_passes_leave_float64_where_the_log_space_sweep_stays_exact(rng):
    H, T = 4, 200
    s = np.array([2.0 ** -6, 2.0 ** 6])
    params = ref.stack([(np.eye(H), si * signed_permutation(H, rng), None, None) for si in s])
    # The Jacobians of a linear RNN do not depend on its inputs: x = 0 keeps the forward finite.
    traj = ref.run(ref.Cell("rnn", "linear"), params, np.zeros((2, T, H)))
    v = rng.uniform(0.5, 1.0, (2, H)) * rng.choice([-1.0, 1.0], (2, H))
    sweep, naive = ref.gradient_norms(traj, v), ref.naive_gradient_norms(traj, v)
    k = np.arange(T + 1)
    want = np.stack([decay_theory.orthogonal_log_norm(si, k) for si in s]) + ref.log_norms(v)[:, None]
    # A power of two times a signed permutation: every product is exact, only the logs round.
    bound = bounds.norm_roundings(want, H,
                                  rule=f"exact products; tol.accumulated(1, n = {H}) for the norms")
    assert_close(sweep.log_g, want, bound, spec_id="decay.gradient_norm", impl="reference",
                 what="log g", call=f"gradient_norms[rnn(linear)], W = 2^±6·P, T = {T}")
    if not (naive.log_g[0, -1] == -np.inf and naive.log_g[1, -1] == np.inf):
        fail("decay.gradient_norm", "reference",
             f"the plain passes should have left float64 at k = {T} (g = 2^±{6 * T}), but their "
             f"log g(T) are {naive.log_g[:, -1]} while the sweep's are {sweep.log_g[:, -1]}")


@pytest.mark.spec("decay.gradient_norm", "decay.linear_orthogonal")
@pytest.mark.parametrize("s", [0.2, 5.0])
def test_implementation_bptt_reproduces_seed_000s_powers_of_0_2_and_5(impl, s, rng):
    # A ReLU RNN in its positive orthant is linear: w_hh = s·P (P a permutation), inputs and
    # state positive, so ∂L/∂h_{T−k} = (s Pᵀ)^k v, and w_ih = I makes ∂x_t = ∂L/∂h_t.
    H, T = 3, 30
    w_ih, w_hh = np.eye(H), s * np.roll(np.eye(H), 1, axis=0)
    x, h0 = rng.uniform(0.5, 1.0, (T, 1, H)), rng.uniform(0.5, 1.0, (1, H))
    v = rng.uniform(0.5, 1.0, (1, H)) * rng.choice([-1.0, 1.0], (1, H))
    x, h0, w_ih, w_hh, v = (impl.cast(a) for a in (x, h0, w_ih, w_hh, v))
    args = ((np.zeros((T, 1, H)), v), x, h0, w_ih, w_hh, None, None, "relu")
    out = impl.outputs(impl.call("vjp_rnn_layer", *args), fn="vjp_rnn_layer",
                       names=("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"))
    dx = impl.array(out[0], fn="vjp_rnn_layer", what="dx", shape=(T, 1, H))
    dh0 = impl.array(out[1], fn="vjp_rnn_layer", what="dh0", shape=(1, H))
    got = np.linalg.norm(np.concatenate([dx[::-1, 0], dh0]), axis=1)
    traj = ref.run(ref.Cell("rnn", "relu"), ref.stack([(w_ih, w_hh, None, None)]),
                   np.swapaxes(x, 0, 1), h0)
    want = np.exp(ref.gradient_norms(traj, v).log_g[0])
    assert_close(got, want, bounds.relu_rnn_powers(want, T, H, dtype=impl.dtype),
                 spec_id="decay.gradient_norm", impl=impl, what="‖∂L/∂h_(T−k)‖ over k",
                 call=f"vjp_rnn_layer{describe_args(args)}")


# ---- decay.linear_orthogonal, decay.jacobian_norm, decay.rate -------------------------------------

def orthogonal_problem(rng: np.random.Generator, s: np.ndarray, H: int, T: int):
    """Linear RNNs with w_hh = s_i·Q_i, Q_i Haar-orthogonal, one draw per s_i; x = 0 (their
    Jacobians do not depend on the inputs). Returns the trajectory, v and ‖Q Qᵀ − I‖₂ per draw."""
    Qs = [decay_measure.haar_orthogonal(H, rng) for _ in s]
    params = ref.stack([(np.eye(H), si * Q, None, None) for si, Q in zip(s, Qs, strict=True)])
    traj = ref.run(ref.Cell("rnn", "linear"), params, np.zeros((len(s), T, H)))
    defect = np.array([np.linalg.norm(Q @ Q.T - np.eye(H), 2) for Q in Qs])
    return traj, rng.standard_normal((len(s), H)), defect


@pytest.mark.spec("decay.linear_orthogonal", "decay.jacobian_norm")
def test_linear_rnn_with_scaled_orthogonal_w_decays_exactly_as_s_to_the_k(rng):
    H, T = 16, 10_000
    s = np.array([0.2, 0.9, 1.1, 5.0])
    traj, v, defect = orthogonal_problem(rng, s, H, T)
    k = np.arange(T + 1)
    want = np.stack([decay_theory.orthogonal_log_norm(si, k) for si in s]) + ref.log_norms(v)[:, None]
    got = ref.gradient_norms(traj, v).log_g
    assert_close(got, want, bounds.linear_orthogonal(want, k, H, defect),
                 spec_id="decay.linear_orthogonal", impl="reference",
                 what="log g", call=f"gradient_norms[rnn(linear)], W = s·Q, s = {s}, H = {H}")
    # 0.2^T, 0.9^T ≈ 1e-458, 1.1^T ≈ 1e414 and 5^T lie outside float64: one plain pass of T
    # steps ends outside the normal range — 0, inf, or (for factors above 1/2, which round the
    # smallest subnormal back to itself) stuck on the subnormal floor — where the sweep is exact.
    plain = ref.naive_gradient_norms(traj, v, ks=[T]).log_g[:, 0]
    info = np.finfo(F64)
    outside = np.where(s < 1, plain < math.log(info.tiny), plain > math.log(info.max))
    if not np.all(outside):
        fail("decay.linear_orthogonal", "reference",
             f"a plain float64 pass over T = {T} steps should leave the normal range for s = {s}, "
             f"got log g = {plain}", call="naive_gradient_norms(ks=[T])")
    ks = np.array([0, 1, 10, 100, 1000, T])
    want_J = np.stack([decay_theory.orthogonal_log_norm(si, ks) for si in s])
    assert_close(ref.jacobian_norms(traj, ks), want_J,
                 bounds.linear_orthogonal_jacobian(want_J, ks, H, defect),
                 spec_id="decay.jacobian_norm", impl="reference", what="log‖∂h_T/∂h_(T−k)‖₂",
                 call=f"jacobian_norms[rnn(linear)], W = s·Q, k = {ks.tolist()}")


@pytest.mark.spec("decay.linear_orthogonal")
def test_seed_000s_scalar_example_0_2_and_5_to_the_30():
    s = np.array([0.2, 5.0])
    params = ref.stack([(np.ones((1, 1)), np.array([[si]]), None, None) for si in s])
    norms = ref.gradient_norms(ref.run(ref.Cell("rnn", "linear"), params, np.zeros((2, 30, 1))),
                               np.ones((2, 1)))
    log_ratio = norms.log_g[:, 30] - norms.log_g[:, 0]
    got = np.exp(log_ratio)
    want = np.array([2.0 ** 30 / 10.0 ** 30, 5.0 ** 30])  # 1.073741824e-21 and 931322574615478515625
    assert_close(got, want, bounds.seed_000_ratio(want), spec_id="decay.linear_orthogonal",
                 impl="reference", what="g(30)/g(0)",
                 call="gradient_norms[rnn(linear)], W = 0.2 and 5, T = 30")
    shown = [f"{g:.0e}" for g in got]
    if shown != ["1e-21", "9e+20"]:
        fail("decay.linear_orthogonal", "reference",
             f"seed 000 writes 0.2^30 ≈ 1×10⁻²¹ and 5^30 ≈ 9×10²⁰, the sweep gives {shown}")


@pytest.mark.spec("decay.rate", "decay.linear_orthogonal")
def test_rate_of_linear_rnn_with_scaled_orthogonal_w_is_ln_s(rng):
    H, T = 8, 2000
    s = np.array([0.5, 0.99, 1.01, 3.0])
    traj, v, defect = orthogonal_problem(rng, s, H, T)
    k = np.arange(T + 1)
    got = ref.rate(ref.gradient_norms(traj, v).log_g)
    want_log = np.stack([decay_theory.orthogonal_log_norm(si, k) for si in s]) + ref.log_norms(v)[:, None]
    assert_close(got.per_draw, np.log(s), bounds.orthogonal_rate(want_log, k, H, defect),
                 spec_id="decay.rate", impl="reference",
                 what="rate per draw", call=f"rate(log g), W = s·Q, s = {s}, T = {T}")


@pytest.mark.spec("decay.rate")
def test_rate_standard_error_describes_the_spread_between_independent_repetitions(rng):
    # G repetitions of S draws each: the between-repetition variance of the means over the mean
    # squared standard error is one-way ANOVA's F(G − 1, G(S − 1)) statistic when the standard
    # error std/√S is right; too small (large) standard errors make F too large (small).
    G, S = 10, 8
    rates = [decay_measure.measure(ref.Cell("rnn", "tanh"), hidden=16, length=300, draws=S,
                         seed=int(seed)).rate for seed in rng.integers(0, 2 ** 31, G)]
    means = np.array([r.mean for r in rates])
    se2 = np.array([r.standard_error for r in rates]) ** 2
    F = float(np.var(means, ddof=1) / np.mean(se2))
    p = 2 * min(sps.f.sf(F, G - 1, G * (S - 1)), sps.f.cdf(F, G - 1, G * (S - 1)))
    stats.require(p, spec_id="decay.rate", impl="reference",
                  claim="the standard error of the rate describes the spread between repetitions",
                  detail=f"F = {F:.3g} with ({G - 1}, {G * (S - 1)}) degrees of freedom; means "
                         f"{np.round(means, 4).tolist()}, mean SE {math.sqrt(np.mean(se2)):.4g}.")


def jordan_log_norm(a: float, b: float, k: np.ndarray) -> np.ndarray:
    """log σ_max([[a, b], [0, a]]^k) = log σ_max([[p, q], [0, p]]), p = a^k, q = k b a^(k−1):
    σ_max = (√(q² + 4p²) + |q|)/2, written as k ln a + log((√(r² + 4) + |r|)/2), r = q/p."""
    r = k * b / a
    return k * math.log(a) + np.log((np.sqrt(r * r + 4.0) + np.abs(r)) / 2.0)


@pytest.mark.spec("decay.jacobian_norm")
@pytest.mark.parametrize(("a", "b"), [(0.5, 4.0), (0.9, 0.5), (1.0, 2.0), (1.1, 0.5)])
def test_jacobian_norm_of_a_jordan_block_follows_its_closed_form(a, b, rng):
    H, T = 2, 3000
    P = signed_permutation(H, rng)
    W = P @ np.array([[a, b], [0.0, a]]) @ P.T
    traj = ref.run(ref.Cell("rnn", "linear"), ref.stack([(np.eye(H), W, None, None)]),
                   np.zeros((1, T, H)))
    k = np.arange(T + 1)
    want = jordan_log_norm(a, b, k)[None]
    assert_close(ref.jacobian_norms(traj), want, bounds.jordan_block(want, k),
                 spec_id="decay.jacobian_norm", impl="reference", what="log‖J_k‖₂",
                 call=f"jacobian_norms[rnn(linear)], W ~ [[{a}, {b}], [0, {a}]], T = {T}")


# ---- decay.pascanu_bound ---------------------------------------------------------------------

@st.composite
def elman_problems(draw: st.DrawFn) -> tuple:
    cell = ref.Cell("rnn", draw(st.sampled_from(sorted(ref.NONLINEARITIES))))
    H, D, T = draw(nst.sizes(max_size=5)), draw(nst.sizes(max_size=3)), draw(nst.sizes(max_size=12))
    params = (draw(nst.float_arrays((H, D))), draw(nst.float_arrays((H, H))),
              draw(nst.float_arrays((H,))), draw(nst.float_arrays((H,))))
    return cell, params, draw(nst.float_arrays((1, T, D)))


@pytest.mark.spec("decay.pascanu_bound", "decay.jacobian_norm")
@given(problem=elman_problems(), rng=nst.generators())
def test_measured_decay_never_exceeds_pascanus_bound(problem, rng):
    cell, params, x = problem
    W, T = params[1], x.shape[1]
    traj = ref.run(cell, ref.stack([params]), x)
    k = np.arange(T + 1)
    limit = decay_theory.pascanu_log_bound(W, cell.nonlinearity, k)
    norms = ref.gradient_norms(traj, rng.standard_normal((1, W.shape[0])))
    call = f"rnn({cell.nonlinearity}){describe_args((x, *params))}"
    rule = "(γσ_max)^k, allowance k·(SLOPE_ERROR + γ_H‖|W|‖/σ_max) + 2γ_H"
    if np.linalg.norm(W, 2) == 0:
        limit = np.where(k == 0, 0.0, -np.inf)
        allowance_v = allowance_J = np.zeros_like(limit)
    else:
        allowance_v = bounds.pascanu_log_allowance(W, k, limit, matrix=False)
        allowance_J = bounds.pascanu_log_allowance(W, k, limit, matrix=True)
    assert_at_most(ref.jacobian_norms(traj)[0], limit, allowance_J, spec_id="decay.pascanu_bound",
                   call=call, what="log‖J_k‖₂", rule=rule)
    assert_at_most(norms.log_g[0] - norms.log_g[0, 0], limit, allowance_v,
                   spec_id="decay.pascanu_bound", call=call, what="log g(k)/g(0)", rule=rule)


@pytest.mark.spec("decay.pascanu_bound")
@pytest.mark.parametrize("nonlinearity", ["linear", "tanh"])
def test_eigenvalue_bound_of_seed_001_is_exceeded_by_a_non_normal_w(nonlinearity, rng):
    W = np.array([[0.5, 4.0], [0.0, 0.5]])  # ρ = 0.5 < 1 < σ_max ≈ 4.06
    T = 60
    x = 1e-3 * rng.standard_normal((1, T, 2))
    traj = ref.run(ref.Cell("rnn", nonlinearity), ref.stack([(np.eye(2), W, None, None)]), x)
    k = np.arange(T + 1)
    got = ref.jacobian_norms(traj)[0]
    allowance = bounds.pascanu_log_allowance(W, k, got, matrix=True)
    call = f"jacobian_norms[rnn({nonlinearity})], W = [[0.5, 4], [0, 0.5]]"
    assert_at_most(got, decay_theory.pascanu_log_bound(W, nonlinearity, k), allowance,
                   spec_id="decay.pascanu_bound", call=call, what="log‖J_k‖₂", rule="(σ_max)^k")
    excess = got - decay_theory.eigenvalue_log_bound(W, nonlinearity, k)
    if not np.max(excess - allowance) > 0:
        fail("decay.pascanu_bound", "reference",
             "the spectral-radius 'bound' ρ(W)^k (decay.bug.eigenvalue_bound) should be exceeded "
             f"by this non-normal W, but the largest excess is {np.max(excess):.3g}", call=call)


@pytest.mark.spec("decay.pascanu_bound")
def test_linear_rnn_norm_lies_between_rho_to_the_k_and_its_eigenvector_condition_times_that(rng):
    # Seed 001's eigenvalue statement, made exact (Gelfand): ρ^k ≤ ‖W^k‖ = ‖VΛ^kV⁻¹‖ ≤ κ(V)ρ^k.
    H, T = 6, 500
    W = rng.standard_normal((H, H)) / math.sqrt(H)
    mu, V = np.linalg.eig(W)
    rho, kappa = float(np.max(np.abs(mu))), float(np.linalg.cond(V))
    traj = ref.run(ref.Cell("rnn", "linear"), ref.stack([(np.eye(H), W, None, None)]),
                   np.zeros((1, T, H)))
    k = np.arange(T + 1)
    got = ref.jacobian_norms(traj)[0]
    allowance = bounds.eigenvector_sandwich(W, k, got, rho, kappa)
    call = f"jacobian_norms[rnn(linear)], W ~ N(0, 1/H), H = {H}, ρ = {rho:.4f}, κ(V) = {kappa:.3g}"
    assert_at_most(got, k * math.log(rho) + math.log(kappa), allowance, spec_id="decay.pascanu_bound",
                   call=call, what="log‖W^k‖₂", rule="κ(V)·ρ^k")
    assert_at_most(k * math.log(rho), got, allowance, spec_id="decay.pascanu_bound", call=call,
                   what="k ln ρ", rule="ρ^k ≤ ‖W^k‖")


# ---- decay.lyapunov_qr -------------------------------------------------------------------------

@pytest.mark.spec("decay.lyapunov_qr", "decay.linear_orthogonal")
def test_every_lyapunov_exponent_of_scaled_orthogonal_w_is_ln_s(rng):
    H, T = 8, 1000
    s = np.array([0.2, 1.0, 3.0])
    traj, _, defect = orthogonal_problem(rng, s, H, T)
    got = ref.lyapunov_exponents(traj).exponents
    want = np.repeat(np.log(s)[:, None], H, axis=1)
    assert_close(got, want, bounds.lyapunov_orthogonal(want, H, T, defect),
                 spec_id="decay.lyapunov_qr", impl="reference",
                 what="λ_i", call=f"lyapunov_exponents[rnn(linear)], W = s·Q, s = {s}")


@pytest.mark.spec("decay.lyapunov_qr")
@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid"])
def test_lyapunov_exponents_sum_to_the_mean_log_determinant_of_the_step_jacobians(nonlinearity, rng):
    H, T = 6, 60
    cell = ref.Cell("rnn", nonlinearity)
    params = ref.stack([decay_measure.draw_params(cell, H, H, init="orthogonal", rng=rng, scale=1.2)])
    traj = ref.run(cell, params, 0.5 * rng.standard_normal((1, T, H)))
    w_ih, W, b_ih, b_hh = params.draw(0)
    # A_t = diag(φ'(a_t)) W, a_t from rnn's pre_activation: log|det A_t| = Σ_i log φ'(a_t,i) +
    # log|det W|, computed without the sweep.
    a = rnn_ref.pre_activation(traj.x[0], traj.states[0, :-1], *rnn_ref.params_from_torch(
        w_ih, W, b_ih, b_hh))
    slopes = ref.NONLINEARITIES[nonlinearity].phi_vjp(np.ones_like(a), a)[0]
    _, log_det_W = np.linalg.slogdet(W)
    want = np.mean(np.sum(np.log(slopes), axis=1) + log_det_W)
    got = float(np.sum(ref.lyapunov_exponents(traj).exponents))
    assert_close(got, want, bounds.lyapunov_sum(want, slopes, W, T),
                 spec_id="decay.lyapunov_qr", impl="reference", what="Σ λ_i",
                 call=f"lyapunov_exponents[rnn({nonlinearity})], H = {H}, T = {T}")


@pytest.mark.spec("decay.lyapunov_qr", "decay.rate")
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_rate_agrees_with_the_top_lyapunov_exponent_by_qr(kind):
    m = decay_measure.measure(ref.Cell(kind), hidden=12, length=600, draws=16, init="orthogonal",
                    seed=11, burn_in=100)
    top = ref.lyapunov_exponents(m.trajectory, count=1).top_curve
    # The QR exponent over the same window as the fitted rate: both estimate the same mean
    # increment of log‖·‖, so their per-draw differences have mean 0.
    window = (top[:, m.rate.k_max] - top[:, m.rate.k_min]) / (m.rate.k_max - m.rate.k_min)
    d = m.rate.per_draw - window
    p = sps.ttest_1samp(d, 0.0).pvalue
    stats.require(p, spec_id="decay.lyapunov_qr", impl="reference",
                  claim="the fitted rate equals the top Lyapunov exponent by QR",
                  detail=f"rate {m.rate.mean:.5f}, λ₁ {np.mean(window):.5f}, paired differences "
                         f"{np.mean(d):.3g} ± {np.std(d, ddof=1) / math.sqrt(d.size):.3g}.")


# ---- decay.mean_field_tanh ---------------------------------------------------------------------

@pytest.mark.spec("decay.mean_field_tanh")
def test_mean_field_fixed_point_and_quadrature_are_right():
    sigma_w, sigma_x, sigma_b = 1.5, 1.0, 0.3
    mf = decay_theory.mean_field_tanh(sigma_w, sigma_x, sigma_b)
    rhs = sigma_w ** 2 * decay_theory.gaussian_mean(lambda a: np.tanh(a) ** 2, mf.q_star) \
        + sigma_x ** 2 + sigma_b ** 2
    assert_close(rhs, mf.q_star, bounds.mean_field_fixed_point(mf.q_star),
                 spec_id="decay.mean_field_tanh", impl="reference", what="q*",
                 call="mean_field_tanh(1.5, 1.0, 0.3)")

    def integrand(z: float) -> float:
        a = math.sqrt(mf.q_star) * z
        return float(tanh_vjp(np.ones(1), np.array([a]))[0][0] ** 2 * sps.norm.pdf(z))

    value, error = integrate.quad(integrand, -np.inf, np.inf, epsabs=0.0, epsrel=1e-13)
    want = sigma_w ** 2 * value
    assert_close(mf.chi, want, bounds.mean_field_chi(mf.q_star, sigma_w, want, error),
                 spec_id="decay.mean_field_tanh", impl="reference",
                 what="χ", call="mean_field_tanh(1.5, 1.0, 0.3) vs scipy.integrate.quad")
    ordered = decay_theory.mean_field_tanh(0.8, 0.0)
    # No drive and σ_w < 1: q* = 0, tanh'(0) = 1, χ = σ_w², the rate of the linear network.
    assert_close(np.array([ordered.q_star, ordered.rate]), np.array([0.0, math.log(0.8)]),
                 bounds.mean_field_ordered(), spec_id="decay.mean_field_tanh",
                 impl="reference", what="(q*, rate)", call="mean_field_tanh(0.8, 0)")


def mean_field_agreement(H: int, sigma_w: float, sigma_x: float, draws: int, T: int,
                         rng: np.random.Generator) -> None:
    __tracebackhide__ = True
    burn = 50
    cell = ref.Cell("rnn", "tanh")
    params = decay_theory.gaussian_tanh_params(H, sigma_w, draws, rng)
    traj = ref.run(cell, params, sigma_x * rng.standard_normal((draws, T, H)))
    r = ref.rate(ref.gradient_norms(traj, rng.standard_normal((draws, H))).log_g,
                 k_min=burn, k_max=T - burn)
    mf = decay_theory.mean_field_tanh(sigma_w, sigma_x, hidden=H)
    predicted, allowance = mf.rate + mf.finite_size, abs(mf.finite_size)
    t = (abs(r.mean - predicted) - allowance) / r.standard_error
    stats.require(float(sps.t.sf(t, draws - 1)), spec_id="decay.mean_field_tanh", impl="reference",
                  claim=f"the tanh RNN's rate is within the finite-size allowance of ½ ln χ "
                        f"(H = {H}, σ_w = {sigma_w}, σ_x = {sigma_x})",
                  detail=f"measured {r.mean:.5f} ± {r.standard_error:.5f} over {draws} draws; "
                         f"½ ln χ = {mf.rate:.5f}, with the 1/H term {predicted:.5f}, "
                         f"allowance ±{allowance:.5f}.")


@pytest.mark.spec("decay.mean_field_tanh", "decay.rate")
def test_tanh_rnn_rate_matches_mean_field_at_large_hidden_size(rng):
    mean_field_agreement(256, 2.0, 1.0, draws=16, T=400, rng=rng)


@pytest.mark.slow
@pytest.mark.spec("decay.mean_field_tanh", "decay.rate")
@pytest.mark.parametrize(("H", "draws"), [(512, 16), (1024, 8)])
@pytest.mark.parametrize("sigma_w", [1.2, 2.0, 3.0])
def test_tanh_rnn_rate_matches_mean_field_at_larger_hidden_sizes(H, draws, sigma_w, rng):
    mean_field_agreement(H, sigma_w, 1.0, draws=draws, T=400, rng=rng)


# ---- decay.saturated_gates ---------------------------------------------------------------------

BIASES = np.array([-1.0, 0.0, 2.0, 40.0])  # σ(40) rounds to 1: the saturated gate


@pytest.mark.spec("decay.saturated_gates", "decay.jacobian_norm")
def test_lstm_forget_gate_at_1_carries_the_gradient_through_c_without_decay(rng):
    H, D, T = 4, 3, 300
    draws = []
    for b_f in BIASES:
        w_ih, w_hh, b_ih, b_hh = decay_measure.draw_params(ref.Cell("lstm"), H, D, init="pytorch", rng=rng)
        w_ih[H:2 * H] = 0.0  # f = σ(b_f) whatever the input
        b_ih[H:2 * H], b_hh[H:2 * H] = b_f, 0.0
        draws.append((w_ih, np.zeros_like(w_hh), b_ih, b_hh))  # h does not feed the gates
    params = ref.stack(draws)
    traj = ref.run(ref.Cell("lstm"), params, rng.standard_normal((len(BIASES), T, D)))
    norms = ref.gradient_norms(traj, rng.standard_normal((len(BIASES), H)))
    k = np.arange(1, T + 1)
    call = f"gradient_norms[lstm], w_hh = 0, b_f = {BIASES.tolist()}"
    if not np.all(np.isneginf(norms.log_g[:, 1:])):
        fail("decay.saturated_gates", "reference",
             "with w_hh = 0, h_(T−k) cannot reach h_T, so ∂L/∂h_(T−k) must be exactly 0 for k ≥ 1",
             call=call)
    want = np.stack([decay_theory.carried_log_norm(b, k - 1) for b in BIASES]) + norms.log_g_c[:, 1:2]
    assert_close(norms.log_g_c[:, 1:], want, bounds.carried_bound(want, k - 1, H),
                 spec_id="decay.saturated_gates", impl="reference", what="log‖∂L/∂c_(T−k)‖",
                 call=call)
    # ∂h_T/∂(h, c)_(T−k) = [0, diag(o_T ⊙ tanh'(c_T)) f^k]: its norm is f^k·max|o_T tanh'(c_T)|.
    ks = np.array([1, 10, T])
    want_J = []
    for s in range(len(BIASES)):
        o_T = lstm_gates(traj.x[s, -1:], traj.states[s, -2:-1, :H], lstm_params(*params.draw(s))).O
        c_T = traj.states[s, -1:, H:]
        peak = np.max(np.abs(o_T * tanh_vjp(np.ones_like(c_T), c_T)[0]))
        want_J.append(decay_theory.carried_log_norm(BIASES[s], ks) + math.log(peak))
    want_J = np.stack(want_J)
    assert_close(ref.jacobian_norms(traj, ks), want_J, bounds.lstm_carried_jacobian(want_J, ks, H),
                 spec_id="decay.jacobian_norm", impl="reference", what="log‖J_k‖₂",
                 call=call.replace("gradient", "jacobian"))


@pytest.mark.spec("decay.saturated_gates", "decay.jacobian_norm")
def test_gru_update_gate_at_1_copies_the_gradient_without_decay(rng):
    H, D, T = 4, 3, 300
    draws = []
    for b_z in BIASES:
        w_ih, w_hh, b_ih, b_hh = decay_measure.draw_params(ref.Cell("gru"), H, D, init="pytorch", rng=rng)
        w_ih[H:2 * H] = 0.0  # z = σ(b_z) whatever the input
        b_ih[H:2 * H], b_hh[H:2 * H] = b_z, 0.0
        draws.append((w_ih, np.zeros_like(w_hh), b_ih, b_hh))
    traj = ref.run(ref.Cell("gru"), ref.stack(draws), rng.standard_normal((len(BIASES), T, D)))
    norms = ref.gradient_norms(traj, rng.standard_normal((len(BIASES), H)))
    k = np.arange(T + 1)
    want = np.stack([decay_theory.carried_log_norm(b, k) for b in BIASES]) + norms.log_g[:, :1]
    call = f"gradient_norms[gru], w_hh = 0, b_z = {BIASES.tolist()}"
    assert_close(norms.log_g, want, bounds.carried_bound(want, k, H), spec_id="decay.saturated_gates",
                 impl="reference", what="log g(k)", call=call)
    ks = np.array([0, 1, 10, T])
    want_J = np.stack([decay_theory.carried_log_norm(b, ks) for b in BIASES])
    assert_close(ref.jacobian_norms(traj, ks), want_J, bounds.carried_bound(want_J, ks + 1, H),
                 spec_id="decay.jacobian_norm", impl="reference", what="log‖J_k‖₂",
                 call=call.replace("gradient", "jacobian"))


# ---- arguments ----------------------------------------------------------------------------------

@pytest.mark.spec("decay.gradient_norm")
@pytest.mark.parametrize(("call", "message"), [
    (lambda: ref.Cell("lstm", "relu"), "rnn cell only"),
    (lambda: ref.Cell("transformer"), "transformer"),
    (lambda: ref.rate(np.zeros((2, 5)), k_min=3, k_max=3), "k_min = 3"),
    (lambda: decay_theory.mean_field_tanh(-1.0, 1.0), "sigma_w = -1.0"),
    (lambda: decay_theory.orthogonal_log_norm(0.0, 3), "s = 0.0"),
    (lambda: decay_measure.draw_params(ref.Cell("gru"), 4, 4, init="he", rng=np.random.default_rng(0)),
     "init = 'he'"),
    (lambda: ref.run(ref.Cell("rnn"), ref.stack([(np.eye(2), np.eye(2), None, None)]),
                     np.zeros((1, 3, 5))), "x must have shape (1, T ≥ 1, 2)"),
])
def test_reference_rejects_bad_arguments_naming_them(call, message):
    with pytest.raises(ValueError, match=None) as info:
        call()
    if message not in str(info.value):
        fail("decay.gradient_norm", "reference",
             f"the error message {str(info.value)!r} should name {message!r}")
