"""Checks of spec/lstm.md."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks.bounds import engine as prop
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import sizes
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.compare import check_outputs
from nnspec.checks.harness.failure import NonConformance, assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import describe_args
from nnspec.reference import lstm as ref

GRADIENT_NAMES = ref.LSTM_CELL_GRADIENT_NAMES


# ---- inputs ----------------------------------------------------------------------------------

@st.composite
def lstm_problems(draw: st.DrawFn, *, magnitudes: tuple[float, ...] = nst.MAGNITUDES) -> tuple:
    """(x, h, c, w_ih, w_hh, b_ih, b_hh) with every entry drawn independently, inputs and
    parameters each up to one of ``magnitudes``.

    Arrays are filled from a NumPy generator rather than element by element: Hypothesis's array
    strategy fills most elements with one repeated value, and equal weight blocks hide every
    permutation of the gate blocks (spec/lstm.md, "Inputs that separate the gates").
    """
    B, D, H = draw(nst.sizes(max_size=4)), draw(nst.sizes(max_size=6)), draw(nst.sizes(max_size=6))
    rng = draw(nst.generators())
    m_in, m_w = draw(st.sampled_from(magnitudes)), draw(st.sampled_from(magnitudes))

    def uniform(shape: tuple[int, ...], m: float) -> np.ndarray:
        return rng.uniform(-m, m, shape)

    b_ih = uniform((4 * H,), m_w) if draw(st.booleans()) else None
    b_hh = uniform((4 * H,), m_w) if draw(st.booleans()) else None
    return (uniform((B, D), m_in), uniform((B, H), m_in), uniform((B, H), m_in),
            uniform((4 * H, D), m_w), uniform((4 * H, H), m_w), b_ih, b_hh)


# ---- the cell --------------------------------------------------------------------------------

@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems())
def test_lstm_cell_computes_gated_cell_and_hidden_state(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    x, h = args[0], args[1]
    got = impl.outputs(impl.call("lstm_cell", *args), fn="lstm_cell", names=("h'", "c'"))
    want = ref.lstm_cell(*args)
    call = f"lstm_cell{describe_args(args)}"
    for name, got_i, want_i, bound in zip(("h'", "c'"), got, want,
                                          lstm_bounds.lstm_cell(*args, dtype=impl.dtype), strict=True):
        arr = impl.array(got_i, fn="lstm_cell", what=name, shape=(x.shape[0], h.shape[1]))
        assert_close(arr, want_i, bound, spec_id="lstm.cell", impl=impl, what=name, call=call)


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems(), rng=nst.generators())
def test_lstm_cell_gradients_match_reference(impl, problem, rng):
    args = tuple(impl.cast(a) for a in problem)
    x, h = args[0], args[1]
    gh, gc = (impl.cast(rng.standard_normal((x.shape[0], h.shape[1]))) for _ in range(2))
    got = impl.outputs(impl.call("vjp_lstm_cell", (gh, gc), *args), fn="vjp_lstm_cell",
                       names=GRADIENT_NAMES)
    want = ref.lstm_cell_vjp((gh, gc), *args)
    derived = lstm_bounds.vjp_lstm_cell((gh, gc), *args, dtype=impl.dtype)
    call = f"vjp_lstm_cell{describe_args(((gh, gc), *args))}"
    for name, got_i, want_i, bound in zip(GRADIENT_NAMES, got, want, derived, strict=True):
        if want_i is None or bound is None:
            continue
        arr = impl.array(got_i, fn="vjp_lstm_cell", what=name, shape=want_i.shape)
        assert_close(arr, want_i, bound, spec_id="lstm.cell", impl=impl, what=name, call=call)


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems(magnitudes=(1.0, 4.0)), rng=nst.generators())
def test_reference_lstm_cell_gradient_matches_finite_differences(problem, rng):
    # tol.fd's error model holds up to magnitude 4. Beyond it, rounding of a cancelling
    # pre-activation (u·Σ|terms| ≈ 1e-11 for inputs ~1e3 and weights ~30) shifts the point both
    # sides differentiate at by more than tol.fd's 1e-12, and in fully saturated cells the complex
    # step's imaginary parts (h·φ' ≈ 1e-316) underflow. The reference's gradient at those
    # magnitudes is checked against autograd by test_lstm_cell_gradients_match_reference.
    wrt = [k for k, a in enumerate(problem) if a is not None]
    check_gradient(ref.lstm_cell, ref.lstm_cell_vjp, problem, wrt=wrt, rng=rng, spec_id="lstm.cell")


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems())
def test_lstm_cell_state_stays_within_what_unit_interval_gates_allow(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    c = args[2]
    got = impl.outputs(impl.call("lstm_cell", *args), fn="lstm_cell", names=("h'", "c'"))
    h_new, c_new = (impl.array(v, fn="lstm_cell", what=n, shape=c.shape)
                    for v, n in zip(got, ("h'", "c'"), strict=True))
    # With gates in [0, 1] and |C̃| ≤ 1, rounding (monotone) keeps |h'| ≤ 1 and |c'| ≤ fl(|c| + 1).
    one = impl.dtype.type(1)
    c_limit = (np.abs(c).astype(impl.dtype) + one).astype(np.float64)
    call = f"lstm_cell{describe_args(args)}"
    for name, got, limit, why in (
            ("h'", h_new, np.ones_like(h_new), "h' = o ⊙ tanh(c') with o ∈ [0, 1]"),
            ("c'", c_new, c_limit, "c' = f ⊙ c + i ⊙ C̃ with f, i ∈ [0, 1], |C̃| ≤ 1 allows fl(|c| + 1)")):
        excess = np.abs(got) - limit
        if np.any(excess > 0):
            k = tuple(int(j) for j in np.unravel_index(np.argmax(excess), got.shape))
            fail("lstm.cell", impl, f"|{name}{list(k)}| = {abs(float(got[k]))!r} exceeds "
                                    f"{float(limit[k])!r}, but {why}", call=call)


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems())
def test_reference_gates_lie_in_unit_interval_and_strictly_inside_unless_saturated(problem):
    x, h, _, w_ih, w_hh, b_ih, b_hh = problem
    p = ref.params_from_torch(w_ih, w_hh, b_ih, b_hh)
    gates = ref.gates(x, h, p)
    pre = {"I": x @ p.W_xi + h @ p.W_hi + p.b_i, "F": x @ p.W_xf + h @ p.W_hf + p.b_f,
           "O": x @ p.W_xo + h @ p.W_ho + p.b_o}
    for name in ("I", "F", "O"):
        gate = getattr(gates, name)
        # σ rounds to exactly 1 once e^(−A) < u/2 (A ≳ 36.7 in float64): inside that, strictly.
        inside = np.abs(pre[name]) <= 36
        if not (np.all((gate >= 0) & (gate <= 1)) and np.all((gate[inside] > 0) & (gate[inside] < 1))):
            fail("lstm.cell", "reference", f"gate {name} = {gate!r} leaves [0, 1] or reaches 0 or 1 "
                                           f"for |pre-activation| ≤ 36", call="gates(x, h, p)")
    if not np.all(np.abs(gates.C_tilde) <= 1):
        fail("lstm.cell", "reference", f"C̃ = {gates.C_tilde!r} leaves [−1, 1]", call="gates(x, h, p)")


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems(magnitudes=(1.0,)))
def test_saturated_forget_and_input_gates_carry_cell_state_unchanged(impl, problem):
    x, h, c, w_ih, w_hh, _, b_hh = problem
    H = w_hh.shape[1]
    # |x w_ihᵀ + h w_hhᵀ + b_hh| ≤ D + H + 1 ≤ 13, so A_f ≥ 987 and A_i ≤ −987: σ rounds to exactly
    # 1 and 0 (e^(−987) underflows even float64's subnormals), and c' = 1·c + 0·C̃ = c bit for bit.
    b_ih = np.concatenate([np.full(H, -1e3), np.full(H, 1e3), np.zeros(2 * H)])
    args = tuple(impl.cast(a) for a in (x, h, c, w_ih, w_hh, b_ih, b_hh))
    _, c_new = impl.outputs(impl.call("lstm_cell", *args), fn="lstm_cell", names=("h'", "c'"))
    c_cast = args[2]
    assert_close(impl.array(c_new, fn="lstm_cell", what="c'", shape=c_cast.shape), c_cast,
                 tol.exact(c_cast), spec_id="lstm.cell", impl=impl, what="c' (f = 1, i = 0)",
                 call=f"lstm_cell{describe_args(args)}")


# ---- inputs that separate the gate blocks ----------------------------------------------------

def _permuted(order: tuple[int, ...]):
    """lstm_cell reading PyTorch's blocks i, f, g, o in ``order`` (a permutation of 0..3)."""

    def cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        H = w_hh.shape[1]
        rows = np.concatenate([np.arange(k * H, (k + 1) * H) for k in order])
        return ref.lstm_cell(x, h, c, w_ih[rows], w_hh[rows],
                             None if b_ih is None else b_ih[rows], None if b_hh is None else b_hh[rows])

    return cell


