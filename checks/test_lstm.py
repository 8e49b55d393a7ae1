"""Checks of spec/lstm.md."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks import strategies as nst
from nnspec.checks import tolerance as tol
from nnspec.checks.failure import NonConformance, assert_close, fail
from nnspec.checks.gradients import check_gradient
from nnspec.checks.implementation import describe_args
from nnspec.checks.tolerance import Bound
from nnspec.reference import lstm as ref

GRADIENT_NAMES = ("dx", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh")


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


def typical_problem(rng: np.random.Generator, B: int = 4, D: int = 5,
                    H: int = 6) -> tuple[np.ndarray, ...]:
    """Inputs as in training: x ~ N(0, 1), |h|, |c| < 1, weights and biases drawn like
    nn.LSTMCell's default U(−1/√H, 1/√H)."""
    s = 1 / np.sqrt(H)
    return (rng.standard_normal((B, D)), rng.uniform(-1, 1, (B, H)), rng.uniform(-1, 1, (B, H)),
            rng.uniform(-s, s, (4 * H, D)), rng.uniform(-s, s, (4 * H, H)),
            rng.uniform(-s, s, 4 * H), rng.uniform(-s, s, 4 * H))


# ---- the tolerance derivation of spec/lstm.md ------------------------------------------------

@dataclass(frozen=True)
class Computed:
    """A quantity as an implementation computing in ``dtype`` obtains it: the exact value (the
    reference's) and a bound on the implementation's error."""

    value: np.ndarray
    error: Bound


def exact(value: np.ndarray) -> Computed:
    return Computed(np.asarray(value, dtype=np.float64), tol.exact(value))


def product(*factors: Computed, dtype: np.dtype) -> Computed:
    """Π v_k from factors with errors δ_k: the exact telescoped error
    Σ_k δ_k·Π_{l<k}(|v_l|+δ_l)·Π_{l>k}|v_l|, plus the m − 1 roundings of the product."""
    value = functools.reduce(np.multiply, (f.value for f in factors))
    error = tol.exact(value)
    before = np.ones_like(value)
    for k, f in enumerate(factors):
        after = functools.reduce(np.multiply, (np.abs(g.value) for g in factors[k + 1:]), 1.0)
        error = error + f.error.scaled(before * after, "Π|other factors|")
        before = before * (np.abs(f.value) + f.error.atol)
    if len(factors) > 1:
        error = error + tol.accumulated(before, len(factors) - 1, dtype)
    return Computed(value, error)


def total(*terms: Computed, dtype: np.dtype) -> Computed:
    """Σ v_k from terms with errors δ_k: Σ δ_k plus the n − 1 roundings of the sum."""
    value = functools.reduce(np.add, (t.value for t in terms))
    error = functools.reduce(Bound.__add__, (t.error for t in terms))
    magnitude = functools.reduce(np.add, (np.abs(t.value) + t.error.atol for t in terms))
    return Computed(value, error + tol.accumulated(magnitude, len(terms) - 1, dtype))


def one_minus(a: Computed, dtype: np.dtype) -> Computed:
    return total(exact(np.ones_like(a.value)), Computed(-a.value, a.error), dtype=dtype)


def sigmoid(a: Computed, dtype: np.dtype) -> Computed:
    value = ref.sigmoid(a.value)
    return Computed(value, a.error.scaled(0.25, "σ' ≤ 1/4") + tol.elementwise(value, dtype))


def tanh(a: Computed, dtype: np.dtype) -> Computed:
    value = np.tanh(a.value)
    return Computed(value, a.error.scaled(1.0, "tanh' ≤ 1") + tol.elementwise(value, dtype))


def matmul(a: Computed, W: np.ndarray, dtype: np.dtype) -> Computed:
    """a W for an exact W: a's error carried by |W|, plus the n-term dot products' roundings."""
    carried = Bound(a.error.atol @ np.abs(W), f"({a.error.rule})·|W|", a.error.unit)
    magnitude = (np.abs(a.value) + a.error.atol) @ np.abs(W)
    return Computed(a.value @ W, carried + tol.accumulated(magnitude, W.shape[0], dtype))


