"""Checks of spec/rnn.md."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks.bounds import rnn as rnn_bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import sizes
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.compare import check_outputs
from nnspec.checks.harness.failure import assert_close, assert_outputs_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import rnn as ref

NONLINEARITIES = ("tanh", "relu")

#: ReLU states grow by up to H·max|w_hh| per step and BPTT multiplies the gradients by as much
#: again, so 10³-sized ReLU weights overflow float32 within a few steps; tanh saturates instead.
RELU_MAGNITUDES = (1.0, 4.0, 30.0)

#: "Far beyond the tolerance": two functions are told apart on an example when they differ, at
#: some element, by this many times the float32 bounds of both (spec/rnn.md, variant separation).
SEPARATION = 1e3

CELL_GRADIENTS, LAYER_GRADIENTS = rnn_bounds.CELL_GRADIENTS, rnn_bounds.LAYER_GRADIENTS


# ---- inputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Inputs of rnn_cell (x: (B, D), h: (B, H)) or rnn_layer (x: (T, B, D), h: h0), with a
    cotangent g for each output ((B, H) for the cell, (gy, ghT) for the layer)."""

    x: np.ndarray
    h: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None
    nonlinearity: str
    g: np.ndarray | tuple[np.ndarray, np.ndarray]

    @property
    def args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                            np.ndarray | None]:
        return self.x, self.h, self.w_ih, self.w_hh, self.b_ih, self.b_hh

    def cast(self, impl: Implementation) -> Problem:
        """The problem as the implementation sees it (arrays rounded to its DTYPE)."""
        g = tuple(impl.cast(c) for c in self.g) if isinstance(self.g, tuple) else impl.cast(self.g)
        x, h, w_ih, w_hh, b_ih, b_hh = (impl.cast(a) for a in self.args)
        return Problem(x, h, w_ih, w_hh, b_ih, b_hh, self.nonlinearity, g)

    def first_step(self) -> Problem:
        """A layer problem's first step as a cell problem."""
        return Problem(self.x[0], self.h, *self.args[2:], self.nonlinearity, self.g[1])


def has_clearly_negative_unit(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                              b_ih: np.ndarray | None, b_hh: np.ndarray | None) -> bool:
    """Some pre-activation a ≤ −1/2 that is not the residue of a cancellation (|a| ≥ Σ|terms|/8).

    There tanh(a) ≤ −0.46, ReLU gives 0 and the linear variant a, so all three cells differ
    visibly; spec/rnn.md shows (and a check confirms) that this is far beyond the tolerance.
    """
    a = ref.pre_activation(x, h, *ref.params_from_torch(w_ih, w_hh, b_ih, b_hh))
    M = rnn_bounds.pre_activation_magnitude(x, h, w_ih, w_hh, b_ih, b_hh)
    return bool(np.any((a <= -0.5) & (-a >= M / 8)))


@st.composite
def rnn_problems(draw: st.DrawFn, *, steps: int | None, nonlinearities: tuple[str, ...] =
                 NONLINEARITIES, max_size: int = 5) -> Problem:
    """A cell problem (``steps=None``) or a layer problem of T ≤ ``steps`` steps.

    Values are drawn uniformly by a NumPy generator, one magnitude per array: Hypothesis's own
    arrays repeat one fill value, and an input constant over time hides a time-reversed run.
    """
    nonlinearity = draw(st.sampled_from(nonlinearities))
    T = draw(nst.sizes(max_size=steps)) if steps is not None else None
    B, D, H = (draw(nst.sizes(max_size=max_size)) for _ in range(3))
    rng = draw(nst.generators())
    mags = st.sampled_from(nst.MAGNITUDES if nonlinearity == "tanh" else RELU_MAGNITUDES)

    def uniform(*shape: int) -> np.ndarray:
        m = draw(mags)
        return rng.uniform(-m, m, shape)

    lead = (B,) if T is None else (T, B)
    x, h = uniform(*lead, D), uniform(B, H)
    w_ih, w_hh = uniform(H, D), uniform(H, H)
    b_ih = uniform(H) if draw(st.booleans()) else None
    b_hh = uniform(H) if draw(st.booleans()) else None
    g = (rng.standard_normal((B, H)) if T is None
         else (rng.standard_normal((T, B, H)), rng.standard_normal((B, H))))
    return Problem(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity, g)


