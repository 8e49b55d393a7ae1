"""Checks of spec/sequence.md: nn.RNN / nn.GRU / nn.LSTM as whole modules.

The option grid (mode and nonlinearity, projection, layers, directions, batch_first, bias, packed
lengths, an initial state or none) is sampled by Hypothesis, not crossed in full: every check
draws one combination per example, and a failure shrinks towards the first one (one-layer tanh
RNN, time-major, no packing).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds import sequence as sequence_bounds
from nnspec.checks.harness import stats
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import rnn as ref_rnn
from nnspec.reference import sequence as ref

#: Each known bug must differ from the spec by this factor times the float32 bound somewhere.
SEPARATION = 1e3

#: The comparisons with the reference cover the whole option grid (480 combinations), so they
#: draw more examples than the profile's default (20 in CI): at least 100, about a second each.
GRID_EXAMPLES = settings(max_examples=max(100, settings().max_examples))


# ---- problems --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    """One combination of nn.RNN's options (and of the inputs' form)."""

    mode: str
    nonlinearity: str
    projection: bool
    num_layers: int
    bidirectional: bool
    batch_first: bool
    bias: bool
    packed: bool
    state: bool


#: (mode, nonlinearity, projection), simplest first.
MODE_VARIANTS = (("rnn", "tanh", False), ("gru", "tanh", False), ("lstm", "tanh", False),
                 ("rnn", "relu", False), ("lstm", "tanh", True))

#: The whole grid, 480 combinations; sampled_from shrinks towards its first entry.
GRID = [Options(m, nl, proj, layers, bi, bf, bias, packed, state)
        for (m, nl, proj), layers, bi, bf, bias, packed, state in itertools.product(
            MODE_VARIANTS, (1, 2, 3), (False, True), (False, True), (True, False), (False, True),
            (False, True))]


def grid(**fixed: Any) -> list[Options]:
    """The combinations with the given options, e.g. grid(bidirectional=True, num_layers=1)."""
    return [o for o in GRID if all(getattr(o, k) == v for k, v in fixed.items())]


@dataclass(frozen=True)
class Problem:
    """A call of rnn_module: mode, inputs, PyTorch-named parameters and options."""

    mode: str
    x: np.ndarray
    state: Any
    params: dict[str, np.ndarray]
    num_layers: int
    bidirectional: bool
    batch_first: bool
    nonlinearity: str
    proj_size: int
    lengths: np.ndarray | None

    @property
    def options(self) -> dict[str, Any]:
        return {"num_layers": self.num_layers, "bidirectional": self.bidirectional,
                "batch_first": self.batch_first, "nonlinearity": self.nonlinearity,
                "proj_size": self.proj_size, "lengths": self.lengths}

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def hidden(self) -> int:
        return self.params["weight_hh_l0"].shape[0] // ref.GATES[self.mode]

    @property
    def out(self) -> int:
        return self.proj_size or self.hidden

    @property
    def names(self) -> tuple[str, ...]:
        return ("y", "h_n", "c_n") if self.mode == "lstm" else ("y", "h_n")

    def shapes(self) -> tuple[tuple[int, ...], ...]:
        T, B = self.x.shape[:2][::-1] if self.batch_first else self.x.shape[:2]
        y = (B, T, self.directions * self.out) if self.batch_first else (
            T, B, self.directions * self.out)
        states = [(self.num_layers * self.directions, B, w) for w in (self.out, self.hidden)]
        return (y, *states[:len(self.names) - 1])

    def state_parts(self) -> tuple[np.ndarray, ...]:
        if self.state is None:
            return ()
        return tuple(self.state) if self.mode == "lstm" else (self.state,)

    def with_state_parts(self, parts: tuple[np.ndarray, ...]) -> Any:
        if not parts:
            return None
        return tuple(parts) if self.mode == "lstm" else parts[0]

    def cast(self, impl: Implementation) -> Problem:
        """The values the implementation sees, as float64 (reference evaluated on these)."""
        return dataclasses.replace(
            self, x=impl.cast(self.x),
            state=self.with_state_parts(tuple(impl.cast(s) for s in self.state_parts())),
            params={k: impl.cast(v) for k, v in self.params.items()})

    def describe(self, fn: str = "rnn_module", **extra: Any) -> str:
        state = "None" if self.state is None else describe_args(self.state_parts())
        return (f"{fn}({self.mode!r}, {describe_args((self.x,))[1:-1]}, state={state}, "
                f"params={{{', '.join(f'{k}: {v.shape}' for k, v in self.params.items())}}}, "
                f"{', '.join(f'{k}={v!r}' for k, v in {**self.options, **extra}.items())})")


def parameters(rng: np.random.Generator, o: Options, D: int, H: int, P: int,
               m: float) -> dict[str, np.ndarray]:
    """PyTorch-named parameters, every entry drawn independently from U(−m, m)."""
    G, out, dirs = ref.GATES[o.mode], P or H, 2 if o.bidirectional else 1
    shapes = {"weight_ih": lambda layer: (G * H, D if layer == 0 else dirs * out),
              "weight_hh": lambda layer: (G * H, out), "weight_hr": lambda layer: (P, H),
              "bias_ih": lambda layer: (G * H,), "bias_hh": lambda layer: (G * H,)}
    params = {}
    for name in ref.parameter_names(o.mode, num_layers=o.num_layers, bidirectional=o.bidirectional,
                                    bias=o.bias, proj_size=P):
        kind, layer = name.split("_l")[0], int(name.split("_l")[1].split("_")[0])
        params[name] = rng.uniform(-m, m, shapes[kind](layer))
    return params


@st.composite
def modules(draw: st.DrawFn, *, options: list[Options] = GRID,
            magnitudes: tuple[float, ...] = (1.0, 4.0, 30.0)) -> Problem:
    """A call of rnn_module with one drawn combination of ``options``: T ≤ 4, batch ≤ 3,
    input ≤ 3, hidden ≤ 3 (P < H with a projection), inputs and weights up to one of
    ``magnitudes`` each. ReLU networks draw weights ≤ 1: their states grow like (n·|w|)^(T·L),
    which would overflow float32 at magnitude 30 with three layers.

    Arrays are filled from a NumPy generator, so no two gate blocks or directions share values.
    """
    o = draw(st.sampled_from(options))
    T, B, D = draw(nst.sizes(max_size=4)), draw(nst.sizes(max_size=3)), draw(nst.sizes(max_size=3))
    H = draw(nst.sizes(min_size=2 if o.projection else 1, max_size=3))
    P = draw(nst.sizes(max_size=H - 1)) if o.projection else 0
    rng = draw(nst.generators())
    m_in, m_w = draw(st.sampled_from(magnitudes)), draw(st.sampled_from(magnitudes))
    if o.nonlinearity == "relu":
        m_w = min(m_w, 1.0)
    L, dirs = o.num_layers, 2 if o.bidirectional else 1
    x = rng.uniform(-m_in, m_in, (B, T, D) if o.batch_first else (T, B, D))
    state = None
    if o.state:
        parts = tuple(rng.uniform(-m_in, m_in, (L * dirs, B, w))
                      for w in ((P or H, H) if o.mode == "lstm" else (H,)))
        state = parts if o.mode == "lstm" else parts[0]
    return Problem(o.mode, x, state, parameters(rng, o, D, H, P, m_w), L, o.bidirectional,
                   o.batch_first, o.nonlinearity, P,
                   rng.integers(1, T + 1, B) if o.packed else None)


def run(impl: Implementation, p: Problem, **extra: Any) -> tuple[np.ndarray, ...]:
    """The implementation's (y, h_n[, c_n]) for p, validated against the contract's shapes.
    The parameters are passed in DTYPE, like every other array (impl.call does not look inside
    dicts)."""
    out = impl.outputs(impl.call("rnn_module", p.mode, p.x, p.state,
                                 {k: v.astype(impl.dtype) for k, v in p.params.items()},
                                 **p.options, **extra), fn="rnn_module", names=p.names)
    return tuple(impl.array(o, fn="rnn_module", what=n, shape=s)
                 for o, n, s in zip(out, p.names, p.shapes(), strict=True))


def bounds(impl: Implementation, p: Problem, cotangents: Any = None) -> sequence_bounds.ModuleBounds:
    return sequence_bounds.rnn_module(p.mode, p.x, p.state, p.params, dtype=impl.dtype, cotangents=cotangents,
                           **p.options)


def doubled(b: tol.Bound, index: Any = ...) -> tol.Bound:
    """Twice a bound (two runs, each within it of the reference), optionally a part of it."""
    return tol.Bound(2 * b.atol[index], f"2 × ({b.rule}) (two runs)", b.unit)


# ---- the module against the reference --------------------------------------------------------

@pytest.mark.spec("sequence.module", "sequence.stacked", "sequence.bidirectional",
                  "sequence.batch_first", "sequence.packed")
@GRID_EXAMPLES
@given(problem=modules())
def test_rnn_module_matches_reference_for_every_option(impl, problem):
    p = problem.cast(impl)
    got = run(impl, p)
    want = ref.rnn_module(p.mode, p.x, p.state, p.params, **p.options)
    for name, g, w, b in zip(p.names, got, want, bounds(impl, p).outputs, strict=True):
        assert_close(g, w, b, spec_id="sequence.module", impl=impl, what=name, call=p.describe())


@pytest.mark.spec("sequence.module", "sequence.stacked", "sequence.bidirectional",
                  "sequence.batch_first", "sequence.packed")
@GRID_EXAMPLES
@given(problem=modules(), rng=nst.generators())
def test_rnn_module_gradients_match_reference(impl, problem, rng):
    p = problem.cast(impl)
    cotangents = tuple(impl.cast(rng.standard_normal(s)) for s in p.shapes())
    got_dx, got_dstate, got_dparams = impl.outputs(
        impl.call("vjp_rnn_module", cotangents, p.mode, p.x, p.state,
                  {k: v.astype(impl.dtype) for k, v in p.params.items()}, **p.options),
        fn="vjp_rnn_module", names=("dx", "dstate", "dparams"))
    dx, dstate, dparams = ref.rnn_module_vjp(cotangents, p.mode, p.x, p.state, p.params,
                                             **p.options)
    b = bounds(impl, p, cotangents)
    call = p.describe("vjp_rnn_module")

    def compare(what: str, got: Any, want: np.ndarray, bound: tol.Bound) -> None:
        arr = impl.array(got, fn="vjp_rnn_module", what=what, shape=want.shape)
        assert_close(arr, want, bound, spec_id="sequence.module", impl=impl, what=what, call=call)

    compare("dx", got_dx, dx, b.dx)
    if p.state is None:
        if got_dstate is not None:
            fail("sequence.module", impl, "dstate must be None when state is None", call=call)
    else:
        got_parts = tuple(got_dstate) if p.mode == "lstm" else (got_dstate,)
        want_parts = tuple(dstate) if p.mode == "lstm" else (dstate,)
        for name, g, w, bound in zip(("dh0", "dc0"), got_parts, want_parts, b.dstate,
                                     strict=False):
            compare(name, g, w, bound)
    if not isinstance(got_dparams, dict) or set(got_dparams) != set(dparams):
        fail("sequence.module", impl, f"dparams must be a dict with params' keys {sorted(dparams)}, "
                                      f"got {type(got_dparams).__name__} "
                                      f"{sorted(got_dparams) if isinstance(got_dparams, dict) else ''}",
             call=call)
    for name, want in dparams.items():
        compare(f"d{name}", got_dparams[name], want, b.dparams[name])


@pytest.mark.spec("sequence.module", "sequence.inter_layer_dropout")
@given(problem=modules(magnitudes=(1.0, 4.0)), rng=nst.generators(), training=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_reference_module_gradient_matches_finite_differences(problem, rng, training, seed):
    # Magnitudes ≤ 4, as for the cells (spec/tolerances.md, tol.fd's known limit). In training
    # mode the dropout masks are drawn from a generator re-seeded on every call: fixed masks, so
    # the module is a smooth function of its inputs there too.
    p = problem
    names = list(p.params)
    n_state = len(p.state_parts())
    extra = {"dropout": 0.5, "training": training}

    def split(args: tuple) -> tuple[np.ndarray, Any, dict]:
        return (args[0], p.with_state_parts(args[1:1 + n_state]),
                dict(zip(names, args[1 + n_state:], strict=True)))

    def forward(*args: np.ndarray) -> tuple[np.ndarray, ...]:
        x, state, params = split(args)
        return ref.rnn_module(p.mode, x, state, params, **p.options, **extra,
                              rng=np.random.default_rng(seed))

    def vjp(g: Any, *args: np.ndarray) -> tuple[np.ndarray, ...]:
        x, state, params = split(args)
        dx, dstate, dparams = ref.rnn_module_vjp(g, p.mode, x, state, params, **p.options,
                                                 **extra, rng=np.random.default_rng(seed))
        parts = () if dstate is None else (tuple(dstate) if p.mode == "lstm" else (dstate,))
        return (dx, *parts, *(dparams[n] for n in names))

    args = (p.x, *p.state_parts(), *p.params.values())
    check_gradient(forward, vjp, args, wrt=range(len(args)), rng=rng, spec_id="sequence.module",
                   name="reference", call=p.describe("rnn_module_vjp", **extra))


# ---- properties ------------------------------------------------------------------------------

@pytest.mark.spec("sequence.bidirectional")
@given(problem=modules(options=grid(bidirectional=True, num_layers=1, packed=False)))
def test_backward_direction_is_a_forward_run_on_the_reversed_sequence(impl, problem):
    p = problem.cast(impl)
    both = run(impl, p)
    axis = 1 if p.batch_first else 0
    # The _reverse parameters and the second state row, as a one-direction module.
    backward = dataclasses.replace(
        p, x=np.flip(p.x, axis), bidirectional=False,
        params={k.replace("_reverse", ""): v for k, v in p.params.items() if "_reverse" in k},
        state=p.with_state_parts(tuple(s[1:] for s in p.state_parts())))
    alone = run(impl, backward)
    b = bounds(impl, p).outputs
    H = p.out
    call = p.describe() + " against a one-direction run on the reversed sequence"
    assert_close(both[0][..., H:], np.flip(alone[0], axis), doubled(b[0], (..., slice(H, None))),
                 spec_id="sequence.bidirectional", impl=impl, what="y[…, H:] (backward half)",
                 call=call)
    for name, g, w, bound in zip(p.names[1:], both[1:], alone[1:], b[1:], strict=True):
        assert_close(g[1], w[0], doubled(bound, 1), spec_id="sequence.bidirectional", impl=impl,
                     what=f"{name}[1] (backward direction)", call=call)


@pytest.mark.spec("sequence.stacked")
@given(problem=modules(options=[o for o in GRID if o.num_layers > 1]))
def test_stacked_run_equals_single_layer_runs_composed(impl, problem):
    p = problem.cast(impl)
    stacked = run(impl, p)
    D, layers, finals = p.directions, [], []
    inp = p.x
    for layer in range(p.num_layers):
        one = dataclasses.replace(
            p, x=inp, num_layers=1,
            params={k.replace(f"_l{layer}", "_l0"): v for k, v in p.params.items()
                    if f"_l{layer}" in k},
            state=p.with_state_parts(tuple(s[layer * D:(layer + 1) * D]
                                           for s in p.state_parts())))
        out = run(impl, one)
        inp = impl.cast(out[0])
        layers.append(out)
        finals.append(out[1:])
    composed = (inp, *(np.concatenate(parts) for parts in zip(*finals, strict=True)))
    call = p.describe() + " against its layers run one by one"
    for name, g, w, b in zip(p.names, stacked, composed, bounds(impl, p).outputs, strict=True):
        assert_close(g, w, doubled(b), spec_id="sequence.stacked", impl=impl, what=name, call=call)


@pytest.mark.spec("sequence.batch_first")
@given(problem=modules(options=grid(batch_first=True)))
def test_batch_first_run_is_the_time_major_run_transposed(impl, problem):
    p = problem.cast(impl)
    got = run(impl, p)
    time_major = run(impl, dataclasses.replace(p, x=np.swapaxes(p.x, 0, 1), batch_first=False))
    # A layout, no arithmetic, yet not bit for bit: torch float32 evaluates the input projection
    # on the transposed view in another summation order (1 ulp apart at T = 1, B = 2, D = 3), which
    # tol.accumulated allows. Both runs are within the bound of the reference.
    b = bounds(impl, p).outputs
    call = p.describe() + " against the time-major run"
    assert_close(got[0], np.swapaxes(time_major[0], 0, 1), doubled(b[0]),
                 spec_id="sequence.batch_first", impl=impl, what="y", call=call)
    for name, g, w, bound in zip(p.names[1:], got[1:], time_major[1:], b[1:], strict=True):
        assert_close(g, w, doubled(bound), spec_id="sequence.batch_first", impl=impl, what=name,
                     call=call)


@pytest.mark.spec("sequence.packed")
@given(problem=modules(options=grid(packed=True)))
def test_packed_run_equals_each_sequence_run_alone_at_its_length(impl, problem):
    p = problem.cast(impl)
    got = run(impl, p)
    b = bounds(impl, p).outputs
    t_axis, b_axis = (1, 0) if p.batch_first else (0, 1)
    for k, L in enumerate(p.lengths):
        steps = [slice(None)] * 3
        steps[t_axis], steps[b_axis] = slice(0, L), slice(k, k + 1)
        alone = run(impl, dataclasses.replace(
            p, x=p.x[tuple(steps)], lengths=None,
            state=p.with_state_parts(tuple(s[:, k:k + 1] for s in p.state_parts()))))
        call = p.describe() + f" against sequence {k} run alone for its {L} steps"
        assert_close(got[0][tuple(steps)], alone[0], doubled(b[0], tuple(steps)),
                     spec_id="sequence.packed", impl=impl, what=f"y of sequence {k}", call=call)
        steps[t_axis] = slice(L, None)
        padding = got[0][tuple(steps)]
        assert_close(padding, np.zeros_like(padding), tol.exact(padding), spec_id="sequence.packed",
                     impl=impl, what=f"y of sequence {k} beyond its length {L}", call=call)
        for name, g, w, bound in zip(p.names[1:], got[1:], alone[1:], b[1:], strict=True):
            assert_close(g[:, k:k + 1], w, doubled(bound, (slice(None), slice(k, k + 1))),
                         spec_id="sequence.packed", impl=impl,
                         what=f"{name} of sequence {k} (the state at its step {L})", call=call)


@pytest.mark.spec("sequence.stacked")
@given(problem=modules(options=grid(mode="rnn", bidirectional=False)))
def test_seed_deep_rnn_is_the_stacked_module(problem):
    p = problem
    h_0 = (np.zeros((p.num_layers, p.x.shape[1 - p.batch_first], p.out)) if p.state is None
           else p.state)
    seed_params = [ref_rnn.params_from_torch(*(p.params.get(f"{n}_l{layer}") for n in (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh"))) for layer in range(p.num_layers)]
    h_L, h_T = ref.deep_rnn(ref.time_major(p.x, p.batch_first), h_0, seed_params, p.nonlinearity)
    y, h_n = ref.rnn_module(p.mode, p.x, p.state, p.params, **{**p.options, "lengths": None})
    for what, got, want in (("y", ref.time_major(y, p.batch_first), h_L), ("h_n", h_n, h_T)):
        assert_close(got, want, tol.exact(want), spec_id="sequence.stacked", impl="reference",
                     what=f"{what} against seed 001 §6.1.4's deep RNN", call=p.describe())


@pytest.mark.spec("sequence.bidirectional")
@given(problem=modules(options=grid(mode="rnn", bidirectional=True, num_layers=1, packed=False)),
       rng=nst.generators())
def test_seed_bidirectional_output_is_a_linear_map_of_the_concatenated_states(problem, rng):
    p = problem
    x = ref.time_major(p.x, p.batch_first)
    h0 = np.zeros((2, x.shape[1], p.out)) if p.state is None else p.state
    directions = [ref_rnn.params_from_torch(*(p.params.get(f"{n}_l0{s}") for n in (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh"))) for s in ("", "_reverse")]
    h_f, h_b = ref.bidirectional_rnn(x, h0[0], h0[1], *directions, p.nonlinearity)
    y, _ = ref.rnn_module(p.mode, p.x, p.state, p.params, **p.options)
    y = ref.time_major(y, p.batch_first)
    call = p.describe()
    assert_close(y, np.concatenate([h_f, h_b], axis=-1), tol.exact(y),
                 spec_id="sequence.bidirectional", impl="reference",
                 what="y against [→h; ←h] of seed 001 §6.1.5", call=call)
    # y_t = V^f →h_t + V^b ←h_t + b_y is one linear layer on nn.RNN's output with V = [V^f V^b]:
    # two sums of the same 2H + 1 terms, in different orders.
    V_f, V_b = rng.uniform(-1, 1, (2, 3, p.out))
    b_y = rng.uniform(-1, 1, 3)
    seed_y = ref.bidirectional_output(h_f, h_b, V_f, V_b, b_y)
    magnitude = ref.bidirectional_output(np.abs(h_f), np.abs(h_b), np.abs(V_f), np.abs(V_b),
                                         np.abs(b_y))
    bound = tol.accumulated(magnitude, 2 * p.out + 1, np.float64)
    assert_close(y @ np.concatenate([V_f, V_b], axis=1).T + b_y, seed_y, bound + bound,
                 spec_id="sequence.bidirectional", impl="reference",
                 what="[V^f V^b] y + b_y against V^f →h + V^b ←h + b_y", call=call)


# ---- dropout between layers ------------------------------------------------------------------

@pytest.mark.spec("sequence.inter_layer_dropout")
@given(problem=modules(options=[o for o in GRID if o.num_layers > 1]),
       p_drop=st.sampled_from((0.3, 1.0)), rng=nst.generators())
def test_dropout_in_evaluation_mode_changes_nothing(impl, problem, p_drop, rng):
    p = problem.cast(impl)
    # The call under test last, so that a failure's diagnosis replays that one.
    without = run(impl, p)
    with_dropout = run(impl, p, dropout=p_drop, training=False, rng=rng)
    call = p.describe(dropout=p_drop, training=False) + " against dropout=0"
    for name, g, w in zip(p.names, with_dropout, without, strict=True):
        assert_close(g, w, tol.exact(w), spec_id="sequence.inter_layer_dropout", impl=impl,
                     what=name, call=call)


@pytest.mark.spec("sequence.inter_layer_dropout")
@given(problem=modules(options=grid(num_layers=1)), rng=nst.generators())
def test_dropout_in_training_leaves_a_single_layer_untouched(impl, problem, rng):
    # Dropout acts between layers only: one layer has no such place, so training changes nothing.
    p = problem.cast(impl)
    evaluated = run(impl, p, dropout=0.5, training=False, rng=rng)
    trained = run(impl, p, dropout=0.5, training=True, rng=rng)
    call = p.describe(dropout=0.5, training=True) + " against training=False"
    for name, g, w in zip(p.names, trained, evaluated, strict=True):
        assert_close(g, w, tol.exact(w), spec_id="sequence.inter_layer_dropout", impl=impl,
                     what=name, call=call)


#: Drop probability of the statistical check; 0.5 is avoided, where reading p as the keep
#: probability would change nothing.
P_DROP = 0.3

#: T·B·H = 4096 units, about half of them positive after ReLU: at α = 10⁻⁶ the binomial test
#: tells a keep rate of 0.7 from 0.63 (and from 0.49, dropout applied twice) with power > 99 %.
T_STAT, B_STAT, D_STAT, H_STAT = 8, 16, 4, 32


@pytest.mark.spec("sequence.inter_layer_dropout")
def test_dropout_between_layers_drops_with_probability_p_and_rescales_the_rest(impl, rng):
    # Layer 2 is a ReLU layer with w_ih = I and w_hh = 0, b = 0, reading layer 1's ReLU states
    # y1 ≥ 0: its output is relu(dropout(y1)) = dropout(y1), so the mask is read off it. A unit
    # with y1 > 0 is kept iff its output is > 0, and then equals y1/(1 − p).
    p = Problem("rnn", rng.standard_normal((T_STAT, B_STAT, D_STAT)), None,
                {"weight_ih_l0": rng.uniform(-1, 1, (H_STAT, D_STAT)),
                 "weight_hh_l0": rng.uniform(-0.2, 0.2, (H_STAT, H_STAT)),
                 "bias_ih_l0": rng.uniform(-0.1, 0.1, H_STAT),
                 "bias_hh_l0": rng.uniform(-0.1, 0.1, H_STAT),
                 "weight_ih_l1": np.eye(H_STAT), "weight_hh_l1": np.zeros((H_STAT, H_STAT)),
                 "bias_ih_l1": np.zeros(H_STAT), "bias_hh_l1": np.zeros(H_STAT)},
                2, False, False, "relu", 0, None).cast(impl)
    first = dataclasses.replace(p, num_layers=1, params={k: v for k, v in p.params.items()
                                                         if k.endswith("_l0")})
    y1, _ = run(impl, first)
    y2, _ = run(impl, p, dropout=P_DROP, training=True, rng=rng)
    positive = y1 > 0
    kept = positive & (y2 > 0)
    stats.binomial(int(kept.sum()), int(positive.sum()), 1 - P_DROP,
                   spec_id="sequence.inter_layer_dropout", impl=impl,
                   claim=f"layer 1's units are kept with probability 1 − p = {1 - P_DROP} between "
                         f"layers in training")
    # Layer 1 within the stack and alone: each within its running bound of the reference, then
    # divided by 1 − p; the scaling itself is one or two roundings (spec/dropout.md).
    bound_y1 = sequence_bounds.rnn_module(first.mode, first.x, None, first.params, dtype=impl.dtype,
                               nonlinearity="relu").outputs[0]
    want = y1[kept] / (1 - P_DROP)
    assert_close(y2[kept], want, tol.Bound(2 * bound_y1.atol[kept] / (1 - P_DROP), "2 × layer 1's "
                 "bound / (1 − p)", bound_y1.unit) + tol.elementwise(want, impl.dtype),
                 spec_id="sequence.inter_layer_dropout", impl=impl,
                 what="kept units of layer 1's output, as layer 2 reads them",
                 call=p.describe(dropout=P_DROP, training=True))


# ---- known bugs and bad arguments ------------------------------------------------------------

def typical(rng: np.random.Generator, mode: str, **options: Any) -> Problem:
    """Inputs as in training: x ~ N(0, 1), weights like nn.RNN's default U(±1/√H); T = 6,
    batch 3, input 4, hidden 5."""
    o = Options(mode, "tanh", False, options.get("num_layers", 1),
                options.get("bidirectional", False), False, True, False, False)
    H = 5
    p = parameters(rng, o, 4, H, 0, 1 / np.sqrt(H))
    return Problem(mode, rng.standard_normal((6, 3, 4)), None, p, o.num_layers, o.bidirectional,
                   False, "tanh", 0, options.get("lengths"))


BUG_CASES = {
    "sequence.bug.bidirectional_not_reversed": (ref.bidirectional_not_reversed,
                                                {"bidirectional": True}, {}),
    "sequence.bug.bidirectional_concat_order": (ref.bidirectional_concat_order,
                                                {"bidirectional": True}, {}),
    "sequence.bug.packed_padding_leaks": (ref.packed_padding_leaks,
                                          {"bidirectional": True, "lengths": np.array([6, 2, 4])},
                                          {}),
    "sequence.bug.dropout_in_eval": (ref.dropout_in_eval, {"num_layers": 2},
                                     {"dropout": 0.5, "training": False}),
    "sequence.bug.dropout_after_last_layer": (ref.dropout_after_last_layer, {},
                                              {"dropout": 0.5, "training": True}),
}


@pytest.mark.spec("sequence.module", "sequence.bidirectional", "sequence.packed",
                  "sequence.inter_layer_dropout")
@pytest.mark.parametrize("mode", ref.MODES)
@pytest.mark.parametrize("bug", list(BUG_CASES))
def test_known_bugs_differ_far_beyond_float32_tolerance(bug, mode, rng):
    f, options, extra = BUG_CASES[bug]
    p = typical(rng, mode, **options)
    want = ref.rnn_module(p.mode, p.x, p.state, p.params, **p.options, **extra, rng=rng)
    got = f(p.mode, p.x, p.state, p.params, **p.options, **extra, rng=rng)
    b = sequence_bounds.rnn_module(p.mode, p.x, p.state, p.params, dtype=np.float32, **p.options).outputs
    with np.errstate(divide="ignore"):  # a bound of 0 (padding) exceeded at all: infinitely
        ratio = max(float(np.max(np.abs(g - w) / b_.atol)) for g, w, b_ in zip(got, want, b,
                                                                                  strict=True))
    if ratio < SEPARATION:
        fail("sequence.module", "reference", f"{bug} differs from the spec by only {ratio:.3g}× the "
                                             f"float32 bound (want ≥ {SEPARATION:g}×)",
             call=p.describe(**extra))


H_BAD, D_BAD = 2, 3
X_BAD = np.zeros((4, 2, D_BAD))
RNN_BAD = {"weight_ih_l0": np.zeros((H_BAD, D_BAD)), "weight_hh_l0": np.zeros((H_BAD, H_BAD))}
SECOND_LAYER = {"weight_ih_l1": np.zeros((H_BAD, H_BAD)), "weight_hh_l1": np.zeros((H_BAD, H_BAD))}
GRU_BAD = {"weight_ih_l0": np.zeros((3 * H_BAD, D_BAD)), "weight_hh_l0": np.zeros((3 * H_BAD, H_BAD))}


@pytest.mark.spec("sequence.module")
@pytest.mark.parametrize(("bad", "message"), [
    ({"mode": "cnn"}, "mode = 'cnn' is not one of"),
    ({"num_layers": 0}, "num_layers = 0"),
    ({"nonlinearity": "sigmoid"}, "nonlinearity = 'sigmoid'"),
    ({"mode": "gru", "params": GRU_BAD, "nonlinearity": "relu"}, "applies to mode 'rnn' only"),
    ({"proj_size": 1}, "proj_size = 1"),
    ({"dropout": 1.5}, "dropout = 1.5"),
    ({"num_layers": 2, "params": {**RNN_BAD, **SECOND_LAYER}, "dropout": 0.5, "training": True},
     "needs rng"),
    ({"x": np.zeros((4, D_BAD))}, "x must have shape"),
    ({"params": {"weight_ih_l0": RNN_BAD["weight_ih_l0"]}}, r"missing \['weight_hh_l0'\]"),
    ({"params": {**RNN_BAD, "bias_ih_l0": np.zeros(H_BAD)}}, r"missing \['bias_hh_l0'\]"),
    ({"state": np.zeros((2, 2, H_BAD))}, "h0 must have shape"),
    ({"lengths": np.array([0, 4])}, "lengths must be None or integers in 1 … T = 4"),
    ({"lengths": np.array([2.0, 4.0])}, "lengths must be"),
    ({"num_layers": 2, "params": {**RNN_BAD, **SECOND_LAYER,
                                  "weight_ih_l1": np.zeros((H_BAD, D_BAD))}},
     "weight_ih_l1 must have shape"),
])
def test_reference_rejects_bad_arguments_naming_them(bad, message):
    args = {"mode": "rnn", "x": X_BAD, "state": None, "params": RNN_BAD, **bad}
    with pytest.raises(ValueError, match=message):
        ref.rnn_module(args.pop("mode"), args.pop("x"), args.pop("state"), args.pop("params"),
                       **args)