def block(a: Computed, k: int, H: int) -> Computed:
    rows = slice(k * H, (k + 1) * H)
    return Computed(a.value[:, rows], Bound(a.error.atol[:, rows], a.error.rule, a.error.unit))


def bound(c: Computed, why: str) -> Bound:
    """The final bound, with a summary rule (the composed one is the whole derivation)."""
    return Bound(c.error.atol, f"{why}, derived in spec/lstm.md (tol.accumulated on the gate sums "
                               f"through σ' ≤ 1/4, tanh' ≤ 1 and the products, + tol.elementwise)",
                 c.error.unit)


def cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype):
    """The cell as the implementation computes it, in PyTorch's order of operations."""
    H = w_hh.shape[1]
    A = Computed(ref.pre_activations_stacked(x, h, w_ih, w_hh, b_ih, b_hh),
                 tol.accumulated(ref.gate_magnitude(x, h, w_ih, w_hh, b_ih, b_hh),
                                 x.shape[1] + H + 2, dtype))
    i, f, o = (sigmoid(block(A, k, H), dtype) for k in (0, 1, 3))
    g = tanh(block(A, 2, H), dtype)
    c_new = total(product(f, exact(c), dtype=dtype), product(i, g, dtype=dtype), dtype=dtype)
    tanh_c = tanh(c_new, dtype)
    h_new = product(o, tanh_c, dtype=dtype)
    return A, (i, f, g, o), c_new, tanh_c, h_new


def cell_backward(gh, gc, x, h, c, w_ih, w_hh, b_ih, b_hh, dtype):
    """The VJP as autograd evaluates it; returns Computed gradients (None for absent biases)."""
    _, (i, f, g, o), _, tanh_c, _ = cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype)
    GH, GC = exact(gh), exact(gc)

    def times(*factors: Computed) -> Computed:
        return product(*factors, dtype=dtype)

    dc_new = total(GC, times(GH, o, one_minus(times(tanh_c, tanh_c), dtype)), dtype=dtype)
    dA_i = times(dc_new, g, i, one_minus(i, dtype))
    dA_f = times(dc_new, exact(c), f, one_minus(f, dtype))
    dA_g = times(dc_new, i, one_minus(times(g, g), dtype))
    dA_o = times(GH, tanh_c, o, one_minus(o, dtype))
    parts = (dA_i, dA_f, dA_g, dA_o)
    dA = Computed(np.concatenate([p.value for p in parts], axis=1),
                  Bound(np.concatenate([p.error.atol for p in parts], axis=1), "∂A", dA_i.error.unit))
    dAT = Computed(dA.value.T, Bound(dA.error.atol.T, dA.error.rule, dA.error.unit))
    db = matmul(dAT, np.ones(x.shape[0]), dtype)
    return (matmul(dA, w_ih, dtype), matmul(dA, w_hh, dtype), times(dc_new, f),
            matmul(dAT, x, dtype), matmul(dAT, h, dtype),
            None if b_ih is None else db, None if b_hh is None else db)


# ---- the cell --------------------------------------------------------------------------------

@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems())
def test_lstm_cell_computes_gated_cell_and_hidden_state(impl, problem):
    args = tuple(impl.cast(a) for a in problem)
    x, h = args[0], args[1]
    got = impl.outputs(impl.call("lstm_cell", *args), fn="lstm_cell", names=("h'", "c'"))
    want = ref.lstm_cell(*args)
    *_, c_new, _, h_new = cell_forward(*args, impl.dtype)
    call = f"lstm_cell{describe_args(args)}"
    for name, got_i, want_i, derived in zip(("h'", "c'"), got, want, (h_new, c_new), strict=True):
        arr = impl.array(got_i, fn="lstm_cell", what=name, shape=(x.shape[0], h.shape[1]))
        assert_close(arr, want_i, bound(derived, f"bound on {name}"), spec_id="lstm.cell",
                     impl=impl, what=name, call=call)


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems(), rng=nst.generators())
def test_lstm_cell_gradients_match_reference(impl, problem, rng):
    args = tuple(impl.cast(a) for a in problem)
    x, h = args[0], args[1]
    gh, gc = (impl.cast(rng.standard_normal((x.shape[0], h.shape[1]))) for _ in range(2))
    got = impl.outputs(impl.call("vjp_lstm_cell", (gh, gc), *args), fn="vjp_lstm_cell",
                       names=GRADIENT_NAMES)
    want = ref.lstm_cell_vjp((gh, gc), *args)
    derived = cell_backward(gh, gc, *args, impl.dtype)
    call = f"vjp_lstm_cell{describe_args(((gh, gc), *args))}"
    for name, got_i, want_i, d in zip(GRADIENT_NAMES, got, want, derived, strict=True):
        if want_i is None:
            continue
        arr = impl.array(got_i, fn="vjp_lstm_cell", what=name, shape=want_i.shape)
        assert_close(arr, want_i, bound(d, f"bound on {name}"), spec_id="lstm.cell", impl=impl,
                     what=name, call=call)


