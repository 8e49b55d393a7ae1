"""Localisation: where is a fault that matches no catalogued variant or bug?

When a recorded call matches nothing the catalogue knows (checks/oracle/diagnosis.py), the
diagnosis runs experiments on the implementation under test, each of which claims a location
only when its evidence holds (the CRADLE idea of localising a disagreement by experiments, here
against the spec rather than another framework):

- **Arguments** (this module): the implementation is compared with the spec evaluated on altered
  arguments — one argument zero or None, one argument in place of another, one gate block of a
  weight or bias zero (the forget gate ignoring W_hf), the gate blocks read in another order —
  and with the spec's outputs in another order (``returns (c', h')``).
- **Gates** (checks/oracle/localise_gates.py): each gate of a GRU or LSTM cell driven on its own,
  the others saturated by their biases, and compared with the spec's gate.
- **Time** (checks/oracle/localise_time.py): a layer's outputs shifted by a step, reversed, or
  restarted from the initial state at some step; a packed batch's lengths ignored — confirmed on
  designed inputs of their own (T ≥ 3, nonzero initial states), as the arguments are.
- **Numerics** (checks/oracle/localise_numerics.py): a loss computed through a catalogued
  softmax or log-softmax bug (an unshifted softmax that overflows to NaN at large logits) is named
  by that bug's id, non-finite outputs included; these join the catalogue's candidates, so they
  are tried before any experiment. Its designed inputs (logits that tell the softmax bugs apart,
  a spread of x for the elementwise activations) confirm the catalogue's matches as well
  (:meth:`Experiment.contradicts`).

A hypothesis (an altered evaluation of the spec) is *claimed* when it reproduces the
implementation on the failing call and on :data:`DESIGNED` designed inputs — fresh random
arguments of the failing call's shapes, both biases present — at rounding level (confidence
``high``) or SEPARATION times closer than the spec (``medium``), and differs from the spec on the
failing call and at least one designed input. Designed inputs are the implementation's own
outputs, through ``draw`` (the diagnosis' unrecorded call); without it only the failing call is
used and no claim is above ``medium``.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL, SEPARATION, distance, doc_id, same_formula
from nnspec.checks.oracle.localise_findings import Finding

#: Designed inputs each claim is confirmed on, besides the failing call.
DESIGNED = 2

#: The seed of the designed inputs: experiments are reproducible.
SEED = 20_13

#: Gate blocks of the weights, in PyTorch's order, by family: (symbol, name).
GATES: dict[str, tuple[tuple[str, str], ...]] = {
    "rnn": (),
    "gru": (("r", "reset gate r"), ("z", "update gate z"), ("n", "candidate n")),
    "lstm": (("i", "input gate i"), ("f", "forget gate f"), ("g", "cell candidate g"),
             ("o", "output gate o")),
}

#: The contract functions localised, by family, and the names of their outputs.
FAMILY = {"rnn_cell": "rnn", "gru_cell": "gru", "lstm_cell": "lstm",
          "rnn_layer": "rnn", "gru_layer": "gru", "lstm_layer": "lstm"}
OUTPUTS = {"rnn_cell": ("h'",), "gru_cell": ("h'",), "lstm_cell": ("h'", "c'"),
           "rnn_layer": ("y", "h_T"), "gru_layer": ("y", "h_T"), "lstm_layer": ("y", "h_T", "c_T")}

#: Arguments that are states or inputs (zero when ignored) and biases (None when ignored).
STATES = ("x", "h", "c", "h0", "c0", "w_ih", "w_hh")
BIASES = ("b_ih", "b_hh")

Draw = Callable[..., Any]
Args = dict[str, Any]


@dataclass(frozen=True)
class Hypothesis:
    """An altered evaluation of the spec: ``alter`` changes the named arguments, ``reorder``
    permutes the outputs. ``says`` completes "behaves as if …"."""

    says: str
    kind: str
    location: str
    alter: Callable[[Args], Args] | None = None
    reorder: tuple[int, ...] | None = None

    def evaluate(self, spec: Callable[..., Any], args: Args) -> Any:
        """The spec's output on ``args`` altered by ``alter``, its outputs permuted by
        ``reorder``: what an implementation with this fault returns there."""
        out = spec(**(self.alter(dict(args)) if self.alter else args))
        return tuple(out[k] for k in self.reorder) if self.reorder else out


@dataclass
class Trial:
    """One input the implementation was called on, and what it returned; ``want`` the spec's
    output there, evaluated once (:meth:`spec_output`), since every hypothesis compares with it."""

    args: Args
    output: Any
    designed: bool
    want: Any = None

    def spec_output(self, spec: Callable[..., Any]) -> Any:
        """The spec's output on :attr:`args` (:attr:`want`), evaluated on first use."""
        if self.want is None:
            with np.errstate(all="ignore"):
                self.want = spec(**self.args)
        return self.want


