"""Localisation in time: which step of a layer, or which sequence of a packed batch, is wrong.

On the failing call of a layer (``rnn_layer``, ``gru_layer``, ``lstm_layer``) the outputs y are
compared with the spec's y shifted by one step either way, reversed, computed on the reversed
input, and restarted from the initial state (or from zeros; for an LSTM also c alone reset to
zeros with h carried on, or h alone with c carried on) at the first step where they differ — once,
or at every multiple of it (a sequence run in chunks, the first from the initial state). Where
none holds but y agrees with
the spec up to some step, that step is reported (``low``: an observation, not a formula).

On a packed call of ``rnn_module`` (``lengths`` given) the outputs are compared with the spec's
outputs and final states mixed with those of the same batch run without its lengths: a final
state taken after all T steps, or padding outputs left unzeroed.

A hypothesis that reproduces the failing call (at rounding level or SEPARATION times closer than
the spec, the spec not itself that close) is confirmed as checks/oracle/localisation.py confirms
its own: on :data:`~nnspec.checks.oracle.localisation.DESIGNED` designed inputs — fresh random
arguments of the call's shapes with T ≥ 3 and nonzero initial states, the lengths kept — through
``draw``, which calls the implementation again. A shrunk failing call (T = 1 or 2, zero states)
is where several hypotheses coincide: at T = 2 with h0 = 0 "one step late" and "outputs reversed"
can both reproduce it. A hypothesis is claimed when it holds on every input: ``high`` at rounding
level everywhere, ``medium`` else; the next one is tried when a designed input refutes it. Without
``draw`` (or where no designed input could be run) no claim is above ``medium``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL, distance, same_formula
from nnspec.checks.oracle.localisation import DESIGNED, SEED, Draw, designed_inputs, dtype_of
from nnspec.checks.oracle.localise_findings import Finding

#: The contract functions with a ``lengths`` argument.
MODULES = ("rnn_module",)

Args = dict[str, Any]


def _close(got: Any, want: Any, spec: Any, unit: float) -> tuple[float, float] | None:
    """(distance to ``want``, distance to ``spec``) when ``got`` is ``want``'s formula
    (:func:`~nnspec.checks.oracle.diagnosis.same_formula`) and ``want`` is not ``spec``; else
    None."""
    d, d_spec = distance(got, want), distance(got, spec)
    if distance(want, spec) <= ROUNDING_LEVEL * unit or not same_formula(d, d_spec, unit):
        return None
    return d, d_spec


def _held_on(first: float, designed: Sequence[Any],
             distance: Callable[[Any], tuple[float, ...] | None]) -> list[float] | None:
    """A hypothesis' distances to the module on the failing call (``first``) and on each designed
    input (``distance``), or None where a designed input contradicts it or cannot be evaluated."""
    ds = [first]
    for d in designed:
        try:
            with np.errstate(all="ignore"):
                on = distance(d)
        except Exception:  # the module or the hypothesis cannot run there: no confirmation
            on = None
        if on is None:
            return None
        ds.append(on[0])
    return ds


def _confidence(ds: list[float], designed: int, unit: float) -> str:
    """``high`` when every distance is at rounding level and a designed input confirmed it."""
    return "high" if designed and all(d <= ROUNDING_LEVEL * unit for d in ds) else "medium"


def _on(designed: int) -> str:
    return (f" and {designed} designed input{'s' if designed != 1 else ''}" if designed
            else " alone (no designed input)")


def _states(fn: str, a: Args) -> tuple[np.ndarray, ...]:
    return (a["h0"], a["c0"]) if fn == "lstm_layer" else (a["h0"],)


def _run(spec: Callable[..., Any], a: Args, x: np.ndarray,
         state: tuple[np.ndarray, ...]) -> np.ndarray:
    """y of the spec's layer on ``x`` from ``state``."""
    names = ("h0", "c0")[:len(state)]
    return np.asarray(spec(**{**a, "x": x, **dict(zip(names, state, strict=True))})[0])