@pytest.mark.spec("lstm.cell")
@given(problem=lstm_problems(magnitudes=(1.0, 4.0)), rng=nst.generators())
def test_reference_lstm_cell_gradient_matches_finite_differences(problem, rng):
    # tol.fd's error model holds up to magnitude 4. Beyond it, rounding of a cancelling
    # pre-activation (u·Σ|terms| ≈ 1e-11 for inputs ~1e3 and weights ~30) shifts the point both
    # sides differentiate at by more than tol.fd's 1e-12, and in fully saturated cells the complex
    # step's imaginary parts (h·φ' ≈ 1e-316) underflow. The reference's gradient at those
    # magnitudes is checked against autograd by test_lstm_cell_gradients_match_reference.
    wrt = [k for k, a in enumerate(problem) if a is not None]
    check_gradient(ref.lstm_cell, ref.lstm_cell_vjp, problem, wrt=wrt, rng=rng,
                   spec_id="lstm.cell", name="reference",
                   call=f"lstm_cell_vjp{describe_args(problem)}")


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
}


@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize("wrong", list(WRONG_CELLS))
def test_forward_check_rejects_every_gate_block_permutation_and_known_bug(wrong, rng):
    args = tuple(a.astype(np.float32) for a in typical_problem(rng))
    *_, c_new, _, h_new = cell_forward(*args, np.dtype(np.float32))
    got = WRONG_CELLS[wrong](*args)
    want = ref.lstm_cell(*args)
    # Even against float32's bound (the loosest one used), the wrong cell must fail.
    for name, got_i, want_i, derived in zip(("h'", "c'"), got, want, (h_new, c_new), strict=True):
        try:
            assert_close(got_i, want_i, bound(derived, name), spec_id="lstm.cell", impl=wrong,
                         what=name, call="lstm_cell")
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
    x, _, _, w_ih, w_hh, b_ih, _ = typical_problem(rng)
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
    *_, c_new, _, h_new = cell_forward(*problem, np.dtype(np.float64))
    for name, got_i, want_i, derived in zip(("h'", "c'"), got, want, (h_new, c_new), strict=True):
        # Both sides round in float64 (in different orders), so each contributes a bound.
        b = bound(derived, f"float64 bound on {name}")
        assert_close(got_i, want_i, b + b, spec_id="lstm.cell.concatenated", impl="reference",
                     what=name, call=f"cell_concatenated{describe_args((x, h, c))}")


@pytest.mark.spec("lstm.cell.concatenated")
def test_concat_order_bug_is_rejected(rng):
    x, h, c, w_ih, w_hh, b_ih, b_hh = typical_problem(rng)
    q = ref.concat_params_from(ref.params_from_torch(w_ih, w_hh, b_ih, b_hh))
    got = ref.concat_order(x, h, c, q)
    want = ref.cell_concatenated(x, h, c, q)
    *_, h_new = cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh, np.dtype(np.float32))
    with pytest.raises(NonConformance):
        assert_close(got[0], want[0], bound(h_new, "float32 bound on h'"),
                     spec_id="lstm.cell.concatenated", impl="lstm.bug.concat_order", what="h'",
                     call="concat_order")
