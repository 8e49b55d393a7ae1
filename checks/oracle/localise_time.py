"""Localisation in time: which step of a layer, or which sequence of a packed batch, is wrong.

On the failing call of a layer (``rnn_layer``, ``gru_layer``, ``lstm_layer``) the outputs y are
compared with the spec's y shifted by one step either way, reversed, computed on the reversed
input, and restarted from the initial state (or from zeros) at the first step where they differ —
once, or at every multiple of it (a sequence run in chunks). A hypothesis is claimed when it
reproduces y at rounding level (``high``) or SEPARATION times closer than the spec (``medium``)
and the spec is not itself that close. Where none holds but y agrees with the spec up to some
step, that step is reported (``low``: an observation, not a formula).

On a packed call of ``rnn_module`` (``lengths`` given) the outputs are compared with the spec's
outputs and final states mixed with those of the same batch run without its lengths: a final
state taken after all T steps, or padding outputs left unzeroed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import numpy as np

from nnspec.checks.oracle.localise_findings import Finding

#: The contract functions with a ``lengths`` argument.
MODULES = ("rnn_module",)

Args = dict[str, Any]


def _close(got: Any, want: Any, spec: Any, unit: float) -> tuple[str, float, float] | None:
    """(confidence, distance to ``want``, distance to ``spec``) when ``got`` is ``want`` at
    rounding level or SEPARATION times closer to it than to ``spec``, and ``want`` is not
    ``spec``; else None."""
    from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL, SEPARATION, distance

    d, d_spec = distance(got, want), distance(got, spec)
    if distance(want, spec) <= ROUNDING_LEVEL * unit:
        return None
    if d <= ROUNDING_LEVEL * unit:
        return "high", d, d_spec
    if np.isfinite(d) and d * SEPARATION <= d_spec:
        return "medium", d, d_spec
    return None


def _states(fn: str, a: Args) -> tuple[np.ndarray, ...]:
    return (a["h0"], a["c0"]) if fn == "lstm_layer" else (a["h0"],)


def _run(spec: Callable[..., Any], fn: str, a: Args, x: np.ndarray,
         state: tuple[np.ndarray, ...]) -> np.ndarray:
    """y of the spec's layer on ``x`` from ``state``."""
    names = ("h0", "c0")[:len(state)]
    return np.asarray(spec(**{**a, "x": x, **dict(zip(names, state, strict=True))})[0])


def _chunked(spec: Callable[..., Any], fn: str, a: Args, every: int,
             state: tuple[np.ndarray, ...]) -> np.ndarray:
    x = a["x"]
    return np.concatenate([_run(spec, fn, a, x[s:s + every], state)
                           for s in range(0, len(x), every)])


def first_difference(y: np.ndarray, want: np.ndarray, unit: float) -> int | None:
    """The first step t where y_t differs from want_t beyond rounding (relative to want's
    scale); None where every step agrees."""
    from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL

    scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)) or 1.0
    with np.errstate(invalid="ignore"):
        err = np.abs(y - want).reshape(len(y), -1).max(axis=1, initial=0.0) / scale
    bad = np.flatnonzero(~(err <= ROUNDING_LEVEL * unit))
    return int(bad[0]) if bad.size else None


