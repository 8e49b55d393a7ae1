"""The bounds spec/decay.md derives for the log-space decay measurement (reference, float64).

Log values (log g, log‖J_k‖₂, rates, Lyapunov exponents) carry the rounding accumulated over the
steps of a sweep plus the few roundings of the final logarithms; allowances bound how far rounding
may lift a computed norm above a theoretical bound. checks/test_decay.py uses these and writes none
of its own.
"""

from __future__ import annotations

import math

import numpy as np

from nnspec.checks.bounds import engine as E
from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.bounds import rnn as rnn_bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds.engine import Computed, exact
from nnspec.checks.harness.gradients import FD_ESTIMATE_FACTOR
from nnspec.reference import decay_theory
from nnspec.reference.activations import sigmoid, tanh_vjp

F64 = np.dtype(np.float64)
U64 = tol.unit_roundoff(F64)
#: Relative error of one computed φ'(a) and its product with the cotangent: two library functions
#: (the sigmoid's σ(a)·σ(−a)) under the elementwise rule and three products (spec/decay.md).
SLOPE_ERROR = (2 * tol.ELEMENTWISE_ULPS + 3) * U64


def log_bound(want: np.ndarray, carried: np.ndarray, rule: str) -> tol.Bound:
    """A bound on a computed log value: ``carried`` (the rounding carried through the steps, per
    element) plus the few roundings of evaluating E·ln 2 + log‖ṽ‖ on both sides, which the
    elementwise rule covers with scale |want| + 1 (spec/decay.md)."""
    finite = np.where(np.isfinite(want), want, 0.0)
    return (tol.Bound(np.broadcast_to(carried, np.shape(want)).astype(float), rule, U64)
            + tol.elementwise(finite, F64, scale=np.abs(finite) + 1.0))


def norm_roundings(want: np.ndarray, n: int, *, rule: str) -> tol.Bound:
    """decay.gradient_norm, two computations of the same log norms whose products agree exactly
    (up to powers of two): only the n-term norms, tol.accumulated(1, n), and the logs differ."""
    return log_bound(want, tol.accumulated(np.ones_like(want), n, F64).atol, rule)


def relu_rnn_powers(want: np.ndarray, T: int, H: int, *, dtype: np.dtype) -> tol.Bound:
    """decay.gradient_norm, ‖∂L/∂h_(T−k)‖ of a positive-orthant ReLU RNN with w_hh = s·P: each
    entry is v_i times k rounded products by s (relu' = 1 and the zero terms are exact), in the
    implementation and in the reference, then two H-term norms: tol.accumulated over 2T + 2H + 4."""
    return tol.accumulated(want, 2 * T + 2 * H + 4, dtype)


def orthogonal_carried(k: np.ndarray, H: int, defect: np.ndarray, *, matrix: bool) -> np.ndarray:
    """Rounding carried over k steps of ‖·s Q‖ (spec/decay.md, decay.linear_orthogonal): per
    step ‖QQᵀ − I‖/2 plus (γ_{H+1} + 4u) times ‖|W|‖₂/s ≤ √H (a vector) or H (a matrix), plus
    the norms' own γ_H (a vector's two norms; for a matrix the SVD's, p(H) = H)."""
    per_step = defect[:, None] / 2 + tol.accumulated(H if matrix else math.sqrt(H), H + 1,
                                                     F64).atol
    return k * per_step + tol.gamma(H, F64)


def linear_orthogonal(want: np.ndarray, k: np.ndarray, H: int, defect: np.ndarray) -> tol.Bound:
    """decay.linear_orthogonal, log g(k) of w_hh = s·Q: orthogonal_carried for a vector and the
    final logs."""
    return log_bound(want, orthogonal_carried(k, H, defect, matrix=False),
                     "k·(‖QQᵀ−I‖/2 + (γ_(H+1)+4u)√H) + γ_H")