def _separating(problem: Problem) -> bool:
    cell = problem if problem.x.ndim == 2 else problem.first_step()
    return has_clearly_negative_unit(*cell.args)


def cell_problems(*, nonlinearities: tuple[str, ...] = NONLINEARITIES) -> st.SearchStrategy[Problem]:
    """Inputs of rnn_cell on which its tanh, ReLU and linear variants differ (spec/rnn.md)."""
    return rnn_problems(steps=None, nonlinearities=nonlinearities).filter(_separating)


def layer_problems(*, nonlinearities: tuple[str, ...] = NONLINEARITIES) -> st.SearchStrategy[Problem]:
    """Inputs of rnn_layer (T ≤ 5) whose first step separates the variants as cell_problems."""
    return rnn_problems(steps=5, max_size=4, nonlinearities=nonlinearities).filter(_separating)


def typical_layer(rng: np.random.Generator, T: int = 4, B: int = 2, D: int = 3,
                  H: int = 3) -> tuple[np.ndarray, ...]:
    """x ~ N(0, 1), |h0| < 1, weights and biases like nn.RNN's default U(−1/√H, 1/√H)."""
    s = 1 / np.sqrt(H)
    return (rng.standard_normal((T, B, D)), rng.uniform(-1, 1, (B, H)),
            rng.uniform(-s, s, (H, D)), rng.uniform(-s, s, (H, H)),
            rng.uniform(-s, s, H), rng.uniform(-s, s, H))


# ---- comparison helpers ----------------------------------------------------------------------

def cell_bound(p: Problem, dtype: np.dtype | type) -> tol.Bound:
    return rnn_bounds.rnn_cell(*p.args, p.nonlinearity, dtype=dtype)


def ratio(a: np.ndarray, b: np.ndarray, bound: np.ndarray) -> float:
    """max |a − b| / bound over the elements: how far beyond a tolerance two results are."""
    return float(np.max(np.abs(a - b) / np.maximum(bound, np.finfo(np.float64).tiny)))


# ---- rnn.cell --------------------------------------------------------------------------------

@pytest.mark.spec("rnn.cell")
@given(problem=cell_problems())
def test_rnn_cell_computes_activation_of_input_and_state_terms(impl, problem):
    p = problem.cast(impl)
    call = f"rnn_cell{describe_args(p.args, {'nonlinearity': p.nonlinearity})}"
    got = impl.array(impl.call("rnn_cell", *p.args, nonlinearity=p.nonlinearity), fn="rnn_cell",
                     what="h'", shape=p.h.shape)
    assert_close(got, ref.rnn_cell(*p.args, p.nonlinearity), cell_bound(p, impl.dtype),
                 spec_id="rnn.cell", impl=impl, what="h'", call=call)


@pytest.mark.spec("rnn.cell")
@given(problem=cell_problems())
def test_rnn_cell_gradients_match_reference(impl, problem):
    p = problem.cast(impl)
    args = (p.g, *p.args)
    check_outputs(impl, "vjp_rnn_cell", "rnn.cell", CELL_GRADIENTS, args, ref.rnn_cell_vjp,
                  rnn_bounds.vjp_rnn_cell, kwargs={"nonlinearity": p.nonlinearity},
                  absent_is_none=True)


@pytest.mark.spec("rnn.cell")
@given(problem=cell_problems(), rng=nst.generators())
def test_reference_rnn_cell_gradient_matches_finite_differences(problem, rng):
    p = problem
    check_gradient(lambda *a: ref.rnn_cell(*a, p.nonlinearity),
                   lambda g, *a: ref.rnn_cell_vjp(g, *a, p.nonlinearity), p.args,
                   rng=rng,
                   spec_id="rnn.cell", name="reference",
                   call=f"rnn_cell_vjp{describe_args(p.args, {'nonlinearity': p.nonlinearity})}")


