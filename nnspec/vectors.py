"""Language-neutral test vectors: ``nnspec vectors --out DIR`` writes them, :func:`load_case` reads them.

A vector is one call of a contract function (checks/contract.py) on fixed arguments, with the
float64 reference's outputs and, for float32 and float64, the per-element bound the checks allow
on ``|got − expected|``. Each case is a JSON file (metadata, scalars inline) and an ``.npz`` of
plain arrays (``numpy.load(..., allow_pickle=False)``), so a C++, Rust or JAX implementation can
be checked without running Python. Random operations get their statistical claims instead.

Everything a case is drawn from sits in :data:`VECTORS`, one row per (spec id, contract function):
the input recipes, the output names and where the bounds come from. Outputs are the reference's
(``nnspec.implementations.reference`` unless a row names a variant's function); bounds are the
tolerance model's (checks/tolerance.py), computed by the very helpers the checks call wherever
those are functions, and otherwise by the same expression as the check, which the row names.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import platform
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import nnspec
from nnspec import speclib
from nnspec.checks import test_activations as checks_activations
from nnspec.checks import test_dropout as checks_dropout
from nnspec.checks import test_initialisation as checks_initialisation
from nnspec.checks import test_losses as checks_losses
from nnspec.checks import test_regularisation as checks_regularisation
from nnspec.checks import test_rnn as checks_rnn
from nnspec.checks import test_stability as checks_stability
from nnspec.checks.bounds import engine as checks_propagation
from nnspec.checks.bounds import losses as checks_bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import contract
from nnspec.checks.harness.stats import ALPHA
from nnspec.implementations import reference as contract_reference
from nnspec.reference import activations as ref_activations
from nnspec.reference import gru as ref_gru
from nnspec.reference import initialisation as ref_initialisation
from nnspec.reference import linear as ref_linear
from nnspec.reference import losses as ref_losses
from nnspec.reference import rnn as ref_rnn
from nnspec.reference import stability as ref_stability
from nnspec.reference.lstm import LSTM_CELL_GRADIENT_NAMES

SCHEMA = "nnspec-vectors/1"

#: The dtypes bounds are exported for: an implementation in another dtype cannot use the vectors.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ---- input recipes ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RngArgument:
    """An ``rng`` argument: the function must not depend on it in the cases that pass one."""

    seed: int


@dataclass(frozen=True)
class Case:
    """One input recipe: its name, why it is there, and how to draw the positional arguments."""

    name: str
    why: str
    draw: Callable[[np.random.Generator], tuple]


def uniform(m: float) -> Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]:
    return lambda rng, shape: rng.uniform(-m, m, shape)


def separating(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """±U(1/4, 1): no entry near 0, no two blocks equal, no gate saturated."""
    return rng.choice((-1.0, 1.0), size=shape) * rng.uniform(0.25, 1.0, shape)


def distinct(rng: np.random.Generator, shape: tuple[int, ...], step: float) -> np.ndarray:
    """Distinct multiples of ``step`` (exact in float32 for the sizes used): no ties for maxout."""
    n = math.prod(shape)
    return ((rng.permutation(n) - n / 2.0) * step).reshape(shape)


def elementwise_cases(*, alpha: float | None = None) -> tuple[Case, ...]:
    """x of an elementwise activation: ordinary with a 0 (the kinks), batch 1 × width 1, and the
    checks' extreme inputs (exp overflow, σ rounding to 1, underflow, PyTorch's softplus
    threshold); ``alpha`` adds sigmoid's slope argument, 0.5 and 2 included."""
    def with_alpha(x: np.ndarray, a: float) -> tuple:
        return (x,) if alpha is None else (x, a)

    def ordinary(rng: np.random.Generator) -> tuple:
        x = rng.uniform(-4.0, 4.0, (3, 5))
        x[0, 0] = 0.0
        return with_alpha(x, 1.0 if alpha is None else alpha)

    cases = [Case("ordinary", "(3, 5) values in [−4, 4] with one exact 0", ordinary),
             Case("batch1_width1", "the (1, 1) edge",
                  lambda rng: with_alpha(rng.uniform(-4.0, 4.0, (1, 1)), 2.0)),
             Case("saturating", "checks/test_activations.py's EXTREMES: ±1e30, ±710, −745.5, "
                  "±100, ±40, ±20.5 … where a careless formula overflows or saturates",
                  lambda rng: with_alpha(checks_activations.EXTREMES.copy(), 1.0))]
    if alpha is not None:
        cases.append(Case("saturating_slope", "EXTREMES with slope α = 0.5",
                          lambda rng: (checks_activations.EXTREMES.copy(), 0.5)))
    return tuple(cases)


def prelu_cases() -> tuple[Case, ...]:
    return (Case("per_channel", "x (2, 3, 4), one slope per channel (axis 1)",
                 lambda rng: (rng.uniform(-4.0, 4.0, (2, 3, 4)), rng.uniform(-1.0, 1.0, 3))),
            Case("scalar_slope", "x (3, 5), a 0-d slope",
                 lambda rng: (rng.uniform(-4.0, 4.0, (3, 5)), np.array(0.25))),
            Case("batch1_width1", "x (1, 1), slope (1,)",
                 lambda rng: (rng.uniform(-4.0, 4.0, (1, 1)), rng.uniform(-1.0, 1.0, 1))),
            Case("saturating", "EXTREMES with a = 0.25",
                 lambda rng: (checks_activations.EXTREMES.copy(), np.array(0.25))))


def maxout_cases() -> tuple[Case, ...]:
    """Distinct pieces: with ties the gradient is any split of g (the check allows it), which a
    value vector cannot state."""
    return (Case("ordinary", "z (3, 12), k = 3, distinct values",
                 lambda rng: (distinct(rng, (3, 12), 0.25), 3)),
            Case("batch1_width1", "z (1, 1), k = 1", lambda rng: (distinct(rng, (1, 1), 1.0), 1)),
            Case("large", "z (2, 8), k = 4, distinct values up to ±1e3",
                 lambda rng: (distinct(rng, (2, 8), 125.0), 4)))


def logit_cases() -> tuple[Case, ...]:
    return (Case("ordinary", "(4, 5) logits in [−4, 4]", lambda rng: (rng.uniform(-4, 4, (4, 5)),)),
            Case("one_class", "the (1, 1) edge: softmax is 1", lambda rng: (rng.uniform(-4, 4, (1, 1)),)),
            Case("sequence", "(T, B, C) = (3, 2, 5) logits in [−30, 30]",
                 lambda rng: (rng.uniform(-30, 30, (3, 2, 5)),)),
            Case("large_logits", "checks/test_losses.py's LARGE_LOGITS: gaps of 1e3 and 1e4 "
                 "(an unshifted softmax overflows)", lambda rng: (checks_losses.LARGE_LOGITS.copy(),)))


def targets(rng: np.random.Generator, shape: tuple[int, ...], C: int) -> np.ndarray:
    return rng.integers(0, C, shape).astype(np.int64)


def position_cases() -> tuple[Case, ...]:
    """cross_entropy of one position (no leading axes), as losses.cross_entropy's check calls it."""
    return (Case("one_position", "y (5,), k ()",
                 lambda rng: (rng.uniform(-4, 4, 5), targets(rng, (), 5))),
            Case("one_class", "y (1,), k () = 0: ℓ = 0",
                 lambda rng: (rng.uniform(-4, 4, 1), np.array(0, dtype=np.int64))))


def sequence_cases() -> tuple[Case, ...]:
    return (Case("sequence", "y (T, B, C) = (3, 2, 5), k (3, 2)",
                 lambda rng: (rng.uniform(-4, 4, (3, 2, 5)), targets(rng, (3, 2), 5))),
            Case("batch1_one_class", "y (1, 1), k (1,) = [0]",
                 lambda rng: (rng.uniform(-4, 4, (1, 1)), np.zeros(1, dtype=np.int64))),
            Case("saturating", "y (4, 6) in [−30, 30]",
                 lambda rng: (rng.uniform(-30, 30, (4, 6)), targets(rng, (4,), 6))),
            Case("large_logits", "LARGE_LOGITS with LARGE_TARGETS (checks/test_losses.py)",
                 lambda rng: (checks_losses.LARGE_LOGITS.copy(), checks_losses.LARGE_TARGETS.copy())))