def linear_orthogonal_jacobian(want: np.ndarray, k: np.ndarray, H: int,
                               defect: np.ndarray) -> tol.Bound:
    """decay.jacobian_norm, log‖∂h_T/∂h_(T−k)‖₂ of w_hh = s·Q: orthogonal_carried for a matrix and
    the final logs."""
    return log_bound(want, orthogonal_carried(k, H, defect, matrix=True),
                     "k·(‖QQᵀ−I‖/2 + (γ_(H+1)+4u)H) + γ_H")


def seed_000_ratio(want: np.ndarray) -> tol.Bound:
    """decay.linear_orthogonal, g(30)/g(0) for the scalars 0.2 and 5: fl(0.2) and 30 rounded
    products (Lemma 3.1: γ_31), then logs of size |ln want| and exp."""
    return (tol.accumulated(want, 31, F64)
            + tol.elementwise(want, F64, scale=want * (2 * np.abs(np.log(want)) + 2)))


def orthogonal_rate(want_log: np.ndarray, k: np.ndarray, H: int, defect: np.ndarray) -> tol.Bound:
    """decay.rate of w_hh = s·Q: a least-squares slope moves by at most Σ|k − k̄|·b_k / Σ(k − k̄)²
    when each point moves by at most b_k, the bound of linear_orthogonal."""
    b = log_bound(want_log, orthogonal_carried(k, H, defect, matrix=False), "").atol
    dk = k - k.mean()
    return tol.Bound(b @ np.abs(dk) / (dk @ dk),
                     "Σ|k−k̄|·b_k/Σ(k−k̄)² with b_k of decay.linear_orthogonal", U64)


def jordan_block(want: np.ndarray, k: np.ndarray) -> tol.Bound:
    """decay.jacobian_norm of a 2×2 Jordan block (up to a signed permutation): |W^k| = W^k up to
    signs and no sum cancels, so each entry of the product carries γ_(2k) (Lemma 3.1), which
    moves σ_max of a non-negative matrix by the same factor; the SVD adds γ_2."""
    return log_bound(want, tol.gamma(2, F64) * (2 * k + 1), "γ_2 per step and for the SVD")


def pascanu_allowance(W: np.ndarray, k: np.ndarray, *, matrix: bool) -> np.ndarray:
    """The rounding that may lift a computed ‖J_k‖ above (γσ_max)^k, in log (spec/decay.md):
    k·(SLOPE_ERROR + γ_H·‖|W|‖₂/σ_max·(√H for a matrix)) + γ_H (norms or SVD)."""
    H = W.shape[0]
    ratio = np.linalg.norm(np.abs(W), 2) / np.linalg.norm(W, 2)
    return k * (SLOPE_ERROR + tol.gamma(H, F64) * ratio * (math.sqrt(H) if matrix else 1.0)) \
        + 2 * tol.gamma(H, F64)


def pascanu_log_allowance(W: np.ndarray, k: np.ndarray, at: np.ndarray, *,
                          matrix: bool) -> np.ndarray:
    """decay.pascanu_bound: pascanu_allowance plus the elementwise rounding of the logs compared,
    16u·(|at| + 1) for log values of size |at|."""
    return pascanu_allowance(W, k, matrix=matrix) + 16 * U64 * (np.abs(at) + 1)


def eigenvector_sandwich(W: np.ndarray, k: np.ndarray, got: np.ndarray, rho: float,
                         kappa: float) -> np.ndarray:
    """decay.pascanu_bound, ρ^k ≤ ‖W^k‖₂ ≤ κ(V)ρ^k in log: first order, each step's error
    ‖E‖ ≤ γ_H√H‖|W|‖ reaches ‖W^k‖ through ‖W^a‖‖W^b‖/‖W^(a+b)‖, at most κ(V)² on this sandwich;
    plus the norms' γ_H and the logs' 16u·(|got| + 1)."""
    H = W.shape[0]
    return (k * tol.gamma(H, F64) * math.sqrt(H) * np.linalg.norm(np.abs(W), 2) * kappa ** 2
            / rho + tol.gamma(H, F64) + 16 * U64 * (np.abs(got) + 1))


