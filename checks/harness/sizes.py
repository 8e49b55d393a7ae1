"""Sequence sizes for the long-sequence checks of the recurrent layers (issue: conformance at the
sizes people train with).

The Hypothesis draws of the layer checks keep T, B, H ≤ 8 so that shrinking gives readable
counterexamples; a layer can be right for 8 steps and wrong after 64 (a state restarted at a
chunk boundary, a counter that wraps). The long-sequence checks run each layer once more at the
run's size: ``--nnspec-size`` (pytest) / ``--size`` (``nnspec check``; ``--sequence-size`` for
``nnspec report``, whose ``--size`` is the benchmarks'), a profile name of
:data:`PROFILES` or ``T=…,B=…,H=…[,D=…]``; the environment variable ``NNSPEC_SIZE`` sets it
where no option does. The default profile is long enough (T = 128) to cross two 64-step
boundaries, and small enough in B and H to keep the default run fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nnspec.reference.sequence import GATES


@dataclass(frozen=True)
class Size:
    """Steps T, batch B, hidden H and input D of one long-sequence check."""

    T: int
    B: int
    H: int
    D: int

    def __str__(self) -> str:
        return f"T={self.T},B={self.B},H={self.H},D={self.D}"


#: Named sizes: the default run's, and those of the issue's production table.
PROFILES = {
    "default": Size(T=128, B=2, H=8, D=4),
    "medium": Size(T=300, B=4, H=256, D=64),
    "production": Size(T=1000, B=8, H=512, D=512),
}

#: The option, the environment variable, and the ceiling on T·B·H (a typo such as T=10000000
#: would otherwise run for hours before saying anything).
OPTION, ENVIRONMENT, LARGEST = "--nnspec-size", "NNSPEC_SIZE", 10**8


def parse(text: str) -> Size:
    """A profile name or ``T=…,B=…,H=…[,D=…]`` (missing keys from the default profile, D from H
    when H is given) → :class:`Size`; ValueError with one line naming what was wrong."""
    text = text.strip()
    if text in PROFILES:
        return PROFILES[text]
    if "=" not in text:
        raise ValueError(f"size {text!r}: give a profile ({', '.join(PROFILES)}) or "
                         f"T=…,B=…,H=…[,D=…]")
    values: dict[str, int] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in ("T", "B", "H", "D"):
            raise ValueError(f"size {text!r}: unknown key {key!r} (use T, B, H, D)")
        if key in values:
            raise ValueError(f"size {text!r}: {key} given twice")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"size {text!r}: {key} must be a positive integer, "
                             f"got {value.strip()!r}") from None
        if number < 1:
            raise ValueError(f"size {text!r}: {key} must be a positive integer, got {number}")
        values[key] = number
    if "H" in values and "D" not in values:
        values["D"] = values["H"]
    size = replace(PROFILES["default"], **values)
    if size.T * size.B * size.H > LARGEST:
        raise ValueError(f"size {text!r}: T·B·H = {size.T * size.B * size.H:,} exceeds "
                         f"{LARGEST:,}")
    return size


def active(config: Any) -> Size:
    """The run's size: the pytest option, else the environment variable, else the default."""
    text = config.getoption(OPTION, default=None) if config is not None else None
    return parse(text or os.environ.get(ENVIRONMENT) or "default")


def typical_layer(size: Size, gates: int, rng: np.random.Generator,
                  *, cell_state: bool = False) -> tuple[np.ndarray, ...]:
    """Inputs as in training: x ~ N(0, 1) (T, B, D), h0 (and c0) ~ U(−1, 1) (B, H), weights and
    biases U(±1/√H) like nn.RNN/GRU/LSTM's default → (x, h0[, c0], w_ih, w_hh, b_ih, b_hh)."""
    s = 1 / np.sqrt(size.H)
    states = tuple(rng.uniform(-1, 1, (size.B, size.H)) for _ in range(2 if cell_state else 1))
    return (rng.standard_normal((size.T, size.B, size.D)), *states,
            rng.uniform(-s, s, (gates * size.H, size.D)), rng.uniform(-s, s, (gates * size.H, size.H)),
            rng.uniform(-s, s, gates * size.H), rng.uniform(-s, s, gates * size.H))