@pytest.mark.spec("rnn.cell", "rnn.layer")
@given(cell=cell_problems(nonlinearities=("relu",)), seq=layer_problems(nonlinearities=("relu",)))
def test_relu_states_are_never_negative(impl, cell, seq):
    c, s = cell.cast(impl), seq.cast(impl)
    h1 = impl.array(impl.call("rnn_cell", *c.args, nonlinearity="relu"), fn="rnn_cell",
                    what="h'", shape=c.h.shape)
    y, hT = impl.outputs(impl.call("rnn_layer", *s.args, nonlinearity="relu"), fn="rnn_layer",
                         names=("y", "h_T"))
    for name, spec_id, fn, state, args in (("h'", "rnn.cell", "rnn_cell", h1, c.args),
                                           ("y", "rnn.layer", "rnn_layer", y, s.args),
                                           ("h_T", "rnn.layer", "rnn_layer", hT, s.args)):
        state = impl.array(state, fn=fn, what=name)
        if np.any(state < 0):
            at = tuple(int(i) for i in np.argwhere(state < 0)[0])
            fail(spec_id, impl, f"{name}{list(at)} was {state[at]!r}, but a ReLU state is ≥ 0",
                 call=f"{fn}{describe_args(args, {'nonlinearity': 'relu'})}")


@pytest.mark.spec("rnn.cell", "rnn.cell.linear")
@given(problem=st.one_of(cell_problems(), layer_problems().map(Problem.first_step)))
def test_cell_variants_differ_far_beyond_float32_tolerance(problem):
    p = problem
    W_i2h, b_i2h = ref.i2h_from_torch(*p.args[2:])
    M = rnn_bounds.pre_activation_magnitude(*p.args)
    variants = {
        nl: (ref.rnn_cell(*p.args, nl), cell_bound(Problem(*p.args, nl, p.g), np.float32).atol)
        for nl in NONLINEARITIES}
    variants["linear"] = (ref.cell_linear(p.x, p.h, W_i2h, b_i2h),
                          tol.accumulated(M, W_i2h.shape[1] + 1, np.float32).atol)
    for (one, (v1, b1)), (other, (v2, b2)) in itertools.combinations(variants.items(), 2):
        if ratio(v1, v2, b1 + b2) < SEPARATION:
            fail("rnn.cell", "reference",
                 f"the {one} and {other} cells differ by only {ratio(v1, v2, b1 + b2):.3g}× their "
                 f"float32 bounds (need {SEPARATION:g}×): the strategy does not separate them",
                 call=f"rnn_cell{describe_args(p.args)}")


@pytest.mark.spec("rnn.cell")
@pytest.mark.parametrize(("bad", "message"), [
    ({"x": np.zeros((2, 4))}, "x must have shape"),
    ({"h": np.zeros((3, 5))}, "h must have shape"),
    ({"w_hh": np.zeros((5, 4))}, "w_hh must have shape"),
    ({"w_ih": np.zeros((4, 3))}, "w_ih must have shape"),
    ({"b_hh": np.zeros(4)}, "b_hh must be None"),
    ({"nonlinearity": "sigmoid"}, "nonlinearity = 'sigmoid'"),
])
def test_reference_rejects_inconsistent_arguments_naming_them(bad, message):
    args = {"x": np.zeros((2, 3)), "h": np.zeros((2, 5)), "w_ih": np.zeros((5, 3)),
            "w_hh": np.zeros((5, 5)), "b_ih": None, "b_hh": None, "nonlinearity": "tanh"}
    with pytest.raises(ValueError, match=message):
        ref.rnn_cell(**{**args, **bad})


# ---- rnn.cell.linear -------------------------------------------------------------------------

@pytest.mark.spec("rnn.cell.linear")
@given(problem=cell_problems())
def test_char_rnn_step_is_i2h_on_input_concatenated_with_state(impl, problem):
    p = problem.cast(impl)
    W_i2h, b_i2h = (impl.cast(a) for a in ref.i2h_from_torch(*p.args[2:]))
    combined = np.concatenate([p.x, p.h], axis=-1)
    got = impl.array(impl.call("linear", combined, W_i2h, b_i2h), fn="linear", what="h'",
                     shape=p.h.shape)
    bound = tol.accumulated(ref.cell_linear(np.abs(p.x), np.abs(p.h), np.abs(W_i2h),
                                            None if b_i2h is None else np.abs(b_i2h)),
                            W_i2h.shape[1] + 1, impl.dtype)
    assert_close(got, ref.cell_linear(p.x, p.h, W_i2h, b_i2h), bound, spec_id="rnn.cell.linear",
                 impl=impl, what="h'", call=f"linear{describe_args((combined, W_i2h, b_i2h))}")


