"""Input recipes of the test vectors: each case's arguments, drawn from a seeded generator.

A :class:`Case` names one input recipe and why it is there; the ``*_cases`` functions give the
cases of one contract function. Designed inputs (the activations' extremes, the large logits,
dropout's non-zero inputs) come from nnspec.checks.harness.designs, where the checks take them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnspec.checks.harness import designs
from nnspec.implementations import reference as contract_reference
from nnspec.reference import stability as ref_stability


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


def rounded(value: Any) -> Any:
    """Float arrays rounded to float32 values (kept as float64): one expected value then serves
    float32 and float64 implementations, which both receive exactly these inputs."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float32).astype(np.float64)
    if isinstance(value, tuple | list):
        return type(value)(rounded(v) for v in value)
    return value


def call_values(args: Sequence[Any]) -> list[Any]:
    """The arguments of a call: a fresh numpy Generator for each :class:`RngArgument`."""
    return [np.random.default_rng(a.seed) if isinstance(a, RngArgument) else a for a in args]


def uniform(m: float) -> Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]:
    """Draws of U(−m, m) of a given shape."""
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
             Case("saturating", "EXTREMES (checks/harness/designs.py): ±1e30, ±710, −745.5, "
                  "±100, ±40, ±20.5 … where a careless formula overflows or saturates",
                  lambda rng: with_alpha(designs.EXTREMES.copy(), 1.0))]
    if alpha is not None:
        cases.append(Case("saturating_slope", "EXTREMES with slope α = 0.5",
                          lambda rng: (designs.EXTREMES.copy(), 0.5)))
    return tuple(cases)


def prelu_cases() -> tuple[Case, ...]:
    """x and the slope a of prelu: per channel, a 0-d slope, the (1, 1) edge and the extremes."""
    return (Case("per_channel", "x (2, 3, 4), one slope per channel (axis 1)",
                 lambda rng: (rng.uniform(-4.0, 4.0, (2, 3, 4)), rng.uniform(-1.0, 1.0, 3))),
            Case("scalar_slope", "x (3, 5), a 0-d slope",
                 lambda rng: (rng.uniform(-4.0, 4.0, (3, 5)), np.array(0.25))),
            Case("batch1_width1", "x (1, 1), slope (1,)",
                 lambda rng: (rng.uniform(-4.0, 4.0, (1, 1)), rng.uniform(-1.0, 1.0, 1))),
            Case("saturating", "EXTREMES with a = 0.25",
                 lambda rng: (designs.EXTREMES.copy(), np.array(0.25))))


def maxout_cases() -> tuple[Case, ...]:
    """Distinct pieces: with ties the gradient is any split of g (the check allows it), which a
    value vector cannot state."""
    return (Case("ordinary", "z (3, 12), k = 3, distinct values",
                 lambda rng: (distinct(rng, (3, 12), 0.25), 3)),
            Case("batch1_width1", "z (1, 1), k = 1", lambda rng: (distinct(rng, (1, 1), 1.0), 1)),
            Case("large", "z (2, 8), k = 4, distinct values up to ±1e3",
                 lambda rng: (distinct(rng, (2, 8), 125.0), 4)))


def logit_cases() -> tuple[Case, ...]:
    """Logits of softmax and log_softmax: ordinary, one class, a sequence and the large logits."""
    return (Case("ordinary", "(4, 5) logits in [−4, 4]", lambda rng: (rng.uniform(-4, 4, (4, 5)),)),
            Case("one_class", "the (1, 1) edge: softmax is 1", lambda rng: (rng.uniform(-4, 4, (1, 1)),)),
            Case("sequence", "(T, B, C) = (3, 2, 5) logits in [−30, 30]",
                 lambda rng: (rng.uniform(-30, 30, (3, 2, 5)),)),
            Case("large_logits", "LARGE_LOGITS (checks/harness/designs.py): gaps of 1e3 and 1e4 "
                 "(an unshifted softmax overflows)", lambda rng: (designs.LARGE_LOGITS.copy(),)))


def targets(rng: np.random.Generator, shape: tuple[int, ...], C: int) -> np.ndarray:
    """Integer class targets in [0, C) of the given shape."""
    return rng.integers(0, C, shape).astype(np.int64)