WRONG_CELLS = {
    **{f"blocks read in order {''.join('ifgo'[k] for k in order)}": _permuted(order)
       for order in itertools.permutations(range(4)) if order != (0, 1, 2, 3)},
    "lstm.bug.no_tanh_on_cell": ref.no_tanh_on_cell,
    "lstm.bug.ungated_hidden": ref.ungated_hidden,
    "lstm.bug.gate_order_ifog": ref.gate_order_ifog,
    "lstm.bug.forget_bias_every_step": ref.forget_bias_every_step,
    "lstm.bug.hard_sigmoid_gates_keras2": ref.hard_sigmoid_gates_keras2,
    "lstm.bug.hard_sigmoid_gates_keras3": ref.hard_sigmoid_gates_keras3,
}


@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize("wrong", list(WRONG_CELLS))
def test_forward_check_rejects_every_gate_block_permutation_and_known_bug(wrong, rng):
    args = tuple(a.astype(np.float32) for a in nst.typical_lstm_cell(rng))
    got = WRONG_CELLS[wrong](*args)
    want = ref.lstm_cell(*args)
    # Even against float32's bound (the loosest one used), the wrong cell must fail.
    for name, got_i, want_i, bound in zip(("h'", "c'"), got, want,
                                          lstm_bounds.lstm_cell(*args, dtype=np.float32), strict=True):
        try:
            assert_close(got_i, want_i, bound,
                         spec_id="lstm.cell", impl=wrong, what=name, call="lstm_cell")
        except NonConformance:
            return
    fail("lstm.cell", wrong, "is accepted by the forward check on typical inputs (float32 bound)",
         call=f"lstm_cell{describe_args(args)}")