@pytest.mark.spec("rnn.cell.linear")
@given(problem=cell_problems())
def test_i2h_weight_splits_into_w_ih_and_w_hh_of_the_same_pre_activation(problem):
    p = problem
    W_i2h, b_i2h = ref.i2h_from_torch(*p.args[2:])
    w_ih, w_hh, b_ih, b_hh = ref.i2h_to_torch(W_i2h, b_i2h)
    call = f"i2h_to_torch{describe_args((W_i2h, b_i2h))}"
    for name, got, want in (("w_ih", w_ih, p.w_ih), ("w_hh", w_hh, p.w_hh)):
        assert_close(got, want, tol.exact(want), spec_id="rnn.cell.linear", impl="reference",
                     what=name, call=call)
    if b_ih is not b_i2h or b_hh is not None:
        fail("rnn.cell.linear", "reference", "i2h_to_torch must put the whole bias b_i2h in b_ih "
                                             "and none in b_hh", call=call)
    # Both sides are (D + H + 2)-term sums of the same terms in different orders.
    assert_close(ref.cell_linear(p.x, p.h, W_i2h, b_i2h),
                 ref.pre_activation(p.x, p.h, *ref.params_from_torch(*p.args[2:])),
                 tol.accumulated(2 * rnn_bounds.pre_activation_magnitude(*p.args), W_i2h.shape[1] + 2,
                                 np.float64),
                 spec_id="rnn.cell.linear", impl="reference", what="i2h([x, h]) vs W h + U x + b_h",
                 call=f"cell_linear{describe_args((p.x, p.h, W_i2h, b_i2h))}")


@pytest.mark.spec("rnn.cell", "rnn.cell.linear")
@given(problem=cell_problems())
def test_linear_variant_agrees_with_tanh_cell_only_to_third_order(problem):
    # |tanh a − a| ≤ |a|³/3 for every real a: the variants agree only where a is small.
    p = problem
    W, U, b_h = ref.params_from_torch(*p.args[2:])
    a = ref.pre_activation(p.x, p.h, W, U, b_h)
    tanh_cell = ref.rnn_cell(*p.args, "tanh")
    linear = ref.cell_linear(p.x, p.h, *ref.i2h_from_torch(*p.args[2:]))
    M = rnn_bounds.pre_activation_magnitude(*p.args)
    rounding = tol.accumulated(2 * M, p.x.shape[1] + p.h.shape[1] + 2, np.float64) + \
        tol.elementwise(tanh_cell, np.float64)
    assert_close(tanh_cell, linear, tol.Bound(np.abs(a) ** 3 / 3, "|a|³/3") + rounding,
                 spec_id="rnn.cell.linear", impl="reference", what="tanh cell − linear cell",
                 call=f"rnn_cell{describe_args(p.args)}")


# ---- rnn.layer -------------------------------------------------------------------------------

@pytest.mark.spec("rnn.layer")
@given(problem=layer_problems())
def test_rnn_layer_runs_the_cell_over_time_with_shared_weights(impl, problem):
    p = problem.cast(impl)
    call = f"rnn_layer{describe_args(p.args, {'nonlinearity': p.nonlinearity})}"
    y, hT = impl.outputs(impl.call("rnn_layer", *p.args, nonlinearity=p.nonlinearity),
                         fn="rnn_layer", names=("y", "h_T"))
    y = impl.array(y, fn="rnn_layer", what="y", shape=(*p.x.shape[:2], p.h.shape[1]))
    hT = impl.array(hT, fn="rnn_layer", what="h_T", shape=p.h.shape)
    want_y, want_hT = ref.rnn_layer(*p.args, p.nonlinearity)
    bound_y, bound_hT = rnn_bounds.rnn_layer(*p.args, p.nonlinearity, dtype=impl.dtype)
    assert_close(y, want_y, bound_y, spec_id="rnn.layer", impl=impl, what="y", call=call)
    assert_close(hT, want_hT, bound_hT, spec_id="rnn.layer", impl=impl, what="h_T", call=call)
    assert_close(hT, y[-1], tol.exact(hT), spec_id="rnn.layer", impl=impl,
                 what="h_T against y[T−1] (the same state)", call=call)