def recurrent(gates: int, *, B: int, D: int, H: int, steps: int | None = None,
              inputs: Callable = separating, weights: Callable = separating, biases: bool = True,
              cell_state: bool = False, extra: tuple = ()) -> Callable[[np.random.Generator], tuple]:
    """(x, h[, c], w_ih, w_hh, b_ih, b_hh, *extra) in PyTorch's layout, ``gates`` row blocks;
    x is (B, D), or (steps, B, D) for a layer."""
    def draw(rng: np.random.Generator) -> tuple:
        lead = (B,) if steps is None else (steps, B)
        x, h = inputs(rng, (*lead, D)), inputs(rng, (B, H))
        state = (inputs(rng, (B, H)),) if cell_state else ()
        w_ih, w_hh = weights(rng, (gates * H, D)), weights(rng, (gates * H, H))
        b_ih, b_hh = ((weights(rng, (gates * H,)), weights(rng, (gates * H,))) if biases
                      else (None, None))
        return (x, h, *state, w_ih, w_hh, b_ih, b_hh, *extra)
    return draw


def cell_cases(gates: int, *, cell_state: bool = False) -> tuple[Case, ...]:
    """GRU (3 blocks) and LSTM (4) cells. Every entry is drawn independently and away from 0:
    equal blocks hide a permuted gate order, h = 0 and b_hn = 0 hide the GRU variants (README)."""
    kw = {"cell_state": cell_state}
    return (Case("separating", "B=3, D=4, H=3, every entry ±U(1/4, 1), both biases",
                 recurrent(gates, B=3, D=4, H=3, **kw)),
            Case("batch1_width1", "B=1, D=1, H=1, entries ±U(1/4, 1)",
                 recurrent(gates, B=1, D=1, H=1, **kw)),
            Case("saturating", "B=2, D=3, H=2, inputs in [−4, 4], weights in [−30, 30]: most "
                 "gates saturate", recurrent(gates, B=2, D=3, H=2, inputs=uniform(4.0),
                                             weights=uniform(30.0), **kw)),
            Case("no_bias", "B=2, D=2, H=3, b_ih = b_hh = None",
                 recurrent(gates, B=2, D=2, H=3, biases=False, **kw)))


def gru_layer_cases() -> tuple[Case, ...]:
    return (Case("separating", "T=4, B=2, D=3, H=3, every entry ±U(1/4, 1)",
                 recurrent(3, B=2, D=3, H=3, steps=4)),
            Case("single_step", "T=1, B=1, D=1, H=1", recurrent(3, B=1, D=1, H=1, steps=1)),
            Case("saturating", "T=3, B=2, D=2, H=2, weights in [−30, 30]",
                 recurrent(3, B=2, D=2, H=2, steps=3, inputs=uniform(4.0), weights=uniform(30.0))))


def rnn_cell_cases() -> tuple[Case, ...]:
    return (Case("tanh", "B=3, D=4, H=3, entries ±U(1/4, 1)",
                 recurrent(1, B=3, D=4, H=3, extra=("tanh",))),
            Case("relu", "B=3, D=4, H=3, entries ±U(1/4, 1): negative pre-activations give 0",
                 recurrent(1, B=3, D=4, H=3, extra=("relu",))),
            Case("batch1_width1", "B=1, D=1, H=1, tanh", recurrent(1, B=1, D=1, H=1, extra=("tanh",))),
            Case("saturating", "B=2, D=3, H=2, tanh, weights in [−30, 30]",
                 recurrent(1, B=2, D=3, H=2, inputs=uniform(4.0), weights=uniform(30.0),
                           extra=("tanh",))),
            Case("relu_no_bias", "B=2, D=2, H=3, relu, no biases",
                 recurrent(1, B=2, D=2, H=3, biases=False, extra=("relu",))))


def rnn_layer_cases() -> tuple[Case, ...]:
    return (Case("tanh", "T=4, B=2, D=3, H=3, entries ±U(1/4, 1)",
                 recurrent(1, B=2, D=3, H=3, steps=4, extra=("tanh",))),
            Case("relu", "T=4, B=2, D=3, H=3, entries ±U(1/4, 1)",
                 recurrent(1, B=2, D=3, H=3, steps=4, extra=("relu",))),
            Case("single_step", "T=1, B=1, D=1, H=1, tanh",
                 recurrent(1, B=1, D=1, H=1, steps=1, extra=("tanh",))),
            Case("saturating", "T=3, B=2, D=2, H=2, tanh, weights in [−30, 30]",
                 recurrent(1, B=2, D=2, H=2, steps=3, inputs=uniform(4.0), weights=uniform(30.0),
                           extra=("tanh",))))


def linear_cases() -> tuple[Case, ...]:
    return (Case("batched", "x (2, 3, 4), w (5, 4), b (5,)",
                 lambda rng: (rng.uniform(-4, 4, (2, 3, 4)), rng.uniform(-1, 1, (5, 4)),
                              rng.uniform(-1, 1, 5))),
            Case("batch1_width1", "x (1, 1), w (1, 1), b (1,)",
                 lambda rng: (rng.uniform(-4, 4, (1, 1)), rng.uniform(-1, 1, (1, 1)),
                              rng.uniform(-1, 1, 1))),
            Case("no_bias", "x (3, 2), w (4, 2) (not square: a transposed w fails), b = None",
                 lambda rng: (rng.uniform(-4, 4, (3, 2)), rng.uniform(-1, 1, (4, 2)), None)),
            Case("large", "x (4, 6) up to 1e3, w (3, 6) up to 30",
                 lambda rng: (rng.uniform(-1e3, 1e3, (4, 6)), rng.uniform(-30, 30, (3, 6)),
                              rng.uniform(-30, 30, 3))))


def sgd_cases() -> tuple[Case, ...]:
    return (Case("ordinary", "w (3, 4), lr = 0.1, weight_decay = 0.01",
                 lambda rng: (rng.uniform(-2, 2, (3, 4)), rng.uniform(-1, 1, (3, 4)), 0.1, 0.01)),
            Case("no_decay", "w (5,), lr = 0.5, weight_decay = 0",
                 lambda rng: (rng.uniform(-2, 2, 5), rng.uniform(-1, 1, 5), 0.5, 0.0)),
            Case("scalar_weight", "a 0-d w, weight_decay = 0.5",
                 lambda rng: (np.array(rng.uniform(-2, 2)), np.array(rng.uniform(-1, 1)), 0.1, 0.5)),
            Case("large", "w (2, 3) up to 1e3, grad up to 30",
                 lambda rng: (rng.uniform(-1e3, 1e3, (2, 3)), rng.uniform(-30, 30, (2, 3)),
                              0.01, 0.1)))


def adam_cases() -> tuple[Case, ...]:
    def step(shape: tuple[int, ...], t: int, wd: float, *, fresh: bool = False) -> Callable:
        def draw(rng: np.random.Generator) -> tuple:
            w, grad = rng.uniform(-2, 2, shape), rng.uniform(-1, 1, shape)
            m = np.zeros(shape) if fresh else rng.uniform(-1, 1, shape)
            v = np.zeros(shape) if fresh else rng.uniform(0.0, 1.0, shape) ** 2
            return (w, grad, m, v, t, 1e-3, 0.9, 0.999, 1e-8, wd)
        return draw

    return (Case("ordinary", "w (5,), t = 3, weight_decay = 0.01", step((5,), 3, 0.01)),
            Case("first_step", "w (1,), m = v = 0, t = 1", step((1,), 1, 0.01, fresh=True)),
            Case("matrix", "w (2, 3), t = 100, weight_decay = 0.1", step((2, 3), 100, 0.1)))


