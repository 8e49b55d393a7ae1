"""Designed inputs: the fixed arrays, sizes and probabilities the checks are built on.

Each is chosen for what it exposes (an overflow, a wrong fan, a mask shared between draws); the
checks and the exported test vectors (nnspec/vectors/) use the same values from here, so a
vector restates a check's design rather than copying it.
"""

from __future__ import annotations

import numpy as np

# ---- spec/activations.md -----------------------------------------------------------------------

#: Inputs where a careless formula overflows, cancels or underflows: exp overflow (±710 in
#: float64, ±88.7 in float32), σ rounding to 1 (≈ 17 in float32, 37 in float64), results
#: below the smallest normal number (σ(−100) in float32, σ(−745.5) in float64), PyTorch's
#: softplus threshold (20), and magnitudes far beyond all of them.
EXTREMES = np.array([-1e30, -1e3, -745.5, -710.0, -100.0, -88.5, -40.0, -20.5, -1.0, -1e-30,
                     0.0, 1e-30, 1.0, 17.0, 20.0, 20.5, 37.0, 40.0, 100.0, 710.0, 1e3, 1e30])

# ---- spec/losses.md ----------------------------------------------------------------------------

#: Logits where an unshifted softmax overflows (exp(1000) in float64, exp(89) in float32) and
#: log(softmax) underflows (gaps beyond 745 and 104), with the targets of each row.
LARGE_LOGITS = np.array([[1000.0, 999.0, 990.0, -1000.0],
                         [1e4, 1e4, 1e4, 1e4],
                         [-1000.0, -1000.0, -1000.0, 1000.0]])
LARGE_TARGETS = np.array([3, 0, 1])

# ---- spec/dropout.md ---------------------------------------------------------------------------

#: Drop probabilities of the statistical tests. 0.5 is avoided: there, reading p as the keep
#: probability (dropout.bug.keep_prob_as_drop_prob) changes nothing.
P_VALUES = (0.1, 0.3, 0.75)
P_PAIRS = 0.3

#: 10⁵ units: at p = 0.1 and α = 10⁻⁶ the binomial test detects a drop rate off by 0.6 points,
#: the mean test an expectation off by 0.7 %, with power 90 %; one call takes milliseconds.
SHAPE = (200, 500)
N = SHAPE[0] * SHAPE[1]


def nonzero_inputs(rng: np.random.Generator, shape: tuple[int, ...],
                   magnitude: float = 1.0) -> np.ndarray:
    """|x| ∈ [0.5, 2]·magnitude with random signs: never 0 (so a zero output means dropped) and
    never subnormal, in float32 too, before or after the 1/(1 − p) stretch."""
    return rng.choice((-1.0, 1.0), size=shape) * rng.uniform(0.5, 2.0, size=shape) * magnitude


# ---- spec/initialisation.md --------------------------------------------------------------------

#: Shapes of the statistical Xavier tests (about 10⁵ samples each), as (shape, gain, name): a
#: linear weight with fan_in ≠ fan_out, and a convolution weight whose receptive field (7·7)
#: enters both fans.
XAVIER_CASES: tuple[tuple[tuple[int, ...], float, str], ...] = (
    ((300, 400), 1.0, "linear-300x400"),
    ((64, 32, 7, 7), 5 / 3, "conv-64x32x7x7-gain5/3"),
)

#: nn.Linear(5, 20000): 10⁵ weights and 2·10⁴ biases; a bound from out_features (1/√20000)
#: instead of in_features (1/√5) would be 63 times too small.
LINEAR_OUT, LINEAR_IN = 20_000, 5

#: Recurrent sizes of the statistical test: input_size ≠ hidden_size, ≥ 3·10⁴ samples per kind.
RNN_INPUT, RNN_HIDDEN = 200, 100
