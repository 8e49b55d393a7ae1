"""torch autograd's side of the decay measurement (spec/decay.md): ∂L/∂h_{T−k} for every k from
one backward pass through torch.nn.RNNCell / GRUCell / LSTMCell, in float32 or float64.

This is what a PyTorch user gets: the cotangents are plain floating-point numbers, so where the
true g(k) leaves the dtype's range autograd returns 0 (underflow) or inf (overflow). Comparing
with the reference's log-space sweep (nnspec.reference.decay.gradient_norms) shows where that
happens. Sigmoid and linear RNNs, which no torch module computes, are composed from torch ops.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnspec.reference.decay import Cell, log_norms

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _module(cell: Cell, input_size: int, hidden: int) -> nn.RNNCellBase | None:
    if cell.kind == "gru":
        return nn.GRUCell(input_size, hidden)
    if cell.kind == "lstm":
        return nn.LSTMCell(input_size, hidden)
    if cell.nonlinearity in ("tanh", "relu"):
        return nn.RNNCell(input_size, hidden, nonlinearity=cell.nonlinearity)
    return None


def gradient_log_norms(cell: Cell, params: tuple[np.ndarray, ...], x: np.ndarray, v: np.ndarray,
                       dtype: str) -> np.ndarray:
    """log‖∂L/∂h_{T−k}‖ for k = 0 … T, L = ⟨v, h_T⟩, from one torch autograd backward pass.

    params: one draw's (w_ih, w_hh, b_ih, b_hh) in PyTorch's layout; x: (T, D); v: (H,);
    dtype "float32" or "float64". Returns (T + 1,) float64 with −inf where autograd's cotangent
    underflowed to 0 and +inf where it overflowed (inf or nan entries).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype = {dtype!r} must be one of {sorted(DTYPES)}")
    tdtype = DTYPES[dtype]
    w_ih, w_hh, b_ih, b_hh = (torch.as_tensor(np.asarray(a), dtype=tdtype) for a in params)
    H, D = w_hh.shape[1], w_ih.shape[1]
    xs = torch.as_tensor(np.asarray(x), dtype=tdtype)
    module = _module(cell, D, H)
    if module is not None:
        module = module.to(tdtype)
        with torch.no_grad():
            for p, value in zip((module.weight_ih, module.weight_hh, module.bias_ih,
                                 module.bias_hh), (w_ih, w_hh, b_ih, b_hh), strict=True):
                p.copy_(value)
    phi = torch.sigmoid if cell.nonlinearity == "sigmoid" else (lambda a: a)

    h = torch.zeros(1, H, dtype=tdtype, requires_grad=True)
    c = torch.zeros(1, H, dtype=tdtype)
    hs = [h]
    for x_t in xs:
        x_t = x_t[None]
        if module is None:
            h = phi(F.linear(x_t, w_ih, b_ih) + F.linear(h, w_hh, b_hh))
        elif cell.kind == "lstm":
            h, c = module(x_t, (h, c))
        else:
            h = module(x_t, h)
        h.retain_grad()
        hs.append(h)
    (torch.as_tensor(np.asarray(v), dtype=tdtype)[None] * h).sum().backward()
    # Every h_t kept its gradient (retain_grad above; h_0 is a leaf that requires one).
    grads = torch.stack([cast(torch.Tensor, h_t.grad)[0] for h_t in reversed(hs)]).double().numpy()
    return log_norms(grads)


class RangeExit(NamedTuple):
    """Where a plain floating-point g(k) leaves the dtype's range: the first k with g(k) below
    the smallest normal number (precision starts to be lost), the first with g(k) = 0, and the
    first with g(k) = inf (None where it never happens)."""

    subnormal: int | None
    zero: int | None
    overflow: int | None


def range_exit(log_g: np.ndarray, dtype: str) -> RangeExit:
    """Locate the range exits of one log g curve (T + 1,) computed in ``dtype``."""
    tiny = float(np.log(np.finfo(np.dtype(dtype)).tiny))

    def first(mask: np.ndarray) -> int | None:
        return int(np.argmax(mask)) if np.any(mask) else None

    log_g = np.asarray(log_g)
    return RangeExit(first(log_g < tiny), first(np.isneginf(log_g)), first(np.isposinf(log_g)))
