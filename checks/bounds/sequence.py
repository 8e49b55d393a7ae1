"""sequence.module and its options — the running error bounds of a whole nn.RNN / nn.GRU / nn.LSTM
(spec/sequence.md, "Tolerance"): each direction of each layer is the family's step (checks/bounds/
rnn.py, gru.py, lstm.py) carried over time by the engine (checks/bounds/engine.py) on the Computed
output of the layer below, and the backward carries the Computed ∂(layer input) down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnspec.checks.bounds import backpropagation as BP
from nnspec.checks.bounds import engine as E
from nnspec.checks.bounds import gru, lstm, rnn
from nnspec.checks.bounds import propagation as P
from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds.engine import Computed, exact, flip, total
from nnspec.reference.sequence import GATES, time_major


@dataclass(frozen=True)
class Direction:
    """One direction of one layer (spec/sequence.md): ``run`` carries a Computed input and
    initial state through the layer; ``backward`` carries Computed cotangents back."""

    mode: str
    nonlinearity: str
    p: dict[str, np.ndarray]
    dtype: np.dtype

    def _step(self, x_t: Computed, state: tuple[Computed, ...]) -> E.Step:
        p, dtype = self.p, self.dtype
        w, b = (p["weight_ih"], p["weight_hh"]), (p.get("bias_ih"), p.get("bias_hh"))
        if self.mode == "lstm":
            return lstm.step(x_t, state[0], state[1], *w, *b, dtype, p.get("weight_hr"))
        if self.mode == "gru":
            return gru.step(x_t, state[0], *w, *b, dtype)
        return rnn.step(x_t, state[0], *w, *b, self.nonlinearity, dtype)

    def _backward(self, g: tuple[Computed, ...],
                  s: Any) -> tuple[Computed, tuple[Computed, ...], E.Gradients]:
        p, dtype = self.p, self.dtype
        w = (p["weight_ih"], p["weight_hh"])
        if self.mode == "lstm":
            return lstm.step_backward(g, s, *w, dtype, p.get("weight_hr"))
        if self.mode == "gru":
            return gru.step_backward(g, s, *w, dtype)
        return rnn.step_backward(g, s, *w, self.nonlinearity, dtype)

    def run(self, x: Computed, state0: tuple[Computed, ...], until: P.Trajectory | None = None,
            scale: float = 0.0) -> tuple[Computed, tuple[Computed, ...], list[Any]]:
        """→ (y, final state, the steps backward needs). With ``until``, the direction's
        probabilistic trajectory (bound ``scale``·√V), the worst-case run stops once it is the
        looser bound (propagation.dominates); later steps' errors are then infinite."""
        stop = None if until is None else P.dominates(scale * np.sqrt(until.Vy))
        steps = E.run(self._step, x, state0, stop)
        if until is None or len(steps) == x.shape[0]:
            return E.outputs(steps), steps[-1].state, steps
        y = E.outputs(steps)
        rest = np.full((x.shape[0] - len(steps), *y.shape[1:]), np.inf)
        return (Computed(until.y, np.concatenate([y.error, rest])),
                tuple(Computed(v, np.full(v.shape, np.inf)) for v in until.state), steps)

    def probabilistic(self, x: np.ndarray, Vx: np.ndarray, state0: tuple[np.ndarray, ...],
                      scale: float, tape: list[Any]) -> P.Trajectory:
        """The first-order probabilistic trajectory (checks/bounds/propagation.py) of this
        direction on inputs x whose errors have variance proxies Vx (bound ``scale``·√V, which
        also tells a repeated input, propagation.repeats); the initial state exact; ``tape``
        receives what each step saves for the gradients."""
        p = self.p
        w_ih, w_hh, b_ih, b_hh = p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh")
        if self.mode == "lstm":
            return P.lstm(x, state0[0], state0[1], w_ih, w_hh, b_ih, b_hh, p.get("weight_hr"),
                          Vx=Vx, tape=tape, within=scale)
        if self.mode == "gru":
            return P.gru(x, state0[0], w_ih, w_hh, b_ih, b_hh, Vx=Vx, tape=tape, within=scale)
        return P.rnn(x, state0[0], w_ih, w_hh, b_ih, b_hh, self.nonlinearity, scale, Vx=Vx,
                     tape=tape, within=scale)

    def adjoint(self, traj: P.Trajectory, tape: list[Any], x: np.ndarray, Vx: np.ndarray,
                h0: np.ndarray, gy: np.ndarray, Vgy: np.ndarray,
                g_state: tuple[np.ndarray, ...], scale: float) -> BP.Adjoint:
        """The first-order probabilistic backward (checks/bounds/backpropagation.py) of this
        direction's :meth:`probabilistic` run: cotangents gy with V, exact state cotangents;
        ``scale`` tells a repeated input or cotangent, as there."""
        p = self.p
        w_ih, w_hh = p["weight_ih"], p["weight_hh"]
        unit = tol.unit_roundoff(self.dtype)
        if self.mode == "lstm":
            return BP.lstm(traj, tape, x, Vx, h0, w_ih, w_hh, p.get("weight_hr"), gy, Vgy,
                           *g_state, unit=unit, within=scale)
        if self.mode == "gru":
            return BP.gru(traj, tape, x, Vx, h0, w_ih, w_hh, gy, Vgy, *g_state, unit=unit,
                          within=scale)
        return BP.rnn(traj, tape, x, Vx, h0, w_ih, w_hh, self.nonlinearity, gy, Vgy,
                      *g_state, unit=unit, within=scale)

    def backward(self, gy: Computed, g_state: tuple[Computed, ...],
                 steps: list[Any]) -> tuple[Computed, tuple[Computed, ...], E.Gradients]:
        """→ (∂x, ∂state0, open weight gradients)."""
        return E.run_backward(self._backward, gy, g_state, steps, self.dtype)


