"""A lower precision behind the declared DTYPE is named (checks/oracle/diagnosis.py,
spec/tolerances.md "Lower precision than declared"): float32 behind float64 (in
checks/meta/test_error_model.py), and TF32 or bfloat16 operands behind float32 — what cuDNN does
by default on NVIDIA Ampere and later, and what a mixed-precision layer does.

The layers below are the spec's LSTM layer in NumPy float32 with the operands of every matrix
product rounded to fewer significand bits first (round to nearest even), as a TF32 or bfloat16
tensor core multiplies them; the products are then summed in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from nnspec.checks.harness.loading import ImplementationLoadError, precision_of
from nnspec.checks.harness.significand import BITS, rounded
from nnspec.oracle import check


def low_precision_layer(bits: int | None, restart: int = 0) -> Callable[..., tuple[np.ndarray, ...]]:
    """lstm_layer in float32 whose matrix products take operands rounded to ``bits`` (None: plain
    float32, the control); with ``restart``, the state restarts from (h0, c0) every ``restart``
    steps (issue 11's bug, which the default run must catch)."""

    def mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if bits is None:
            return a @ b
        return rounded(a, bits) @ rounded(b, bits)

    def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        x, h, c, w_ih, w_hh = (np.asarray(a, dtype=np.float32) for a in (x, h0, c0, w_ih, w_hh))
        H = h.shape[1]
        b = np.zeros(4 * H, np.float32)
        for bias in (b_ih, b_hh):
            if bias is not None:
                b = b + np.asarray(bias, dtype=np.float32)
        ys = []
        for t, x_t in enumerate(x):
            if restart and t and t % restart == 0:
                h, c = (np.asarray(a, dtype=np.float32) for a in (h0, c0))
            A = mm(x_t, w_ih.T) + mm(h, w_hh.T) + b
            i, f, g, o = (A[:, k * H:(k + 1) * H] for k in range(4))
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            ys.append(h)
        return np.stack(ys), h, c

    return lstm_layer


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """σ = ½(1 + tanh(a/2)) in float32."""
    return (0.5 * (1.0 + np.tanh(0.5 * a))).astype(np.float32)


def module(name: str, bits: int | None, precision: str | None = None) -> ModuleType:
    m: Any = ModuleType(f"nnspec_precision_{name}_{precision}")
    m.DTYPE = np.float32
    if precision is not None:
        m.PRECISION = precision
    m.lstm_layer = low_precision_layer(bits)
    return m


def test_rounding_keeps_the_stated_significand_bits():
    x = np.float32(1.0) + np.float32(2.0**-12) * np.arange(8, dtype=np.float32)
    tf32 = rounded(x, 11)
    assert np.all(np.abs(tf32 - x) <= 2.0**-11 * np.abs(x))
    assert len(np.unique(tf32)) < len(np.unique(x))
    assert np.array_equal(rounded(x, 24), x)


def test_rounding_goes_to_nearest_with_ties_to_even_and_carries_into_the_exponent():
    step = 2.0**-10  # TF32's spacing in [1, 2)
    ties = np.array([1 + step / 2, 1 + 3 * step / 2, -(1 + step / 2)], dtype=np.float32)
    assert rounded(ties, 11).tolist() == [1.0, 1 + 2 * step, -1.0]
    assert rounded(np.float32(1 + step / 2 + 2.0**-20), 11) == np.float32(1 + step)
    assert rounded(np.float32(2 - 2.0**-23), 11) == np.float32(2.0)
    nans = np.array([0x7F800001, 0xFF800FFF], dtype=np.uint32).view(np.float32)
    assert np.all(np.isnan(rounded(nans, 11))) and np.all(np.isnan(rounded(nans, 8)))
    with pytest.raises(ValueError, match="bits = 25"):
        rounded(np.ones(1), 25)


@pytest.mark.parametrize("name", list(BITS))
def test_a_float32_layer_with_lower_precision_operands_fails_and_is_named(name):
    result = check(module(name, BITS[name]), only=["lstm.layer"], implementation_only=True)
    assert result.verdicts.get("lstm.layer") == "fail", result.verdicts
    lines = [line for f in result.failures["lstm.layer"] for line in f.diagnosis]
    named = [line for line in lines if f"scales like {name} rounding" in line]
    assert named, f"{name} not named; findings: {lines}"
    assert all("DTYPE float32" in line for line in named)


def test_the_same_layer_in_plain_float32_passes():
    result = check(module("float32", None), only=["lstm.layer"], implementation_only=True)
    assert result.verdicts.get("lstm.layer") == "pass", result.failures


def test_a_layer_that_declares_tf32_is_held_to_the_tf32_bound_and_passes():
    result = check(module("TF32", BITS["TF32"], "tf32"), only=["lstm.layer"],
                   implementation_only=True)
    assert result.verdicts.get("lstm.layer") == "pass", result.failures


@pytest.mark.parametrize(("dtype", "precision", "message"), [
    (np.float32, "fp8", "PRECISION = 'fp8' is not one of"),
    (np.float64, "tf32", "PRECISION = 'tf32' needs DTYPE float32, not float64"),
])
def test_a_bad_precision_declaration_is_one_line(dtype, precision, message):
    m: Any = ModuleType("nnspec_precision_bad")
    m.DTYPE, m.PRECISION = dtype, precision
    with pytest.raises(ImplementationLoadError, match=message) as info:
        precision_of(m, "bad", np.dtype(dtype))
    assert "\n" not in str(info.value)


def low_precision_cell(bits: int, gates: tuple[int, int, int, int] = (0, 1, 2, 3)
                       ) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """lstm_cell in float32 whose two matrix products take operands rounded to ``bits``, its
    gate blocks read in ``gates``' order (i, f, g, o: the spec's; another order is a bug)."""

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        f32 = np.float32
        A = (rounded(x, bits) @ rounded(w_ih, bits).T + rounded(h, bits) @ rounded(w_hh, bits).T)
        for bias in (b_ih, b_hh):
            if bias is not None:
                A = A + np.asarray(bias, dtype=f32)
        H = np.shape(h)[1]
        i, f, g, o = (A[:, k * H:(k + 1) * H] for k in gates)
        c_new = _sigmoid(f) * np.asarray(c, dtype=f32) + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c_new), c_new

    return lstm_cell