@pytest.mark.spec("lstm.cell")
def test_constant_weights_hide_every_gate_block_permutation(rng):
    B, D, H = 3, 2, 3
    x = rng.standard_normal((B, D))
    h, c = np.zeros((B, H)), np.zeros((B, H))
    w_ih, w_hh = np.full((4 * H, D), 0.1), np.full((4 * H, H), 0.1)
    want = ref.lstm_cell(x, h, c, w_ih, w_hh)
    for name, wrong in WRONG_CELLS.items():
        if name.startswith("blocks") and not all(
                np.array_equal(g, w) for g, w in zip(wrong(x, h, c, w_ih, w_hh), want, strict=True)):
            fail("lstm.cell", name, "differs from the cell on constant weights; the claim that "
                                    "equal blocks hide permutations (spec/lstm.md) is wrong")


@pytest.mark.spec("lstm.cell")
def test_zero_states_hide_w_hh_block_order_and_the_forget_gate(rng):
    x, _, _, w_ih, w_hh, b_ih, _ = nst.typical_lstm_cell(rng)
    H = w_hh.shape[1]
    h = c = np.zeros((x.shape[0], H))
    ifog = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
    forget = np.r_[H:2 * H]
    w_ih_negated_forget = w_ih.copy()
    w_ih_negated_forget[forget] *= -1
    b_negated_forget = b_ih.copy()
    b_negated_forget[forget] *= -1
    for what, got, want in (
            ("w_hh's blocks read as i, f, o, g", ref.lstm_cell(x, h, c, w_ih, w_hh[ifog], b_ih),
             ref.lstm_cell(x, h, c, w_ih, w_hh, b_ih)),
            ("the forget gate's weights and bias negated",
             ref.lstm_cell(x, h, c, w_ih_negated_forget, w_hh, b_negated_forget),
             ref.lstm_cell(x, h, c, w_ih, w_hh, b_ih))):
        if not all(np.array_equal(g, w) for g, w in zip(got, want, strict=True)):
            fail("lstm.cell", "reference", f"{what} changed the output although h = c = 0")


