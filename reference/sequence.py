"""Reference for spec/sequence.md: nn.RNN, nn.GRU and nn.LSTM as whole modules — stacked layers
(seed 001 §6.1.4), two directions (§6.1.5), ``batch_first`` (seed 002 ⑳), packed batches of
sequences of different lengths, and dropout between layers (§6.1.7) — composed from the
per-layer functions of reference/rnn.py, gru.py and lstm.py and their backpropagation through
time. No cell is written here: a direction of a layer *is* ``rnn_layer``, ``gru_layer``,
``lstm_layer`` or ``lstm_layer_projection``, and a gradient is theirs, routed.

The contract-facing :func:`rnn_module` takes PyTorch's parameter names (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``weight_hr_l0`` with ``proj_size``, and the
same with ``_reverse`` for the backward direction) in one dict. Each spec id of the family has a
small function of its own (:func:`deep_rnn`, :func:`time_reversed`, :func:`concatenated`,
:func:`time_major`, :func:`packed`, :func:`inter_layer_dropout`); the known bugs replace exactly
one of them. Everything accepts complex arrays (complex-step differentiation applies).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from nnspec.reference import dropout as dropout_ref
from nnspec.reference import gru, lstm, rnn

MODES = ("rnn", "gru", "lstm")

#: Rows of weight_ih per hidden unit: the gate blocks of each mode.
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

State = tuple[np.ndarray, ...]
Run = Callable[[np.ndarray, State], tuple[np.ndarray, State]]
RunVJP = Callable[[np.ndarray, State, np.ndarray, State], tuple[np.ndarray, State, dict]]

#: The per-layer functions (forward, backward) each direction of each layer is.
_LAYERS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "rnn": (rnn.rnn_layer, rnn.rnn_layer_vjp),
    "gru": (gru.gru_layer, gru.gru_layer_vjp),
    "lstm": (lstm.lstm_layer, lstm.lstm_layer_vjp),
    "lstm_projection": (lstm.lstm_layer_projection, lstm.lstm_layer_projection_vjp),
}


# ---- seed 001's notation ---------------------------------------------------------------------

def deep_rnn(x: np.ndarray, h_0: np.ndarray, params: Sequence[tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray | None]],
             activation: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """sequence.stacked — h_t^l = σ(W^l h_{t−1}^l + U^l h_t^{l−1} + b^l) for l = 1 … L, with
    h_t^0 = x_t (seed 001 §6.1.4): layer l reads layer l − 1's state at the same step.

    x: (T, n, d), h_0: (L, n, h), params[l] = (W^l, U^l, b^l) as in rnn.cell → (h^L: (T, n, h),
    the last states h_T^l: (L, n, h)).
    """
    h, last = x, []
    for (W, U, b), h0_l in zip(params, h_0, strict=True):
        h, h_T = rnn.layer(h, h0_l, W, U, b, activation)
        last.append(h_T)
    return h, np.stack(last)


def bidirectional_rnn(x: np.ndarray, h0_f: np.ndarray, h0_b: np.ndarray,
                      p_f: tuple[np.ndarray, np.ndarray, np.ndarray | None],
                      p_b: tuple[np.ndarray, np.ndarray, np.ndarray | None],
                      activation: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """sequence.bidirectional — →h_t = σ(W^f →h_{t−1} + U^f x_t + b^f) and
    ←h_t = σ(W^b ←h_{t+1} + U^b x_t + b^b) (seed 001 §6.1.5): the backward states are
    rnn.layer run on x_T … x_1, put back in time order.

    x: (T, n, d), h0_f, h0_b: (n, h), p_· = (W, U, b) → (→h, ←h), each (T, n, h).
    """
    h_f, _ = rnn.layer(x, h0_f, *p_f, activation)
    h_b, _ = rnn.layer(x[::-1], h0_b, *p_b, activation)
    return h_f, h_b[::-1]


def bidirectional_output(h_f: np.ndarray, h_b: np.ndarray, V_f: np.ndarray, V_b: np.ndarray,
                         b_y: np.ndarray | None) -> np.ndarray:
    """sequence.bidirectional — y_t = V^f →h_t + V^b ←h_t + b_y (seed 001 §6.1.5).

    h_f, h_b: (T, n, h), V_f, V_b: (o, h), b_y: (o,) or None → y: (T, n, o).
    """
    y = h_f @ V_f.T + h_b @ V_b.T
    return y if b_y is None else y + b_y


# ---- the pieces of nn.RNN's forward, one per spec id -----------------------------------------

def time_reversed(run: Run) -> Run:
    """sequence.bidirectional — the backward direction: the forward recurrence run on
    x_T … x_1, its outputs put back in time order (seed 001 §6.1.5), so y_t = ←h_t.

    ``run(x, state0) → (y, state_T)`` → the same for the reversed direction; its final state is
    ←h_1, the state after reading x_1 (nn.RNN's h_n of that direction).
    """

    def run_backward(x: np.ndarray, state0: State) -> tuple[np.ndarray, State]:
        y, state_T = run(x[::-1], state0)
        return y[::-1], state_T

    return run_backward


def time_reversed_vjp(vjp: RunVJP) -> RunVJP:
    """sequence.bidirectional — backward of :func:`time_reversed`: reversing time is a
    permutation, so ∂x is the direction's ∂x of the reversed sequence, reversed back."""

    def vjp_backward(gy: np.ndarray, g_state: State, x: np.ndarray,
                     state0: State) -> tuple[np.ndarray, State, dict]:
        dx, d_state0, dp = vjp(gy[::-1], g_state, x[::-1], state0)
        return dx[::-1], d_state0, dp

    return vjp_backward


def concatenated(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """sequence.bidirectional — y_t = [→h_t; ←h_t]: the forward direction's features first, then
    the backward's (nn.RNN's output with bidirectional=True; one direction: y_t = h_t).

    outputs: D arrays (T, B, H_out) → (T, B, D·H_out).
    """
    return np.concatenate(list(outputs), axis=-1)


def time_major(x: np.ndarray, batch_first: bool) -> np.ndarray:
    """sequence.batch_first — with batch_first=True nn.RNN reads x as (B, T, D) and returns y as
    (B, T, ·): x_t[b] = x[b, t], a transpose without arithmetic (seed 002 ⑳); the states keep
    their (layers·directions, B, H) layout. Applied twice it is the identity.
    """
    return np.swapaxes(x, 0, 1) if batch_first else x


def packed(run: Run, x: np.ndarray, state0: State,
           lengths: np.ndarray) -> tuple[np.ndarray, State]:
    """sequence.packed — sequence b runs alone for its own lengths[b] steps: y_t[b] is its state
    after step t for t < lengths[b] and 0 beyond; its final state is the one after step
    lengths[b] (pack_padded_sequence(enforce_sorted=False), then pad_packed_sequence with
    total_length = T). A direction made by :func:`time_reversed` therefore starts at each
    sequence's own last valid step.

    x: (T, B, D), state0: arrays (B, ·), lengths: (B,) integers in 1 … T → (y: (T, B, H_out),
    final state).
    """
    T, B = np.shape(x)[:2]
    runs = [(idx, run(x[:L, idx], tuple(s[idx] for s in state0)))
            for L, idx in ((L, np.flatnonzero(lengths == L)) for L in np.unique(lengths))]
    y_any, s_any = runs[0][1]
    y = np.zeros((T, B, y_any.shape[-1]), dtype=np.result_type(*(r[1][0] for r in runs)))
    final = tuple(np.zeros((B, s.shape[-1]), dtype=np.result_type(*(r[1][1][k] for r in runs)))
                  for k, s in enumerate(s_any))
    for idx, (y_g, s_g) in runs:
        y[:len(y_g), idx] = y_g
        for k, s in enumerate(s_g):
            final[k][idx] = s
    return y, final


def packed_vjp(vjp: RunVJP, gy: np.ndarray, g_state: State, x: np.ndarray, state0: State,
               lengths: np.ndarray) -> tuple[np.ndarray, State, dict]:
    """sequence.packed — backward of :func:`packed`: each sequence's gradient is its own run's
    (the padding receives ∂x = 0 and its outputs' cotangents are ignored); the shared parameters'
    gradients add up over the sequences."""
    dx = None
    d_state0: list[np.ndarray] = []
    dp: dict[str, np.ndarray] = {}
    for L in np.unique(lengths):
        idx = np.flatnonzero(lengths == L)
        dx_g, ds_g, dp_g = vjp(gy[:L, idx], tuple(g[idx] for g in g_state), x[:L, idx],
                               tuple(s[idx] for s in state0))
        if dx is None:
            dx = np.zeros(np.shape(x), dtype=np.result_type(dx_g, x))
            d_state0 = [np.zeros(np.shape(s), dtype=np.result_type(d, s))
                        for s, d in zip(state0, ds_g, strict=True)]
        dx[:L, idx] = dx_g
        for k, d in enumerate(ds_g):
            d_state0[k][idx] = d
        dp = {name: dp.get(name, 0) + g for name, g in dp_g.items()}
    assert dx is not None  # lengths holds one entry per sequence, and packed() needs one
    return dx, tuple(d_state0), dp


def inter_layer_dropout(y: np.ndarray, layer: int, num_layers: int, p: float, training: bool,
                        rng: np.random.Generator | None) -> np.ndarray:
    """sequence.inter_layer_dropout — layer l + 1 reads dropout(y^l) in training mode and y^l in
    evaluation; the last layer's output is never dropped (nn.RNN's ``dropout``, seed 001 §6.1.7).

    dropout is dropout.inverted, ξ/(1 − p)·y with ξ ~ Bernoulli(1 − p) drawn from ``rng``;
    nothing is drawn where nothing is dropped (evaluation, p = 0, the last layer).
    """
    if not training or p == 0 or layer == num_layers - 1:
        return y
    return dropout_ref.dropout(y, p, True, _needed(rng))


def inter_layer_dropout_vjp(g: np.ndarray, y: np.ndarray, layer: int, num_layers: int, p: float,
                            training: bool, rng: np.random.Generator | None) -> np.ndarray:
    """sequence.inter_layer_dropout — backward: ξ/(1 − p)·g with the forward's mask (``rng`` in
    the state the forward drew it from), g where nothing was dropped."""
    if not training or p == 0 or layer == num_layers - 1:
        return g
    (dy,) = dropout_ref.dropout_vjp(g, y, p, True, _needed(rng))
    return dy


def _needed(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        raise ValueError("dropout between layers draws its mask from rng, a numpy Generator: "
                         "got None")
    return rng


# ---- the module --------------------------------------------------------------------------------

class Direction(NamedTuple):
    """One direction of one layer, its parameters bound: run(x, state0) → (y, state_T) and
    vjp(gy, g_state_T, x, state0) → (∂x, ∂state0, ∂parameters by PyTorch's name without suffix)."""

    run: Run
    vjp: RunVJP


def _direction(mode: str, nonlinearity: str, p: dict[str, np.ndarray]) -> Direction:
    key = "lstm_projection" if "weight_hr" in p else mode
    forward, backward = _LAYERS[key]
    names = ("weight_ih", "weight_hh", *(("weight_hr",) if "weight_hr" in p else ()),
             "bias_ih", "bias_hh")
    weights = [p.get(name) for name in names]
    kw = {"nonlinearity": nonlinearity} if mode == "rnn" else {}

    def run(x: np.ndarray, state0: State) -> tuple[np.ndarray, State]:
        y, *state_T = forward(x, *state0, *weights, **kw)
        return y, tuple(state_T)

    def vjp(gy: np.ndarray, g_state: State, x: np.ndarray,
            state0: State) -> tuple[np.ndarray, State, dict]:
        dx, *rest = backward((gy, *g_state), x, *state0, *weights, **kw)
        d_state0, grads = rest[:len(state0)], rest[len(state0):]
        return dx, tuple(d_state0), {n: g for n, g in zip(names, grads, strict=True)
                                     if g is not None}

    return Direction(run, vjp)


def parameter_names(mode: str, *, num_layers: int = 1, bidirectional: bool = False,
                    bias: bool = True, proj_size: int = 0) -> list[str]:
    """PyTorch's parameter names of nn.RNN/GRU/LSTM with these options, in its order."""
    names = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse")[:2 if bidirectional else 1]:
            names += [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
            if bias:
                names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
            if proj_size:
                names.append(f"weight_hr_l{layer}{suffix}")
    return names


@dataclass(frozen=True)
class _Setup:
    """The validated arguments of one call, time-major, with every direction's parameters."""

    mode: str
    num_layers: int
    directions: int
    batch_first: bool
    lengths: np.ndarray
    dropout: float
    training: bool
    rng: np.random.Generator | None
    states: list[State]
    layers: list[list[Direction]]
    state_given: bool


def _setup(mode: str, x: np.ndarray, state: Any, params: dict[str, np.ndarray], *,
           num_layers: int, bidirectional: bool, batch_first: bool, nonlinearity: str,
           proj_size: int, lengths: Any, dropout: float, training: bool,
           rng: np.random.Generator | None) -> _Setup:
    if mode not in MODES:
        raise ValueError(f"mode = {mode!r} is not one of {list(MODES)}")
    if not isinstance(num_layers, int | np.integer) or num_layers < 1:
        raise ValueError(f"num_layers = {num_layers!r} must be an integer ≥ 1")
    if mode == "rnn" and nonlinearity not in rnn.ACTIVATIONS:
        raise ValueError(f"nonlinearity = {nonlinearity!r} is not one of {sorted(rnn.ACTIVATIONS)}")
    if mode != "rnn" and nonlinearity != "tanh":
        raise ValueError(f"nonlinearity = {nonlinearity!r} applies to mode 'rnn' only, not {mode!r}")
    if not isinstance(proj_size, int | np.integer) or proj_size < 0 or (proj_size and mode != "lstm"):
        raise ValueError(f"proj_size = {proj_size!r} must be 0, or a positive integer for mode 'lstm'")
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout = {dropout!r} is not a probability in [0, 1]")
    if training and dropout > 0 and num_layers > 1 and rng is None:
        raise ValueError("training with dropout > 0 between layers needs rng, a numpy Generator")
    if np.ndim(x) != 3 or 0 in np.shape(x):
        raise ValueError(f"x must have shape ({'batch, T' if batch_first else 'T, batch'}, input) "
                         f"with T, batch ≥ 1, got {np.shape(x)}")
    D = 2 if bidirectional else 1
    bias = "bias_ih_l0" in params
    expected = parameter_names(mode, num_layers=num_layers, bidirectional=bidirectional,
                               bias=bias, proj_size=proj_size)
    if set(params) != set(expected):
        raise ValueError(f"params must hold exactly {expected}; missing "
                         f"{sorted(set(expected) - set(params))}, unexpected "
                         f"{sorted(set(params) - set(expected))}")
    T, B = np.shape(time_major(x, batch_first))[:2]
    hidden = np.shape(params["weight_hh_l0"])[0] // GATES[mode]
    out = proj_size or hidden
    for layer in range(1, num_layers):
        for suffix in ("", "_reverse")[:D]:
            w = params[f"weight_ih_l{layer}{suffix}"]
            if np.shape(w) != (GATES[mode] * hidden, D * out):
                raise ValueError(f"weight_ih_l{layer}{suffix} must have shape "
                                 f"{(GATES[mode] * hidden, D * out)} (layer {layer} reads "
                                 f"{D}·{out} features), got {np.shape(w)}")
    widths = (out, hidden) if mode == "lstm" else (out,)
    if state is None:
        given = tuple(np.zeros((num_layers * D, B, w)) for w in widths)
    else:
        given = tuple(state) if mode == "lstm" else (state,)
        if len(given) != len(widths):
            raise ValueError("state for mode 'lstm' must be None or the pair (h0, c0)")
        for name, s, w in zip(("h0", "c0")[:len(widths)], given, widths, strict=True):
            if np.shape(s) != (num_layers * D, B, w):
                raise ValueError(f"{name} must have shape (num_layers·directions, batch, {w}) = "
                                 f"{(num_layers * D, B, w)}, got {np.shape(s)}")
    if lengths is None:
        lengths = np.full(B, T)
    lengths = np.asarray(lengths)
    if (lengths.shape != (B,) or lengths.dtype.kind not in "iu"
            or np.any(lengths < 1) or np.any(lengths > T)):
        raise ValueError(f"lengths must be None or integers in 1 … T = {T}, one per sequence "
                         f"(shape ({B},)), got {lengths!r}")
    layers: list[list[Direction]] = []
    for layer in range(num_layers):
        layers.append([])
        for suffix in ("", "_reverse")[:D]:
            p = {name.rsplit("_l", 1)[0]: params[name] for name in params
                 if name.endswith(f"_l{layer}{suffix}")}
            layers[-1].append(_direction(mode, nonlinearity, p))
    states = [tuple(s[k] for s in given) for k in range(num_layers * D)]
    return _Setup(mode, num_layers, D, batch_first, lengths, float(dropout), bool(training), rng,
                  states, layers, state is not None)


class _Pieces(NamedTuple):
    """The replaceable pieces of the forward; each known bug swaps exactly one."""

    reverse: Callable[[Run], Run]
    join: Callable[[Sequence[np.ndarray]], np.ndarray]
    pack: Callable[[Run, np.ndarray, State, np.ndarray], tuple[np.ndarray, State]]
    drop: Callable[..., np.ndarray]


_SPEC = _Pieces(time_reversed, concatenated, packed, inter_layer_dropout)


def _forward(s: _Setup, x: np.ndarray, pieces: _Pieces) -> tuple[np.ndarray, list[State], list]:
    """The stack, time-major: layer l's directions read the previous layer's (dropped-out)
    output; returns y, the final states per layer and direction, and each layer's input, output
    and the rng state its dropout drew from (for the backward)."""
    inp, finals, trace = x, [], []
    for layer, directions in enumerate(s.layers):
        outputs = []
        for d, direction in enumerate(directions):
            run = pieces.reverse(direction.run) if d == 1 else direction.run
            y_d, final = pieces.pack(run, inp, s.states[layer * s.directions + d], s.lengths)
            outputs.append(y_d)
            finals.append(final)
        y = pieces.join(outputs)
        before_dropout = copy.deepcopy(s.rng)
        trace.append((inp, y, before_dropout))
        inp = pieces.drop(y, layer, s.num_layers, s.dropout, s.training, s.rng)
    return inp, finals, trace


def _outputs(s: _Setup, y: np.ndarray, finals: list[State]) -> tuple[np.ndarray, ...]:
    states = tuple(np.stack([f[k] for f in finals]) for k in range(len(finals[0])))
    return (time_major(y, s.batch_first), *states)


def _module(pieces: _Pieces, mode: str, x: np.ndarray, state: Any, params: dict, **options: Any):
    s = _setup(mode, x, state, params, **options)
    y, finals, _ = _forward(s, time_major(x, s.batch_first), pieces)
    return _outputs(s, y, finals)


def rnn_module(mode: str, x: np.ndarray, state: Any, params: dict[str, np.ndarray], *,
               num_layers: int = 1, bidirectional: bool = False, batch_first: bool = False,
               nonlinearity: str = "tanh", proj_size: int = 0, lengths: Any = None,
               dropout: float = 0.0, training: bool = False,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """sequence.module — nn.RNN / nn.GRU / nn.LSTM(…, num_layers, bidirectional, batch_first,
    dropout, proj_size) called on (x, state) or on a packed batch: the per-layer functions
    stacked (sequence.stacked), in both directions (sequence.bidirectional), packed
    (sequence.packed), with dropout between layers (sequence.inter_layer_dropout).

    mode "rnn", "gru" or "lstm"; x: (T, B, D) ((B, T, D) if batch_first); state None (zeros),
    h0 or, for "lstm", (h0, c0), each (L·dirs, B, ·) with index l·dirs + d; params by PyTorch's
    names; lengths None or (B,) integers → (y, h_n) for "rnn" and "gru", (y, h_n, c_n) for
    "lstm"; y: (T, B, dirs·H_out) ((B, T, ·) if batch_first), h_n: (L·dirs, B, H_out), c_n:
    (L·dirs, B, H), H_out = proj_size or H.
    """
    return _module(_SPEC, mode, x, state, params, num_layers=num_layers,
                   bidirectional=bidirectional, batch_first=batch_first,
                   nonlinearity=nonlinearity, proj_size=proj_size, lengths=lengths,
                   dropout=dropout, training=training, rng=rng)


def rnn_module_vjp(cotangents: Sequence[np.ndarray], mode: str, x: np.ndarray, state: Any,
                   params: dict[str, np.ndarray], *, num_layers: int = 1,
                   bidirectional: bool = False, batch_first: bool = False,
                   nonlinearity: str = "tanh", proj_size: int = 0, lengths: Any = None,
                   dropout: float = 0.0, training: bool = False,
                   rng: np.random.Generator | None = None) -> tuple[Any, Any, dict]:
    """sequence.module — backward: cotangents (gy, gh_n) or (gy, gh_n, gc_n) → (∂x, ∂state,
    ∂params). From the top layer down, the cotangent of a layer's output goes through the dropout
    mask, splits into its directions' features, and each direction's backpropagation through
    time (the per-layer VJP of rnn/gru/lstm, time-reversed for the backward direction, per
    sequence when packed) returns its share of ∂(layer input), which the directions add. ∂state
    is None when state was None, else shaped like it; ∂params has params' keys.
    """
    s = _setup(mode, x, state, params, num_layers=num_layers, bidirectional=bidirectional,
               batch_first=batch_first, nonlinearity=nonlinearity, proj_size=proj_size,
               lengths=lengths, dropout=dropout, training=training, rng=rng)
    _, _, trace = _forward(s, time_major(x, batch_first), _SPEC)
    gy, *g_states = cotangents
    g = time_major(gy, batch_first)
    d_states: list[State] = [()] * len(s.states)
    d_params: dict[str, np.ndarray] = {}
    for layer in reversed(range(s.num_layers)):
        inp, y, before_dropout = trace[layer]
        g = inter_layer_dropout_vjp(g, y, layer, s.num_layers, s.dropout, s.training,
                                    before_dropout)
        dx: np.ndarray | int = 0
        for d, (direction, g_d) in enumerate(zip(s.layers[layer], np.split(g, s.directions, -1),
                                                 strict=True)):
            k = layer * s.directions + d
            vjp = time_reversed_vjp(direction.vjp) if d == 1 else direction.vjp
            dx_d, d_states[k], dp = packed_vjp(vjp, g_d, tuple(gs[k] for gs in g_states), inp,
                                               s.states[k], s.lengths)
            dx = dx + dx_d
            suffix = f"_l{layer}{'_reverse' if d == 1 else ''}"
            d_params.update({f"{name}{suffix}": grad for name, grad in dp.items()})
        assert isinstance(dx, np.ndarray)  # every layer has one or two directions
        g = dx
    d_state = tuple(np.stack([ds[k] for ds in d_states]) for k in range(len(d_states[0])))
    if not s.state_given:
        return time_major(g, batch_first), None, d_params
    return time_major(g, batch_first), d_state if mode == "lstm" else d_state[0], d_params


# ---- known bugs --------------------------------------------------------------------------------

def bidirectional_not_reversed(mode: str, x: np.ndarray, state: Any, params: dict, *,
                               num_layers: int = 1, bidirectional: bool = False,
                               batch_first: bool = False, nonlinearity: str = "tanh",
                               proj_size: int = 0, lengths: Any = None, dropout: float = 0.0,
                               training: bool = False,
                               rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """sequence.bug.bidirectional_not_reversed — the backward direction runs its own weights over
    x_1 … x_T, like the forward one, instead of over x_T … x_1."""
    return _module(_SPEC._replace(reverse=lambda run: run), mode, x, state, params,
                   num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                   nonlinearity=nonlinearity, proj_size=proj_size, lengths=lengths,
                   dropout=dropout, training=training, rng=rng)


def bidirectional_concat_order(mode: str, x: np.ndarray, state: Any, params: dict, *,
                               num_layers: int = 1, bidirectional: bool = False,
                               batch_first: bool = False, nonlinearity: str = "tanh",
                               proj_size: int = 0, lengths: Any = None, dropout: float = 0.0,
                               training: bool = False,
                               rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """sequence.bug.bidirectional_concat_order — y_t = [←h_t; →h_t]: the backward direction's
    features first (and so read first by the next layer)."""
    return _module(_SPEC._replace(join=lambda outputs: concatenated(outputs[::-1])), mode, x,
                   state, params, num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first, nonlinearity=nonlinearity, proj_size=proj_size,
                   lengths=lengths, dropout=dropout, training=training, rng=rng)


def packed_padding_leaks(mode: str, x: np.ndarray, state: Any, params: dict, *,
                         num_layers: int = 1, bidirectional: bool = False,
                         batch_first: bool = False, nonlinearity: str = "tanh",
                         proj_size: int = 0, lengths: Any = None, dropout: float = 0.0,
                         training: bool = False,
                         rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """sequence.bug.packed_padding_leaks — the padded batch run as it is, lengths ignored: the
    padding steps are processed, outputs beyond a sequence's length are not 0, h_n is the state
    after T steps and the backward direction starts in the padding."""
    return _module(_SPEC._replace(pack=lambda run, x_, state0, _: run(x_, state0)), mode, x,
                   state, params, num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first, nonlinearity=nonlinearity, proj_size=proj_size,
                   lengths=lengths, dropout=dropout, training=training, rng=rng)


def dropout_in_eval(mode: str, x: np.ndarray, state: Any, params: dict, *, num_layers: int = 1,
                    bidirectional: bool = False, batch_first: bool = False,
                    nonlinearity: str = "tanh", proj_size: int = 0, lengths: Any = None,
                    dropout: float = 0.0, training: bool = False,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """sequence.bug.dropout_in_eval — the units between layers are dropped in evaluation mode
    too (``training`` ignored)."""
    def drop(y: np.ndarray, layer: int, n: int, p: float, _: bool,
             generator: np.random.Generator | None) -> np.ndarray:
        return inter_layer_dropout(y, layer, n, p, True, generator)

    return _module(_SPEC._replace(drop=drop), mode, x, state, params, num_layers=num_layers,
                   bidirectional=bidirectional, batch_first=batch_first,
                   nonlinearity=nonlinearity, proj_size=proj_size, lengths=lengths,
                   dropout=dropout, training=training, rng=rng)


def dropout_after_last_layer(mode: str, x: np.ndarray, state: Any, params: dict, *,
                             num_layers: int = 1, bidirectional: bool = False,
                             batch_first: bool = False, nonlinearity: str = "tanh",
                             proj_size: int = 0, lengths: Any = None, dropout: float = 0.0,
                             training: bool = False,
                             rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """sequence.bug.dropout_after_last_layer — in training, the last layer's output y is dropped
    out as well, so even a one-layer module drops units of y."""
    def drop(y: np.ndarray, layer: int, n: int, p: float, training_: bool,
             generator: np.random.Generator | None) -> np.ndarray:
        return inter_layer_dropout(y, layer, n + 1, p, training_, generator)

    return _module(_SPEC._replace(drop=drop), mode, x, state, params, num_layers=num_layers,
                   bidirectional=bidirectional, batch_first=batch_first,
                   nonlinearity=nonlinearity, proj_size=proj_size, lengths=lengths,
                   dropout=dropout, training=training, rng=rng)