def clip_norm_cases() -> tuple[Case, ...]:
    def clipping(p: float, ratio: float) -> Callable:
        def draw(rng: np.random.Generator) -> tuple:
            grads = [rng.standard_normal(s) for s in ((3, 4), (5,), ())]
            seen = [g.astype(np.float32).astype(np.float64) for g in grads]
            return grads, float(np.float32(ratio * ref_stability.total_norm(seen, p))), p
        return draw

    def small(rng: np.random.Generator) -> tuple:
        grads = [rng.choice((-1.0, 1.0), size=s) * rng.uniform(1e-3, 2e-3, size=s)
                 for s in ((2,), (1, 1))]
        return grads, float(np.float32(0.1 * ref_stability.total_norm(grads, 2.0))), 2.0

    return (Case("clipping_l2", "three gradients (3, 4), (5,), (); max_norm = total/2",
                 clipping(2.0, 0.5)),
            Case("clipping_l1", "p = 1, max_norm = total/4", clipping(1.0, 0.25)),
            Case("clipping_max", "p = inf, max_norm = total/2", clipping(math.inf, 0.5)),
            Case("below_threshold", "max_norm = 2·total: the gradients come back unchanged",
                 clipping(3.0, 2.0)),
            Case("small_totals", "totals of a few 1e-3: the ε = 1e-6 added to the total shows",
                 small))


def clip_value_cases() -> tuple[Case, ...]:
    return (Case("ordinary", "gradients (3, 4) and (2,) in [−3, 3], clip_value = 1",
                 lambda rng: ([rng.uniform(-3, 3, (3, 4)), rng.uniform(-3, 3, 2)], 1.0)),
            Case("nonfinite", "±inf become ±c, NaN stays NaN",
                 lambda rng: ([np.array([math.inf, -math.inf, math.nan, 0.5, -3.0])], 1.0)),
            Case("zero_clip", "clip_value = 0: every finite element becomes 0",
                 lambda rng: ([rng.uniform(-3, 3, (2, 2))], 0.0)))


def dropout_cases() -> tuple[Case, ...]:
    """The exact claims of spec/dropout.md (claim 5): the result must not depend on ``rng``."""
    def x(rng: np.random.Generator) -> np.ndarray:
        return checks_dropout.nonzero_inputs(rng, (3, 4))

    return (Case("evaluation_identity", "training = False: h' = x for every p",
                 lambda rng: (x(rng), 0.3, False, RngArgument(0))),
            Case("p_zero_identity", "training, p = 0: h' = x",
                 lambda rng: (x(rng), 0.0, True, RngArgument(0))),
            Case("p_one_zeros", "training, p = 1: h' = 0",
                 lambda rng: (x(rng), 1.0, True, RngArgument(0))))


def with_cotangent(forward: str, cases: tuple[Case, ...], *, scalar: bool = False) -> tuple[Case, ...]:
    """The forward's cases with a cotangent first: U(−1, 1) of each of the forward's outputs (a
    tuple for several outputs), or one 0-d scalar for a scalar loss."""
    def drawn(case: Case) -> Case:
        def draw(rng: np.random.Generator) -> tuple:
            args = case.draw(rng)
            if scalar:
                return (np.array(rng.uniform(0.5, 2.0)), *args)
            out = getattr(contract_reference, forward)(*_call_values(_rounded(args)))
            cot = (tuple(rng.uniform(-1, 1, np.shape(o)) for o in out) if isinstance(out, tuple)
                   else rng.uniform(-1, 1, np.shape(out)))
            return (cot, *args)
        return Case(case.name, case.why + "; cotangent U(−1, 1)", draw)
    return tuple(drawn(c) for c in cases)


# ---- bounds: the tolerance model, as the checks apply it --------------------------------------

Bounds = Callable[[tuple, dict[str, Any], np.dtype], dict[str, tol.Bound | None]]


def exact_bounds(args: tuple, want: dict[str, Any], dtype: np.dtype) -> dict[str, tol.Bound | None]:
    return {k: None if w is None else tol.exact(w) for k, w in want.items()}


def linear_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    x, w, b = args
    return {"y": tol.accumulated(ref_linear.affine_magnitude(x, w, b), w.shape[1] + 1, dtype)}


def linear_vjp_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    g, x, w, b = args
    g2, x2 = np.abs(g.reshape(-1, w.shape[0])), np.abs(x.reshape(-1, w.shape[1]))
    n_rows = g2.shape[0]
    return {"dx": tol.accumulated(np.abs(g) @ np.abs(w), w.shape[0], dtype),
            "dw": tol.accumulated(g2.T @ x2, n_rows, dtype),
            "db": None if b is None else tol.accumulated(g2.sum(axis=0), n_rows, dtype)}


def sigmoid_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    x, alpha = args
    y = want["y"]
    bound = tol.elementwise(y, dtype)
    if alpha != 1.0:
        slope = y * ref_activations.sigmoid(-x, alpha)
        bound = bound + checks_activations.product(alpha * x, dtype).scaled(slope, "σ'(αx)")
    return {"y": bound}


def sigmoid_vjp_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    g, x, alpha = args
    s = ref_activations.sigmoid(x, alpha)
    ga = np.abs(g * alpha)
    bound = (tol.elementwise(want["dx"], dtype)
             + tol.elementwise(s, dtype).scaled(ga * np.abs(1.0 - 2.0 * s), "|gα|·|1 − 2φ|"))
    if alpha != 1.0:
        curvature = ga * s * ref_activations.sigmoid(-x, alpha) * np.abs(1.0 - 2.0 * s)
        bound = bound + checks_activations.product(alpha * x, dtype).scaled(curvature,
                                                                              "|gα|·|σ''(αx)|")
    return {"dx": bound}


def one_function_bound(name: str) -> Bounds:
    """tol.elementwise(want): tanh, softplus and its gradient (either variant)."""
    def bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
        return {name: tol.elementwise(want[name], dtype)}
    return bounds


def tanh_vjp_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    g, x = args
    return {"dx": checks_activations.tanh_gradient_bound(g, x, want["dx"], dtype)}


def prelu_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return {"y": checks_activations.product(want["y"], dtype)}


def prelu_vjp_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    g, x, a = args
    n = x.size // np.size(a) if np.ndim(a) == 1 and np.size(a) > 1 else x.size
    _, magnitude = ref_activations.prelu_vjp(np.abs(g), np.minimum(x, 0.0), a)
    return {"dx": checks_activations.product(want["dx"], dtype),
            "da": tol.accumulated(magnitude, n, dtype)}


def softmax_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return {"y_hat": checks_losses.softmax_bound(args[0], want["y_hat"], dtype)}


def log_softmax_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return {"log_y_hat": checks_bounds.log_softmax_bound(args[0], dtype)}


def reduced_bound(*, mean: bool) -> Bounds:
    def bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
        return {"L": checks_bounds.reduced_bound(*args, dtype, mean=mean)}
    return bounds


def cross_entropy_vjp_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    g, y, k = args
    y_hat, o = ref_losses.softmax(y), ref_losses.one_hot(k, y.shape[-1])
    per = np.abs(g) / max(k.size, 1)
    return {"dlogits": checks_losses.softmax_bound(y, y_hat, dtype).scaled(per, "|g|/N")
            + tol.accumulated((y_hat + o) * per, 2, dtype)}


def gru_cell_bound(cell: Callable) -> Bounds:
    def bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
        return {"h_new": ref_gru.cell_bound(cell, *args, dtype)}
    return bounds


def named(names: Sequence[str], values: Sequence[tol.Bound | None]) -> dict:
    return dict(zip(names, values, strict=True))


GRU_GRADIENTS = ("dx", "dh", "dw_ih", "dw_hh", "db_ih", "db_hh")