def position_cases() -> tuple[Case, ...]:
    """cross_entropy of one position (no leading axes), as losses.cross_entropy's check calls it."""
    return (Case("one_position", "y (5,), k ()",
                 lambda rng: (rng.uniform(-4, 4, 5), targets(rng, (), 5))),
            Case("one_class", "y (1,), k () = 0: ℓ = 0",
                 lambda rng: (rng.uniform(-4, 4, 1), np.array(0, dtype=np.int64))))


def sequence_cases() -> tuple[Case, ...]:
    """(logits, targets) of a cross-entropy over leading positions."""
    return (Case("sequence", "y (T, B, C) = (3, 2, 5), k (3, 2)",
                 lambda rng: (rng.uniform(-4, 4, (3, 2, 5)), targets(rng, (3, 2), 5))),
            Case("batch1_one_class", "y (1, 1), k (1,) = [0]",
                 lambda rng: (rng.uniform(-4, 4, (1, 1)), np.zeros(1, dtype=np.int64))),
            Case("saturating", "y (4, 6) in [−30, 30]",
                 lambda rng: (rng.uniform(-30, 30, (4, 6)), targets(rng, (4,), 6))),
            Case("large_logits", "LARGE_LOGITS with LARGE_TARGETS (checks/harness/designs.py)",
                 lambda rng: (designs.LARGE_LOGITS.copy(), designs.LARGE_TARGETS.copy())))


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
    kw: dict[str, Any] = {"cell_state": cell_state}
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
    """gru_layer over T steps: separating entries, a single step, and saturating weights."""
    return (Case("separating", "T=4, B=2, D=3, H=3, every entry ±U(1/4, 1)",
                 recurrent(3, B=2, D=3, H=3, steps=4)),
            Case("single_step", "T=1, B=1, D=1, H=1", recurrent(3, B=1, D=1, H=1, steps=1)),
            Case("saturating", "T=3, B=2, D=2, H=2, weights in [−30, 30]",
                 recurrent(3, B=2, D=2, H=2, steps=3, inputs=uniform(4.0), weights=uniform(30.0))))


def rnn_cell_cases() -> tuple[Case, ...]:
    """rnn_cell with tanh and relu, with and without biases, and saturating weights."""
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
    """rnn_layer over T steps with tanh and relu, a single step, and saturating weights."""
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
    """linear: batched, the (1, 1) edge, no bias (w not square), and large magnitudes."""
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
    """(w, grad, lr, weight_decay) of sgd_step, with and without decay, 0-d and large."""
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
    """The ten arguments of adam_step and adamw_step: an ordinary, a first and a late step."""
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
    """(grads, max_norm, norm_type) of clip_grad_norm: each norm clipping, one below the threshold, and
    totals small enough for ε to show."""
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
    """(grads, clip_value) of clip_grad_value, non-finite gradients and clip_value = 0 included."""
    return (Case("ordinary", "gradients (3, 4) and (2,) in [−3, 3], clip_value = 1",
                 lambda rng: ([rng.uniform(-3, 3, (3, 4)), rng.uniform(-3, 3, 2)], 1.0)),
            Case("nonfinite", "±inf become ±c, NaN stays NaN",
                 lambda rng: ([np.array([math.inf, -math.inf, math.nan, 0.5, -3.0])], 1.0)),
            Case("zero_clip", "clip_value = 0: every finite element becomes 0",
                 lambda rng: ([rng.uniform(-3, 3, (2, 2))], 0.0)))


def dropout_cases() -> tuple[Case, ...]:
    """The exact claims of spec/dropout.md (claim 5): the result must not depend on ``rng``."""
    def x(rng: np.random.Generator) -> np.ndarray:
        return designs.nonzero_inputs(rng, (3, 4))

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
            out = getattr(contract_reference, forward)(*call_values(rounded(args)))
            cot = (tuple(rng.uniform(-1, 1, np.shape(o)) for o in out) if isinstance(out, tuple)
                   else rng.uniform(-1, 1, np.shape(out)))
            return (cot, *args)
        return Case(case.name, case.why + "; cotangent U(−1, 1)", draw)
    return tuple(drawn(c) for c in cases)
