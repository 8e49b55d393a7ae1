"""Diagnoses a new-user trial found confidently wrong (the verdicts were right), kept from
coming back (checks/oracle/diagnosis.py, checks/oracle/localise_numerics.py,
checks/oracle/localise_time.py).

- A float64 σ saturated to exactly 0 and 1 beyond |x| > 20 was said to be Keras' hard sigmoid:
  on its shrunk failing call (x = 21) both give 1.0. A catalogued bug is now confirmed on a spread
  of x (localise_numerics.SPREAD), where a hard sigmoid is 0.08 off σ.
- A float64 LSTM cell whose σ is clipped to 0 and 1 beyond |x| > 8 was said to compute in float32:
  on its one-unit failing call the clipped gate is off by float32's amount. A float32 evaluation
  rounds its inputs first, so a designed input on which the cell is exact while rounding its
  inputs to float32 moves the spec's outputs rules float32 out (diagnosis.rules_out).
- An LSTM layer that resets c alone to zeros every 10 steps (h carried on) was reported as "no
  shift, reversal or restart explains it", and one that resets h and c to zeros as well: the
  zeros restart began the first chunk from zeros too. Both are now localised.

Each implementation below is a trial module's logic, copied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.oracle.diagnosis import (
    LOWER_PRECISIONS,
    Call,
    diagnose,
    lower_precision_behind,
    named_ids,
    rules_out,
)
from nnspec.checks.oracle.localise_findings import Finding
from nnspec.implementations import reference as ref
from nnspec.reference import activations

U64 = float(np.finfo(np.float64).eps) / 2
FLOAT32 = LOWER_PRECISIONS["float64"][0]


def _draw(impl: Callable[..., Any]) -> Callable[..., Any]:
    return lambda _fn, *a, **k: impl(*a, **k)


def _findings(lines: list[str]) -> list[Finding]:
    return [line for line in lines if isinstance(line, Finding)]


# ---- a saturated σ is not a hard sigmoid -------------------------------------------------------

def sig_clamp(x, alpha=1.0):
    """σ in float64, exactly 0 and 1 beyond |αx| > 20 (trial module sig_clamp)."""
    z = alpha * np.asarray(x, dtype=np.float64)
    out = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
    return np.where(z > 20, 1.0, np.where(z < -20, 0.0, out))


SATURATED = (np.array([21.0]), 1.0)


def test_the_saturated_call_alone_fits_both_hard_sigmoids():
    """The failing call cannot tell the saturated σ from a hard sigmoid: without designed inputs
    both are named — the case the designed inputs exist for."""
    lines = diagnose([Call("sigmoid", SATURATED, {}, sig_clamp(*SATURATED))], U64)
    named = [sid for line in lines for sid in named_ids(line)]
    assert named == ["activations.bug.hard_sigmoid_keras2",
                     "activations.bug.hard_sigmoid_keras3"], lines


def test_a_saturated_sigmoid_is_not_named_a_hard_sigmoid():
    lines = diagnose([Call("sigmoid", SATURATED, {}, sig_clamp(*SATURATED))], U64,
                     draw=_draw(sig_clamp))
    assert not [sid for line in lines for sid in named_ids(line)], lines
    assert not [f for f in _findings(lines) if f.kind == "variant or bug"], lines


def test_a_saturated_sigmoid_is_not_a_hard_sigmoid_at_any_slope():
    for alpha in (0.01, 30.0):
        args = (np.array([21.0 / alpha]), alpha)
        lines = diagnose([Call("sigmoid", args, {}, sig_clamp(*args))], U64,
                         draw=_draw(sig_clamp))
        assert not [sid for line in lines for sid in named_ids(line)], (alpha, lines)


def test_a_hard_sigmoid_on_a_saturated_call_is_still_named_and_told_from_the_other():
    """Each Keras hard sigmoid on the call where both give 1.0: the spread names it alone."""
    for hard, sid in ((activations.hard_sigmoid_keras2, "activations.bug.hard_sigmoid_keras2"),
                      (activations.hard_sigmoid_keras3, "activations.bug.hard_sigmoid_keras3")):
        impl = lambda x, alpha=1.0, hard=hard: hard(alpha * np.asarray(x))  # noqa: E731
        lines = diagnose([Call("sigmoid", SATURATED, {}, impl(*SATURATED))], U64,
                         draw=_draw(impl))
        assert [s for line in lines for s in named_ids(line)] == [sid], lines
        assert [f.confidence for f in _findings(lines) if f.kind == "variant or bug"] == ["high"]


# ---- a clipped σ in an LSTM cell is not float32 -----------------------------------------------

def _clipped_sigmoid(x):
    s = 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))
    return np.where(x > 8, 1.0, np.where(x < -8, 0.0, s))


def lstm_clampsig(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The LSTM cell in float64 with σ clipped to 0 and 1 beyond |x| > 8 (trial module
    lstm_clampsig)."""
    a = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        a = a + b_ih
    if b_hh is not None:
        a = a + b_hh
    i, f, g, o = np.split(a, 4, axis=-1)
    c2 = _clipped_sigmoid(f) * c + _clipped_sigmoid(i) * np.tanh(g)
    return _clipped_sigmoid(o) * np.tanh(c2), c2