def gru_cell_vjp_bounds(cell_vjp: Callable) -> Bounds:
    def bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
        return named(GRU_GRADIENTS, ref_gru.cell_vjp_bounds(cell_vjp, *args, dtype))
    return bounds


def gru_layer_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return named(("y", "h_T"), ref_gru.layer_bounds(*args, dtype))


def gru_layer_vjp_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return named(("dx", "dh0", *GRU_GRADIENTS[2:]), ref_gru.layer_vjp_bounds(*args, dtype))


def lstm_cell_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    step = checks_propagation.lstm_step(*args, dtype)
    return {"h_new": checks_propagation.as_bound(step.h_new, "lstm_cell h'", dtype),
            "c_new": checks_propagation.as_bound(step.c_new, "lstm_cell c'", dtype)}


def lstm_cell_vjp_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    (gh, gc), *rest = args
    derived = checks_propagation.lstm_cell_backward(gh, gc, *rest, dtype)
    return {name: None if d is None else checks_propagation.as_bound(d, f"vjp_lstm_cell {name}",
                                                                      dtype)
            for name, d in zip(LSTM_CELL_GRADIENT_NAMES, derived, strict=True)}


def rnn_problem(args: tuple, g: Any = None) -> checks_rnn.Problem:
    *arrays, nonlinearity = args
    return checks_rnn.Problem(*arrays, nonlinearity, g)


def rnn_cell_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return {"h_new": checks_rnn.cell_bound(rnn_problem(args), dtype)}


def rnn_cell_vjp_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    g, *rest = args
    return named(checks_rnn.CELL_GRADIENTS,
                 checks_rnn.cell_gradient_bounds(rnn_problem(tuple(rest), g), dtype))


def rnn_layer_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return named(("y", "h_T"), ref_rnn.forward_error_bound(*args, dtype))


def rnn_layer_vjp_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return named(checks_rnn.LAYER_GRADIENTS, ref_rnn.bptt_error_bound(*args, dtype))


def sgd_bound(args: tuple, want: dict, dtype: np.dtype) -> dict:
    return {"w_new": checks_regularisation.sgd_bound(*args, dtype)}


def adam_bounds(*, decoupled: bool) -> Bounds:
    def bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
        return named(("w_new", "m_new", "v_new"),
                     checks_regularisation.adam_bounds(args, dtype, decoupled=decoupled))
    return bounds


def clip_norm_bounds(args: tuple, want: dict, dtype: np.dtype) -> dict:
    grads, max_norm, p = args
    T = float(want["total"])
    bound_T = checks_stability.total_bound(T, grads, p, dtype)
    c = min(max_norm / (T + ref_stability.CLIP_EPS), 1.0)
    out = {"total": bound_T}
    for i, g in enumerate(grads):
        out[f"clipped_{i}"] = (bound_T.scaled(np.abs(g) * c / (T + ref_stability.CLIP_EPS),
                                              "|g|·min(c, 1)/(T + ε)")
                               + tol.elementwise(want[f"clipped_{i}"], dtype))
    return out


# ---- statistical claims of the random operations ----------------------------------------------

def dropout_claims() -> dict:
    return {
        "parameters": {"p": list(checks_dropout.P_VALUES), "p_pairs": checks_dropout.P_PAIRS,
                       "shape": list(checks_dropout.SHAPE), "alpha": ALPHA},
        "claims": [
            {"holds": "always", "statement": "every element of dropout(x, p, True, rng) is exactly "
             "0 or x/(1 − p), up to tol.elementwise with 4 ulps (x/(1 − p) versus x·(1/(1 − p)))"},
            {"holds": "test", "test": "exact two-sided binomial", "statement": "the number of zeros "
             "among n non-zero inputs is Binomial(n, p)", "n": int(np.prod(checks_dropout.SHAPE))},
            {"holds": "test", "test": "two-sided z-test", "statement": "E[h' − h] = 0 over positive "
             "inputs, with the exact variance mean(h²)·p/(1 − p)/n"},
            {"holds": "test", "test": "exact two-sided binomial", "statement": "units dropped by two "
             "successive calls, by two seeds, and neighbours along each axis coincide with "
             "probability p² (p = p_pairs); the smaller half of |x| is dropped with probability p"},
            {"holds": "always", "statement": "evaluation mode is the identity for every p, p = 0 the "
             "identity and p = 1 zeros in training, bit for bit (value vectors of this id)"},
            {"holds": "always", "statement": "vjp_dropout(g, x, p, True, rng) is 0 exactly where "
             "dropout(x, p, True, rng) dropped and g/(1 − p) where it kept, from an equal "
             "generator state"}]}


def xavier_claims(*, normal: bool) -> dict:
    cases = []
    for param in checks_initialisation.XAVIER_CASES:
        shape, gain = param.values
        fan_in, fan_out = ref_initialisation.fans(shape)
        if normal:
            sigma = ref_initialisation.xavier_normal_std(fan_in, fan_out, gain)
            law = {"law": "N(0, sigma^2)", "sigma": sigma, "variance": sigma**2}
        else:
            bound = ref_initialisation.xavier_uniform_bound(fan_in, fan_out, gain)
            law = {"law": "U(-bound, bound)", "bound": bound, "variance": bound**2 / 3}
        cases.append({"shape": list(shape), "gain": gain, "fan_in": fan_in, "fan_out": fan_out,
                      **law})
    claims = [{"holds": "always", "statement": "the result has the requested shape"},
              {"holds": "test", "test": "Kolmogorov–Smirnov", "statement": "the elements follow "
               "the stated law"},
              {"holds": "test", "test": "two-sided z-test", "statement": "mean(W²) equals the "
               "variance, with Var[W²] = 2σ⁴ (normal) or 4·bound⁴/45 (uniform)"}]
    if not normal:
        claims.insert(1, {"holds": "always", "statement": "every |W| ≤ bound + tol.elementwise(bound)"})
    return {"parameters": {"alpha": ALPHA, "cases": cases,
                           "fans": "fan_in = shape[1]·∏shape[2:], fan_out = shape[0]·∏shape[2:]"},
            "claims": claims}


def torch_default_claims(*, recurrent_kinds: bool) -> dict:
    if recurrent_kinds:
        H, D = checks_initialisation.RNN_HIDDEN, checks_initialisation.RNN_INPUT
        parameters = {"input_size": D, "hidden_size": H,
                      "bound": ref_initialisation.torch_default_rnn_bound(H),
                      "shapes": {kind: {"w_ih": [k * H, D], "w_hh": [k * H, H], "b_ih": [k * H],
                                        "b_hh": [k * H]}
                                 for kind, k in sorted(ref_initialisation.GATES.items())}}
        law = "w_ih, w_hh, b_ih, b_hh ~ U(−1/√H, 1/√H); weights and biases tested apart"
    else:
        out, inp = checks_initialisation.LINEAR_OUT, checks_initialisation.LINEAR_IN
        parameters = {"out_features": out, "in_features": inp,
                      "bound": ref_initialisation.torch_default_linear_bound(inp),
                      "shapes": {"w": [out, inp], "b": [out]}}
        law = "w, b ~ U(−1/√in_features, 1/√in_features)"
    return {"parameters": {"alpha": ALPHA, **parameters},
            "claims": [{"holds": "always", "statement": "shapes as stated; every |element| ≤ "
                        "bound + tol.elementwise(bound)"},
                       {"holds": "test", "test": "Kolmogorov–Smirnov", "statement": law}]}


# ---- the table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Values:
    """Value vectors of one contract function under one spec id."""

    spec_id: str
    function: str
    cases: tuple[Case, ...]
    #: Names of the outputs in the order returned; "name[]" is a list (one output per item).
    outputs: tuple[str, ...]
    bounds: Bounds
    #: Where the bound comes from: "shared: <helper the check calls>" or "mirrored: <check>".
    bound_source: str
    #: "module:function" of the reference; default the contract's reference implementation.
    reference: str = ""
    #: Other spec ids whose cases of the same name an implementation may match instead.
    accepts_instead: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claims:
    """Statistical claims of a random contract function (no value vectors are possible)."""

    spec_id: str
    function: str
    claims: Callable[[], dict]