def _run_states(spec: Callable[..., Any], a: Args, x: np.ndarray, state: tuple[np.ndarray, ...]
                ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """y and the final states of the spec's layer on ``x`` from ``state``."""
    names = ("h0", "c0")[:len(state)]
    out = spec(**{**a, "x": x, **dict(zip(names, state, strict=True))})
    return np.asarray(out[0]), tuple(np.asarray(o) for o in out[1:1 + len(state)])


def first_difference(y: np.ndarray, want: np.ndarray, unit: float) -> int | None:
    """The first step t where y_t differs from want_t beyond rounding (relative to want's
    scale); None where every step agrees."""
    scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)) or 1.0
    with np.errstate(invalid="ignore"):
        err = np.abs(y - want).reshape(len(y), -1).max(axis=1, initial=0.0) / scale
    bad = np.flatnonzero(~(err <= ROUNDING_LEVEL * unit))
    return int(bad[0]) if bad.size else None


@dataclass
class _Sequence:
    """One input of a layer, the spec's y on it, and the runs the hypotheses predict from."""

    fn: str
    spec: Callable[..., Any]
    a: Args
    want: np.ndarray

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        return _states(self.fn, self.a)

    @property
    def zeros(self) -> tuple[np.ndarray, ...]:
        return tuple(np.zeros_like(s) for s in self.state)

    @cached_property
    def backwards(self) -> np.ndarray:
        """The spec's y on the reversed input, made once: at production size it costs seconds."""
        return _run(self.spec, self.a, self.a["x"][::-1], self.state)


#: A time hypothesis: what it says, where it points, its prediction of y (or of y[part]), part.
_Time = tuple[str, str, Callable[[_Sequence], np.ndarray], slice]


#: The state a run restarts from, given the sequence and the states the run had reached.
_Start = Callable[[_Sequence, tuple[np.ndarray, ...]], tuple[np.ndarray, ...]]


def _restarted(t0: int, start: _Start) -> Callable[[_Sequence], np.ndarray]:
    """y[t0:] of a run restarted from ``start`` at step t0."""
    def predict(s: _Sequence) -> np.ndarray:
        _, reached = _run_states(s.spec, s.a, s.a["x"][:t0], s.state)
        return _run(s.spec, s.a, s.a["x"][t0:], start(s, reached))
    return predict


def _in_chunks(t0: int, start: _Start) -> Callable[[_Sequence], np.ndarray]:
    """y of a run from the initial state restarted from ``start`` every t0 steps."""
    def predict(s: _Sequence) -> np.ndarray:
        x, state, ys = s.a["x"], s.state, []
        for k in range(0, len(x), t0):
            y, reached = _run_states(s.spec, s.a, x[k:k + t0], state)
            ys.append(y)
            state = start(s, reached)
        return np.concatenate(ys)
    return predict


def _starts(lstm: bool) -> list[tuple[str, str, _Start]]:
    """What a restart restarts from, as "it restarts … at step t", in a few words for the
    location, and the state: the whole state from the initial state or from zeros; for an LSTM
    one of its two states zeroed, the other carried on (a reset written for c alone)."""
    found: list[tuple[str, str, _Start]] = [
        ("its state from the initial state", "from h0", lambda s, reached: s.state),
        ("its state from zeros", "to zeros", lambda s, reached: s.zeros)]
    if lstm:
        found += [("c from zeros (h carried on)", "c to zeros",
                   lambda s, reached: (reached[0], s.zeros[1])),
                  ("h from zeros (c carried on)", "h to zeros",
                   lambda s, reached: (s.zeros[0], reached[1]))]
    return found


def _time_hypotheses(t0: int, T: int, lstm: bool = False) -> list[_Time]:
    """The hypotheses for a layer whose y first differs from the spec's at step ``t0`` of T
    (``lstm``: one with a cell state)."""
    if t0 == 0:
        # Each of these moves y_0. Reversal first: at T = 2 it is also a shift one step early.
        return [
            ("its outputs are reversed in time: y_t is the spec's y_{T−1−t}", "outputs reversed",
             lambda s: s.want[::-1], slice(None)),
            ("its outputs are one step late: y_t is the state after step t − 1 (y_0 = h0)",
             "shifted one step late", lambda s: np.concatenate([s.state[0][None], s.want[:-1]]),
             slice(None)),
            ("its outputs are one step early: y_t is the state after step t + 1 (the last output "
             "aside)", "shifted one step early", lambda s: s.want[1:], slice(None, -1)),
            ("it consumes the sequence backwards (x_{T−1} first)", "input reversed",
             lambda s: s.backwards, slice(None)),
            ("it consumes the sequence backwards and returns its outputs in input order",
             "input and outputs reversed", lambda s: s.backwards[::-1], slice(None)),
        ]
    found: list[_Time] = []
    for name, short, start in _starts(lstm):
        # Steps before t0 agree: a restart there. One restart first: with a single chunk
        # boundary inside T the two are one claim; chunks need a second boundary to differ.
        found.append((f"it restarts {name} at step {t0}", f"restart at step {t0} ({short})",
                      _restarted(t0, start), slice(t0, None)))
        if 2 * t0 < T:
            found.append((f"it restarts {name} every {t0} steps (first at step {t0}): a "
                          f"sequence run in chunks of {t0}",
                          f"restart every {t0} steps ({short})", _in_chunks(t0, start),
                          slice(None)))
    return found