@pytest.mark.spec("lstm.cell", "lstm.cell.concatenated")
@given(problem=lstm_problems())
def test_layout_conversions_are_exact_inverses(problem):
    _, _, _, w_ih, w_hh, b_ih, b_hh = problem
    p = ref.params_from_torch(w_ih, w_hh, b_ih, b_hh)
    round_trips = {
        "params_from_torch ∘ params_to_torch": ref.params_from_torch(*ref.params_to_torch(p)),
        "params_from_concat ∘ concat_params_from": ref.params_from_concat(ref.concat_params_from(p)),
    }
    for name, back in round_trips.items():
        for field, a, b in zip(ref.Params._fields, p, back, strict=True):
            if not np.array_equal(a, b):
                fail("lstm.cell", "reference", f"{name} changes {field}: {b!r}, but should be {a!r}")
    w_ih2, w_hh2, _, _ = ref.params_to_torch(p)
    if not (np.array_equal(w_ih2, w_ih) and np.array_equal(w_hh2, w_hh)):
        fail("lstm.cell", "reference", "params_to_torch ∘ params_from_torch changes w_ih or w_hh")


@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize(("bad", "message"), [
    ({"w_hh": np.zeros((7, 2))}, "w_hh must have shape"),
    ({"w_ih": np.zeros((6, 5))}, "w_ih must have shape"),
    ({"x": np.zeros((3, 4))}, "x must have shape"),
    ({"c": np.zeros((2, 2))}, "c must have shape"),
    ({"b_hh": np.zeros(7)}, "b_hh must be None or have shape"),
])
def test_reference_rejects_inconsistent_shapes_naming_them(bad, message):
    args = {"x": np.zeros((3, 5)), "h": np.zeros((3, 2)), "c": np.zeros((3, 2)),
            "w_ih": np.zeros((8, 5)), "w_hh": np.zeros((8, 2)), "b_ih": None, "b_hh": None}
    with pytest.raises(ValueError, match=message):
        ref.lstm_cell(**{**args, **bad})


# ---- the concatenated parametrisation --------------------------------------------------------

@pytest.mark.spec("lstm.cell.concatenated")
@given(problem=lstm_problems())
def test_concatenated_cell_equals_lstm_cell_under_weight_mapping(problem):
    x, h, c, w_ih, w_hh, b_ih, b_hh = problem
    p = ref.params_from_torch(w_ih, w_hh, b_ih, b_hh)
    got = ref.cell_concatenated(x, h, c, ref.concat_params_from(p))
    want = ref.cell(x, h, c, p)
    for name, got_i, want_i, b in zip(("h'", "c'"), got, want,
                                      lstm_bounds.lstm_cell(*problem, dtype=np.float64), strict=True):
        # Both sides round in float64 (in different orders), so each contributes a bound.
        assert_close(got_i, want_i, b + b, spec_id="lstm.cell.concatenated", impl="reference",
                     what=name, call=f"cell_concatenated{describe_args((x, h, c))}")


