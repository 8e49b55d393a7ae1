"""Evidence for the recurrent layers' bounds at production scale (issue 11; spec/tolerances.md,
"Bounds at production scale"): how tight the bound of ``lstm_layer`` and ``gru_layer``
(checks/bounds/propagation.py: min(running worst case, λ·(u + u₆₄)·√V)) is against real errors,
and whether it catches operands of reduced precision.

Inputs: x ~ N(0, 1), weights and biases U(±1/√H), zero initial state, rounded to float32 for the
float32 runs; torch single-threaded on the CPU. Per layer and size it measures

- the bound on y: every element finite?, its median, and the median |error| of torch's
  nn.LSTM / nn.GRU (float32 and float64) against the float64 reference, their ratio, and the
  largest error/bound — the bound holds where that is ≤ 1;
- a float32 layer whose matmul operands (x, h, W) are rounded first to TF32 (11 significant
  bits) or bfloat16 (8), emulated in torch on the CPU: the share of elements over the bound and
  the median error/bound; the same emulation without rounding is the control, inside the bound;
- float64 against an x87 long-double evaluation (u = 2⁻⁶⁴) taken as exact, where both torch's
  and the reference's own errors are seen;
- the bound with ``LIBRARY_ULPS`` = 1 instead of 8: what the 4-ulp allowance for σ and tanh costs;
- the variance model: V of the diagonal propagation (chosen) and of Minkowski's rule inside the
  cell against the exact V of the same linear model, estimated with K random-sign tangents;
- a long memory (a forget or update gate's bias raised): the bound as shipped — the diagonal
  model and the coherent subspace of checks/bounds/coherence.py — against torch's error, against
  the diagonal model alone, and against the exact V.

Run ``python -m nnspec.bench.bound_evidence [--sizes T,B,H ...] [--out reports/bounds_at_scale.md]``;
the T = 1000, H = 512 rows take most of the time (minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import numpy as np
import torch

from nnspec.bench.timing import interleaved, one_thread
from nnspec.checks.bounds import coherence as C
from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.bounds import propagation as P
from nnspec.checks.harness import significand
from nnspec.checks.harness.implementation import ImplementationUnavailable, load
from nnspec.reference import gru as gru_ref
from nnspec.reference import lstm as lstm_ref
from nnspec.reference.activations import sigmoid

SIZES = ((100, 4, 128), (300, 4, 256), (1000, 8, 512))
#: The float64 comparison against long double runs NumPy's non-BLAS long-double matmul: small only.
LONG_DOUBLE_SIZE = (100, 4, 128)
#: (T, B, H, K): the variance model against K random-sign tangents; √V's estimate has relative
#: standard error ≈ 1/√(2K).
VARIANCE_SIZES = ((100, 4, 32, 2000), (100, 4, 128, 500))
KINDS = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}

Rounding = Callable[[torch.Tensor], torch.Tensor]


class Case(NamedTuple):
    """One layer's inputs in nn.LSTM / nn.GRU's layout (x: (T, B, H), weights (G·H, H), (G·H,))."""

    x: np.ndarray
    h0: np.ndarray
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def case(kind: str, T: int, B: int, H: int, dtype: type, seed: int = 0) -> Case:
    """x ~ N(0, 1), w_ih, w_hh, b_ih, b_hh ~ U(±1/√H), h0 = c0 = 0, all representable in ``dtype``
    (held in float64)."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    G = GATES[kind]

    def rounded(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype).astype(np.float64)

    x = rounded(rng.standard_normal((T, B, H)))
    w_ih, w_hh, b_ih, b_hh = (rounded(rng.uniform(-s, s, shape))
                              for shape in ((G * H, H), (G * H, H), (G * H,), (G * H,)))
    return Case(x, np.zeros((B, H)), (w_ih, w_hh, b_ih, b_hh))


def reference(kind: str, c: Case) -> np.ndarray:
    """y of the float64 reference (reference/lstm.py, reference/gru.py)."""
    if kind == "lstm":
        return lstm_ref.lstm_layer(c.x, c.h0, c.h0, *c.weights)[0]
    return gru_ref.gru_layer(c.x, c.h0, *c.weights)[0]


def bound(kind: str, c: Case, dtype: type) -> np.ndarray:
    """The bound on |y − reference y| of a ``dtype`` implementation (checks/bounds)."""
    if kind == "lstm":
        return lstm_bounds.lstm_layer(c.x, c.h0, c.h0, *c.weights, dtype=dtype)[0].atol
    return gru_bounds.gru_layer(c.x, c.h0, *c.weights, dtype=dtype)[0].atol