def lyapunov_orthogonal(want: np.ndarray, H: int, T: int, defect: np.ndarray) -> tol.Bound:
    """decay.lyapunov_qr of w_hh = s·Q: per step as decay.linear_orthogonal's matrix sweep, plus
    Householder QR's column-wise backward error γ_(H²) (Higham, Theorem 19.4, constant taken as
    1); averaged over T steps; the mean of T logs adds the T-term sum's own rounding,
    tol.accumulated(|λ|, T)."""
    per_step = orthogonal_carried(np.ones(1), H, defect, matrix=True)[:, :1] + tol.gamma(H * H, F64)
    return tol.Bound(np.broadcast_to(per_step, want.shape).copy(), "per-step rounding", U64) \
        + tol.accumulated(want, T, F64) + tol.elementwise(want, F64)


def lyapunov_sum(want: float, slopes: np.ndarray, W: np.ndarray, T: int) -> tol.Bound:
    """decay.lyapunov_qr, Σ λ_i against the mean log|det A_t|, A_t = diag(φ'(a_t)) W: first order,
    log|det| moves by |tr(Z⁻¹ΔZ)| ≤ √H‖ΔZ‖_F/σ_min(A_t) per step, with the product's γ_H‖|D||W|‖
    and the slope error, plus Householder QR's γ_(H²)‖Z‖ (Theorem 19.4); then the T·H-term mean
    of logs and the final rounding."""
    H = W.shape[0]
    A = slopes[:, :, None] * W[None]
    sigma = np.linalg.svd(A, compute_uv=False)
    abs_prod = np.linalg.norm(np.abs(A), "fro", axis=(1, 2))
    dZ = (tol.gamma(H, F64) * abs_prod
          + (tol.gamma(H * H, F64) + SLOPE_ERROR) * math.sqrt(H) * sigma[:, 0])
    carried = np.mean(math.sqrt(H) * dZ / sigma[:, -1] + H * tol.gamma(H * H, F64)) \
        + H * SLOPE_ERROR + tol.gamma(3 * H, F64) * np.linalg.cond(W)
    return tol.Bound(np.array(carried), "first-order det perturbation, spec/decay.md", U64) \
        + tol.accumulated(np.abs(want) + H * np.max(np.abs(np.log(sigma))), T * H, F64) \
        + tol.elementwise(want, F64, scale=1.0)


def mean_field_fixed_point(q_star: float) -> tol.Bound:
    """decay.mean_field_tanh, q* against the right-hand side of its fixed-point equation: the
    iteration stops when a step moves q by ≤ 1e-15·q (mean_field_tanh's rule), plus one rounding."""
    return (tol.Bound(np.array(1e-15 * q_star), "stopping rule", U64)
            + tol.elementwise(q_star, F64))


def mean_field_chi(q_star: float, sigma_w: float, want: float, quad_error: float) -> tol.Bound:
    """decay.mean_field_tanh, χ = σ_w²·E[tanh'(√q* z)²] against scipy's quad: Gauss–Hermite
    converges geometrically, so the 201-point rule is off by less than its difference from the
    101-point rule; quad's own error estimate counts FD_ESTIMATE_FACTOR times (as in tol.fd)."""
    slope2 = lambda a: tanh_vjp(np.ones_like(a), a)[0] ** 2  # noqa: E731
    coarse = abs(decay_theory.gaussian_mean(slope2, q_star, 201)
                 - decay_theory.gaussian_mean(slope2, q_star, 101))
    return (tol.Bound(np.array(sigma_w ** 2 * (coarse + FD_ESTIMATE_FACTOR * quad_error)),
                      "|GH₂₀₁ − GH₁₀₁| + 10 × quad's error estimate", U64)
            + tol.elementwise(want, F64))


def mean_field_ordered() -> tol.Bound:
    """decay.mean_field_tanh, (q*, rate) = (0, ln σ_w) with no drive and σ_w < 1: the iteration's
    and the log's roundings, tol.accumulated over 201 terms of sizes (0, 1)."""
    return tol.accumulated(np.array([0.0, 1.0]), 201, F64)