@pytest.mark.spec("lstm.cell.concatenated")
def test_concat_order_bug_is_rejected(rng):
    x, h, c, w_ih, w_hh, b_ih, b_hh = nst.typical_lstm_cell(rng)
    q = ref.concat_params_from(ref.params_from_torch(w_ih, w_hh, b_ih, b_hh))
    got = ref.concat_order(x, h, c, q)
    want = ref.cell_concatenated(x, h, c, q)
    bound_h, _ = lstm_bounds.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype=np.float32)
    with pytest.raises(NonConformance):
        assert_close(got[0], want[0], bound_h,
                     spec_id="lstm.cell.concatenated", impl="lstm.bug.concat_order", what="h'",
                     call="concat_order")


# ---- lstm.layer ------------------------------------------------------------------------------

LAYER_GRADIENT_NAMES = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")


@st.composite
def lstm_layer_problems(draw: st.DrawFn, *, magnitudes: tuple[float, ...] = nst.MAGNITUDES,
                        proj: bool = False) -> tuple:
    """(x, h0, c0, w_ih, w_hh, b_ih, b_hh) with x of T ≤ 4 steps, drawn like
    :func:`lstm_problems`; with ``proj``, (x, h0, c0, w_ih, w_hh, w_hr, b_ih, b_hh) of a
    projection to P < H units (nn.LSTM requires proj_size < hidden_size)."""
    T, B, D = draw(nst.sizes(max_size=4)), draw(nst.sizes(max_size=3)), draw(nst.sizes(max_size=4))
    H = draw(nst.sizes(min_size=2 if proj else 1, max_size=5))
    P = draw(nst.sizes(max_size=H - 1)) if proj else H
    rng = draw(nst.generators())
    m_in, m_w = draw(st.sampled_from(magnitudes)), draw(st.sampled_from(magnitudes))

    def uniform(shape: tuple[int, ...], m: float) -> np.ndarray:
        return rng.uniform(-m, m, shape)

    b_ih = uniform((4 * H,), m_w) if draw(st.booleans()) else None
    b_hh = uniform((4 * H,), m_w) if draw(st.booleans()) else None
    weights = (uniform((4 * H, D), m_w), uniform((4 * H, P), m_w),
               *((uniform((P, H), m_w),) if proj else ()))
    return (uniform((T, B, D), m_in), uniform((B, P), m_in), uniform((B, H), m_in), *weights,
            b_ih, b_hh)


