"""Reference for spec/decay.md's measurement set-up: every measurement states the distribution its
weights and inputs are drawn from (PyTorch's default, Xavier, Haar-orthogonal scaled), and
:func:`measure` runs one cell over a drawn sequence and reports its decay (reference/decay.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from nnspec.reference.decay import (
    INITS,
    Cell,
    GradientNorms,
    Rate,
    Trajectory,
    gradient_norms,
    rate,
    run,
    stack,
)
from nnspec.reference.initialisation import torch_default_rnn, xavier_uniform


def haar_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal n × n matrix: QR of a Gaussian matrix, signs of diag R fixed."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diagonal(r))


def draw_params(cell: Cell, hidden: int, input_size: int, *, init: str, rng: np.random.Generator,
                scale: float = 1.0, forget_bias: float | None = None) -> tuple[np.ndarray, ...]:
    """One draw of (w_ih, w_hh, b_ih, b_hh) in PyTorch's layout.

    init "pytorch": nn.RNN/GRU/LSTM's default, every entry U(±1/√H); "xavier": seed 000's
    xavier_uniform on every gate block (H × D of w_ih, H × H of w_hh), biases 0; "orthogonal":
    every H × H block of w_hh Haar-orthogonal, w_ih blocks xavier_uniform, biases 0. Then w_hh is
    multiplied by ``scale``; for the LSTM, ``forget_bias`` (if given) sets b_ih's forget block to
    that value and b_hh's to 0, so the forget gate's bias is b_f = forget_bias.
    """
    if init not in INITS:
        raise ValueError(f"init = {init!r} must be one of {INITS}")
    if hidden < 1 or input_size < 1:
        raise ValueError(f"hidden = {hidden!r} and input_size = {input_size!r} must be ≥ 1")
    if not math.isfinite(scale):
        raise ValueError(f"scale = {scale!r} must be finite")
    if forget_bias is not None and cell.kind != "lstm":
        raise ValueError(f"forget_bias applies to the lstm cell only, not {cell}")
    G, H = cell.gates, hidden
    if init == "pytorch":
        w_ih, w_hh, b_ih, b_hh = torch_default_rnn(cell.kind, input_size, H, rng)
    else:
        w_ih = np.concatenate([xavier_uniform((H, input_size), 1.0, rng) for _ in range(G)])
        blocks = [haar_orthogonal(H, rng) if init == "orthogonal" else xavier_uniform((H, H), 1.0, rng)
                  for _ in range(G)]
        w_hh, b_ih, b_hh = np.concatenate(blocks), np.zeros(G * H), np.zeros(G * H)
    w_hh = scale * w_hh
    if forget_bias is not None:
        b_ih[H:2 * H], b_hh[H:2 * H] = forget_bias, 0.0
    return w_ih, w_hh, b_ih, b_hh


def input_description(input_std: float, input_size: int) -> str:
    """The input distribution of :func:`measure`, stated with every result."""
    return (f"x_t ~ N(0, {input_std:g}²·I_{input_size}) i.i.d. over t and draws; h_0 = 0"
            f" (and c_0 = 0); v = ∂L/∂h_T ~ uniform on the unit sphere")


class Measurement(NamedTuple):
    """A decay measurement with everything needed to reproduce it."""

    cell: Cell
    hidden: int
    input_size: int
    length: int
    init: str
    scale: float
    forget_bias: float | None
    input_std: float
    seed: int
    inputs: str
    trajectory: Trajectory
    v: np.ndarray
    norms: GradientNorms
    rate: Rate


def measure(cell: Cell, *, hidden: int, length: int, init: str = "pytorch", scale: float = 1.0,
            forget_bias: float | None = None, input_std: float = 1.0, draws: int = 8,
            input_size: int | None = None, seed: int = 0, burn_in: int | None = None) -> Measurement:
    """Draw ``draws`` independent (weights, inputs, v), run the cell for ``length`` steps and sweep
    back once. The rate is fitted over k ∈ [burn_in, T − burn_in] (default burn_in = min(T // 10,
    100)): the first steps of the sweep and of the forward run are transients."""
    if length < 2 or draws < 1:
        raise ValueError(f"length = {length!r} must be ≥ 2 and draws = {draws!r} ≥ 1")
    D = hidden if input_size is None else int(input_size)
    rng = np.random.default_rng(seed)
    params = stack([draw_params(cell, hidden, D, init=init, rng=rng, scale=scale,
                                forget_bias=forget_bias) for _ in range(draws)])
    x = input_std * rng.standard_normal((draws, length, D))
    v = rng.standard_normal((draws, hidden))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    traj = run(cell, params, x)
    norms = gradient_norms(traj, v)
    b = min(length // 10, 100) if burn_in is None else int(burn_in)
    return Measurement(cell, hidden, D, length, init, scale, forget_bias, input_std, seed,
                       input_description(input_std, D), traj, v, norms,
                       rate(norms.log_g, k_min=b, k_max=length - b))