def torch_layer(kind: str, c: Case, dtype: torch.dtype) -> np.ndarray:
    """y of torch's nn.LSTM / nn.GRU in ``dtype`` on the CPU."""
    H = c.x.shape[2]
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(H, H).to(dtype)
    with torch.no_grad():
        for name, a in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), c.weights,
                           strict=True):
            getattr(module, name).copy_(torch.tensor(a))
        h0 = torch.tensor(c.h0, dtype=dtype)[None]
        y, _ = module(torch.tensor(c.x, dtype=dtype), (h0, h0.clone()) if kind == "lstm" else h0)
    return y.double().numpy()


def tf32(a: torch.Tensor) -> torch.Tensor:
    """float32 → TF32 (11 significant bits), to nearest even, back in float32."""
    return torch.from_numpy(significand.rounded(a.detach().numpy(), significand.BITS["TF32"]))


def bfloat16(a: torch.Tensor) -> torch.Tensor:
    """float32 → bfloat16 (8 significant bits), to nearest even, back in float32."""
    return torch.from_numpy(significand.rounded(a.detach().numpy(), significand.BITS["bfloat16"]))


def unrounded(a: torch.Tensor) -> torch.Tensor:
    """The emulation's control: float32 operands as they are."""
    return a


ROUNDINGS: dict[str, Rounding] = {"float32 (control)": unrounded, "TF32 operands": tf32,
                                  "bf16 operands": bfloat16}