def layer(fn: str, spec_id: str, spec: Callable[..., Any], a: Args, output: Any,
          unit: float, spec_output: Any = None) -> list[Finding]:
    """Time-alignment findings for a failing call of a layer (module docstring); ``spec_output``
    is the spec's output on it, where the caller has it."""
    try:
        y = np.asarray(output[0], dtype=np.float64)
        with np.errstate(all="ignore"):
            want = np.asarray((spec(**a) if spec_output is None else spec_output)[0])
    except Exception:
        return []
    T = len(want)
    if y.shape != want.shape or T < 1:
        return []
    state = _states(fn, a)
    zeros = tuple(np.zeros_like(s) for s in state)
    t0 = first_difference(y, want, unit)
    if t0 is None:
        return []
    hypotheses: list[tuple[str, str, Callable[[], np.ndarray], slice]] = []
    if t0 == 0:
        # Each of these moves y_0. Reversal first: at T = 2 it is also a shift one step early.
        # The reversed run is made once, on first use: at production size it costs seconds.
        backwards = cache(partial(_run, spec, fn, a, a["x"][::-1], state))
        hypotheses = [
            ("its outputs are reversed in time: y_t is the spec's y_{T−1−t}", "outputs reversed",
             lambda: want[::-1], slice(None)),
            ("its outputs are one step late: y_t is the state after step t − 1 (y_0 = h0)",
             "shifted one step late", lambda: np.concatenate([state[0][None], want[:-1]]),
             slice(None)),
            ("its outputs are one step early: y_t is the state after step t + 1 (the last output "
             "aside)", "shifted one step early", lambda: want[1:], slice(0, T - 1)),
            ("it consumes the sequence backwards (x_{T−1} first)", "input reversed", backwards,
             slice(None)),
            ("it consumes the sequence backwards and returns its outputs in input order",
             "input and outputs reversed", lambda: backwards()[::-1], slice(None)),
        ]
    for start, name in ((state, "the initial state"), (zeros, "zeros")) if t0 else ():
        # Steps before t0 agree: a restart there. One restart first: with a single chunk
        # boundary inside T the two are one claim; chunks need a second boundary to differ.
        hypotheses.append((f"it restarts its state from {name} at step {t0}",
                           f"restart at step {t0}",
                           partial(_run, spec, fn, a, a["x"][t0:], start), slice(t0, None)))
        if 2 * t0 < T:
            hypotheses.append((f"it restarts its state from {name} every {t0} steps (first at "
                               f"step {t0}): a sequence run in chunks of {t0}",
                               f"restart every {t0} steps",
                               partial(_chunked, spec, fn, a, t0, start), slice(None)))
    for says, where, predict, part in hypotheses:
        try:
            with np.errstate(all="ignore"):
                held = _close(y[part], predict(), want[part], unit)
        except Exception:
            continue
        if held:
            confidence, d, d_spec = held
            evidence = (f"y at relative distance {d:.2g} from that, {d_spec:.2g} from the spec, on "
                        f"the failing call (T = {T})")
            return [Finding(f"{fn}() localised in time: {says} ({evidence}); the spec {spec_id} "
                            f"is not what it computes", kind="time", location=where,
                            evidence=evidence, confidence=confidence)]
    if t0 >= 1:
        evidence = f"steps 0 … {t0 - 1} agree with the spec at rounding level, step {t0} of {T} not"
        return [Finding(f"{fn}() first differs from the spec {spec_id} at step {t0} ({evidence}); "
                        f"no shift, reversal or restart explains it", kind="time",
                        location=f"step {t0}", evidence=evidence, confidence="low")]
    return []


def _masked(y: np.ndarray, lengths: np.ndarray, batch_first: bool) -> np.ndarray:
    """y with every step at or beyond its sequence's length set to 0."""
    steps = np.arange(y.shape[1] if batch_first else y.shape[0])
    keep = steps[None, :] < lengths[:, None] if batch_first else steps[:, None] < lengths[None, :]
    return np.where(keep[..., None], y, 0.0)


def packed(fn: str, spec_id: str, spec: Callable[..., Any], a: Args, output: Any,
           unit: float) -> list[Finding]:
    """Findings for a failing packed call of ``rnn_module`` (module docstring)."""
    if a.get("lengths") is None:
        return []
    try:
        with np.errstate(all="ignore"):
            want = tuple(np.asarray(o) for o in spec(**a))
            unpacked = tuple(np.asarray(o) for o in spec(**{**a, "lengths": None}))
        got = tuple(np.asarray(o, dtype=np.float64) for o in output)
    except Exception:
        return []
    lengths = np.asarray(a["lengths"])
    zeroed = _masked(unpacked[0], lengths, bool(a.get("batch_first")))
    hypotheses = [
        ("the final state h_n is the state after all T steps: the lengths are ignored for it "
         "(the outputs are right)", "final state after T steps", (want[0], *unpacked[1:])),
        ("the outputs beyond each sequence's length are the padding steps' states, not 0 (the "
         "final state is right)", "padding outputs not zeroed", (unpacked[0], *want[1:])),
        ("the padded batch is run without its lengths, its outputs zeroed beyond each length "
         "afterwards", "lengths used only to zero outputs", (zeroed, *unpacked[1:])),
    ]
    for says, where, predict in hypotheses:
        if len(predict) != len(got):
            continue
        held = _close(got, predict, want, unit)
        if held:
            confidence, d, d_spec = held
            evidence = (f"relative distance {d:.2g} from that, {d_spec:.2g} from the spec, on the "
                        f"failing call (lengths {lengths.tolist()})")
            return [Finding(f"{fn}() localised in a packed batch: {says} ({evidence}); the spec "
                            f"{spec_id} is not what it computes", kind="time", location=where,
                            evidence=evidence, confidence=confidence)]
    return []