def _designed_layers(fn: str, spec: Callable[..., Any], a: Args, unit: float, steps: int,
                     draw: Draw) -> list[tuple[_Sequence, np.ndarray]]:
    """The designed inputs of a layer (``steps`` steps) and the implementation's y on each; the
    inputs it raises on, or returns no y of the spec's shape for, are left out."""
    found = []
    for k in range(DESIGNED):
        args = designed_inputs(fn, a, unit, k, steps=steps)
        try:
            with np.errstate(all="ignore"):
                want = np.asarray(spec(**args)[0])
            y = np.asarray(draw(fn, **args)[0], dtype=np.float64)
        except Exception:
            continue
        if y.shape == want.shape:
            found.append((_Sequence(fn, spec, args, want), y))
    return found


def layer(fn: str, spec_id: str, spec: Callable[..., Any], a: Args, output: Any,
          unit: float, spec_output: Any = None, draw: Draw | None = None) -> list[Finding]:
    """Time-alignment findings for a failing call of a layer (module docstring); ``spec_output``
    is the spec's output on it, where the caller has it; ``draw(fn, **args)`` calls the
    implementation on the designed inputs (none without it)."""
    try:
        y = np.asarray(output[0], dtype=np.float64)
        with np.errstate(all="ignore"):
            want = np.asarray((spec(**a) if spec_output is None else spec_output)[0])
    except Exception:
        return []
    T = len(want)
    if y.shape != want.shape or T < 1:
        return []
    t0 = first_difference(y, want, unit)
    if t0 is None:
        return []
    failing = _Sequence(fn, spec, a, want)
    # A restart at t0 needs t0 inside the designed sequence: those keep the failing call's T.
    steps = max(3, min(T, 8)) if t0 == 0 else max(3, T)
    designed: list[tuple[_Sequence, np.ndarray]] | None = None
    for says, where, predict, part in _time_hypotheses(t0, T, lstm=fn == "lstm_layer"):
        try:
            with np.errstate(all="ignore"):
                held = _close(y[part], predict(failing), want[part], unit)
        except Exception:
            continue
        if not held:
            continue
        if designed is None:
            designed = [] if draw is None else _designed_layers(fn, spec, a, unit, steps, draw)
        def on_layer(d: Any, part: Any = part,
                     predict: Callable[..., Any] = predict) -> tuple[float, ...] | None:
            return _close(d[1][part], predict(d[0]), d[0].want[part], unit)

        ds = _held_on(held[0], designed, on_layer)
        if ds is not None:
            evidence = (f"y at relative distance ≤ {max(ds):.2g} from that, {held[1]:.2g} from "
                        f"the spec, on the failing call (T = {T}){_on(len(designed))}")
            return [Finding(f"{fn}() localised in time: {says} ({evidence}); the spec {spec_id} "
                            f"is not what it computes", kind="time", location=where,
                            evidence=evidence, confidence=_confidence(ds, len(designed), unit))]
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


#: A packed-batch hypothesis: what it says, where it points, and its outputs from the spec's
#: (with lengths) and those of the batch run without them.
_Packed = tuple[str, str, Callable[[tuple[np.ndarray, ...], tuple[np.ndarray, ...], np.ndarray,
                                    bool], tuple[np.ndarray, ...]]]

_PACKED: tuple[_Packed, ...] = (
    ("the final state h_n is the state after all T steps: the lengths are ignored for it "
     "(the outputs are right)", "final state after T steps",
     lambda want, unpacked, lengths, bf: (want[0], *unpacked[1:])),
    ("the outputs beyond each sequence's length are the padding steps' states, not 0 (the "
     "final state is right)", "padding outputs not zeroed",
     lambda want, unpacked, lengths, bf: (unpacked[0], *want[1:])),
    ("the padded batch is run without its lengths, its outputs zeroed beyond each length "
     "afterwards", "lengths used only to zero outputs",
     lambda want, unpacked, lengths, bf: (_masked(unpacked[0], lengths, bf), *unpacked[1:])),
)