def lstm_in_float32(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The LSTM cell computed in float32 and returned as float64: a module declaring float64
    that computes in float32."""
    x, h, c, w_ih, w_hh = (np.asarray(v, dtype=np.float32) for v in (x, h, c, w_ih, w_hh))
    a = x @ w_ih.T + h @ w_hh.T
    for bias in (b_ih, b_hh):
        if bias is not None:
            a = a + np.asarray(bias, dtype=np.float32)
    i, f, g, o = np.split(a, 4, axis=-1)

    def sig(v):
        return np.float32(1.0) / (np.float32(1.0) + np.exp(-v))

    c2 = sig(f) * c + sig(i) * np.tanh(g)
    return (sig(o) * np.tanh(c2)).astype(np.float64), c2.astype(np.float64)


#: The shrunk failing call of the trial (B = D = H = 1): the input gate's pre-activation −14.3 is
#: clipped, which moves h' by 2.8e-10 — what float32 rounding of this call moves it by.
CLIPPED_CALL = (np.array([[0.2739233746429086]]), np.array([[-0.4604265724722594]]),
                np.array([[-0.9180529521276106]]),
                np.array([[-29.008341868288255], [18.796214352016342], [24.765334636663304],
                          [6.3981465460307945]]),
                np.array([[13.769793659039905], [2.6174994879253717], [26.104345427266097],
                          [18.951213247291932]]))


def _float32_line(impl: Callable[..., Any], args: tuple[Any, ...], *,
                  draw: bool) -> Finding | None:
    """The lower-precision finding on h' of one call of ``impl``, as the failure makes it, with
    the implementation re-called on designed inputs or not."""
    h, _ = impl(*args)
    want = ref.lstm_cell(*args)[0]
    bound = lstm_bounds.lstm_cell(*args, dtype=np.float64)[0]
    return lower_precision_behind("float64", np.abs(h - want), bound.atol, bound.unit,
                                  [Call("lstm_cell", args, {}, impl(*args))], "lstm_cell", want,
                                  draw=_draw(impl) if draw else None)


def test_the_clipped_call_alone_scales_like_float32():
    """Precondition: on its failing call alone the clipped σ fits all three conditions."""
    line = _float32_line(lstm_clampsig, CLIPPED_CALL, draw=False)
    assert line is not None and line.location == "float32", line


def test_a_clipped_sigmoid_in_an_lstm_cell_is_not_said_to_compute_in_float32():
    assert _float32_line(lstm_clampsig, CLIPPED_CALL, draw=True) is None


def test_a_cell_computing_in_float32_is_still_told_so_with_designed_inputs():
    rng = np.random.default_rng(5)
    args = (rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4)),
            rng.standard_normal((16, 3)), rng.standard_normal((16, 4)))
    line = _float32_line(lstm_in_float32, args, draw=True)
    assert line is not None and "computes in float32" in line, line
    assert not rules_out(Call("lstm_cell", args, {}, lstm_in_float32(*args)), FLOAT32, U64)


def test_another_recorded_call_computed_exactly_rules_float32_out():
    """Without draw, a recorded call on which the cell is exact is the evidence."""
    rng = np.random.default_rng(6)
    exact = (rng.standard_normal((1, 1)), rng.standard_normal((1, 1)), rng.standard_normal((1, 1)),
             rng.standard_normal((4, 1)), rng.standard_normal((4, 1)))
    calls = [Call("lstm_cell", exact, {}, lstm_clampsig(*exact)),
             Call("lstm_cell", CLIPPED_CALL, {}, lstm_clampsig(*CLIPPED_CALL))]
    assert rules_out(calls[0], FLOAT32, U64)
    assert not rules_out(calls[1], FLOAT32, U64)
    h = lstm_clampsig(*CLIPPED_CALL)[0]
    want = ref.lstm_cell(*CLIPPED_CALL)[0]
    bound = lstm_bounds.lstm_cell(*CLIPPED_CALL, dtype=np.float64)[0]
    assert lower_precision_behind("float64", np.abs(h - want), bound.atol, bound.unit, calls,
                                  "lstm_cell", want) is None


def test_the_diagnosis_of_a_clipped_sigmoid_cell_says_approximation_not_float32():
    lines = diagnose([Call("lstm_cell", CLIPPED_CALL, {}, lstm_clampsig(*CLIPPED_CALL))], U64,
                     draw=_draw(lstm_clampsig))
    found = _findings(lines)
    assert not [f for f in found if f.kind == "lower precision"], lines
    assert [f.kind for f in found if f.claims or f.kind == "approximation"] == ["approximation"], \
        lines


def test_the_diagnosis_of_a_float32_cell_still_says_float32_rounding():
    lines = diagnose([Call("lstm_cell", CLIPPED_CALL, {}, lstm_in_float32(*CLIPPED_CALL))], U64,
                     draw=_draw(lstm_in_float32))
    assert [f.location for f in _findings(lines) if f.kind == "lower precision"] == ["float32"], \
        lines


# ---- a restart to zeros every k steps -----------------------------------------------------------

def _cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    return ref.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)


def _resetting(reset: Callable[..., tuple[np.ndarray, np.ndarray]]) -> Callable[..., Any]:
    """An LSTM layer that sets (h, c) to ``reset(h, c, h0, c0)`` before every 10th step (trial
    modules lstm_restart, lstm_restart_hc, lstm_restart_h0)."""

    def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        h, c, ys = h0, c0, []
        for t in range(x.shape[0]):
            if t > 0 and t % 10 == 0:
                h, c = reset(h, c, h0, c0)
            h, c = _cell(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
            ys.append(h)
        return np.stack(ys), h, c

    return lstm_layer


def _layer_args(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((30, 2, 3)), "h0": rng.standard_normal((2, 4)),
            "c0": rng.standard_normal((2, 4)), "w_ih": 0.5 * rng.standard_normal((16, 3)),
            "w_hh": 0.5 * rng.standard_normal((16, 4)), "b_ih": rng.standard_normal(16),
            "b_hh": rng.standard_normal(16)}


def _time_claims(impl: Callable[..., Any]) -> list[Finding]:
    args = _layer_args(7)
    lines = diagnose([Call("lstm_layer", (), args, impl(**args))], U64, draw=_draw(impl))
    return [f for f in _findings(lines) if f.claims]


def test_a_layer_resetting_c_alone_every_10_steps_is_localised():
    found = _time_claims(_resetting(lambda h, c, h0, c0: (h, np.zeros_like(c))))
    assert [(f.kind, f.location, f.confidence) for f in found] == [
        ("time", "restart every 10 steps (c to zeros)", "high")], [str(f) for f in found]
    assert "restarts c from zeros (h carried on) every 10 steps" in found[0]


def test_a_layer_resetting_h_and_c_to_zeros_every_10_steps_is_localised():
    found = _time_claims(_resetting(lambda h, c, h0, c0: (np.zeros_like(h), np.zeros_like(c))))
    assert [(f.kind, f.location, f.confidence) for f in found] == [
        ("time", "restart every 10 steps (to zeros)", "high")], [str(f) for f in found]


def test_a_layer_restarting_from_its_initial_state_is_still_told_from_zeros():
    found = _time_claims(_resetting(lambda h, c, h0, c0: (h0, c0)))
    assert [(f.kind, f.location) for f in found] == [
        ("time", "restart every 10 steps (from h0)")], [str(f) for f in found]


# ---- a small error in a formula without σ or tanh is not an approximation ----------------------

def linear_off_by_1e3(x, w, b=None):
    return ref.linear(x, w, b) + 1e-3


def test_a_linear_layer_off_by_a_constant_is_not_named_an_approximate_activation():
    # linear.affine computes no σ, tanh, exp or log: the finding "an approximate σ or tanh
    # inside it" (what it said) placed the fault where none can be; the spec's distance stays.
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2))
    lines = diagnose([Call("linear", args, {}, linear_off_by_1e3(*args))], U64,
                     draw=_draw(linear_off_by_1e3))
    assert not [f for f in _findings(lines) if f.kind == "approximation"], lines
    assert any("matches no known variant or bug of linear.affine" in line for line in lines), lines


# ---- a bias rounded away is not a dropped bias ---------------------------------------------------

def linear_in_float32(x, w, b=None):
    f32 = [None if a is None else np.asarray(a, dtype=np.float32) for a in (x, w, b)]
    return np.asarray(ref.linear(*f32), dtype=np.float32).astype(np.float64)


def _named(lines: list[str]) -> list[str]:
    return [sid for line in lines for sid in named_ids(line)]


def test_a_float32_linear_whose_bias_rounds_away_is_not_named_bias_free():
    # b = 1e-9 beside x wᵀ = 3: float32 drops it, and the call matches linear.bug.no_bias to the
    # last bit (what the oracle said, confidence high, of a module with its bias). Fresh x, w, b of
    # the call's shapes contradict it; without the module to call again nothing can.
    args = (np.array([[1.0]]), np.array([[3.0]]), np.array([1e-9]))
    call = Call("linear", args, {}, linear_in_float32(*args))
    assert "linear.bug.no_bias" in _named(diagnose([call], U64))
    lines = diagnose([call], U64, draw=_draw(linear_in_float32))
    assert "linear.bug.no_bias" not in _named(lines), lines


def test_a_linear_without_its_bias_is_still_named_on_fresh_arguments():
    def no_bias(x, w, b=None):
        return ref.linear(x, w, None)

    rng = np.random.default_rng(1)
    args = (rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4))
    lines = diagnose([Call("linear", args, {}, no_bias(*args))], U64, draw=_draw(no_bias))
    assert _named(lines) == ["linear.bug.no_bias"], lines