def layer_cotangents(rng: np.random.Generator, impl, x: np.ndarray, h0: np.ndarray,
                     c0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gy, ghT, gcT) ~ N(0, 1), as the implementation will see them."""
    return tuple(impl.cast(rng.standard_normal(s))
                 for s in ((x.shape[0], *h0.shape), h0.shape, c0.shape))


@pytest.mark.spec("lstm.layer")
@given(problem=lstm_layer_problems())
def test_lstm_layer_runs_the_cell_over_time_with_shared_weights(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    check_outputs(impl, "lstm_layer", "lstm.layer", ("y", "h_T", "c_T"), args, ref.lstm_layer,
                  lstm_bounds.lstm_layer)


@pytest.mark.spec("lstm.layer")
@given(problem=lstm_layer_problems(), rng=nst.generators())
def test_lstm_layer_gradients_match_reference_bptt(impl, problem, rng):
    args = tuple(impl.cast(a) for a in problem)
    g = layer_cotangents(rng, impl, *args[:3])
    check_outputs(impl, "vjp_lstm_layer", "lstm.layer", LAYER_GRADIENT_NAMES, (g, *args),
                  ref.lstm_layer_vjp, lstm_bounds.vjp_lstm_layer)


@pytest.mark.spec("lstm.layer")
def test_lstm_layer_over_a_long_sequence_matches_the_reference(impl, request, rng):
    """At the run's sequence size (T = 128 by default, --nnspec-size): a layer can be right for
    the drawn T ≤ 4 and wrong after 64 steps (a cell state restarted at a chunk boundary)."""
    size = sizes.active(request.config)
    args = tuple(impl.cast(a) for a in sizes.typical_layer(size, 4, rng, cell_state=True))
    check_outputs(impl, "lstm_layer", "lstm.layer", ("y", "h_T", "c_T"), args, ref.lstm_layer,
                  lstm_bounds.lstm_layer, finite=True)


@pytest.mark.spec("lstm.layer")
def test_lstm_layer_gradients_over_a_long_sequence_match_the_reference(impl, request, rng):
    size = sizes.active(request.config)
    args = tuple(impl.cast(a) for a in sizes.typical_layer(size, 4, rng, cell_state=True))
    g = layer_cotangents(rng, impl, *args[:3])
    check_outputs(impl, "vjp_lstm_layer", "lstm.layer", LAYER_GRADIENT_NAMES, (g, *args),
                  ref.lstm_layer_vjp, lstm_bounds.vjp_lstm_layer, finite=True)


@pytest.mark.spec("lstm.layer")
@given(problem=lstm_layer_problems(magnitudes=(1.0, 4.0)), rng=nst.generators())
def test_reference_lstm_layer_bptt_matches_finite_differences(problem, rng):
    # Magnitudes ≤ 4, as for the cell (test_reference_lstm_cell_gradient_matches_finite_differences).
    check_gradient(ref.lstm_layer, ref.lstm_layer_vjp, problem, rng=rng, spec_id="lstm.layer")


@pytest.mark.spec("lstm.layer")
@pytest.mark.parametrize("argument", [0, 5], ids=["x", "b_ih"])
def test_reference_lstm_layer_takes_a_complex_step_in_one_argument(argument, rng):
    """The complex step perturbs one argument while the others stay real (the layer's in-place
    sums must take the complex dtype): the directional derivative along x or b_ih alone."""
    T, B, D, H = 3, 2, 4, 5
    problem = (rng.standard_normal((T, B, D)), *(rng.standard_normal((B, H)) for _ in range(2)),
               rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H)),
               rng.standard_normal(4 * H), rng.standard_normal(4 * H))
    check_gradient(ref.lstm_layer, ref.lstm_layer_vjp, problem, wrt=(argument,), rng=rng,
                   spec_id="lstm.layer")


@pytest.mark.spec("lstm.layer", "lstm.cell")
@given(problem=lstm_layer_problems())
def test_lstm_layer_equals_lstm_cell_applied_step_by_step(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    x, h, c, *params = args
    y, _, c_T = impl.outputs(impl.call("lstm_layer", *args), fn="lstm_layer",
                             names=("y", "h_T", "c_T"))
    bound_y, _, bound_c = lstm_bounds.lstm_layer(*args, dtype=impl.dtype)
    steps = []
    for x_t in x:
        h, c = (impl.cast(impl.array(v, fn="lstm_cell", what=n, shape=c.shape))
                for v, n in zip(impl.outputs(impl.call("lstm_cell", x_t, h, c, *params),
                                             fn="lstm_cell", names=("h'", "c'")),
                                ("h'", "c'"), strict=True))
        steps.append(h)
    # Both runs are within the running bound of the reference, hence within twice it of each other.
    call = f"lstm_layer{describe_args(args)} against lstm_cell repeated"
    for what, got, want, b in (("y", y, np.stack(steps), bound_y), ("c_T", c_T, c, bound_c)):
        assert_close(impl.array(got, fn="lstm_layer", what=what, shape=want.shape), want,
                     b.scaled(2, "2 (two runs)"), spec_id="lstm.layer", impl=impl, what=what,
                     call=call)


@pytest.mark.spec("lstm.layer")
@given(problem=lstm_layer_problems())
def test_reference_lstm_layer_returns_its_last_state_as_h_t(problem):
    # The layer computes every step's input products in one GEMM, so it equals the cell
    # repeated only up to rounding (test_lstm_layer_equals_lstm_cell_applied_step_by_step, which
    # runs on the reference too); h_T is y[T − 1] itself.
    y, h_T, _ = ref.lstm_layer(*problem)
    if not np.array_equal(h_T, y[-1]):
        fail("lstm.layer", "reference", f"h_T = {h_T!r} differs from y[T − 1] = {y[-1]!r}",
             call=f"lstm_layer{describe_args(problem)}")


@pytest.mark.spec("lstm.layer")
@given(problem=lstm_layer_problems(magnitudes=(1.0,)))
def test_saturated_forget_and_input_gates_carry_the_cell_through_time(impl, problem):
    x, h0, c0, w_ih, w_hh, _, b_hh = problem
    H = c0.shape[1]
    # |x w_ihᵀ + h w_hhᵀ + b_hh| ≤ D + H + 1 ≤ 10 at every step (|h_t| ≤ 1 from step 1, |h0| ≤ 1),
    # so A_f ≥ 990 and A_i ≤ −990: f = 1 and i = 0 exactly, and c_t = 1·c_{t−1} + 0·g = c_0 for
    # every t, bit for bit (seed 000: "past memory is kept through time").
    b_ih = np.concatenate([np.full(H, -1e3), np.full(H, 1e3), np.zeros(2 * H)])
    args = tuple(impl.cast(a) for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
    _, _, c_T = impl.outputs(impl.call("lstm_layer", *args), fn="lstm_layer",
                             names=("y", "h_T", "c_T"))
    assert_close(impl.array(c_T, fn="lstm_layer", what="c_T", shape=args[2].shape), args[2],
                 tol.exact(args[2]), spec_id="lstm.layer", impl=impl,
                 what=f"c_T after {x.shape[0]} steps with f = 1, i = 0 (should be c_0)",
                 call=f"lstm_layer{describe_args(args)}")


# ---- lstm.cell.projection --------------------------------------------------------------------

PROJECTION_GRADIENT_NAMES = ("dx", "dh", "dc", "dw_ih", "dw_hh", "dw_hr", "db_ih", "db_hh")


@st.composite
def projection_cells(draw: st.DrawFn, *, magnitudes: tuple[float, ...] = nst.MAGNITUDES) -> tuple:
    """(x, h, c, w_ih, w_hh, w_hr, b_ih, b_hh): one step of a projected LSTM, P < H."""
    x, h0, c0, *rest = draw(lstm_layer_problems(magnitudes=magnitudes, proj=True))
    return (x[0], h0, c0, *rest)


@pytest.mark.spec("lstm.cell.projection")
@given(problem=projection_cells())
def test_projected_cell_maps_the_gated_state_through_w_hr(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    check_outputs(impl, "lstm_cell_projection", "lstm.cell.projection", ("h'", "c'"), args,
                  ref.lstm_cell_projection, lstm_bounds.lstm_cell_projection)


@pytest.mark.spec("lstm.cell.projection")
@given(problem=projection_cells(), rng=nst.generators())
def test_projected_cell_gradients_match_reference(impl, problem, rng):
    args = tuple(impl.cast(a) for a in problem)
    h, c = args[1:3]
    g = tuple(impl.cast(rng.standard_normal(s.shape)) for s in (h, c))
    check_outputs(impl, "vjp_lstm_cell_projection", "lstm.cell.projection",
                  PROJECTION_GRADIENT_NAMES, (g, *args), ref.lstm_cell_projection_vjp,
                  lstm_bounds.vjp_lstm_cell_projection)


@pytest.mark.spec("lstm.cell.projection")
@given(problem=projection_cells(magnitudes=(1.0, 4.0)), rng=nst.generators())
def test_reference_projected_cell_gradient_matches_finite_differences(problem, rng):
    check_gradient(ref.lstm_cell_projection, ref.lstm_cell_projection_vjp, problem,
                   rng=rng, spec_id="lstm.cell.projection")


@pytest.mark.spec("lstm.cell.projection", "lstm.cell")
@given(problem=projection_cells())
def test_projected_cell_is_lstm_cell_then_a_linear_map(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    x, h, c, w_ih, w_hh, w_hr, b_ih, b_hh = args
    H, P = c.shape[1], h.shape[1]
    # The core lstm_cell on the state zero-padded to H units (w_hh padded with zero columns) has
    # the same pre-activations; its h' is o ⊙ tanh(c'), which linear(·, w_hr) projects.
    h_pad = np.concatenate([h, np.zeros((h.shape[0], H - P))], axis=1)
    w_hh_pad = np.concatenate([w_hh, np.zeros((4 * H, H - P))], axis=1)
    gated, c_full = (impl.array(v, fn="lstm_cell", what=n, shape=c.shape) for v, n in zip(
        impl.outputs(impl.call("lstm_cell", x, h_pad, c, w_ih, w_hh_pad, b_ih, b_hh),
                     fn="lstm_cell", names=("h'", "c'")), ("h'", "c'"), strict=True))
    composed = impl.array(impl.call("linear", impl.cast(gated), w_hr), fn="linear", what="h'",
                          shape=h.shape)
    h_new, c_new = (impl.array(v, fn="lstm_cell_projection", what=n, shape=s.shape)
                    for v, n, s in zip(impl.outputs(impl.call("lstm_cell_projection", *args),
                                                    fn="lstm_cell_projection", names=("h'", "c'")),
                                       ("h'", "c'"), (h, c), strict=True))
    step = lstm_bounds.step(x, h_pad, c, w_ih, w_hh_pad, b_ih, b_hh, impl.dtype)
    through_linear = prop.matmul(step.h_new, w_hr.T, impl.dtype)
    bound_h, bound_c = lstm_bounds.lstm_cell_projection(*args, dtype=impl.dtype)
    call = f"lstm_cell_projection{describe_args(args)} against linear(lstm_cell(…), w_hr)"
    assert_close(h_new, composed, bound_h + prop.as_bound(through_linear, "linear(lstm_cell h')",
                                                          impl.dtype),
                 spec_id="lstm.cell.projection", impl=impl, what="h'", call=call)
    assert_close(c_new, c_full, bound_c + prop.as_bound(step.c_new, "lstm_cell c'", impl.dtype),
                 spec_id="lstm.cell.projection", impl=impl, what="c'", call=call)


@pytest.mark.spec("lstm.layer", "lstm.cell.projection")
@pytest.mark.parametrize(("fn", "shapes", "message"), [
    (ref.lstm_layer, ((2, 3), (3, 2), (3, 2), (8, 3), (8, 2)), "x must have shape"),
    (ref.lstm_layer, ((0, 3, 3), (3, 2), (3, 2), (8, 3), (8, 2)), "T ≥ 1"),
    (ref.lstm_layer, ((2, 3, 3), (3, 2), (1, 2), (8, 3), (8, 2)), "c0 must have shape"),
    (ref.lstm_cell_projection, ((3, 3), (3, 1), (3, 2), (8, 3), (8, 2), (1, 2)), "w_hh must have"),
    (ref.lstm_cell_projection, ((3, 3), (3, 2), (3, 2), (8, 3), (8, 1), (1, 2)), "h must have"),
])
def test_reference_rejects_inconsistent_layer_and_projection_shapes(fn, shapes, message):
    with pytest.raises(ValueError, match=message):
        fn(*(np.zeros(s) for s in shapes))