def _spec_runs(spec: Callable[..., Any], a: Args
               ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The spec's outputs on a packed call, and on the same batch run without its lengths."""
    with np.errstate(all="ignore"):
        return (tuple(np.asarray(o) for o in spec(**a)),
                tuple(np.asarray(o) for o in spec(**{**a, "lengths": None})))


def _designed_packed(a: Args, want: tuple[np.ndarray, ...], unit: float, seed: int) -> Args:
    """Fresh arguments of a packed call's shapes, its lengths kept: x and a nonzero initial
    state N(0, 1) (the state shaped like the spec's final states), weights N(0, 1/fan-in),
    biases N(0, 1), rounded to the implementation's precision."""
    rng = np.random.default_rng([SEED, seed])
    dtype = dtype_of(unit)

    def fresh(shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
        return np.asarray(scale * rng.standard_normal(shape)).astype(dtype).astype(np.float64)

    states = [fresh(np.shape(s)) for s in want[1:]]
    params = {name: fresh(np.shape(w), 1 / np.sqrt(np.shape(w)[1]) if np.ndim(w) == 2 else 1.0)
              for name, w in a["params"].items()}
    return {**a, "x": fresh(np.shape(a["x"])), "params": params,
            "state": tuple(states) if len(states) > 1 else states[0]}


#: The outputs of a designed packed call: the spec's with lengths, without, the implementation's.
_PackedRun = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], Any]


def _designed_packed_runs(fn: str, spec: Callable[..., Any], a: Args,
                          want: tuple[np.ndarray, ...], unit: float, draw: Draw
                          ) -> list[_PackedRun]:
    """The spec's and the implementation's outputs on the designed inputs of a packed call
    (those the implementation raises on left out)."""
    found = []
    for k in range(DESIGNED):
        args = _designed_packed(a, want, unit, k)
        options = {n: v for n, v in args.items() if n not in ("mode", "x", "state", "params")}
        try:
            got = draw(fn, args["mode"], args["x"], args["state"], args["params"], **options)
            found.append((*_spec_runs(spec, args), got))
        except Exception:
            continue
    return found


def packed(fn: str, spec_id: str, spec: Callable[..., Any], a: Args, output: Any,
           unit: float, draw: Draw | None = None) -> list[Finding]:
    """Findings for a failing packed call of ``rnn_module`` (module docstring); ``draw(fn,
    *args, **kwargs)`` calls the implementation on the designed inputs (none without it, nor for
    a call with dropout in training, whose outputs are random)."""
    if a.get("lengths") is None:
        return []
    try:
        want, unpacked = _spec_runs(spec, a)
        got = tuple(np.asarray(o, dtype=np.float64) for o in output)
    except Exception:
        return []
    lengths, bf = np.asarray(a["lengths"]), bool(a.get("batch_first"))
    designed: list[_PackedRun] | None = None
    for says, where, predict in _PACKED:
        guess = predict(want, unpacked, lengths, bf)
        if len(guess) != len(got):
            continue
        held = _close(got, guess, want, unit)
        if not held:
            continue
        if designed is None:
            random = bool(a.get("training")) and bool(a.get("dropout"))
            designed = ([] if draw is None or random
                        else _designed_packed_runs(fn, spec, a, want, unit, draw))
        def on_packed(d: Any,
                      predict: Callable[..., Any] = predict) -> tuple[float, ...] | None:
            return _close(tuple(np.asarray(o, dtype=np.float64) for o in d[2]),
                          predict(d[0], d[1], lengths, bf), d[0], unit)

        ds = _held_on(held[0], designed, on_packed)
        if ds is not None:
            evidence = (f"relative distance ≤ {max(ds):.2g} from that, {held[1]:.2g} from the "
                        f"spec, on the failing call (lengths {lengths.tolist()})"
                        f"{_on(len(designed))}")
            return [Finding(f"{fn}() localised in a packed batch: {says} ({evidence}); the spec "
                            f"{spec_id} is not what it computes", kind="time", location=where,
                            evidence=evidence, confidence=_confidence(ds, len(designed), unit))]
    return []
