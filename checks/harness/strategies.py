"""Hypothesis strategies shared by the checks (assertions live elsewhere).

Names are plural nouns; arguments with defaults are keyword-only. Shapes include the edge sizes
(batch 1, width 1); values include large magnitudes and values that saturate sigmoid and tanh,
drawn so that shrinking leads to small, readable counterexamples (zeros, ones, short shapes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: Magnitudes values are drawn up to: ordinary, tanh/sigmoid saturating, and large.
MAGNITUDES = (1.0, 4.0, 30.0, 1e3)


def generators() -> st.SearchStrategy[np.random.Generator]:
    """NumPy generators from a drawn seed (for the random parts of an example)."""
    return st.integers(0, 2**32 - 1).map(np.random.default_rng)


def sizes(*, min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[int]:
    """Axis lengths, shrinking towards ``min_size`` (1 by default: the batch-1 / width-1 edge)."""
    if min_size < 0 or max_size < min_size:
        raise ValueError(f"sizes(min_size={min_size}, max_size={max_size}): need 0 ≤ min ≤ max")
    return st.integers(min_size, max_size)


def reals(*, magnitude: float = 4.0) -> st.SearchStrategy[float]:
    """Finite float64 values in [−magnitude, magnitude], shrinking towards 0."""
    if not magnitude > 0:
        raise ValueError(f"reals(magnitude={magnitude!r}): magnitude must be positive")
    return st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False, width=64)


def float_arrays(shape: Any, *, magnitude: float | None = None) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` (a tuple or a strategy of tuples).

    Without ``magnitude``, one of :data:`MAGNITUDES` is drawn per array, so some examples reach
    the saturating and large ranges. Elements beyond the first few are filled cheaply, which
    keeps big arrays fast to draw.
    """
    mags = st.just(magnitude) if magnitude is not None else st.sampled_from(MAGNITUDES)
    return mags.flatmap(lambda m: hnp.arrays(np.float64, shape, elements=reals(magnitude=m),
                                             fill=reals(magnitude=m)))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``None`` or a draw of ``strategy`` (for optional biases)."""
    return st.none() | strategy


def moderate_float_arrays(shape: Any, *, smallest: float = 1e-3,
                          largest: float = 1e3) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` whose elements are 0 or of magnitude in [smallest, largest].

    For relative bounds on products, powers and squared norms: those of a few such values stay
    normal numbers in float32 and float64, whereas the tiny values :func:`reals` may draw underflow
    to subnormals (or to 0 when squared), where no relative bound holds.
    """
    if not 0 < smallest <= largest:
        raise ValueError(f"moderate_float_arrays(smallest={smallest!r}, largest={largest!r}): "
                         f"need 0 < smallest ≤ largest")
    elements = st.one_of(st.just(0.0), st.floats(smallest, largest),
                         st.floats(-largest, -smallest))
    return hnp.arrays(np.float64, shape, elements=elements, fill=elements)


#: Magnitudes of complex-step gradient checks (checks/harness/gradients.py): the imaginary part
#: h·f'(x), h = 1e-20, must stay a normal number (above λ/u ≈ 2e-292), or it loses digits in the
#: subnormal range; the smooth activations' derivatives stay above e^−600 for |x| ≤ 300.
FD_MAGNITUDES = (1.0, 4.0, 30.0, 300.0)


def typical_lstm_cell(rng: np.random.Generator, B: int = 4, D: int = 5,
                    H: int = 6) -> tuple[np.ndarray, ...]:
    """Inputs as in training: x ~ N(0, 1), |h|, |c| < 1, weights and biases drawn like
    nn.LSTMCell's default U(−1/√H, 1/√H)."""
    s = 1 / np.sqrt(H)
    return (rng.standard_normal((B, D)), rng.uniform(-1, 1, (B, H)), rng.uniform(-1, 1, (B, H)),
            rng.uniform(-s, s, (4 * H, D)), rng.uniform(-s, s, (4 * H, H)),
            rng.uniform(-s, s, 4 * H), rng.uniform(-s, s, 4 * H))