def emulated(kind: str, c: Case, rnd: Rounding) -> np.ndarray:
    """y of a float32 layer whose matmul operands are rounded by ``rnd`` first, as tensor cores
    do: the input projection for all steps in one GEMM, then per step the recurrent GEMM and the
    gates in float32 (PyTorch's gate order and GRU cell)."""
    x = torch.tensor(c.x, dtype=torch.float32)
    w_ih, w_hh, b_ih, b_hh = (torch.tensor(a, dtype=torch.float32) for a in c.weights)
    T, B, H = x.shape
    xw = (rnd(x.reshape(T * B, H)) @ rnd(w_ih).T).reshape(T, B, -1) + b_ih
    W = rnd(w_hh).T
    h = torch.zeros(B, H)
    cell = torch.zeros(B, H)
    ys = []
    for t in range(T):
        hw = rnd(h) @ W + b_hh
        if kind == "lstm":
            A = xw[t] + hw
            i, f, o = (torch.sigmoid(A[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
            g = torch.tanh(A[:, 2 * H:3 * H])
            cell = f * cell + i * g
            h = o * torch.tanh(cell)
        else:
            r = torch.sigmoid(xw[t, :, :H] + hw[:, :H])
            z = torch.sigmoid(xw[t, :, H:2 * H] + hw[:, H:2 * H])
            n = torch.tanh(xw[t, :, 2 * H:] + r * hw[:, 2 * H:])
            h = (1 - z) * n + z * h
        ys.append(h)
    return torch.stack(ys).double().numpy()


def long_double(kind: str, c: Case) -> np.ndarray:
    """y in x87 long double (u = 2⁻⁶⁴ on x86-64 Linux): "exact" for float64's errors."""
    L = np.longdouble
    w_ih, w_hh, b_ih, b_hh = (a.astype(L) for a in c.weights)
    H = c.h0.shape[1]
    h, cell = c.h0.astype(L), c.h0.astype(L)

    def sig(a: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-a))

    ys = []
    for x_t in c.x.astype(L):
        gi, gh = x_t @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        if kind == "lstm":
            A = gi + gh
            i, f, o = (sig(A[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
            cell = f * cell + i * np.tanh(A[:, 2 * H:3 * H])
            h = o * np.tanh(cell)
        else:
            r, z = sig(gi[:, :H] + gh[:, :H]), sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            h = (1 - z) * np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:]) + z * h
        ys.append(h)
    return np.stack(ys)


def _timed(f: Callable[..., np.ndarray], *args: object) -> tuple[np.ndarray, float]:
    """f(*args) and the seconds it took."""
    start = time.perf_counter()
    out = f(*args)
    return out, time.perf_counter() - start


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the measurements, one markdown table each ----------------------------------------------------

def _size(T: int, B: int, H: int) -> str:
    return f"{T}, {B}, {H}"


def _times(q: float) -> str:
    """A ratio: whole numbers from 10 on, two significant digits below."""
    return f"{q:.0f}×" if q >= 10 else f"{q:.2g}×"


def tightness(sizes: Sequence[tuple[int, int, int]]) -> tuple[list[str], list[str]]:
    """Table 1 (the bound against torch float32 and float64) and table 2 (float32 layers with
    TF32 and bf16 operands) at ``sizes``."""
    rows = ["| layer | T, B, H | dtype | finite | median bound | median \\|err\\| torch | ratio "
            "| max err/bound |",
            "|---|---|---|---|---|---|---|---|"]
    reduced = ["| layer | T, B, H | " + " | ".join(f"{name}: over bound, median err/bound"
                                                  for name in ROUNDINGS) + " |",
               "|---|---|" + "---|" * len(ROUNDINGS)]
    for T, B, H in sizes:
        for kind in KINDS:
            for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
                c = case(kind, T, B, H, dtype)
                want, atol = reference(kind, c), bound(kind, c, dtype)
                err = np.abs(torch_layer(kind, c, tdtype) - want)
                ratio = np.median(atol) / np.median(err)
                rows.append(f"| {kind.upper()} | {_size(T, B, H)} | {np.dtype(dtype)} | "
                            f"{'yes' if np.isfinite(atol).all() else 'NO'} | {np.median(atol):.2g} | "
                            f"{np.median(err):.2g} | {ratio:.0f} | {(err / atol).max():.3f} |")
                _progress(rows[-1])
                if dtype is np.float32:
                    cells = []
                    for rnd in ROUNDINGS.values():
                        q = np.abs(emulated(kind, c, rnd) - want) / atol
                        cells.append(f"{(q > 1).mean():.1%}, {_times(float(np.median(q)))}")
                    reduced.append(f"| {kind.upper()} | {_size(T, B, H)} | " + " | ".join(cells) + " |")
                    _progress(reduced[-1])
    return rows, reduced


def float64_exact(T: int, B: int, H: int) -> list[str]:
    """Table 3: torch float64 and the reference against long double; the bound covers both."""
    if np.finfo(np.longdouble).nmant < 63:  # long double is float64 here (e.g. arm64): no "exact"
        return [f"(skipped: NumPy's long double has {np.finfo(np.longdouble).nmant} mantissa bits "
                "on this platform, no finer than float64)"]
    rows = ["| layer | T, B, H | median \\|err\\| torch f64 | median \\|err\\| reference | "
            "correlation of the two errors | median bound | bound / torch err "
            "| max \\|torch − reference\\|/bound |",
            "|---|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        c = case(kind, T, B, H, np.float64)
        exact = long_double(kind, c)
        want, got = reference(kind, c), torch_layer(kind, c, torch.float64)
        atol = bound(kind, c, np.float64)
        e_torch, e_ref = (got - exact).astype(np.float64), (want - exact).astype(np.float64)
        correlation = np.corrcoef(e_torch.ravel(), e_ref.ravel())[0, 1]
        e_torch, e_ref = np.abs(e_torch), np.abs(e_ref)
        rows.append(f"| {kind.upper()} | {_size(T, B, H)} | {np.median(e_torch):.2g} | "
                    f"{np.median(e_ref):.2g} | {correlation:.2f} | {np.median(atol):.2g} | "
                    f"{np.median(atol) / np.median(e_torch):.0f} | {(np.abs(got - want) / atol).max():.3f} |")
        _progress(rows[-1])
    return rows


def library_allowance(T: int, B: int, H: int) -> list[str]:
    """Table 4: the float32 bound's ratio to torch's median error with LIBRARY_ULPS = 8 (as
    specified) and 1: what the allowance for σ and tanh costs."""
    rows = ["| layer | T, B, H | ratio, LIBRARY_ULPS = 8 | ratio, LIBRARY_ULPS = 1 |",
            "|---|---|---|---|"]
    for kind in KINDS:
        c = case(kind, T, B, H, np.float32)
        err = np.median(np.abs(torch_layer(kind, c, torch.float32) - reference(kind, c)))
        ratios = []
        for ulps in (P.LIBRARY_ULPS, 1.0):
            with mock.patch.object(P, "LIBRARY_ULPS", ulps):
                ratios.append(np.median(bound(kind, c, np.float32)) / err)
        rows.append(f"| {kind.upper()} | {_size(T, B, H)} | {ratios[0]:.0f} | {ratios[1]:.0f} |")
        _progress(rows[-1])
    return rows


def _minkowski(*terms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Candidate (a′): V of Σ_k a_k e_k for errors of any correlation, (Σ_k |a_k|·√V_k)²."""
    return sum((np.abs(a) * np.sqrt(v) for a, v in terms), np.zeros(()))**2


def tangent_samples(x: np.ndarray, h0: np.ndarray,
                    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], K: int,
                    rng: np.random.Generator, ex: np.ndarray | None = None) -> np.ndarray:
    """K tangents of propagation.py's linear LSTM model: every local error of the model (the
    same per-element scales as propagation.lstm) drawn as an independent random sign times its
    scale, carried through the step's signed Jacobian; ``ex`` (K, T, B, D), errors of the input
    (a layer below's tangents), enter through w_ih. Returns the errors of y, (K, T, B, H)."""
    w_ih, w_hh, b_ih, b_hh = weights
    T, B, D = x.shape
    H = w_hh.shape[1]
    n = D + H + 2
    h, cell = h0.copy(), h0.copy()
    eh, ec = np.zeros((K, B, H)), np.zeros((K, B, H))
    out = np.empty((K, T, B, H))

    def signs(width: int) -> np.ndarray:
        return rng.choice([-1.0, 1.0], size=(K, B, width))

    for t in range(T):
        A = x[t] @ w_ih.T + h @ w_hh.T + b_ih + b_hh
        squares = (x[t] ** 2) @ (w_ih ** 2).T + (h ** 2) @ (w_hh ** 2).T + b_ih ** 2 + b_hh ** 2
        eA = eh @ w_hh.T + signs(4 * H) * np.sqrt(n * A * A + (n + 1) * squares)
        if ex is not None:
            eA = eA + ex[:, t] @ w_ih.T
        s = sigmoid(A)
        es = s * (1 - s) * eA + signs(4 * H) * np.sqrt(P.library_sigmoid(s))
        i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
        g = np.tanh(A[:, 2 * H:3 * H])
        eg = (1 - g * g) * eA[..., 2 * H:3 * H] + signs(H) * np.sqrt(P.library(g))
        ei, ef, eo = es[..., :H], es[..., H:2 * H], es[..., 3 * H:]
        c_new = f * cell + i * g
        ec = (f * ec + cell * ef + g * ei + i * eg
              + signs(H) * np.sqrt((f * cell) ** 2 + (i * g) ** 2 + c_new ** 2))
        tc = np.tanh(c_new)
        etc = (1 - tc * tc) * ec + signs(H) * np.sqrt(P.library(tc))
        m = o * tc
        eh = o * etc + tc * eo + signs(H) * np.abs(m)
        h, cell = m, c_new
        out[:, t] = eh
    return out


def tangent_variance(c: Case, K: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Candidate (b), the exact V of propagation.py's linear LSTM model estimated as the mean
    square of K tangents (:func:`tangent_samples`). Returns (V of y, seconds)."""
    start = time.perf_counter()
    V = (tangent_samples(c.x, c.h0, c.weights, K, rng) ** 2).mean(0)
    return V, time.perf_counter() - start


def _model_variance(c: Case) -> np.ndarray:
    """V of y in propagation.py's model of an LSTM layer."""
    return P.lstm(c.x, c.h0, c.h0, *c.weights).Vy


def variance_model(sizes: Sequence[tuple[int, int, int, int]]) -> list[str]:
    """Table 5: √(V_exact/V) of the diagonal model (propagation.lstm as shipped) and of
    Minkowski's rule in its place, V_exact from K tangents (LSTM, float64 inputs, seed 1)."""
    rows = ["| candidate | T, B, H, K | √(V_exact/V) median / p99 / max | seconds |",
            "|---|---|---|---|"]
    for T, B, H, K in sizes:
        c = case("lstm", T, B, H, np.float64, seed=1)
        exact, t_exact = tangent_variance(c, K, np.random.default_rng(1))
        diag, t_diag = _timed(_model_variance, c)
        # Candidate (a′) is propagation.lstm with Minkowski's rule where it combines errors.
        with mock.patch.object(P, "uncorrelated", _minkowski):
            mink, t_mink = _timed(_model_variance, c)
        for name, V, seconds in (("(a) diagonal (chosen)", diag, t_diag),
                                 ("(a′) Minkowski inside the cell", mink, t_mink),
                                 ("(b) K random tangents", exact, t_exact)):
            q = np.sqrt(exact / V)
            rows.append(f"| {name} | {T}, {B}, {H}, {K} | {np.median(q):.3f} / "
                        f"{np.quantile(q, 0.99):.3f} / {q.max():.3f} | {seconds:.2f} |")
            _progress(rows[-1])
    return rows


# ---- the report ---------------------------------------------------------------------------------

def _library_arguments() -> np.ndarray:
    """float32 arguments of table 6: a dense grid over σ's and tanh's whole range, and N(0, 4²)."""
    normal = 4.0 * np.random.default_rng(0).standard_normal(1_000_000)
    return np.concatenate([np.linspace(-30.0, 30.0, 2_000_001), normal]).astype(np.float32)


#: Shipped float32 implementations that provide σ and tanh through the contract
#: (nnspec.implementations), each row of table 6 where it loads.
LIBRARY_IMPLEMENTATIONS = {"torch": "torch_float32", "ONNX Runtime (MLAS)": "onnx_runtime",
                           "OpenVINO (CPU plugin, f32 hint)": "openvino_runtime"}


def _contract_pair(module: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """x → (σ(x), tanh(x)) through an implementation's contract functions."""
    return lambda x: (module.sigmoid(x), module.tanh(x))


def _frameworks() -> dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    """(σ, tanh) in float32 of what is installed here, each a function of a float32 array: the
    shipped implementations' contract functions (:data:`LIBRARY_IMPLEMENTATIONS`), the two
    cancelling formulas in torch, and JAX's and TensorFlow's own, which no shipped adapter
    exposes, where importable."""
    found: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {}
    for label, name in LIBRARY_IMPLEMENTATIONS.items():
        try:
            module = load(name).module
        except ImplementationUnavailable:
            continue
        found[label] = _contract_pair(module)
    found["torch 2σ(2x) − 1, ½(1 + tanh(x/2))"] = lambda x: (
        (0.5 * (1 + torch.tanh(0.5 * torch.from_numpy(x)))).numpy(),
        (2 * torch.sigmoid(2 * torch.from_numpy(x)) - 1).numpy())
    try:
        import jax
        import jax.numpy as jnp
        found["JAX (XLA CPU)"] = lambda x: (np.asarray(jax.jit(jax.nn.sigmoid)(x)),
                                            np.asarray(jax.jit(jnp.tanh)(x)))
    except ImportError:
        pass
    try:
        import tensorflow as tf
        found["TensorFlow (Eigen)"] = lambda x: (tf.math.sigmoid(x).numpy(), tf.math.tanh(x).numpy())
    except ImportError:
        pass
    return found


def library_calls() -> list[str]:
    """Table 6: one float32 σ or tanh call's largest |error| as a share of the probabilistic
    model's scale for it (propagation.py): u·√library_sigmoid(s) = u·(8·max(s, 1 − s) + 1),
    what σ's correct formulas need per call (spec/tolerances.md, "Local errors"), and
    u·√library(f) = 8u·(|f| + 1) for tanh, over :func:`_library_arguments`."""
    x = _library_arguments()
    xd = x.astype(np.float64)
    s, t = sigmoid(xd), np.tanh(xd)
    u = 2.0 ** -24
    rows = ["| float32 σ, tanh of | σ: max \\|err\\| / model | tanh: max \\|err\\| / model |",
            "|---|---|---|"]
    for name, fn in _frameworks().items():
        got_s, got_t = (np.asarray(v, np.float64) for v in fn(x))
        err_s, err_t = np.abs(got_s - s) / u, np.abs(got_t - t) / u
        shares = (np.max(err_s / np.sqrt(P.library_sigmoid(s))),
                  np.max(err_t / np.sqrt(P.library(t))))
        rows.append(f"| {name} | " + " | ".join(f"{q:.2f}" for q in shares) + " |")
        _progress(rows[-1])
    return rows


#: (T, B, H) of table 7: the bench's size (bench/test_bounds.py), the issue's reference size,
#: a wide and a wide-batch layer.
COST_SIZES = ((500, 8, 256), (100, 32, 128), (300, 8, 512), (200, 64, 256))
#: Interleaved rounds per cost row (one more warms up).
COST_ROUNDS = 4


def _cost_row(kind: str, T: int, B: int, H: int) -> str:
    """One row of table 7: CPU seconds of the reference and of the bound, interleaved."""
    c = case(kind, T, B, H, np.float32)
    times = interleaved({"reference": lambda: reference(kind, c),
                         "bound": lambda: bound(kind, c, np.float32)}, COST_ROUNDS)
    ref_ms, bound_ms = (1e3 * float(np.median(times[f"cpu {name}"])) for name in ("reference", "bound"))
    ratio = np.median(times["cpu bound"] / times["cpu reference"])
    return f"| {kind.upper()} | {_size(T, B, H)} | {ref_ms:.0f} | {bound_ms:.0f} | {ratio:.2f} |"


def cost(sizes: Sequence[tuple[int, int, int]]) -> list[str]:
    """Table 7: the float32 bound of ``{kind}_layer`` against the reference's own forward, CPU
    time on one thread (bench/timing.py), the median over interleaved rounds of their ratio."""
    rows = ["| layer | T, B, H | reference, ms | bound, ms | bound / reference |", "|---|---|---|---|---|"]
    with one_thread():
        for T, B, H in sizes:
            for kind in KINDS:
                rows.append(_cost_row(kind, T, B, H))
                _progress(rows[-1])
    return rows


#: (T, B, H, K) of table 8, the long memory; K tangents estimate V_exact (LSTM).
MEMORY_SIZE = (1000, 8, 128, 100)
#: The raised bias of table 8: the LSTM's forget gate, the GRU's update gate (block 1 of both).
MEMORY_BIASES = (0.0, 3.0, 5.0)


def remembering(kind: str, T: int, B: int, H: int, bias: float) -> Case:
    """:func:`case` in float32 with block 1 of b_ih — the LSTM's forget gate, the GRU's update
    gate — raised by ``bias``: f or z ≈ σ(bias), a memory of about 1/(1 − σ(bias)) steps."""
    c = case(kind, T, B, H, np.float32)
    w_ih, w_hh, b_ih, b_hh = c.weights
    b_ih = b_ih.copy()
    b_ih[H:2 * H] = (b_ih[H:2 * H] + bias).astype(np.float32)
    return Case(c.x, c.h0, (w_ih, w_hh, b_ih, b_hh))


def _diagonal_only(V: np.ndarray, coherent: Any, grew: np.ndarray, excess: float) -> np.ndarray:
    """propagation._pair without the coherent subspace: the diagonal model alone."""
    return np.stack([V, V])


def long_memory(T: int, B: int, H: int, K: int) -> list[str]:
    """Table 8: the float32 bound on y with a long memory (:func:`remembering`) against torch's
    error, as shipped (diagonal model and coherent subspace) and with the diagonal model alone;
    for the LSTM, √(V_exact/V) of the shipped V against K tangents (:func:`tangent_variance`)."""
    rows = ["| layer | T, B, H | bias | judged | max err/bound | diagonal model alone: max "
            "err/bound | √(V_exact/V) median / p99 / max | decided by | bound, s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        for bias in MEMORY_BIASES:
            c = remembering(kind, T, B, H, bias)
            err = np.abs(torch_layer(kind, c, torch.float32) - reference(kind, c))
            probes = mock.Mock(wraps=C.Probes)
            with mock.patch.object(C, "Probes", probes):
                atol, seconds = _timed(bound, kind, c, np.float32)
            with mock.patch.object(P, "_pair", _diagonal_only):
                diagonal = bound(kind, c, np.float32)
            judged = np.isfinite(atol)
            exact = "—"
            if kind == "lstm" and K:
                q = np.sqrt(tangent_variance(c, K, np.random.default_rng(1))[0]
                            / P.lstm(c.x, c.h0, c.h0, *c.weights).Vy)
                exact = f"{np.median(q):.2f} / {np.quantile(q, 0.99):.2f} / {q.max():.2f}"
            rows.append(f"| {kind.upper()} | {_size(T, B, H)} | +{bias:g} | {judged.mean():.0%} | "
                        f"{(err[judged] / atol[judged]).max():.3f} | "
                        f"{(err / diagonal)[np.isfinite(diagonal)].max():.3f} | {exact} | "
                        f"{'probes' if probes.called else 'subspace'} | {seconds:.1f} |")
            _progress(rows[-1])
    return rows


#: (T, B, H, K) of table 9: two stacked LSTM layers, as the review that found the shortfall.
STACKED_SIZE = (300, 4, 64, 200)


def stacked(T: int, B: int, H: int, K: int) -> list[str]:
    """Table 9: √(V_exact/V) of the upper of two stacked LSTM layers (both :func:`remembering`'s
    forget bias; the upper layer's weights drawn as the lower's, seed 7), V as rnn_module's
    probabilistic pass takes it (the lower layer's V as the upper's V_x) as shipped and with the
    lower layer's errors taken as fresh at every step (the previous model); V_exact from K
    tangents of the two layers' linear model, the lower's carried up (:func:`tangent_samples`)."""
    rows = ["| layers | T, B, H | bias | √(V_exact/V) median / p99 / max | the same, the errors from "
            "below fresh per step |", "|---|---|---|---|---|"]
    for bias in MEMORY_BIASES:
        c = remembering("lstm", T, B, H, bias)
        rng = np.random.default_rng(7)
        s = 1.0 / np.sqrt(H)
        w_ih, w_hh, b_ih, b_hh = (rng.uniform(-s, s, shape)
                                  for shape in ((4 * H, H), (4 * H, H), (4 * H,), (4 * H,)))
        b_ih[H:2 * H] += bias
        upper = (w_ih, w_hh, b_ih, b_hh)
        y = lstm_ref.lstm_layer(c.x, c.h0, c.h0, *c.weights)[0]
        below = tangent_samples(c.x, c.h0, c.weights, K, np.random.default_rng(1))
        exact = (tangent_samples(y, c.h0, upper, K, np.random.default_rng(2), below) ** 2).mean(0)
        Vx = P.lstm(c.x, c.h0, c.h0, *c.weights).Vy
        cells = []
        for patch in (None, lambda Vx, w_ih: None):
            with mock.patch.object(P, "_below", patch or P._below):
                q = np.sqrt(exact / P.lstm(y, c.h0, c.h0, *upper, Vx=Vx).Vy)
            cells.append(f"{np.median(q):.2f} / {np.quantile(q, 0.99):.2f} / {q.max():.2f}")
        rows.append(f"| LSTM × 2 | {_size(T, B, H)} | +{bias:g} | " + " | ".join(cells) + " |")
        _progress(rows[-1])
    return rows


def _triple(text: str, n: int) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(","))
    if len(values) != n or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected {n} positive integers separated by commas, got {text!r}")
    return values


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nnspec.bench.bound_evidence",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", nargs="+", type=lambda s: _triple(s, 3), default=list(SIZES),
                        metavar="T,B,H", help="layer sizes of tables 1 and 2 (default: %(default)s)")
    parser.add_argument("--long-double", type=lambda s: _triple(s, 3), default=LONG_DOUBLE_SIZE,
                        metavar="T,B,H", help="size of tables 3 and 4 (default: %(default)s)")
    parser.add_argument("--variance", nargs="+", type=lambda s: _triple(s, 4),
                        default=list(VARIANCE_SIZES), metavar="T,B,H,K",
                        help="sizes and tangents of table 5 (default: %(default)s)")
    parser.add_argument("--cost", nargs="*", type=lambda s: _triple(s, 3), default=list(COST_SIZES),
                        metavar="T,B,H", help="sizes of table 7 (default: %(default)s)")
    parser.add_argument("--memory", type=lambda s: _triple(s, 4), default=MEMORY_SIZE,
                        metavar="T,B,H,K", help="size and tangents of table 8 (default: %(default)s)")
    parser.add_argument("--stacked", type=lambda s: _triple(s, 4), default=STACKED_SIZE,
                        metavar="T,B,H,K", help="size and tangents of table 9 (default: %(default)s)")
    parser.add_argument("--no-library", dest="library", action="store_false",
                        help="skip table 6 (σ and tanh of the installed frameworks)")
    parser.add_argument("--out", type=Path, help="also write the tables there as markdown")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    torch.set_num_threads(1)
    command = "python -m nnspec.bench.bound_evidence" + "".join(
        f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    started = time.perf_counter()
    main_rows, reduced = tightness(args.sizes)
    exact_rows = float64_exact(*args.long_double)
    ulps_rows = library_allowance(*args.long_double)
    variance_rows = variance_model(args.variance)
    library_rows = library_calls() if args.library else ["(not run: --no-library)"]
    cost_rows = cost(args.cost)
    memory_rows = long_memory(*args.memory)
    stacked_rows = stacked(*args.stacked)
    lines = [
        f"<!-- Generated by `{command}`; do not edit by hand. -->", "",
        "# Recurrent layer bounds at production scale", "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} in {time.perf_counter() - started:.0f} s "
        f"by `{command}` (bench/bound_evidence.py; spec/tolerances.md, \"Bounds at production "
        f"scale\"; issue 11). torch {torch.__version__} on the CPU, one thread; NumPy "
        f"{np.__version__}; Python {platform.python_version()}, {platform.machine()}.", "",
        "Inputs x ~ N(0, 1), weights and biases U(±1/√H), zero initial state, seed 0; rounded to "
        "float32 for the float32 rows. The bound is the one the checks use on `lstm_layer` and "
        "`gru_layer`'s y, for |implementation − float64 reference|; err = |torch − reference|, "
        "ratio = median bound / median err. A bound holds where max err/bound ≤ 1.", "",
        "## 1. The bound against torch's nn.LSTM and nn.GRU", "",
        "The bound's cost against the reference's forward is measured in `bench/test_bounds.py`.", "",
        *main_rows, "",
        "## 2. Reduced precision behind a float32 claim", "",
        "A float32 layer (torch on the CPU) with its matmul operands x, h and W rounded first "
        "(TF32: 11 significant bits, bfloat16: 8, both round to nearest even) against the float32 "
        "bound; the control is the same emulation without rounding. Per cell: the share of "
        "elements of y over the bound, the median err/bound.", "",
        *reduced, "",
        "## 3. float64 against long double", "",
        "torch float64 and the float64 reference against an x87 long-double evaluation "
        "(u = 2⁻⁶⁴) taken as exact; the float64 bound covers both errors together. Where the two "
        "errors are correlated over the elements, \\|torch − reference\\| is smaller than "
        "either.", "",
        *exact_rows, "",
        "## 4. The library allowance", "",
        "The float32 bound's ratio to torch's median error with `LIBRARY_ULPS` = 8 (σ and tanh "
        "within 4 ulp, as specified) and 1.", "",
        *ulps_rows, "",
        "## 5. The variance model", "",
        "√(V_exact/V) over the elements of y of an LSTM layer (float64 inputs, seed 1): (a) "
        "propagation.py's diagonal model, (a′) Minkowski's (Σ|a|√V)² where it combines errors, "
        "against V_exact, the mean square of K tangents of the same linear model with random-sign "
        "local errors (relative standard error of √V_exact ≈ 1/√(2K); its own row shows 1). "
        "Seconds: one run of each.", "",
        *variance_rows, "",
        "## 6. One σ or tanh call against the model", "",
        "The largest |error| of one float32 call over 3·10⁶ arguments (a grid on [−30, 30] and "
        "N(0, 4²)), as a share of the scale the model gives it (checks/bounds/propagation.py): "
        "for σ u·√`library_sigmoid`(s) = u·(8·max(s, 1 − s) + 1), what σ's correct formulas "
        "need (spec/tolerances.md, \"Local errors\"), for tanh u·√`library`(f) = 8u·(|f| + 1). "
        "The second row's σ is ½(1 + tanh(x/2)) and its tanh 2σ(2x) − 1.", "",
        *library_rows, "",
        "## 7. The bound's cost", "",
        "The float32 bound of `lstm_layer` and `gru_layer` (its running worst case and the "
        "probabilistic pass) against the reference's own forward, in CPU time on one thread, "
        f"the median over {COST_ROUNDS} interleaved rounds of their ratio; issue 11 asks ≤ 2×. "
        "`bench/test_bounds.py` measures the first size in the report's benchmarks.", "",
        *cost_rows, "",
        "## 8. A long memory", "",
        "The LSTM's forget gate or the GRU's update gate with its bias raised (f or z ≈ σ(bias)), "
        "otherwise as table 1, float32. judged: the share of the elements of y with a finite "
        "bound (beyond the first-order model's range the worst case decides, and is infinite "
        "at this length); max err/bound of torch over them, as shipped (the diagonal model and "
        "the coherent subspace, checks/bounds/coherence.py) and with the diagonal model alone; "
        "for the LSTM, √(V_exact/V) of the shipped V against K random-sign tangents of the same "
        "linear model (relative standard error ≈ 1/√(2K)); which part of the model decided "
        "(the narrow subspace found the diagonal model adequate, or the random tangents, "
        "coherence.Probes) and the bound's seconds.", "",
        *memory_rows, "",
        "## 9. Stacked layers", "",
        "The upper of two LSTM layers, both with the forget bias of table 8, float64 inputs: "
        "√(V_exact/V) of its y, V as `rnn_module` takes it (the layer below's V as the upper "
        "layer's input errors, summed in amplitude over the steps; spec/tolerances.md, "
        "\"Stacked layers\") and as the previous model took it (fresh at every step), V_exact "
        "from K tangents of both layers, the lower layer's carried up.", "",
        *stacked_rows, ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