@pytest.mark.spec("rnn.layer")
@given(problem=layer_problems())
def test_rnn_layer_gradients_match_reference_bptt(impl, problem):
    p = problem.cast(impl)
    args = (p.g, *p.args)
    check_outputs(impl, "vjp_rnn_layer", "rnn.layer", LAYER_GRADIENTS, args, ref.rnn_layer_vjp,
                  rnn_bounds.vjp_rnn_layer, kwargs={"nonlinearity": p.nonlinearity},
                  absent_is_none=True)


@pytest.mark.spec("rnn.layer")
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_layer_over_a_long_sequence_matches_the_reference(impl, nonlinearity, request, rng):
    """At the run's sequence size (T = 128 by default, --nnspec-size): what goes wrong only after
    many steps."""
    size = sizes.active(request.config)
    args = tuple(impl.cast(a) for a in sizes.typical_layer(size, 1, rng))
    check_outputs(impl, "rnn_layer", "rnn.layer", ("y", "h_T"), args, ref.rnn_layer,
                  rnn_bounds.rnn_layer, kwargs={"nonlinearity": nonlinearity}, finite=True)


@pytest.mark.spec("rnn.layer")
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_layer_gradients_over_a_long_sequence_match_the_reference(impl, nonlinearity,
                                                                      request, rng):
    size = sizes.active(request.config)
    args = tuple(impl.cast(a) for a in sizes.typical_layer(size, 1, rng))
    g = (impl.cast(rng.standard_normal((size.T, size.B, size.H))),
         impl.cast(rng.standard_normal((size.B, size.H))))
    check_outputs(impl, "vjp_rnn_layer", "rnn.layer", LAYER_GRADIENTS, (g, *args),
                  ref.rnn_layer_vjp, rnn_bounds.vjp_rnn_layer,
                  kwargs={"nonlinearity": nonlinearity}, absent_is_none=True, finite=True)


@pytest.mark.spec("rnn.layer")
@given(problem=layer_problems(), rng=nst.generators())
def test_reference_bptt_matches_finite_differences(problem, rng):
    p = problem
    check_gradient(lambda *a: ref.rnn_layer(*a, p.nonlinearity),
                   lambda g, *a: ref.rnn_layer_vjp(g, *a, p.nonlinearity), p.args,
                   rng=rng,
                   spec_id="rnn.layer", name="reference",
                   call=f"rnn_layer_vjp{describe_args(p.args, {'nonlinearity': p.nonlinearity})}")


@pytest.mark.spec("rnn.layer", "rnn.cell")
@given(problem=layer_problems())
def test_rnn_layer_equals_rnn_cell_applied_step_by_step(impl, problem):
    p = problem.cast(impl)
    y, _ = impl.outputs(impl.call("rnn_layer", *p.args, nonlinearity=p.nonlinearity),
                        fn="rnn_layer", names=("y", "h_T"))
    y = impl.array(y, fn="rnn_layer", what="y", shape=(*p.x.shape[:2], p.h.shape[1]))
    h_t, steps = p.h, []
    for x_t in p.x:
        h_t = impl.array(impl.call("rnn_cell", x_t, h_t, *p.args[2:], nonlinearity=p.nonlinearity),
                         fn="rnn_cell", what="h'", shape=p.h.shape)
        steps.append(h_t)
    # Both runs are within the forward bound of the reference, hence within twice it of each other.
    bound, _ = rnn_bounds.rnn_layer(*p.args, p.nonlinearity, dtype=impl.dtype)
    assert_close(y, np.stack(steps), bound.scaled(2, "2 (two runs)"), spec_id="rnn.layer", impl=impl,
                 what="rnn_layer's y against rnn_cell repeated",
                 call=f"rnn_layer{describe_args(p.args, {'nonlinearity': p.nonlinearity})}")