ACT = "checks/test_activations.py"
SHARED_BOUNDS = "shared: nnspec.checks.bounds"
SPLUS, SPLUS_T = "activations.softplus", "activations.softplus.torch_threshold"
TORCH_SOFTPLUS = "nnspec.reference.activations:softplus_torch_threshold"
GRU_CELLS, LSTM_CELLS = cell_cases(3), cell_cases(4, cell_state=True)

VECTORS: tuple[Values | Claims, ...] = (
    Values("linear.affine", "linear", linear_cases(), ("y",), linear_bound,
           "mirrored: checks/test_linear.py::test_linear_computes_x_wt_plus_b"),
    Values("linear.affine", "vjp_linear", with_cotangent("linear", linear_cases()),
           ("dx", "dw", "db"), linear_vjp_bounds,
           "mirrored: checks/test_linear.py::test_linear_gradients_match_reference (which "
           "draws g = 1; the expression holds for any g)"),
    Values("activations.threshold", "threshold", elementwise_cases(), ("y",), exact_bounds,
           "tol.exact"),
    Values("activations.sigmoid", "sigmoid", elementwise_cases(alpha=0.5), ("y",), sigmoid_bound,
           f"mirrored: {ACT}::check_sigmoid"),
    Values("activations.sigmoid", "vjp_sigmoid",
           with_cotangent("sigmoid", elementwise_cases(alpha=0.5)), ("dx",), sigmoid_vjp_bound,
           f"mirrored: {ACT}::check_sigmoid_gradient"),
    Values("activations.tanh", "tanh", elementwise_cases(), ("y",), one_function_bound("y"),
           f"mirrored: {ACT}::check_tanh"),
    Values("activations.tanh", "vjp_tanh", with_cotangent("tanh", elementwise_cases()), ("dx",),
           tanh_vjp_bound, "shared: nnspec.checks.test_activations.tanh_gradient_bound"),
    Values("activations.relu", "relu", elementwise_cases(), ("y",), exact_bounds, "tol.exact"),
    Values("activations.relu", "vjp_relu", with_cotangent("relu", elementwise_cases()), ("dx",),
           exact_bounds, "tol.exact"),
    Values(SPLUS, "softplus", elementwise_cases(), ("y",), one_function_bound("y"),
           f"mirrored: {ACT}::check_softplus", accepts_instead=(SPLUS_T,)),
    Values(SPLUS, "vjp_softplus", with_cotangent("softplus", elementwise_cases()), ("dx",),
           one_function_bound("dx"), f"mirrored: {ACT}::check_softplus_gradient",
           accepts_instead=(SPLUS_T,)),
    Values(SPLUS_T, "softplus", elementwise_cases(), ("y",), one_function_bound("y"),
           f"mirrored: {ACT}::check_softplus", reference=TORCH_SOFTPLUS, accepts_instead=(SPLUS,)),
    Values(SPLUS_T, "vjp_softplus", with_cotangent("softplus", elementwise_cases()), ("dx",),
           one_function_bound("dx"), f"mirrored: {ACT}::check_softplus_gradient",
           reference=TORCH_SOFTPLUS + "_vjp", accepts_instead=(SPLUS,)),
    Values("activations.prelu", "prelu", prelu_cases(), ("y",), prelu_bound,
           f"mirrored: {ACT}::check_prelu"),
    Values("activations.prelu", "vjp_prelu", with_cotangent("prelu", prelu_cases()), ("dx", "da"),
           prelu_vjp_bounds, f"mirrored: {ACT}::check_prelu_gradient"),
    Values("activations.maxout", "maxout", maxout_cases(), ("h",), exact_bounds, "tol.exact"),
    Values("activations.maxout", "vjp_maxout", with_cotangent("maxout", maxout_cases()), ("dx",),
           exact_bounds, f"tol.exact, as {ACT}::check_maxout_gradient where every unit has one "
           "maximum (no ties in these cases)"),
    Values("losses.softmax", "softmax", logit_cases(), ("y_hat",), softmax_bound,
           "shared: nnspec.checks.test_losses.softmax_bound"),
    Values("losses.log_softmax", "log_softmax", logit_cases(), ("log_y_hat",), log_softmax_bound,
           f"{SHARED_BOUNDS}.log_softmax_bound"),
    Values("losses.cross_entropy", "cross_entropy", position_cases(), ("L",),
           reduced_bound(mean=True), f"{SHARED_BOUNDS}.reduced_bound (mean)"),
    Values("losses.sequence_mean", "cross_entropy", sequence_cases(), ("L",),
           reduced_bound(mean=True), f"{SHARED_BOUNDS}.reduced_bound (mean)"),
    Values("losses.sequence_mean", "vjp_cross_entropy",
           with_cotangent("cross_entropy", sequence_cases(), scalar=True), ("dlogits",),
           cross_entropy_vjp_bound,
           "mirrored: checks/test_losses.py::check_cross_entropy_gradient"),
    Values("losses.sequence_sum", "cross_entropy_sum", sequence_cases(), ("L",),
           reduced_bound(mean=False), f"{SHARED_BOUNDS}.reduced_bound (sum)"),
    Values("gru.cell.pytorch", "gru_cell", GRU_CELLS, ("h_new",), gru_cell_bound(ref_gru.cell_pytorch),
           "shared: nnspec.reference.gru.cell_bound(cell_pytorch, …)"),
    Values("gru.cell.pytorch", "vjp_gru_cell", with_cotangent("gru_cell", GRU_CELLS), GRU_GRADIENTS,
           gru_cell_vjp_bounds(ref_gru.cell_pytorch_vjp),
           "shared: nnspec.reference.gru.cell_vjp_bounds(cell_pytorch_vjp, …)"),
    Values("gru.cell.textbook", "gru_cell_textbook", GRU_CELLS, ("h_new",),
           gru_cell_bound(ref_gru.cell_textbook),
           "shared: nnspec.reference.gru.cell_bound(cell_textbook, …)"),
    Values("gru.cell.textbook", "vjp_gru_cell_textbook",
           with_cotangent("gru_cell_textbook", GRU_CELLS), GRU_GRADIENTS,
           gru_cell_vjp_bounds(ref_gru.cell_textbook_vjp),
           "shared: nnspec.reference.gru.cell_vjp_bounds(cell_textbook_vjp, …)"),
    Values("gru.layer", "gru_layer", gru_layer_cases(), ("y", "h_T"), gru_layer_bounds,
           "shared: nnspec.reference.gru.layer_bounds"),
    Values("gru.layer", "vjp_gru_layer", with_cotangent("gru_layer", gru_layer_cases()),
           ("dx", "dh0", *GRU_GRADIENTS[2:]), gru_layer_vjp_bounds,
           "shared: nnspec.reference.gru.layer_vjp_bounds"),
    Values("lstm.cell", "lstm_cell", LSTM_CELLS, ("h_new", "c_new"), lstm_cell_bounds,
           "shared: nnspec.checks.propagation.lstm_step and as_bound"),
    Values("lstm.cell", "vjp_lstm_cell", with_cotangent("lstm_cell", LSTM_CELLS),
           LSTM_CELL_GRADIENT_NAMES, lstm_cell_vjp_bounds,
           "shared: nnspec.checks.propagation.lstm_cell_backward"),
    Values("rnn.cell", "rnn_cell", rnn_cell_cases(), ("h_new",), rnn_cell_bound,
           "shared: nnspec.checks.test_rnn.cell_bound"),
    Values("rnn.cell", "vjp_rnn_cell", with_cotangent("rnn_cell", rnn_cell_cases()),
           checks_rnn.CELL_GRADIENTS, rnn_cell_vjp_bounds,
           "shared: nnspec.checks.test_rnn.cell_gradient_bounds"),
    Values("rnn.layer", "rnn_layer", rnn_layer_cases(), ("y", "h_T"), rnn_layer_bounds,
           "shared: nnspec.reference.rnn.forward_error_bound"),
    Values("rnn.layer", "vjp_rnn_layer", with_cotangent("rnn_layer", rnn_layer_cases()),
           checks_rnn.LAYER_GRADIENTS, rnn_layer_vjp_bounds,
           "shared: nnspec.reference.rnn.bptt_error_bound"),
    Values("regularisation.sgd_step.torch", "sgd_step", sgd_cases(), ("w_new",), sgd_bound,
           "shared: nnspec.checks.test_regularisation.sgd_bound"),
    Values("regularisation.adam_l2", "adam_step", adam_cases(), ("w_new", "m_new", "v_new"),
           adam_bounds(decoupled=False),
           "shared: nnspec.checks.test_regularisation.adam_bounds(decoupled=False)"),
    Values("regularisation.adamw", "adamw_step", adam_cases(), ("w_new", "m_new", "v_new"),
           adam_bounds(decoupled=True),
           "shared: nnspec.checks.test_regularisation.adam_bounds(decoupled=True)"),
    Values("stability.clip_grad_norm", "clip_grad_norm", clip_norm_cases(), ("clipped[]", "total"),
           clip_norm_bounds, "shared: nnspec.checks.test_stability.total_bound for the total; "
           "mirrored: checks/test_stability.py::check_clip_grad_norm for the clipped gradients"),
    Values("stability.clip_grad_value", "clip_grad_value", clip_value_cases(), ("clipped[]",),
           exact_bounds, "tol.exact"),
    Values("dropout.inverted", "dropout", dropout_cases(), ("y",), exact_bounds,
           "tol.exact (spec/dropout.md, claim 5)"),
    Values("dropout.inverted", "vjp_dropout", with_cotangent("dropout", dropout_cases()), ("dx",),
           exact_bounds, "tol.exact (spec/dropout.md, claims 5 and 6)"),
    Claims("dropout.inverted", "dropout", dropout_claims),
    Claims("initialisation.xavier_uniform", "xavier_uniform", lambda: xavier_claims(normal=False)),
    Claims("initialisation.xavier_normal", "xavier_normal", lambda: xavier_claims(normal=True)),
    Claims("initialisation.torch_default_linear", "torch_default_linear",
           lambda: torch_default_claims(recurrent_kinds=False)),
    Claims("initialisation.torch_default_rnn", "torch_default_rnn",
           lambda: torch_default_claims(recurrent_kinds=True)),
)