@pytest.mark.parametrize(("name", "declared", "seed", "examples"),
                         [("bfloat16", "bfloat16", 1, 60), ("TF32", "tf32", 3, 100)])
def test_a_cell_declaring_its_precision_passes_where_large_inputs_flip_its_gates(
        name, declared, seed, examples):
    # A new user's correct cells failed these runs: the float32 bound was scaled to the declared
    # u after the fact, while at that u the computed pre-activations' intervals reach where σ and
    # tanh are steep (gates flip); the checks now compute the bounds at the declared u.
    m: Any = ModuleType(f"nnspec_declared_{declared}")
    m.DTYPE, m.PRECISION, m.lstm_cell = np.float32, declared, low_precision_cell(BITS[name])
    result = check(m, only=["lstm.cell"], seed=seed, examples=examples, implementation_only=True)
    assert result.verdicts.get("lstm.cell") == "pass", result.failures


def test_a_wrong_cell_declaring_a_lower_precision_still_fails_and_is_diagnosed():
    m: Any = ModuleType("nnspec_declared_bfloat16_wrong")
    m.DTYPE, m.PRECISION = np.float32, "bfloat16"
    m.lstm_cell = low_precision_cell(BITS["bfloat16"], gates=(1, 0, 2, 3))  # i and f swapped
    result = check(m, only=["lstm.cell"], implementation_only=True)
    assert result.verdicts.get("lstm.cell") == "fail", result.verdicts
    # The diagnosis judges distances at float32's unit: at bfloat16's every distance read as
    # rounding and the failure came without a line (a review found it).
    assert any(f.diagnosis for f in result.failures["lstm.cell"]), result.failures


@pytest.mark.parametrize(("name", "declared"), [("TF32", "tf32"), ("bfloat16", "bfloat16")])
def test_a_layer_declaring_a_lower_precision_that_restarts_every_64_steps_fails(name, declared):
    # At the declared unit the long run's bound is infinite; float32's, scaled to that unit,
    # still judges it (checks/harness/compare.py) and catches the restart at step 64.
    m: Any = ModuleType(f"nnspec_declared_{declared}_restart")
    m.DTYPE, m.PRECISION = np.float32, declared
    m.lstm_layer = low_precision_layer(BITS[name], restart=64)
    result = check(m, only=["lstm.layer"], examples=5, implementation_only=True)
    assert result.verdicts.get("lstm.layer") == "fail", result.verdicts
    at = [f.index for f in result.failures["lstm.layer"] if f.function == "lstm_layer" and f.index]
    assert at and at[0][0] >= 64, [f.message[:200] for f in result.failures["lstm.layer"]]


def test_the_declared_precision_holds_only_inside_its_context():
    from nnspec.checks.bounds import rules

    with rules.declared_precision(2.0**-8):
        assert rules.unit_roundoff(np.float32) == 2.0**-8
        assert rules.unit_roundoff(np.float64) == 2.0**-53
        assert rules.own_unit(np.float32) == 2.0**-24
        with rules.declared_precision(None):  # a float32 module's checks inside another's run
            assert rules.unit_roundoff(np.float32) == 2.0**-24
        assert rules.unit_roundoff(np.float32) == 2.0**-8
    assert rules.unit_roundoff(np.float32) == 2.0**-24
