"""The recurrent layers' step loops (reference/lstm.py, reference/gru.py): outputs written in
place as the steps go, instead of collected and stacked at the end."""

from __future__ import annotations

import numpy as np


def store(Y: np.ndarray | None, t: int, T: int, a: np.ndarray,
          b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a ⊙ b written into Y[t] → (Y, Y[t]); Y is allocated at t = 0 with that product's dtype and
    shape, which every later step's product shares (the same operands' dtypes), so the value is
    the product's bit for bit."""
    if Y is None:
        first = a * b
        Y = np.empty((T, *first.shape), dtype=first.dtype)
        Y[0] = first
        return Y, Y[0]
    return Y, np.multiply(a, b, out=Y[t])