#: Why a spec id with a contract function has no vectors of its own. Other ids without vectors
#: are listed by :func:`export` as having no contract function or no recipe yet.
NOT_EXPORTED = {
    "rnn.cell.linear": "checked through the contract's linear on [x, h]: linear.affine's vectors "
                       "cover that function",
    "regularisation.sgd_step.seed000": "reached through sgd_step with weight_decay = λ/|B|: "
                                       "regularisation.sgd_step.torch's vectors cover it",
    "regularisation.sgd_step.textbook": "reached through sgd_step with weight_decay = λ: "
                                        "regularisation.sgd_step.torch's vectors cover it",
    "stability.deep_linear_product": "checked through the contract's linear, chained: "
                                     "linear.affine's vectors cover that function",
    "dropout.inverted_keep_prob": "a parametrisation (q = 1 − p) with no contract function of its own",
}


# ---- generation ------------------------------------------------------------------------------

def _rounded(value: Any) -> Any:
    """Float arrays rounded to float32 values (kept as float64): one expected value then serves
    float32 and float64 implementations, which both receive exactly these inputs."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float32).astype(np.float64)
    if isinstance(value, tuple | list):
        return type(value)(_rounded(v) for v in value)
    return value


def _call_values(args: Sequence[Any]) -> list[Any]:
    """The arguments of a call: a fresh numpy Generator for each :class:`RngArgument`."""
    return [np.random.default_rng(a.seed) if isinstance(a, RngArgument) else a for a in args]


def resolve(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def reference_of(row: Values) -> str:
    return row.reference or f"nnspec.implementations.reference:{row.function}"


def parameters(function: str) -> list[str | tuple[str, ...]]:
    """The parameter names of a contract function, from its signature in checks/contract.py: a
    name, or a tuple of names for a tuple argument such as ``(gh, gc)``."""
    text = contract.ALL[function]
    inner, depth, start, parts = text[text.index("(") + 1:], 0, 0, []
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                parts.append(inner[start:i])
                break
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    names: list[str | tuple[str, ...]] = []
    for part in (p.split("=")[0].strip() for p in parts):
        names.append(tuple(n.strip() for n in part.strip("()").split(",")) if part.startswith("(")
                     else part)
    return names


def _float_name(x: float) -> float | str:
    return x if math.isfinite(x) else {math.inf: "inf", -math.inf: "-inf"}.get(x, "nan")


def _arg(name: str | tuple[str, ...], value: Any, arrays: dict[str, np.ndarray]) -> dict:
    """The JSON description of one argument; its arrays go into ``arrays``."""
    label = name if isinstance(name, str) else "(" + ", ".join(name) + ")"
    if value is None:
        return {"name": label, "kind": "none"}
    if isinstance(value, RngArgument):
        return {"name": label, "kind": "generator", "seed": value.seed,
                "note": "any random generator: the result must not depend on it"}
    if isinstance(value, np.ndarray):
        key = re.sub(r"\W", "_", label)
        arrays[key] = value
        return {"name": label, "kind": "array", "key": key, "dtype": str(value.dtype),
                "shape": list(value.shape)}
    if isinstance(value, tuple | list):
        names = name if isinstance(name, tuple) else [f"{name}_{i}" for i in range(len(value))]
        return {"name": label, "kind": "tuple" if isinstance(value, tuple) else "list",
                "items": [_arg(n, v, arrays) for n, v in zip(names, value, strict=True)]}
    if isinstance(value, bool):
        return {"name": label, "kind": "scalar", "type": "bool", "value": value}
    if isinstance(value, int | np.integer):
        return {"name": label, "kind": "scalar", "type": "int", "value": int(value)}
    if isinstance(value, float):
        return {"name": label, "kind": "scalar", "type": "float", "value": _float_name(value)}
    if isinstance(value, str):
        return {"name": label, "kind": "scalar", "type": "str", "value": value}
    raise TypeError(f"argument {label} of type {type(value).__name__} has no vector encoding")


def _leaves(out: Any, names: tuple[str, ...]) -> list[tuple[str, list[int], Any]]:
    """(name, path, value) of each output: the path indexes into the returned tuples and lists."""
    if len(names) == 1 and names[0].endswith("[]"):
        return [(f"{names[0][:-2]}_{j}", [j], v) for j, v in enumerate(out)]
    if not isinstance(out, tuple | list):
        if len(names) != 1:
            raise ValueError(f"one output returned, but the table names {names}")
        return [(names[0], [], out)]
    if len(out) != len(names):
        raise ValueError(f"{len(out)} outputs returned, but the table names {names}")
    leaves: list[tuple[str, list[int], Any]] = []
    for i, (name, value) in enumerate(zip(names, out, strict=True)):
        if name.endswith("[]"):
            leaves += [(f"{name[:-2]}_{j}", [i, j], v) for j, v in enumerate(value)]
        else:
            leaves.append((name, [i], value))
    return leaves


def arguments(row: Values, case: Case, seed: int) -> tuple:
    """The positional arguments of a case: drawn from a generator seeded by ``seed`` and the case's
    name (so adding a case changes no other), float arrays rounded to float32 values."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{row.spec_id}/{row.function}/{case.name}".encode())])
    args = _rounded(case.draw(rng))
    names = parameters(row.function)
    if len(args) != len(names):
        raise ValueError(f"{row.function} case {case.name!r} draws {len(args)} arguments, but "
                         f"the contract names {len(names)}: {names}")
    return args