@pytest.mark.spec("rnn.layer")
@given(problem=layer_problems())
def test_reference_layer_is_the_cell_repeated_within_rounding(problem):
    # The layer computes every step's input products in one GEMM, so it is the cell repeated
    # up to the blocking of those sums: within the layer's own float64 bound, twice (both sides
    # round), and h_T is y[T − 1] itself.
    p = problem
    y, hT = ref.rnn_layer(*p.args, p.nonlinearity)
    bound, _ = rnn_bounds.rnn_layer(*p.args, p.nonlinearity, dtype=np.float64)
    h_t, cell = p.h, []
    for x_t in p.x:
        h_t = ref.rnn_cell(x_t, h_t, *p.args[2:], p.nonlinearity)
        cell.append(h_t)
    call = f"rnn_layer{describe_args(p.args)}"
    assert_close(y, np.stack(cell), bound.scaled(2.0, "both sides round"), spec_id="rnn.layer",
                 impl="reference", what="y against rnn_cell repeated", call=call)
    assert_close(hT, y[-1], tol.exact(hT), spec_id="rnn.layer", impl="reference",
                 what="h_T against y[T − 1]", call=call)


@pytest.mark.spec("rnn.layer")
@given(problem=layer_problems())
def test_shared_weight_gradients_are_sums_of_per_step_cell_gradients(impl, problem):
    p = problem.cast(impl)
    gy, ghT = p.g
    args = (p.g, *p.args)
    call = f"vjp_rnn_layer{describe_args(args, {'nonlinearity': p.nonlinearity})}"
    whole = impl.outputs(impl.call("vjp_rnn_layer", *args, nonlinearity=p.nonlinearity),
                         fn="vjp_rnn_layer", names=LAYER_GRADIENTS)
    y, _ = impl.outputs(impl.call("rnn_layer", *p.args, nonlinearity=p.nonlinearity),
                        fn="rnn_layer", names=("y", "h_T"))
    y = impl.array(y, fn="rnn_layer", what="y", shape=(*p.x.shape[:2], p.h.shape[1]))
    T = p.x.shape[0]
    states = [p.h, *y[:T - 1]]
    # Backpropagate with the cell's VJP one step at a time: each step contributes its own
    # gradient of the shared w_ih, w_hh, biases; sharing means the layer's gradient is their sum.
    dx, summed = [None] * T, [0.0, 0.0, 0.0, 0.0]
    g_h = gy[T - 1] + ghT
    for t in reversed(range(T)):
        step = impl.outputs(impl.call("vjp_rnn_cell", g_h, p.x[t], states[t], *p.args[2:],
                                      nonlinearity=p.nonlinearity),
                            fn="vjp_rnn_cell", names=CELL_GRADIENTS)
        step = [None if s is None else impl.array(s, fn="vjp_rnn_cell", what=name)
                for name, s in zip(CELL_GRADIENTS, step, strict=True)]
        dx[t] = step[0]
        summed = [None if s is None else acc + s for acc, s in zip(summed, step[2:], strict=True)]
        g_h = step[1] + (gy[t - 1] if t > 0 else 0.0)
    per_step = (np.stack(dx), g_h, *summed)
    bounds = [None if b is None else b.scaled(2, "2 (two computations)")
              for b in rnn_bounds.vjp_rnn_layer(*args, p.nonlinearity, dtype=impl.dtype)]
    assert_outputs_close(impl, "vjp_rnn_layer", "rnn.layer", LAYER_GRADIENTS, whole, per_step,
                         bounds, call=call + " against Σ_t vjp_rnn_cell", absent_is_none=True)


@pytest.mark.spec("rnn.cell", "rnn.layer")
@pytest.mark.parametrize("bug", ["softmax_hidden", "missing_nonlinearity", "time_reversed"])
def test_known_bugs_differ_far_beyond_float32_tolerance(bug, rng):
    args = typical_layer(rng)
    if bug == "time_reversed":
        want, _ = ref.rnn_layer(*args)
        got, _ = ref.time_reversed(*args)
        bound, _ = rnn_bounds.rnn_layer(*args, "tanh", dtype=np.float32)
    else:
        cell_args = (args[0][0], *args[1:])
        want = ref.rnn_cell(*cell_args)
        got = getattr(ref, bug)(*cell_args)
        bound = cell_bound(Problem(*cell_args, "tanh", args[1]), np.float32)
    if ratio(got, want, bound.atol) < SEPARATION:
        fail("rnn.cell", "reference", f"rnn.bug.{bug} differs from the spec by only "
                                      f"{ratio(got, want, bound.atol):.3g}× the float32 bound",
             call=f"{bug}{describe_args(args)}")


# ---- rnn.output and rnn.output_loss ---------------------------------------------------------