# ---- whole modules (spec/sequence.md) --------------------------------------------------------

def _place(target: dict[str, np.ndarray], c: Computed, index: Any) -> None:
    target["value"][index] = c.value
    target["error"][index] = c.error


def _zeros(shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"value": np.zeros(shape), "error": np.zeros(shape)}


@dataclass(frozen=True)
class ModuleBounds:
    """Bounds on rnn_module's outputs and, given cotangents, on vjp_rnn_module's gradients."""

    outputs: tuple[tol.Bound, ...]
    dx: tol.Bound | None
    dstate: tuple[tol.Bound, ...] | None
    dparams: dict[str, tol.Bound] | None


def rnn_module(mode: str, x: np.ndarray, state: Any, params: dict[str, np.ndarray], *,
               dtype: np.dtype | type, cotangents: Sequence[np.ndarray] | None = None,
               num_layers: int = 1, bidirectional: bool = False, batch_first: bool = False,
               nonlinearity: str = "tanh", proj_size: int = 0,
               lengths: Any = None) -> ModuleBounds:
    """Running bounds of reference/sequence.py's rnn_module in evaluation mode (spec/sequence.md,
    "Tolerance"): each direction of each layer runs on the Computed output of the layer below,
    sequences of one length together (bounds are per sample, so the grouping is immaterial to
    the running bounds; the probabilistic weight gradients group equal inputs only within one,
    spec/tolerances.md, "Known false alarm"); the backward carries the Computed ∂(layer input)
    down, and every weight gradient stays open until all its steps, samples and sequences are
    in.
    """
    dtype = np.dtype(dtype)
    xs = time_major(np.asarray(x, dtype=np.float64), batch_first)
    T, B = xs.shape[:2]
    D = 2 if bidirectional else 1
    hidden = params["weight_hh_l0"].shape[0] // GATES[mode]
    widths = (proj_size or hidden, hidden) if mode == "lstm" else (proj_size or hidden,)
    given = (tuple(state) if mode == "lstm" else (state,)) if state is not None else tuple(
        np.zeros((num_layers * D, B, w)) for w in widths)
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    groups = [(L, np.flatnonzero(lengths == L)) for L in np.unique(lengths)]
    bias = "bias_ih_l0" in params

    def direction(layer: int, d: int) -> Direction:
        suffix = f"_l{layer}{'_reverse' if d else ''}"
        return Direction(mode, nonlinearity, {n[:-len(suffix)]: v for n, v in params.items()
                                              if n.endswith(suffix)}, dtype)

    # The probabilistic pass first (spec/tolerances.md, "Bounds at production scale"): each
    # layer's outputs, with their variance proxies V, are the next layer's inputs.
    elements = T * B * D * widths[0] + sum(num_layers * D * B * w for w in widths)
    scale = P.scale(dtype, elements)
    floor = P.underflow(dtype, P.roundings(T * B, *params.values()))
    value, V = xs, np.zeros_like(xs)
    V_finals = [np.zeros((num_layers * D, B, w)) for w in widths]
    linear = np.ones(B, dtype=bool)
    diagonal = np.ones(B, dtype=bool)  # the gradients' model holds (backpropagation.diagonal)
    sure = np.ones(B, dtype=bool)  # no ReLU derivative that may flip (backpropagation.sure)
    trajectories: dict[tuple[int, int, int], tuple[P.Trajectory, list[Any]]] = {}
    layer_inputs = []
    for layer in range(num_layers):
        layer_inputs.append((value, V))
        y_p, V_p = np.zeros((T, B, D * widths[0])), np.zeros((T, B, D * widths[0]))
        for d in range(D):
            k, cols = layer * D + d, slice(d * widths[0], (d + 1) * widths[0])
            for L, idx in groups:
                seq, V_seq = value[:L, idx], V[:L, idx]
                tape: list[Any] = []
                traj = direction(layer, d).probabilistic(
                    seq[::-1] if d else seq, V_seq[::-1] if d else V_seq,
                    tuple(np.asarray(s[k, idx], dtype=np.float64) for s in given), scale, tape)
                trajectories[layer, d, int(L)] = traj, tape
                if nonlinearity == "relu" and mode not in ("lstm", "gru"):
                    sure[idx] &= BP.sure(tape, scale)
                y_p[:L, idx, cols] = traj.y[::-1] if d else traj.y
                V_p[:L, idx, cols] = traj.Vy[::-1] if d else traj.Vy
                for V_final, v in zip(V_finals, traj.Vstate, strict=True):
                    V_final[k, idx] = v
                linear[idx] &= P.layer_linearisable(traj, dtype)[1]
                diagonal[idx] &= BP.diagonal(traj)
        value, V = y_p, V_p
    probabilistic = [time_major(np.where(linear[None, :, None], scale * np.sqrt(V) + floor,
                                         np.inf), batch_first),
                     *(np.where(linear[None, :, None], scale * np.sqrt(v) + floor, np.inf)
                       for v in V_finals)]

    inp, finals, traces = exact(xs), [_zeros((num_layers * D, B, w)) for w in widths], []
    finished = True  # whether every worst-case run went to the end (the gradients' needs it)
    for layer in range(num_layers):
        out = _zeros((T, B, D * widths[0]))
        for d in range(D):
            k, cols = layer * D + d, slice(d * widths[0], (d + 1) * widths[0])
            for L, idx in groups:
                part = inp[:L, idx]
                y, final, saved = direction(layer, d).run(
                    flip(part) if d else part, tuple(exact(s[k, idx]) for s in given),
                    trajectories[layer, d, int(L)][0], scale)
                finished &= len(saved) == L
                _place(out, flip(y) if d else y, (slice(0, L), idx, cols))
                for target, f in zip(finals, final, strict=True):
                    _place(target, f, (k, idx))
                traces.append((layer, d, L, idx, saved))
        inp = Computed(out["value"], out["error"])
    outputs = (Computed(time_major(inp.value, batch_first), time_major(inp.error, batch_first)),
               *(Computed(f["value"], f["error"]) for f in finals))
    bounds = tuple(P.tighter(o.error, prob, dtype, f"rnn_module {name}")
                   for o, prob, name in zip(outputs, probabilistic, ("y", "h_n", "c_n"),
                                            strict=False))
    if cotangents is None:
        return ModuleBounds(bounds, None, None, None)

    gy, *g_states = (np.asarray(c, dtype=np.float64) for c in cotangents)

    def worst_case() -> tuple[Computed, list[Computed], dict[str, Computed]]:
        """The running worst-case bounds of the gradients: (∂x, ∂state0…, ∂params)."""
        g = exact(time_major(gy, batch_first))
        d_states = [_zeros((num_layers * D, B, w)) for w in widths]
        d_params: dict[str, Computed] = {}
        for layer in reversed(range(num_layers)):
            width_in = xs.shape[2] if layer == 0 else D * widths[0]
            shares = [_zeros((T, B, width_in)) for _ in range(D)]
            for d in range(D):
                k, cols = layer * D + d, slice(d * widths[0], (d + 1) * widths[0])
                grads: E.Gradients | None = None
                for t_layer, t_d, L, idx, saved in traces:
                    if (t_layer, t_d) != (layer, d):
                        continue
                    g_seq = g[:L, idx, cols]
                    dx, d_state0, g_open = direction(layer, d).backward(
                        flip(g_seq) if d else g_seq, tuple(exact(gs[k, idx]) for gs in g_states),
                        saved)
                    _place(shares[d], flip(dx) if d else dx, (slice(0, L), idx))
                    for target, ds in zip(d_states, d_state0, strict=True):
                        _place(target, ds, (k, idx))
                    grads = g_open if grads is None else grads + g_open
                assert grads is not None, "every direction ran on at least one group of sequences"
                suffix = f"_l{layer}{'_reverse' if d else ''}"
                d_params.update({f"{n}{suffix}": c for n, c in grads.close(dtype, bias).items()})
            g = total(*(Computed(s["value"], s["error"]) for s in shares), dtype=dtype)
        dx = Computed(time_major(g.value, batch_first), time_major(g.error, batch_first))
        return dx, [Computed(s["value"], s["error"]) for s in d_states], d_params

    @tol.overflow_is_infinite  # an overflowed V is infinite: no bound
    def probabilistic_() -> tuple[np.ndarray, list[np.ndarray], dict[str, np.ndarray]]:
        """V of the gradients (checks/bounds/backpropagation.py), (∂x, ∂state0…, ∂params): each
        direction's adjoint on its trajectory; ∂(layer input) with its V is the cotangent of the
        layer below, the two directions' shares added (one rounding)."""
        g = time_major(gy, batch_first)
        Vg = np.zeros_like(g)
        V_states = [np.zeros((num_layers * D, B, w)) for w in widths]
        V_params: dict[str, np.ndarray] = {}
        for layer in reversed(range(num_layers)):
            x_l, Vx_l = layer_inputs[layer]
            shares = [(np.zeros(x_l.shape), np.zeros(x_l.shape)) for _ in range(D)]
            for d in range(D):
                k, cols = layer * D + d, slice(d * widths[0], (d + 1) * widths[0])
                opened: dict[str, BP.Open] = {}
                for L, idx in groups:
                    traj, tape = trajectories[layer, d, int(L)]
                    order = slice(None, None, -1 if d else 1)
                    adj = direction(layer, d).adjoint(
                        traj, tape, x_l[:L, idx][order], Vx_l[:L, idx][order],
                        np.asarray(given[0][k, idx], dtype=np.float64), g[:L, idx, cols][order],
                        Vg[:L, idx, cols][order], tuple(gs[k, idx] for gs in g_states), scale)
                    shares[d][0][:L, idx], shares[d][1][:L, idx] = adj.dx[order], adj.Vdx[order]
                    for V_state, v in zip(V_states, adj.Vdstate, strict=True):
                        V_state[k, idx] = v
                    opened = {n: opened[n] + o if n in opened else o for n, o in adj.grads.items()}
                suffix = f"_l{layer}{'_reverse' if d else ''}"
                V_params.update({f"{n}{suffix}": o.close() for n, o in opened.items()
                                 if bias or not n.startswith("bias")})
            g = shares[0][0] if D == 1 else shares[0][0] + shares[1][0]
            Vg = shares[0][1] if D == 1 else shares[0][1] + shares[1][1] + g * g
        return time_major(Vg, batch_first), V_states, V_params

    V_dx, V_states, V_params = probabilistic_()
    ok = linear & diagonal & sure & BP.squarable(*cotangents)
    s = P.scale(dtype, V_dx.size + sum(v.size for v in V_states) + sum(v.size for v in V_params.values()))

    def prob(V: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(rows & ~np.isnan(V), s * np.sqrt(V) + floor, np.inf)

    w_dx: Computed | None = None
    w_states: list[Computed | None] = [None] * len(widths)
    w_params: dict[str, Computed] = {}
    if finished:
        w_dx, states_, w_params = worst_case()
        w_states = list(states_)

    def combine(w: Computed | None, p: np.ndarray, name: str) -> tol.Bound:
        return P.where_vacuous(np.inf if w is None else w.error, p, dtype,
                               f"vjp_rnn_module {name}")

    rows_dx = time_major(np.broadcast_to(ok[None, :, None], (T, B, 1)), batch_first)
    return ModuleBounds(
        bounds, combine(w_dx, prob(V_dx, rows_dx), "dx"),
        tuple(combine(w, prob(v, ok[None, :, None]), f"d{name}")
              for w, v, name in zip(w_states, V_states, ("h0", "c0"), strict=False)),
        {n: combine(w_params.get(n), prob(v, np.asarray(ok.all())), f"d{n}") for n, v in V_params.items()})