def _case_file(row: Values, case: Case, seed: int, folder: Path, spec_tolerance: str) -> dict:
    args = arguments(row, case, seed)
    names = parameters(row.function)
    reference = reference_of(row)
    out = resolve(reference)(*_call_values(args))
    arrays: dict[str, np.ndarray] = {}
    arg_json = [_arg(n, v, arrays) for n, v in zip(names, args, strict=True)]
    leaves = _leaves(out, row.outputs)
    want = {name: None if v is None else np.asarray(v, dtype=np.float64) for name, _, v in leaves}
    bounds = {dt.name: row.bounds(args, want, dt) for dt in DTYPES}
    outputs = []
    for name, path, _ in leaves:
        if want[name] is None:
            outputs.append({"name": name, "path": path, "kind": "none"})
            continue
        arrays[f"expected_{name}"] = want[name]
        entry = {"name": name, "path": path, "kind": "array", "shape": list(want[name].shape),
                 "expected": f"expected_{name}", "bound": {}, "rule": {}}
        for dt in DTYPES:
            b = bounds[dt.name][name]
            atol = np.broadcast_to(np.asarray(b.atol, dtype=np.float64), want[name].shape)
            arrays[f"bound_{dt.name}_{name}"] = np.array(atol, order="C")
            entry["bound"][dt.name] = f"bound_{dt.name}_{name}"
            entry["rule"][dt.name] = b.rule
        outputs.append(entry)
    stem = f"{row.function}.{case.name}"
    _write_npz(folder / f"{stem}.npz", arrays)
    document = {
        "schema": SCHEMA, "spec_id": row.spec_id, "case": case.name, "description": case.why,
        "function": row.function, "signature": contract.ALL[row.function],
        "reference": reference, "arrays": f"{stem}.npz", "args": arg_json, "outputs": outputs,
        "tolerance": {"spec_rule": spec_tolerance, "bound_source": row.bound_source,
                      "dtypes": [dt.name for dt in DTYPES],
                      "statement": "pass if |got − expected| ≤ bound elementwise (equal "
                                   "infinities and NaN against NaN count as equal); the bounds "
                                   "hold for these inputs only"},
    }
    if row.accepts_instead:
        document["accepts_instead"] = [f"{sid}/{stem}.json" for sid in row.accepts_instead]
    _write_json(folder / f"{stem}.json", document)
    return {"spec_id": row.spec_id, "function": row.function, "case": case.name, "kind": "values",
            "json": f"{row.spec_id}/{stem}.json", "npz": f"{row.spec_id}/{stem}.npz"}


def _claims_file(row: Claims, folder: Path, spec_tolerance: str) -> dict:
    stem = f"{row.function}.claims"
    _write_json(folder / f"{stem}.json", {
        "schema": SCHEMA, "spec_id": row.spec_id, "function": row.function,
        "signature": contract.ALL[row.function], "kind": "statistical",
        "tolerance": {"spec_rule": spec_tolerance},
        "why": "a random operation: its output is a sample, so there is no value to compare; "
               "an implementation is checked by these claims, each exact or a hypothesis test "
               f"at false-alarm rate α = {ALPHA:g} (checks/stats.py)",
        **row.claims()})
    return {"spec_id": row.spec_id, "function": row.function, "case": "claims",
            "kind": "statistical", "json": f"{row.spec_id}/{stem}.json"}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (a zip of .npy files) with fixed timestamps, so an export is reproducible byte for
    byte; ``numpy.load(path, allow_pickle=False)`` reads it."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, a in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.array(a, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())


def _dumps(value: Any, level: int = 0) -> str:
    """JSON, one key per line, lists of scalars (shapes, paths) on one line."""
    pad = " " * (level + 1)
    if isinstance(value, dict) and value:
        items = (f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, level + 1)}"
                 for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return ("[\n" + ",\n".join(pad + _dumps(v, level + 1) for v in value) + "\n"
                + " " * level + "]")
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _write_json(path: Path, document: dict) -> None:
    path.write_text(_dumps(document) + "\n", encoding="utf-8")


def planned() -> list[tuple[str, str, str]]:
    """(spec id, function, case) of every value vector, without computing anything."""
    return [(row.spec_id, row.function, case.name) for row in VECTORS if isinstance(row, Values)
            for case in row.cases]


def contract_ids() -> dict[str, str | None]:
    """Each contract function of the reference implementation → the spec id its reference
    function's docstring names (None if it names none)."""
    by_function = {name: sid for sid, names in speclib.reference_index().items() for name in names}
    out: dict[str, str | None] = {}
    for fn in contract_reference.__all__:
        if fn in contract.ALL:
            f = getattr(contract_reference, fn)
            out[fn] = by_function.get(f"{f.__module__}.{f.__name__}")
    return out


def _why_not(spec_id: str, ids: dict[str, str | None]) -> str:
    functions = sorted(fn for fn, sid in ids.items() if sid == spec_id)
    if functions:
        return f"no input recipe in nnspec/vectors.py (VECTORS) yet for {', '.join(functions)}"
    return "no contract function computes this id (its checks run on the reference)"


def _clear_previous(out: Path) -> None:
    """Make ``out`` ready: absent, empty, or a previous export (whose files alone are removed)."""
    index = out / "index.json"
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    try:
        previous = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileExistsError(f"{out} is not empty and holds no readable index.json of a previous "
                              f"export; refusing to write into it ({exc})") from exc
    if not str(previous.get("schema", "")).startswith("nnspec-vectors/"):
        raise FileExistsError(f"{out}/index.json is not an nnspec vectors index; refusing to "
                              f"write into {out}")
    for spec_id in {c["spec_id"] for c in previous.get("cases", [])}:
        shutil.rmtree(out / spec_id, ignore_errors=True)
    for name in ("index.json", "README.md"):
        (out / name).unlink(missing_ok=True)


def export(out: Path, *, seed: int = 0, command: str | None = None) -> dict:
    """Write every vector under ``out`` (index.json, README.md, <spec id>/<case>.json + .npz)."""
    out = Path(out)
    _clear_previous(out)
    entries = speclib.load()
    cases = []
    for row in VECTORS:
        folder = out / row.spec_id
        folder.mkdir(exist_ok=True)
        tolerance = entries[row.spec_id].tolerance
        if isinstance(row, Values):
            cases += [_case_file(row, case, seed, folder, tolerance) for case in row.cases]
        else:
            cases.append(_claims_file(row, folder, tolerance))
    exported = {c["spec_id"] for c in cases}
    ids = contract_ids()
    without_recipe = sorted(fn for fn in ids if fn not in {row.function for row in VECTORS})
    skipped = [{"spec_id": sid, "reason": NOT_EXPORTED.get(sid) or _why_not(sid, ids)}
               for sid in entries if sid not in exported]
    skipped += [{"function": fn, "reason": f"no input recipe in nnspec/vectors.py (VECTORS) yet; "
                 f"its reference function names {ids[fn] or 'no spec id'}"}
                for fn in without_recipe]
    index = {
        "schema": SCHEMA,
        "generated": {"by": "nnspec vectors", "command": command or f"nnspec vectors --out {out} "
                      f"--seed {seed}", "seed": seed, "nnspec_version": nnspec.__version__,
                      "numpy_version": np.__version__, "python_version": platform.python_version()},
        "dtypes": [dt.name for dt in DTYPES],
        "cases": cases,
        "skipped": skipped,
    }
    _write_json(out / "index.json", index)
    (out / "README.md").write_text(readme(index), encoding="utf-8")
    return index


# ---- loading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """One expected output: ``expected`` is None where the contract returns None."""

    name: str
    path: tuple[int, ...]
    expected: np.ndarray | None
    bounds: dict[str, np.ndarray]
    rules: dict[str, str]