def carried_bound(want: np.ndarray, steps: np.ndarray, H: int) -> tol.Bound:
    """decay.saturated_gates: steps products by a computed σ(b) (one rounding each, and σ's own
    elementwise error on each side), and the norms' γ_H."""
    return log_bound(want, steps * (tol.gamma(1, F64) + 2 * tol.ELEMENTWISE_ULPS * U64)
                     + tol.gamma(H, F64), "k·(γ_1 + 2·16u) + γ_H")


def lstm_carried_jacobian(want: np.ndarray, ks: np.ndarray, H: int) -> tol.Bound:
    """decay.jacobian_norm of the LSTM with a constant forget gate: carried_bound over k + 2
    products on the 2H-dimensional state, plus the rounding of log(max|o_T tanh'(c_T)|)."""
    return carried_bound(want, ks + 2, 2 * H) + tol.elementwise(want, F64, scale=1.0)




# ---- tol.fd along the sweep: the reference's own VJP steps, with its accurate slopes ---------------

def _smooth(a: Computed, value: np.ndarray, slope_max: np.ndarray) -> Computed:
    """f(a) by a relatively accurate library function (the reference's σ, np.tanh): the input's
    error times max|f'| on the reachable interval, plus tol.elementwise relative to |f|."""
    return Computed(value, slope_max * a.error + tol.elementwise(value, F64).atol)


def _reach(a: Computed) -> np.ndarray:
    return np.maximum(np.abs(a.value) - a.error, 0.0)


def _sigmoid(a: Computed) -> Computed:
    e = np.exp(-_reach(a))
    return _smooth(a, sigmoid(a.value), e / (1 + e) ** 2)


def _tanh(a: Computed) -> Computed:
    e = np.exp(-2 * _reach(a))
    return _smooth(a, np.tanh(a.value), 4 * e / (1 + e) ** 2)


def _slope(a: Computed, value: np.ndarray, curvature: float) -> Computed:
    """φ'(a) as the reference forms it, relatively accurate (σ(a)σ(−a), 4e/(1 + e)²): SLOPE_ERROR,
    plus the input's error δa moving it by a factor e^(κ·δa) at most, κ = max|φ''/φ'| (1 for σ,
    2 for tanh)."""
    with np.errstate(over="ignore"):
        return Computed(value, (np.expm1(curvature * a.error) + SLOPE_ERROR) * value)


def _sigmoid_slope(a: Computed) -> Computed:
    return _slope(a, sigmoid(a.value) * sigmoid(-a.value), 1.0)


def _tanh_slope(a: Computed) -> Computed:
    return _slope(a, tanh_vjp(np.ones_like(a.value), a.value)[0], 2.0)


def _state_vjp(kind: str, nonlinearity: str, g: tuple[Computed, ...], x_t: Computed,
               s: tuple[Computed, ...], params: tuple[np.ndarray, ...]) -> tuple[Computed, ...]:
    """One step of the sweep, A_tᵀ g, as reference/decay.py evaluates it from (x_t, s_{t−1}),
    stated in the engine's rules (tol.accumulated on every sum and product)."""
    w_ih, w_hh, b_ih, b_hh = params
    H = w_hh.shape[1]

    def times(*factors: Computed) -> Computed:
        return E.product(*factors, dtype=F64)

    def plus(*terms: Computed) -> Computed:
        return E.total(*terms, dtype=F64)

    if kind == "rnn":
        a = E.affine([(x_t, w_ih), (s[0], w_hh)], [b_ih, b_hh], F64)
        if nonlinearity == "relu":
            g_a = E.relu_vjp(g[0], a)
        elif nonlinearity == "linear":
            g_a = g[0]
        else:
            g_a = times(g[0], _tanh_slope(a) if nonlinearity == "tanh" else _sigmoid_slope(a))
        return (E.matmul(g_a, w_hh, F64),)
    if kind == "gru":
        (h,), (gh,) = s, g
        i = E.affine([(x_t, w_ih)], [b_ih], F64)
        hh = E.affine([(h, w_hh)], [b_hh], F64)
        a_r, a_z = plus(E.block(i, 0, H), E.block(hh, 0, H)), plus(E.block(i, 1, H), E.block(hh, 1, H))
        r, z, h_n = _sigmoid(a_r), _sigmoid(a_z), E.block(hh, 2, H)
        a_n = plus(E.block(i, 2, H), times(r, h_n))
        da_n = times(gh, E.one_minus(z, F64), _tanh_slope(a_n))
        da_z = times(gh, plus(h, E.negate(_tanh(a_n))), _sigmoid_slope(a_z))
        da_r = times(da_n, h_n, _sigmoid_slope(a_r))
        return (plus(times(gh, z), E.matmul(E.concatenate([da_r, da_z, times(da_n, r)]), w_hh,
                                             F64)),)
    (h, c), (g_h, g_c) = s, g
    A = E.affine([(x_t, w_ih), (h, w_hh)], [b_ih, b_hh], F64)
    A_i, A_f, A_g, A_o = (E.block(A, k, H) for k in range(4))
    i, f, gg = _sigmoid(A_i), _sigmoid(A_f), _tanh(A_g)
    c_new = plus(times(f, c), times(i, gg))
    dc_new = plus(times(g_h, _sigmoid(A_o), _tanh_slope(c_new)), g_c)
    dA = E.concatenate([times(dc_new, gg, _sigmoid_slope(A_i)), times(dc_new, c, _sigmoid_slope(A_f)),
                        times(dc_new, i, _tanh_slope(A_g)),
                        times(g_h, _tanh(c_new), _sigmoid_slope(A_o))])
    return E.matmul(dA, w_hh, F64), times(dc_new, f)