def bind(spec: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Args:
    """The call's arguments by parameter name."""
    bound = inspect.signature(spec).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def dtype_of(unit: float) -> type:
    """The floating type whose unit roundoff is ``unit`` (float64 when none is)."""
    for t in (np.float16, np.float32, np.float64):
        if float(np.finfo(t).eps) / 2 == unit:
            return t
    return np.float64


def designed_inputs(fn: str, args: Args, unit: float, seed: int, *, steps: int | None = None
                    ) -> Args:
    """Fresh arguments of the failing call's shapes, rounded to the implementation's precision:
    inputs and states N(0, 1), weights N(0, 4/(D + H)) so pre-activations are O(1), and both
    biases present and N(0, 1) so that ignoring one shows. A layer's sequence has ``steps``
    steps (default: the failing call's T, at most 8 to keep the experiments cheap), and at
    least 3, so that a shift, a reversal and a restart differ there even where a shrunk
    failing call (T ≤ 2) cannot tell them apart."""
    rng = np.random.default_rng([SEED, seed])
    dtype = dtype_of(unit)
    out = dict(args)
    w = args.get("w_ih")
    for name, value in args.items():
        if name in BIASES and w is not None:
            value = np.zeros(np.shape(w)[0])
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            continue
        scale = 1.0
        if name in ("w_ih", "w_hh"):
            scale = 2.0 / np.sqrt(max(1, np.shape(args["w_ih"])[1] + np.shape(args["w_hh"])[1]))
        shape = value.shape
        if name == "x" and fn.endswith("_layer"):
            shape = (max(3, min(shape[0], 8) if steps is None else steps), *shape[1:])
        drawn = np.asarray(scale * rng.standard_normal(shape))
        out[name] = drawn.astype(dtype).astype(np.float64)
    return out


def trials(spec: Callable[..., Any], fn: str, failing: Args, output: Any, unit: float,
           draw: Draw | None) -> list[Trial]:
    """The failing call and, with ``draw``, :data:`DESIGNED` designed inputs."""
    found = [Trial(failing, output, designed=False)]
    if draw is None:
        return found
    for k in range(DESIGNED):
        args = designed_inputs(fn, failing, unit, k)
        try:
            got = draw(fn, **args)
        except Exception:
            continue
        found.append(Trial(args, got, designed=True))
    return found


@dataclass(frozen=True)
class Held:
    """A hypothesis that holds: its confidence, its largest relative distance to the
    implementation over the trials, and the evidence as a phrase."""

    confidence: str
    worst: float
    evidence: str


def confirmed(h: Hypothesis, spec: Callable[..., Any], tried: Sequence[Trial],
              unit: float) -> Held | None:
    """How ``h`` holds when it reproduces the implementation on every trial (at rounding level or
    SEPARATION times closer than the spec) and differs from the spec on the failing call and on a
    designed input (when there is one); else None. ``high`` needs rounding level everywhere and
    a designed input."""
    same, worst, spec_far = True, 0.0, []
    # Designed inputs first: short, and most hypotheses fail on the first input tried.
    for t in sorted(tried, key=lambda t: not t.designed):
        try:
            with np.errstate(all="ignore"):
                want, alt = t.spec_output(spec), h.evaluate(spec, t.args)
        except Exception:
            return None
        d_alt, d_spec = distance(t.output, alt), distance(t.output, want)
        if not same_formula(d_alt, d_spec, unit):
            return None
        same &= d_alt <= ROUNDING_LEVEL * unit
        worst = max(worst, d_alt)
        if distance(alt, want) > ROUNDING_LEVEL * unit:
            spec_far.append((t.designed, d_spec))
    if not any(not d for d, _ in spec_far):
        return None  # the hypothesis does not explain the failing call
    designed = sum(d for d, _ in spec_far)
    if any(t.designed for t in tried) and not designed:
        return None
    confidence = "high" if same and designed else "medium"
    d_spec = min(d for _, d in spec_far)
    return Held(confidence, worst, f"relative distance ≤ {worst:.2g} to it, ≥ {d_spec:.2g} to "
                                   f"the spec, on the failing call and {designed} designed input"
                                   f"{'s' if designed != 1 else ''}")


#: Confidences, most sure first.
_RANK = {"high": 0, "medium": 1}


def claims(fn: str, spec_id: str, hypotheses: Sequence[Hypothesis], spec: Callable[..., Any],
           tried: Sequence[Trial], unit: float) -> list[Finding]:
    """One finding for the best hypotheses that hold: the most confident, led by the one closest
    to the implementation, and with it those of its kind and confidence that the inputs cannot
    tell from it — not SEPARATION times farther (an LSTM cell with h = 0 computes what one with
    w_hh = 0 does). The evidence is that of the farthest one kept, so it holds for each."""
    held = sorted(((h, c) for h in hypotheses if (c := confirmed(h, spec, tried, unit))),
                  key=lambda hc: (_RANK[hc[1].confidence], hc[1].worst))
    if not held:
        return []
    lead, best = held[0]
    kept = [(h, c) for h, c in held
            if h.kind == lead.kind and c.confidence == best.confidence
            and (c.worst <= ROUNDING_LEVEL * unit or not best.worst * SEPARATION <= c.worst)]
    evidence = kept[-1][1].evidence
    says = " — or, indistinguishably here, as if ".join(h.says for h, _ in kept)
    return [Finding(f"{fn}() localised: behaves as if {says} ({evidence}); the spec {spec_id} "
                    f"is not what it computes", kind=lead.kind,
                    location=" or ".join(h.location for h, _ in kept), evidence=evidence,
                    confidence=best.confidence)]


# ---- the hypotheses --------------------------------------------------------------------------

def _set(name: str, value: Callable[[Args], Any]) -> Callable[[Args], Args]:
    def alter(a: Args) -> Args:
        a[name] = value(a)
        return a
    return alter


def _zeros_like(name: str) -> Callable[[Args], Any]:
    return lambda a: np.zeros(np.shape(a[name]))


def _value_of(name: str) -> Callable[[Args], Any]:
    return lambda a: a[name]


def _constant(value: Any) -> Callable[[Args], Any]:
    return lambda a: value


def _alike(args: Args, a: str, b: str) -> bool:
    """Whether arguments a and b are both present and of one shape."""
    return (args.get(a) is not None and args.get(b) is not None
            and np.shape(args[a]) == np.shape(args[b]))


def zero_block(w: Any, k: int, gates: int) -> np.ndarray:
    """A copy of ``w`` (rows: ``gates`` gate blocks of equal size) with gate block k zero."""
    out = np.array(w, copy=True)
    size = out.shape[0] // gates
    out[k * size:(k + 1) * size] = 0
    return out


def _block(name: str, k: int, gates: int) -> Callable[[Args], Args]:
    return _set(name, lambda a: zero_block(a[name], k, gates))


def _permute(order: tuple[int, ...]) -> Callable[[Args], Args]:
    def alter(a: Args) -> Args:
        for name in ("w_ih", "w_hh", *BIASES):
            if a.get(name) is not None:
                size = np.shape(a[name])[0] // len(order)
                a[name] = np.concatenate([a[name][k * size:(k + 1) * size] for k in order])
        return a
    return alter


def argument_hypotheses(fn: str, args: Args) -> list[Hypothesis]:
    """Every argument ignored or taken for another, every gate block ignored, the gate blocks in
    another order, the outputs in another order, the nonlinearity ignored."""
    found: list[Hypothesis] = []
    arrays = [n for n in (*STATES, *BIASES) if n in args]
    for name in arrays:
        if name in BIASES:
            found.append(Hypothesis(f"{name} were None (it is ignored)", "argument", name,
                                    _set(name, lambda a: None)))
        else:
            found.append(Hypothesis(f"{name} were 0 (it is ignored)", "argument", name,
                                    _set(name, _zeros_like(name))))
    for a, b in itertools.permutations(arrays, 2):
        if _alike(args, a, b):
            found.append(Hypothesis(f"{a} were {b} ({b} is used where {a} belongs)", "argument",
                                    a, _set(a, _value_of(b))))
    for a, b in itertools.combinations(arrays, 2):
        if _alike(args, a, b):
            def swap(v: Args, a: str = a, b: str = b) -> Args:
                v[a], v[b] = v[b], v[a]
                return v
            found.append(Hypothesis(f"{a} and {b} were swapped", "argument", f"{a}, {b}", swap))
    gates = GATES[FAMILY[fn]]
    for name in ("w_ih", "w_hh", *BIASES):
        if args.get(name) is None:
            continue
        for k, (sym, gate) in enumerate(gates):
            term = {"w_ih": f"W_i{sym}", "w_hh": f"W_h{sym}", "b_ih": f"b_i{sym}",
                    "b_hh": f"b_h{sym}"}[name]
            depends = {"w_ih": ": it does not depend on x", "w_hh": ": it does not depend on h"}
            found.append(Hypothesis(f"the {gate} ignored {term} (block {k} of {name})"
                                    f"{depends.get(name, '')}", "gate", f"{gate}: {term}",
                                    _block(name, k, len(gates))))
    for order in itertools.permutations(range(len(gates))):
        if order != tuple(range(len(gates))):
            read = ", ".join(gates[k][0] for k in order)
            found.append(Hypothesis(f"the gate blocks were read in the order {read}", "gate",
                                    f"gate order {read}", _permute(order)))
    names = OUTPUTS[fn]
    for order in itertools.permutations(range(len(names))):
        # y (T, B, H) cannot trade places with a state (B, H)
        if order != tuple(range(len(names))) and (names[0] != "y" or order[0] == 0):
            shown = ", ".join(names[k] for k in order)
            found.append(Hypothesis(f"it returned ({shown})", "output order", f"returns ({shown})",
                                    reorder=order))
    if args.get("nonlinearity") in ("tanh", "relu"):
        other = "relu" if args["nonlinearity"] == "tanh" else "tanh"
        found.append(Hypothesis(f"nonlinearity were '{other}' (the argument "
                                f"'{args['nonlinearity']}' is ignored)", "argument",
                                "nonlinearity", _set("nonlinearity", _constant(other))))
    return found


def localisable(fn: str) -> bool:
    """Whether an experiment covers ``fn``."""
    from nnspec.checks.oracle import localise_time

    return fn in FAMILY or fn in localise_time.MODULES


class Experiment:
    """The experiments on one recorded call that matched no catalogued variant or bug, with its
    designed inputs drawn once (on first use) and shared by :meth:`contradicts` and
    :meth:`localise`."""

    def __init__(self, call: Any, unit: float, draw: Draw | None, want: Any = None) -> None:
        from nnspec.implementations import reference

        self.call, self.unit, self.draw = call, unit, draw
        self.fn: str = call.fn
        self.spec = getattr(reference, self.fn, None)
        self.spec_id = (doc_id(self.spec) if self.spec else None) or self.fn
        self.failing: Args | None = None
        if self.spec is not None and localisable(self.fn):
            try:
                self.failing = bind(self.spec, call.args, call.kwargs)
            except TypeError:
                self.failing = None
        self._tried: list[Trial] | None = None
        self._numerics: list[Trial] | None = None
        #: The spec's output on the failing call, where the caller has it already.
        self.want = want

    @property
    def tried(self) -> list[Trial]:
        """The failing call and the designed inputs (cells and layers only)."""
        if self._tried is None:
            assert self.spec is not None and self.failing is not None
            self._tried = (trials(self.spec, self.fn, self.failing, self.call.output, self.unit,
                                  self.draw) if self.fn in FAMILY
                           else [Trial(self.failing, self.call.output, designed=False)])
            self._tried[0].want = self.want
        return self._tried

    def designed(self) -> list[Trial]:
        """The designed inputs and the implementation's outputs on them: those of the argument
        experiments for cells and layers, checks/oracle/localise_numerics.py's for the losses and
        the elementwise activations."""
        from nnspec.checks.oracle import localise_numerics

        if self.failing is not None and self.fn in FAMILY:
            return [t for t in self.tried if t.designed]
        if self.spec is None or self.draw is None:
            return []
        if self._numerics is None:
            self._numerics = []
            dtype = dtype_of(self.unit)
            for args, kwargs in localise_numerics.designed(self.fn, self.call.args,
                                                          self.call.kwargs):
                # Rounded to the implementation's precision, as the cells' designed inputs are.
                args = tuple(a.astype(dtype).astype(np.float64)
                             if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                             for a in args)
                try:
                    self._numerics.append(Trial(bind(self.spec, args, kwargs),
                                                self.draw(self.fn, *args, **kwargs),
                                                designed=True))
                except Exception:
                    continue
        return self._numerics

    def contradicts(self, candidate: Callable[..., Any]) -> bool:
        """Whether a designed input shows the implementation is not ``candidate``: neither at
        rounding level nor SEPARATION times closer to it than to the spec there."""
        if self.draw is None or self.spec is None:
            return False
        for t in self.designed():
            try:
                with np.errstate(all="ignore"):
                    # Positionally: a candidate names its parameters as its own module does.
                    d, d_spec = (distance(t.output, candidate(*t.args.values())),
                                 distance(t.output, t.spec_output(self.spec)))
            except Exception:
                continue
            if not same_formula(d, d_spec, self.unit):
                return True
        return False

    def localise(self) -> list[Finding]:
        """The localised findings; one ``unlocalised`` finding when no experiment's evidence
        holds; [] for a call no experiment covers."""
        from nnspec.checks.oracle import localise_gates, localise_time

        if self.failing is None or self.spec is None:
            return []
        fn, spec_id, spec, failing, unit = (self.fn, self.spec_id, self.spec, self.failing,
                                            self.unit)
        run: list[str] = []
        found: list[Finding] = []
        if fn in FAMILY:
            hypotheses = argument_hypotheses(fn, failing)
            run.append(f"{len(hypotheses)} altered arguments on {len(self.tried)} input"
                       f"{'s' if len(self.tried) != 1 else ''}")
            found = claims(fn, spec_id, hypotheses, spec, self.tried, unit)
            if not found and fn.endswith("_layer"):
                run.append("time alignment")
                found = localise_time.layer(fn, spec_id, spec, failing, self.call.output, unit,
                                            self.tried[0].spec_output(spec), self.draw)
            if not found and fn in ("gru_cell", "lstm_cell") and self.draw is not None:
                run.append("one gate at a time")
                found = localise_gates.gates(fn, spec_id, spec, failing, unit, self.draw)
        elif fn in localise_time.MODULES:
            run.append("packed lengths")
            found = localise_time.packed(fn, spec_id, spec, failing, self.call.output, unit,
                                         self.draw)
        if found:
            return found
        return [Finding(f"{fn}() could not be localised: no experiment's evidence holds "
                        f"({'; '.join(run) or 'none applies'})", kind="unlocalised",
                        evidence="; ".join(run), confidence="none")]


def localise(fn: str, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any, unit: float,
             draw: Draw | None) -> list[Finding]:
    """The localised findings for a call of ``fn`` with ``output`` that matches no catalogued
    variant or bug (:meth:`Experiment.localise`)."""
    from nnspec.checks.oracle.diagnosis import Call

    return Experiment(Call(fn, args, kwargs, output), unit, draw).localise()