@dataclass(frozen=True)
class VectorCase:
    """One case read back from its JSON and .npz."""

    spec_id: str
    case: str
    function: str
    document: dict
    args: tuple
    outputs: tuple[Output, ...]
    reference: str

    def call_args(self) -> list[Any]:
        """The positional arguments, with a fresh numpy Generator for each generator argument."""
        return _call_values(self.args)

    def bound(self, output: Output, dtype: np.dtype | type) -> tol.Bound:
        """The stored bound of ``output`` for an implementation computing in ``dtype``."""
        name = np.dtype(dtype).name
        if name not in output.bounds:
            raise KeyError(f"{self.spec_id}/{self.function}.{self.case}: no bound for {name}; "
                           f"the vectors hold bounds for {sorted(output.bounds)}")
        return tol.Bound(output.bounds[name], output.rules[name] + " [stored in the vectors]",
                         tol.unit_roundoff(dtype))


def _decode(arg: dict, arrays: Any) -> Any:
    kind = arg["kind"]
    if kind == "none":
        return None
    if kind == "generator":
        return RngArgument(arg["seed"])
    if kind == "array":
        return arrays[arg["key"]]
    if kind in ("tuple", "list"):
        items = [_decode(a, arrays) for a in arg["items"]]
        return tuple(items) if kind == "tuple" else items
    value = arg["value"]
    if arg["type"] == "float":
        return float(value)
    return value


def load_index(directory: Path) -> dict:
    return json.loads((Path(directory) / "index.json").read_text(encoding="utf-8"))


def load_case(path: Path) -> VectorCase:
    """Read a case from its JSON file and the .npz beside it (``allow_pickle=False``)."""
    path = Path(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    with np.load(path.parent / document["arrays"], allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    outputs = tuple(
        Output(o["name"], tuple(o["path"]), None if o["kind"] == "none" else arrays[o["expected"]],
               {dt: arrays[key] for dt, key in o.get("bound", {}).items()}, dict(o.get("rule", {})))
        for o in document["outputs"])
    return VectorCase(document["spec_id"], document["case"], document["function"], document,
                      tuple(_decode(a, arrays) for a in document["args"]), outputs,
                      document["reference"])


def output_at(value: Any, path: Sequence[int]) -> Any:
    """The output a path names inside a returned value (tuples and lists, nested)."""
    for i in path:
        value = value[i]
    return value


# ---- the README of an export -----------------------------------------------------------------

def readme(index: dict) -> str:
    gen = index["generated"]
    ids = sorted({c["spec_id"] for c in index["cases"]})
    n_values = sum(c["kind"] == "values" for c in index["cases"])
    contents = (f"{n_values} value cases and {len(index['cases']) - n_values} sets of statistical "
                f"claims for {len(ids)} spec ids")
    skipped = "\n".join(f"- `{s.get('spec_id') or s.get('function') + '()'}`: {s['reason']}"
                        for s in index["skipped"])
    return f"""# nnspec test vectors

Generated by `{gen['command']}`
(nnspec {gen['nnspec_version']}, NumPy {gen['numpy_version']}, seed {gen['seed']}).
Do not edit: regenerate. The same seed gives the same case files, byte for byte.

Contents: {contents}.

Each case is one call of a function of nnspec's implementation contract
(`checks/contract.py`): the arguments, the float64 reference's outputs, and for float32 and
float64 the per-element bound an implementation's result must stay within. With them a C++, Rust
or JAX implementation is checked without running Python.

## Layout

- `index.json`: `schema`, `generated` (command, seed, nnspec, NumPy and Python versions),
  `dtypes`, `cases` (spec id, function, case, kind, files) and `skipped` (ids and functions
  without vectors, each with its reason).
- `<spec id>/<function>.<case>.json`: one call. `signature` is the contract's; `args` lists the
  positional arguments in order: `array` (in the .npz under `key`, with `dtype` and `shape`),
  `scalar` (inline: `type` int, float, bool or str, e.g. maxout's k, Adam's t, the RNN's
  nonlinearity; a non-finite float is the string "inf",
  "-inf" or "nan"), `none` (pass your language's None/null/nullopt), `tuple` and `list`
  (`items`), and `generator` (any random generator: these calls must not depend on it).
  `outputs` lists what the call returns: `path` indexes into returned tuples and lists (`[]`
  for a single array), `expected` and `bound.float32` / `bound.float64` name arrays in the .npz,
  `rule` states how each bound was derived; `kind: none` means the contract returns None there
  (an absent bias's gradient). `tolerance.spec_rule` is the spec's tolerance rule and
  `tolerance.bound_source` the helper the bound comes from (below).
- `<spec id>/<function>.<case>.npz`: the arrays, plain `.npy` files in a zip:
  `numpy.load(path, allow_pickle=False)`, cnpy (C++), ndarray-npy or npyz (Rust),
  `jnp.load` (JAX).
- `<spec id>/<function>.claims.json`: the statistical claims of a random operation (dropout,
  the initialisers). Its output is a sample, so no value can be compared: the claims state the
  parameters, what holds always and which hypothesis test (false-alarm rate α) checks the rest.

## Checking an implementation

Float arrays are stored as float64 but hold float32-representable values, so converting them to
float32 is exact and one expected value serves both precisions: the reference computed it in
float64 on exactly the inputs your implementation receives. Integer arrays (class targets) are
int64. Scalars are passed as given: where a check rounds one to the implementation's dtype
(sigmoid's `alpha`, `clip_value`) it is float32-representable; elsewhere (learning rates, β, ε)
the bound allows for the implementation rounding it. Call the function, then for every output
require |got − expected| ≤ bound elementwise for your dtype, counting equal infinities and NaN
against NaN as equal. There are bounds for float32 and float64 only. A case whose JSON lists
`accepts_instead` also passes if the result meets the case of the same name under one of those
spec ids (softplus: the exact function or PyTorch's linear-above-20 variant).

## Where the bounds come from

Every bound is built from the rules of `checks/tolerance.py` (tol.exact, tol.elementwise,
tol.accumulated, composed with Bound.scaled and +) on these inputs, exactly as nnspec's checks
build it. `bound_source` says how: `shared:` names the helper the check itself calls (the GRU's,
RNN's and LSTM's running error bounds, the losses' log-sum-exp bound, the optimisers' bounds);
`mirrored:` names the check whose expression, written inline there, the exporter evaluates (nnspec's
`checks/test_vectors.py` confirms, by feeding a result just inside and just outside the stored
float32 bound to that check, that both agree). The bounds hold for these inputs only. The
expected values come from this machine's float64 reference: another platform's libm may change
their last bits, far inside every float64 bound.

## Why the weights are not constant and the states not zero

Recurrent cases draw every weight, bias and state entry independently and away from zero
(±U(1/4, 1), or uniform up to 30 where gates should saturate), with batch and width 1 as edge
cases. Simpler inputs would let wrong implementations pass:

- GRU: PyTorch's cell computes n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), the seeds'
  textbook cell n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn). With h = 0 and b_hn = 0 (a zero
  initial state, the first step) both give tanh(W_in x + b_in); with constant weights (equal
  rows in each gate block, one bias value per block) every unit has the same r, so
  r ⊙ (W_hn h) = W_hn (r ⊙ h) and the two agree at every step once b_hn = 0. Vectors built
  that way accept either variant as the other (checks/test_gru.py shows both).
- LSTM: with equal weight blocks (constant weights) the gates i, f, g, o are computed from
  identical rows, so reading the blocks in any of the 24 orders gives the same output; with
  h = c = 0, w_hh multiplies zero (its block order is invisible) and the forget gate multiplies
  c = 0 (a wrong forget block, or a negated one, is invisible); checks/test_lstm.py shows both.

nnspec's `checks/test_vectors.py` asserts that these vectors reject the textbook GRU cell as
`gru_cell` (and PyTorch's as `gru_cell_textbook`) and every permutation of the LSTM gate blocks.

## Spec ids and functions without value vectors

{skipped}
"""