def float32_layer_vjp(kind: str, size: Size, rng: np.random.Generator) -> tuple[tuple, tuple]:
    """(g, args) of vjp_{kind}_layer: :func:`typical_layer`'s inputs and cotangents
    g ~ N(0, 1) (gy (T, B, H), then one (B, H) per state), every array exactly float32."""
    def f32(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32).astype(np.float64)

    args = tuple(f32(a) for a in typical_layer(size, GATES[kind], rng, cell_state=kind == "lstm"))
    g = (f32(rng.standard_normal((size.T, size.B, size.H))),
         *(f32(rng.standard_normal((size.B, size.H))) for _ in range(2 if kind == "lstm" else 1)))
    return g, args


def held_layer_vjp(kind: str, size: Size, rng: np.random.Generator, *, bias: float,
                   recurrent: float, period: int = 1, weighted: bool = False,
                   nudge: int = 0) -> tuple[tuple, tuple]:
    """(g, args) of vjp_{kind}_layer for a layer held at a steady state: x ~ N(0, 1) cycling
    through ``period`` inputs (1: one input at every step), zero initial state, weights
    U(±1/√H) with w_hh scaled by ``recurrent``, the second gate block's bias (LSTM f, GRU z)
    raised by ``bias``, and the cotangent gy = 1 of the loss Σ y (``weighted``: gy ~ U(0.5, 1.5),
    a weighted loss; zero for the final states); every array exactly float32
    (spec/tolerances.md, "Gradients", "Steady states of the adjoint"). ``nudge``: each step row
    (t, b)'s input moved away from 0 by that many float32 ulps in the components j where bit j
    of t·B + b is set — no two rows equal, every one nearly the held input."""
    gates, (T, B, H, D) = GATES[kind], (size.T, size.B, size.H, size.D)
    s = 1 / np.sqrt(H)
    x = np.resize(rng.standard_normal((period, B, D)), (T, B, D))
    if nudge:
        x32 = x.astype(np.float32)
        bits = (np.arange(T * B).reshape(T, B, 1) >> np.arange(D)) & 1
        x = np.where(bits == 1, x32 + np.float32(nudge) * np.spacing(x32) * np.sign(x32), x32)
    w_ih, w_hh = rng.uniform(-s, s, (gates * H, D)), recurrent * rng.uniform(-s, s, (gates * H, H))
    b_ih, b_hh = rng.uniform(-s, s, gates * H), rng.uniform(-s, s, gates * H)
    b_ih[H:2 * H] += bias
    gy = rng.uniform(0.5, 1.5, (T, B, H)) if weighted else np.ones((T, B, H))
    return _float32_vjp(kind, x, gy, (w_ih, w_hh, b_ih, b_hh))


def repeated_rows_vjp(kind: str, size: Size, rng: np.random.Generator) -> tuple[tuple, tuple]:
    """(g, args) of vjp_{kind}_layer for a batch of one sample repeated B times: x ~ N(0, 1)
    (T, 1, D), gy ~ U(0.5, 1.5) (a weighted loss), zero initial state, weights U(±1/√H), each
    the same in every batch row; every array exactly float32."""
    gates, (T, B, H, D) = GATES[kind], (size.T, size.B, size.H, size.D)
    s = 1 / np.sqrt(H)
    x = np.repeat(rng.standard_normal((T, 1, D)), B, axis=1)
    gy = np.repeat(rng.uniform(0.5, 1.5, (T, 1, H)), B, axis=1)
    weights = (rng.uniform(-s, s, (gates * H, D)), rng.uniform(-s, s, (gates * H, H)),
               rng.uniform(-s, s, gates * H), rng.uniform(-s, s, gates * H))
    return _float32_vjp(kind, x, gy, weights)


def _float32_vjp(kind: str, x: np.ndarray, gy: np.ndarray,
                 weights: tuple[np.ndarray, ...]) -> tuple[tuple, tuple]:
    """(g, args) from x, gy and the weights, zero initial state(s) and final-state cotangents,
    every array rounded to float32."""
    def f32(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32).astype(np.float64)

    B, H = gy.shape[1:]
    states = [np.zeros((B, H))] * (2 if kind == "lstm" else 1)
    return (f32(gy), *states), (f32(x), *states, *(f32(w) for w in weights))