def sweep_rounding(cell_kind: str, nonlinearity: str, x: np.ndarray, states: np.ndarray,
                   params: tuple[np.ndarray, ...], gh: np.ndarray) -> tuple[np.ndarray, ...]:
    """decay.gradient_norm, tol.fd along a chain (spec/tolerances.md): a bound on the float64
    rounding of the sweep's ∂⟨gh, h_T⟩/∂s_0 → (∂h_0,) or (∂h_0, ∂c_0).

    The sweep evaluates step t's VJP at the stored states s_{t−1} (T + 1, n) and x_t (T, D); the
    states carry only their rounding u·|s| (no error carried forward through time: the sweep
    never runs the recurrence), and the cotangent's error is carried backward step by step
    through the steps of :func:`_state_vjp`. Saturated units' 1 − z and h − n, which err
    absolutely, are what makes this exceed γ_n·Σ|g||d|."""
    H = params[1].shape[1]
    g: tuple[Computed, ...] = (exact(gh),)
    if cell_kind == "lstm":
        g = (exact(gh), exact(np.zeros_like(gh)))
    for t in range(x.shape[0], 0, -1):
        s = states[t - 1:t]
        parts = (s[:, :H], s[:, H:]) if cell_kind == "lstm" else (s,)
        g = _state_vjp(cell_kind, nonlinearity, g, exact(x[t - 1:t]),
                       tuple(Computed(p, U64 * np.abs(p)) for p in parts), params)
    return tuple(c.error for c in g)

def run_states(cell_kind: str, nonlinearity: str, x: np.ndarray, s0: np.ndarray,
               params: tuple[np.ndarray, ...]) -> tuple[tol.Bound, ...]:
    """decay.gradient_norm, the forward run that stores the states: the engine's float64 bounds
    on h_1 … h_T (T, 1, H) and, for the LSTM, c_T (1, H) — the layer bounds of the cells
    (checks/bounds/rnn.py, gru.py, lstm.py) over x (T, D) from s0 (1, n)."""
    w_ih, w_hh, b_ih, b_hh = params
    H, xs = w_hh.shape[1], x[:, None, :]
    if cell_kind == "lstm":
        y, _, c_T = lstm_bounds.lstm_layer(xs, s0[:, :H], s0[:, H:], w_ih, w_hh, b_ih, b_hh,
                                           dtype=F64)
        return y, c_T
    if cell_kind == "gru":
        return (gru_bounds.gru_layer(xs, s0, w_ih, w_hh, b_ih, b_hh, dtype=F64)[0],)
    return (rnn_bounds.rnn_layer(xs, s0, w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype=F64)[0],)