@st.composite
def output_problems(draw: st.DrawFn) -> tuple[Problem, np.ndarray, np.ndarray | None, np.ndarray]:
    """A layer problem with an output layer V (O, H), b_y (O,) or None, and targets k (T, B)."""
    p = draw(layer_problems())
    n_out = draw(nst.sizes(max_size=4))
    rng = draw(nst.generators())
    m = draw(st.sampled_from((1.0, 4.0)))
    H = p.h.shape[1]
    V = rng.uniform(-m, m, (n_out, H))
    b_y = rng.uniform(-m, m, n_out) if draw(st.booleans()) else None
    return p, V, b_y, rng.integers(0, n_out, p.x.shape[:2])


@pytest.mark.spec("rnn.output")
@given(problem=output_problems())
def test_output_layer_on_rnn_states_gives_seed_output(impl, problem):
    # nn.RNN stops at h_t (seed 001 §6.1.7); the seed's y_t = V h_t + b_y is a Linear on top.
    p, V, b_y, _ = problem
    p, V, b_y = p.cast(impl), impl.cast(V), impl.cast(b_y)
    h, _ = impl.outputs(impl.call("rnn_layer", *p.args, nonlinearity=p.nonlinearity),
                        fn="rnn_layer", names=("y", "h_T"))
    h = impl.array(h, fn="rnn_layer", what="y", shape=(*p.x.shape[:2], p.h.shape[1]))
    got = impl.array(impl.call("linear", h, V, b_y), fn="linear", what="y",
                     shape=(*p.x.shape[:2], V.shape[0]))
    want_h, _ = ref.rnn_layer(*p.args, p.nonlinearity)
    assert_close(got, ref.output(want_h, V, b_y),
                 rnn_bounds.output(*p.args, p.nonlinearity, V, b_y, dtype=impl.dtype),
                 spec_id="rnn.output", impl=impl, what="y = V h + b_y",
                 call=f"linear(rnn_layer{describe_args(p.args)}[0], {describe_args((V, b_y))})")


@pytest.mark.spec("rnn.output_loss")
@given(problem=output_problems(), rng=nst.generators())
def test_reference_loss_gradient_through_time_matches_finite_differences(problem, rng):
    p, V, b_y, k = problem
    W, U, b_h = ref.params_from_torch(*p.args[2:])
    args = (p.x, p.h, W, U, b_h, V, b_y, k)
    check_gradient(lambda *a: ref.output_loss(*a, p.nonlinearity),
                   lambda g, *a: ref.output_loss_vjp(g, *a, p.nonlinearity), args,
                   wrt=[i for i, a in enumerate(args[:7]) if a is not None], rng=rng,
                   spec_id="rnn.output_loss", name="reference",
                   call=f"output_loss_vjp{describe_args(args, {'activation': p.nonlinearity})}")


@pytest.mark.spec("rnn.output_loss")
@given(problem=output_problems())
def test_loss_of_rnn_outputs_is_mean_cross_entropy_over_time(impl, problem):
    # The implementation's own pipeline: nn.RNN's states, a Linear, then cross_entropy.
    p, V, b_y, k = problem
    p, V, b_y = p.cast(impl), impl.cast(V), impl.cast(b_y)
    h, _ = impl.outputs(impl.call("rnn_layer", *p.args, nonlinearity=p.nonlinearity),
                        fn="rnn_layer", names=("y", "h_T"))
    h = impl.array(h, fn="rnn_layer", what="y", shape=(*p.x.shape[:2], p.h.shape[1]))
    y = impl.array(impl.call("linear", h, V, b_y), fn="linear", what="y",
                   shape=(*p.x.shape[:2], V.shape[0]))
    got = impl.array(impl.call("cross_entropy", y, k), fn="cross_entropy", what="L", shape=())
    W, U, b_h = ref.params_from_torch(*p.args[2:])
    want = ref.output_loss(p.x, p.h, W, U, b_h, V, b_y, k, p.nonlinearity)
    assert_close(got, want,
                 rnn_bounds.output_loss(*p.args, p.nonlinearity, V, b_y, y, k, dtype=impl.dtype),
                 spec_id="rnn.output_loss", impl=impl, what="L",
                 call=f"cross_entropy(linear(rnn_layer{describe_args(p.args)}[0], "
                      f"{describe_args((V, b_y))}), target)")
