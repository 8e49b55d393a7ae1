"""Checks of spec/gru.md."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import sizes
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.compare import check_outputs
from nnspec.checks.harness.failure import assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import gru as ref

GRADIENT_NAMES = ("dx", "dh", "dw_ih", "dw_hh", "db_ih", "db_hh")

#: How far apart the separating inputs must put two named formulas: by at least this factor
#: times the sum of their float32 bounds, so a float32 implementation of one is never mistaken
#: for the other, with room to spare (measured minimum over 10⁴ seeds: 312).
SEPARATION = 100.0

#: A pre-activation bias that saturates σ exactly in float64 and float32 (σ(±10⁴ ∓ 300) is 1 or
#: 0 to the last bit) while every other term of the strategies below stays under 300.
SATURATING = 1e4

#: The named formulas of one step in the contract's layout, with their bounds.
FORMULAS: dict[str, tuple[Callable, Callable]] = {
    "gru.cell.pytorch": (ref.gru_cell, gru_bounds.gru_cell),
    "gru.cell.textbook": (ref.gru_cell_textbook, gru_bounds.gru_cell_textbook),
    "gru.update.flipped": (ref.gru_cell_flipped, gru_bounds.gru_cell_flipped),
}
BUGS = {"gru.bug.gate_order_zrn": ref.gate_order_zrn,
        "gru.bug.reset_on_input": ref.reset_on_input,
        "gru.bug.bias_hn_outside_reset": ref.bias_hn_outside_reset,
        "gru.bug.no_bias_hn": ref.no_bias_hn,
        "gru.bug.hard_sigmoid_gates_keras3": ref.hard_sigmoid_gates_keras3}


# ---- inputs ----------------------------------------------------------------------------------

def _filled(rng: np.random.Generator, shape: tuple[int, ...], magnitude: float) -> np.ndarray:
    return rng.uniform(-magnitude, magnitude, shape)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice((-1.0, 1.0), size=shape) * rng.uniform(0.25, 1.0, shape)


def _arrays(draw: st.DrawFn, shapes: dict[str, tuple[int, ...]], *, separating: bool,
            magnitudes: tuple[float, ...], biases: bool | None) -> dict[str, np.ndarray | None]:
    rng = draw(nst.generators())
    if separating:
        return {name: _away_from_zero(rng, shape) for name, shape in shapes.items()}
    m_in, m_w = draw(st.sampled_from(magnitudes)), draw(st.sampled_from(magnitudes))
    out: dict[str, np.ndarray | None] = {}
    for name, shape in shapes.items():
        present = name not in ("b_ih", "b_hh") or (draw(st.booleans()) if biases is None
                                                    else biases)
        out[name] = _filled(rng, shape, m_in if name in ("x", "h") else m_w) if present else None
    return out


def _shapes(draw: st.DrawFn, separating: bool, steps: tuple[int, ...]) -> dict:
    if separating:
        B, D, H = (draw(nst.sizes(min_size=2, max_size=3)), draw(nst.sizes(max_size=4)),
                   draw(nst.sizes(min_size=2, max_size=4)))
    else:
        B, D, H = (draw(nst.sizes(max_size=4)), draw(nst.sizes(max_size=6)),
                   draw(nst.sizes(max_size=6)))
    return {"x": (*steps, B, D), "h": (B, H), "w_ih": (3 * H, D), "w_hh": (3 * H, H),
            "b_ih": (3 * H,), "b_hh": (3 * H,)}


@st.composite
def gru_cells(draw: st.DrawFn, *, magnitudes: tuple[float, ...] = nst.MAGNITUDES,
              biases: bool | None = None) -> tuple:
    """(x, h, w_ih, w_hh, b_ih, b_hh), shapes from 1 (the batch-1, width-1 edges) up, values up
    to one of ``magnitudes`` (by default nst.MAGNITUDES: saturating and large included), drawn
    once for the inputs and once for the parameters; ``biases`` True or False forces both biases
    present or absent.

    Arrays are filled from a NumPy generator, not element by element: Hypothesis's array strategy
    fills most elements with one repeated value, and equal gate blocks hide a permuted gate order.
    """
    arrays = _arrays(draw, _shapes(draw, False, ()), separating=False, magnitudes=magnitudes,
                     biases=biases)
    return tuple(arrays.values())


@st.composite
def separating_gru_cells(draw: st.DrawFn) -> tuple:
    """(x, h, w_ih, w_hh, b_ih, b_hh) on which every two named formulas and every known bug
    differ by ≥ SEPARATION × their float32 bounds (test_separating_inputs_tell_every_named_
    formula_apart checks it): batch and hidden ≥ 2, every entry ±U(1/4, 1), so no gate block is
    zero or equal to another, no gate saturates and b_hn ≠ 0."""
    arrays = _arrays(draw, _shapes(draw, True, ()), separating=True, magnitudes=(), biases=True)
    return tuple(arrays.values())


@st.composite
def gru_layers(draw: st.DrawFn, *, separating: bool = False,
               magnitudes: tuple[float, ...] = nst.MAGNITUDES,
               h0_magnitude: float | None = None, min_steps: int = 1) -> tuple:
    """(x, h0, w_ih, w_hh, b_ih, b_hh) with x of T ≥ ``min_steps`` steps, drawn like
    :func:`separating_gru_cells` or :func:`gru_cells`; h0 ∈ [−h0_magnitude, h0_magnitude] if
    given."""
    T = draw(nst.sizes(min_size=min_steps, max_size=5))
    shapes = _shapes(draw, separating, (T,))
    arrays = _arrays(draw, shapes, separating=separating, magnitudes=magnitudes,
                     biases=True if separating else None)
    if h0_magnitude is not None:
        arrays["h"] = _filled(draw(nst.generators()), shapes["h"], h0_magnitude)
    return tuple(arrays.values())


cell_problems = gru_cells() | separating_gru_cells()
layer_problems = gru_layers() | gru_layers(separating=True)

#: The complex step is exact to rounding only while the imaginary parts do not cancel. With a
#: saturated gate they do: Z ⊙ H and (1 − Z) ⊙ H̃ both carry Im Z, of size σ'(A_z)·1e-20, which
#: swamps the rest of Im H_t and returns with opposite signs (at |A_z| ≈ 170 the complex step
#: misses a 1e-138 term: 2.2× off on a gradient of 1e-118). The finite-difference checks of the
#: reference's formulas therefore draw magnitudes ≤ 4 (worst ratio to tol.fd over 1500 problems:
#: 0.008); saturated gradients are compared with torch under the running bound.
MODERATE = (1.0, 4.0)
fd_cell_problems = gru_cells(magnitudes=MODERATE) | separating_gru_cells()
fd_layer_problems = gru_layers(magnitudes=MODERATE) | gru_layers(separating=True)


def cast(impl: Implementation, problem: tuple) -> tuple:
    return tuple(impl.cast(a) for a in problem)


def block(H: int, k: int) -> slice:
    """Rows of PyTorch's gate block k (0: r, 1: z, 2: n)."""
    return slice(k * H, (k + 1) * H)


# ---- the cell against the reference ----------------------------------------------------------

def check_cell(impl: Implementation, fn: str, spec_id: str, problem: tuple) -> None:
    __tracebackhide__ = True
    args = cast(impl, problem)
    h = args[1]
    forward, bound = FORMULAS[spec_id]
    got = impl.array(impl.call(fn, *args), fn=fn, what="h'", shape=h.shape)
    assert_close(got, forward(*args), bound(*args, dtype=impl.dtype), spec_id=spec_id,
                 impl=impl, call=f"{fn}{describe_args(args)}", what="h'")


@pytest.mark.spec("gru.cell.pytorch")
@given(problem=cell_problems)
def test_gru_cell_computes_the_pytorch_reset_after_matmul_formula(impl, problem):
    check_cell(impl, "gru_cell", "gru.cell.pytorch", problem)


@pytest.mark.spec("gru.cell.textbook")
@given(problem=cell_problems)
def test_gru_cell_textbook_computes_the_seeds_reset_before_matmul_formula(impl, problem):
    check_cell(impl, "gru_cell_textbook", "gru.cell.textbook", problem)


def check_cell_gradients(impl: Implementation, fn: str, spec_id: str, problem: tuple,
                         rng: np.random.Generator) -> None:
    """vjp_<cell> for a random cotangent of h' against the reference's and within its bound."""
    __tracebackhide__ = True
    args = cast(impl, problem)
    gh = impl.cast(rng.uniform(-1, 1, args[1].shape))
    check_outputs(impl, fn, spec_id, GRADIENT_NAMES, (gh, *args), getattr(ref, f"{fn[4:]}_vjp"),
                  getattr(gru_bounds, fn))


@pytest.mark.spec("gru.cell.pytorch")
@given(problem=cell_problems, rng=nst.generators())
def test_gru_cell_gradients_match_reference(impl, problem, rng):
    check_cell_gradients(impl, "vjp_gru_cell", "gru.cell.pytorch", problem, rng)


@pytest.mark.spec("gru.cell.textbook")
@given(problem=cell_problems, rng=nst.generators())
def test_gru_cell_textbook_gradients_match_reference(impl, problem, rng):
    check_cell_gradients(impl, "vjp_gru_cell_textbook", "gru.cell.textbook", problem, rng)


def _wrt(problem: tuple) -> tuple[int, ...]:
    return tuple(i for i, a in enumerate(problem) if a is not None)


@pytest.mark.spec("gru.cell.pytorch")
@given(problem=fd_cell_problems, rng=nst.generators())
def test_reference_gru_cell_gradient_matches_finite_differences(problem, rng):
    check_gradient(ref.gru_cell, ref.gru_cell_vjp, problem, wrt=_wrt(problem),
                   rng=rng, spec_id="gru.cell.pytorch")


@pytest.mark.spec("gru.cell.textbook")
@given(problem=fd_cell_problems, rng=nst.generators())
def test_reference_gru_cell_textbook_gradient_matches_finite_differences(problem, rng):
    check_gradient(ref.gru_cell_textbook, ref.gru_cell_textbook_vjp, problem, wrt=_wrt(problem),
                   rng=rng, spec_id="gru.cell.textbook")


# ---- the layer -------------------------------------------------------------------------------

@pytest.mark.spec("gru.layer")
@given(problem=layer_problems)
def test_gru_layer_runs_the_pytorch_cell_over_time(impl, problem):
    args = cast(impl, problem)
    x, h0 = args[:2]
    T, B, H = x.shape[0], h0.shape[0], h0.shape[1]
    out = impl.outputs(impl.call("gru_layer", *args), fn="gru_layer", names=("y", "h_T"))
    y = impl.array(out[0], fn="gru_layer", what="y", shape=(T, B, H))
    hT = impl.array(out[1], fn="gru_layer", what="h_T", shape=(B, H))
    want_y, want_hT = ref.gru_layer(*args)
    bound_y, bound_hT = gru_bounds.gru_layer(*args, dtype=impl.dtype)
    call = f"gru_layer{describe_args(args)}"
    assert_close(y, want_y, bound_y, spec_id="gru.layer", impl=impl, call=call, what="y")
    assert_close(hT, want_hT, bound_hT, spec_id="gru.layer", impl=impl, call=call, what="h_T")


@pytest.mark.spec("gru.layer")
@given(problem=layer_problems, rng=nst.generators())
def test_gru_layer_gradients_match_backpropagation_through_time(impl, problem, rng):
    args = cast(impl, problem)
    x, h0 = args[:2]
    g = (impl.cast(rng.uniform(-1, 1, (x.shape[0], *h0.shape))),
         impl.cast(rng.uniform(-1, 1, h0.shape)))
    check_outputs(impl, "vjp_gru_layer", "gru.layer", gru_bounds.LAYER_GRADIENTS, (g, *args),
                  ref.gru_layer_vjp, gru_bounds.vjp_gru_layer)


@pytest.mark.spec("gru.layer")
def test_gru_layer_over_a_long_sequence_matches_the_reference(impl, request, rng):
    """At the run's sequence size (T = 128 by default, --nnspec-size): what goes wrong only after
    many steps."""
    size = sizes.active(request.config)
    args = tuple(impl.cast(a) for a in sizes.typical_layer(size, 3, rng))
    check_outputs(impl, "gru_layer", "gru.layer", ("y", "h_T"), args, ref.gru_layer,
                  gru_bounds.gru_layer, finite=True)


@pytest.mark.spec("gru.layer")
def test_gru_layer_gradients_over_a_long_sequence_match_the_reference(impl, request, rng):
    size = sizes.active(request.config)
    args = tuple(impl.cast(a) for a in sizes.typical_layer(size, 3, rng))
    g = (impl.cast(rng.standard_normal((size.T, size.B, size.H))),
         impl.cast(rng.standard_normal((size.B, size.H))))
    check_outputs(impl, "vjp_gru_layer", "gru.layer", gru_bounds.LAYER_GRADIENTS, (g, *args),
                  ref.gru_layer_vjp, gru_bounds.vjp_gru_layer, finite=True)


@pytest.mark.spec("gru.layer")
@pytest.mark.parametrize("argument", [0, 4], ids=["x", "b_ih"])
def test_reference_gru_layer_takes_a_complex_step_in_one_argument(argument, rng):
    """The complex step perturbs one argument while the others stay real (the layer's in-place
    sums must take the complex dtype): the directional derivative along x or b_ih alone."""
    T, B, D, H = 3, 2, 4, 5
    problem = (rng.standard_normal((T, B, D)), rng.standard_normal((B, H)),
               rng.standard_normal((3 * H, D)), rng.standard_normal((3 * H, H)),
               rng.standard_normal(3 * H), rng.standard_normal(3 * H))
    check_gradient(ref.gru_layer, ref.gru_layer_vjp, problem, wrt=(argument,), rng=rng,
                   spec_id="gru.layer")


@pytest.mark.spec("gru.layer")
@given(problem=fd_layer_problems, rng=nst.generators())
def test_reference_gru_layer_gradient_matches_finite_differences(problem, rng):
    check_gradient(ref.gru_layer, ref.gru_layer_vjp, problem, wrt=_wrt(problem), rng=rng, spec_id="gru.layer")


@pytest.mark.spec("gru.layer", "gru.cell.pytorch")
@given(problem=layer_problems)
def test_gru_layer_equals_gru_cell_applied_step_by_step(impl, problem):
    args = cast(impl, problem)
    x, h0, *params = args
    y, _ = impl.outputs(impl.call("gru_layer", *args), fn="gru_layer", names=("y", "h_T"))
    y = impl.array(y, fn="gru_layer", what="y", shape=(x.shape[0], *h0.shape))
    bound_y, _ = gru_bounds.gru_layer(*args, dtype=impl.dtype)
    h = h0
    for t, x_t in enumerate(x):
        h = impl.cast(impl.array(impl.call("gru_cell", x_t, h, *params), fn="gru_cell",
                                 what="h'", shape=h0.shape))
        # Both runs obey the running bound around the reference, hence the doubled bound.
        bound_t = tol.Bound(2 * bound_y.atol[t], f"2 × ({bound_y.rule})", bound_y.unit)
        assert_close(y[t], h, bound_t, spec_id="gru.layer", impl=impl,
                     what=f"y[{t}] against gru_cell applied {t + 1} times",
                     call=f"gru_layer{describe_args(args)}")


# ---- properties the seeds state --------------------------------------------------------------

@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook")
@given(problem=gru_cells(magnitudes=(4.0,)))
def test_reference_gates_lie_in_unit_interval_and_strictly_inside_unless_saturated(problem):
    x, h, *params = problem
    p = ref.params_from_torch(*params)
    for name, gate, a in zip("RZ", ref.gates(x, h, p),
                             (x @ p.W_xr + h @ p.W_hr + p.b_r, x @ p.W_xz + h @ p.W_hz + p.b_z),
                             strict=True):
        # σ(30) = 1 − 9.4e-14 is still below 1 in float64; beyond ~37 it rounds to 1.
        inside = np.abs(a) <= 30
        if not (np.all((gate >= 0) & (gate <= 1)) and np.all((gate[inside] > 0) &
                                                               (gate[inside] < 1))):
            fail("gru.cell.pytorch", "reference",
                 f"gate {name} = {gate} leaves [0, 1], or reaches 0 or 1 at a pre-activation "
                 f"{a} of magnitude ≤ 30", call=f"gates{describe_args(problem)}")


@pytest.mark.spec("gru.layer")
@given(problem=gru_layers(h0_magnitude=1.0))
def test_gru_layer_state_stays_in_unit_interval_when_it_starts_there(impl, problem):
    args = cast(impl, problem)
    x, h0 = args[:2]
    y, _ = impl.outputs(impl.call("gru_layer", *args), fn="gru_layer", names=("y", "h_T"))
    y = impl.array(y, fn="gru_layer", what="y", shape=(x.shape[0], *h0.shape))
    bound_y, _ = gru_bounds.gru_layer(*args, dtype=impl.dtype)
    # h_t is a convex combination of h_{t−1} and tanh(·): it cannot leave [−1, 1] by more than
    # the implementation's rounding.
    assert_close(y, np.clip(y, -1.0, 1.0), bound_y, spec_id="gru.layer", impl=impl, what="y",
                 call=f"gru_layer{describe_args(args)}")


def saturated(problem: tuple, gate_biases: dict[int, float]) -> tuple:
    """The problem with b_ih's gate blocks k set to the given saturating values."""
    x, h, w_ih, w_hh, b_ih, b_hh = problem
    H = h.shape[1]
    b_ih = np.zeros(3 * H) if b_ih is None else b_ih.copy()
    for k, value in gate_biases.items():
        b_ih[block(H, k)] = value
    return x, h, w_ih, w_hh, b_ih, b_hh


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook")
@pytest.mark.parametrize(("fn", "spec_id"), [("gru_cell", "gru.cell.pytorch"),
                                             ("gru_cell_textbook", "gru.cell.textbook")])
@given(problem=gru_cells(magnitudes=(4.0,)))
def test_update_gate_near_one_copies_the_state(impl, fn, spec_id, problem):
    args = cast(impl, saturated(problem, {1: SATURATING}))
    h = args[1]
    got = impl.array(impl.call(fn, *args), fn=fn, what="h'", shape=h.shape)
    assert_close(got, h, FORMULAS[spec_id][1](*args, dtype=impl.dtype),
                 spec_id=spec_id, impl=impl, what="h' (z = 1: should be h)",
                 call=f"{fn}{describe_args(args)}")


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook")
@pytest.mark.parametrize(("fn", "spec_id"), [("gru_cell", "gru.cell.pytorch"),
                                             ("gru_cell_textbook", "gru.cell.textbook")])
@given(problem=gru_cells(magnitudes=(4.0,), biases=True))
def test_reset_and_update_gates_near_zero_keep_only_the_current_input(impl, fn, spec_id,
                                                                       problem):
    args = cast(impl, saturated(problem, {0: -SATURATING, 1: -SATURATING}))
    x, h, w_ih, _, b_ih, b_hh = args
    H = h.shape[1]
    n = block(H, 2)
    # r = 0 removes all of r ⊙ (W_hn h + b_hn) in PyTorch's cell but only W_hn (r ⊙ h) in the
    # seeds': their b_hn stays.
    kept_bias = b_ih[n] + (b_hh[n] if spec_id == "gru.cell.textbook" else 0.0)
    want = np.tanh(x @ w_ih[n].T + kept_bias)
    got = impl.array(impl.call(fn, *args), fn=fn, what="h'", shape=h.shape)
    assert_close(got, want, FORMULAS[spec_id][1](*args, dtype=impl.dtype),
                 spec_id=spec_id, impl=impl, what="h' (r = z = 0: should be tanh(W_in x + b))",
                 call=f"{fn}{describe_args(args)}")


# ---- the variants: where they agree, and inputs that tell them apart -------------------------

@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook")
@given(problem=gru_cells(), rng=nst.generators())
def test_variants_agree_when_w_hn_is_diagonal_and_b_hn_is_zero(impl, problem, rng):
    x, h, w_ih, w_hh, b_ih, b_hh = problem
    H = h.shape[1]
    w_hh = w_hh.copy()
    w_hh[block(H, 2)] = np.diag(rng.uniform(-2, 2, H))
    if b_hh is not None:
        b_hh = b_hh.copy()
        b_hh[block(H, 2)] = 0.0
    args = cast(impl, (x, h, w_ih, w_hh, b_ih, b_hh))
    pytorch = impl.array(impl.call("gru_cell", *args), fn="gru_cell", what="h'", shape=h.shape)
    textbook = impl.array(impl.call("gru_cell_textbook", *args), fn="gru_cell_textbook",
                          what="h'", shape=h.shape)
    bound = (gru_bounds.gru_cell(*args, dtype=impl.dtype)
             + gru_bounds.gru_cell_textbook(*args, dtype=impl.dtype))
    assert_close(textbook, pytorch, bound, spec_id="gru.cell.textbook", impl=impl,
                 what="gru_cell_textbook's h' against gru_cell's (W_hn diagonal, b_hn = 0)",
                 call=f"gru_cell_textbook{describe_args(args)}")


def variants_differ(problem: tuple) -> bool:
    """PyTorch's and the seeds' cells differ by more than their float32 bounds."""
    bounds = sum(bound(*problem, dtype=np.float32).atol
                 for bound in (gru_bounds.gru_cell, gru_bounds.gru_cell_textbook))
    return bool(np.any(np.abs(ref.gru_cell(*problem) - ref.gru_cell_textbook(*problem)) > bounds))


@st.composite
def small_cells(draw: st.DrawFn, *, b_hn_zero: bool) -> tuple:
    """Cells of batch 1 and width ≤ 2 with small integer entries, element by element, so that
    shrinking leads to the most readable counterexample."""
    D, H = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ints = st.integers(-2, 2).map(float)

    def arr(*shape: int) -> np.ndarray:
        return draw(hnp.arrays(np.float64, shape, elements=ints))

    x, h, w_ih, w_hh = arr(1, D), arr(1, H), arr(3 * H, D), arr(3 * H, H)
    b_ih, b_hh = arr(3 * H), arr(3 * H)
    if b_hn_zero:
        b_hh[block(H, 2)] = 0.0
    return x, h, w_ih, w_hh, b_ih, b_hh


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook")
def test_variants_differ_as_soon_as_b_hn_is_nonzero_or_w_hn_is_not_diagonal():
    for b_hn_zero in (False, True):
        example = find(small_cells(b_hn_zero=b_hn_zero), variants_differ,
                       settings=settings(max_examples=2000, database=None, derandomize=True))
        x, h, w_ih, w_hh, b_ih, b_hh = example
        H = h.shape[1]
        W_hn, b_hn = w_hh[block(H, 2)], b_hh[block(H, 2)]
        if np.all(b_hn == 0) and np.all(W_hn == np.diag(np.diag(W_hn))):
            fail("gru.cell.textbook", "reference",
                 f"the variants differ at W_hn = {W_hn.tolist()}, b_hn = {b_hn.tolist()}, where "
                 f"spec/gru.md says they agree")
        # The shrunk counterexample is part of the spec's evidence: shown with pytest -s or -rP.
        print(f"smallest input where the variants differ (b_hn {'= 0' if b_hn_zero else 'free'}):"
              f"\n  x = {x.tolist()}, h = {h.tolist()}\n  w_ih = {w_ih.tolist()}\n"
              f"  w_hh = {w_hh.tolist()}\n  b_ih = {b_ih.tolist()}, b_hh = {b_hh.tolist()}\n"
              f"  gru_cell → {ref.gru_cell(*example).tolist()}, "
              f"gru_cell_textbook → {ref.gru_cell_textbook(*example).tolist()}")


def separation(a: np.ndarray, b: np.ndarray, bound_a: tol.Bound, bound_b: tol.Bound) -> float:
    return float(np.max(np.abs(a - b) / (bound_a.atol + bound_b.atol)))


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook", "gru.update.flipped")
@given(problem=separating_gru_cells())
def test_separating_inputs_tell_every_named_formula_apart(problem):
    outputs = {sid: (f(*problem), bound(*problem, dtype=np.float32))
               for sid, (f, bound) in FORMULAS.items()}
    pytorch = outputs["gru.cell.pytorch"]
    pairs = [(a, b, outputs[a], outputs[b]) for i, a in enumerate(FORMULAS)
             for b in list(FORMULAS)[i + 1:]]
    pairs += [("gru.cell.pytorch", bug, pytorch, (f(*problem), pytorch[1]))
              for bug, f in BUGS.items()]
    for a, b, (out_a, bound_a), (out_b, bound_b) in pairs:
        ratio = separation(out_a, out_b, bound_a, bound_b)
        if ratio < SEPARATION:
            fail(a, "reference", f"{a} and {b} differ by only {ratio:.3g}× their float32 bounds "
                 f"(want ≥ {SEPARATION:g}×) on a separating input",
                 call=f"gru_cell{describe_args(problem)}")


@pytest.mark.spec("gru.update.flipped", "gru.cell.pytorch")
@given(problem=cell_problems)
def test_flipped_update_is_the_pytorch_cell_with_the_update_block_negated(problem):
    x, h, w_ih, w_hh, b_ih, b_hh = problem
    z = block(h.shape[1], 1)
    negated = [None if a is None else a.copy() for a in (w_ih, w_hh, b_ih, b_hh)]
    for a in negated:
        if a is not None:
            a[z] = -a[z]
    # 1 − σ(a) = σ(−a): the conventions describe the same functions, with the z block negated.
    assert_close(ref.gru_cell_flipped(*problem), ref.gru_cell(x, h, *negated),
                 gru_bounds.gru_cell_flipped(*problem, dtype=np.float64)
                 + gru_bounds.gru_cell(x, h, *negated, dtype=np.float64),
                 spec_id="gru.update.flipped", impl="reference",
                 call=f"gru_cell_flipped{describe_args(problem)}")


def constant_rows(rng: np.random.Generator, H: int, D: int, b_hn_zero: bool) -> tuple:
    """ONNX-style parameters: every row of a gate block equal, gate biases uniform per block."""
    w_ih = np.repeat(rng.uniform(-1, 1, (3, 1, D)), H, axis=1).reshape(3 * H, D)
    w_hh = np.repeat(rng.uniform(-1, 1, (3, 1, H)), H, axis=1).reshape(3 * H, H)
    b_ih = np.repeat(rng.uniform(-1, 1, 3), H)
    b_hh = np.repeat(rng.uniform(-1, 1, 3), H)
    if b_hn_zero:
        b_hh[2 * H:] = 0.0
    return w_ih, w_hh, b_ih, b_hh


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook", "gru.layer")
@given(problem=gru_layers(h0_magnitude=1.0), rng=nst.generators())
def test_constant_weights_make_the_variants_agree_at_every_step(problem, rng):
    x, h0 = problem[:2]
    params = constant_rows(rng, h0.shape[1], x.shape[2], b_hn_zero=True)
    p = ref.params_from_torch(*params)
    y_pytorch, _ = ref.layer(ref.cell_pytorch, x, h0, p)
    y_textbook, _ = ref.layer(ref.cell_textbook, x, h0, p)
    bound, _ = gru_bounds.gru_layer(x, h0, *params, dtype=np.float64)
    # r is the same for every unit (equal rows, uniform bias), so r ⊙ (W_hn h) = W_hn (r ⊙ h).
    assert_close(y_textbook, y_pytorch, bound + bound, spec_id="gru.cell.textbook",
                 impl="reference", what="textbook layer's y against PyTorch's (constant rows)",
                 call=f"layer{describe_args((x, h0, *params))}")


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook", "gru.layer")
@given(problem=gru_layers(separating=True, min_steps=2))
def test_zero_initial_state_hides_the_reset_placement_at_the_first_step_only(problem):
    x, h0, w_ih, w_hh, b_ih, b_hh = problem
    H = h0.shape[1]
    b_hh = b_hh.copy()
    b_hh[block(H, 2)] = 0.0
    h0 = np.zeros_like(h0)
    p = ref.params_from_torch(w_ih, w_hh, b_ih, b_hh)
    y_pytorch, _ = ref.layer(ref.cell_pytorch, x, h0, p)
    y_textbook, _ = ref.layer(ref.cell_textbook, x, h0, p)
    call = f"layer{describe_args((x, h0, w_ih, w_hh, b_ih, b_hh))}"
    bound64, _ = gru_bounds.gru_layer(x[:1], h0, w_ih, w_hh, b_ih, b_hh, dtype=np.float64)
    bound_step1 = tol.Bound(2 * bound64.atol[0], f"2 × ({bound64.rule})", bound64.unit)
    assert_close(y_textbook[0], y_pytorch[0], bound_step1,
                 spec_id="gru.cell.textbook", impl="reference", what="y[0] (h0 = 0, b_hn = 0)",
                 call=call)
    bound32, _ = gru_bounds.gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh, dtype=np.float32)
    # Only the commutator Σ_j (W_hn)_ij (r_i − r_j) h_j separates them now, a weaker signal than
    # b_hn's (median 6·10³×, minimum 9.5× the float32 bounds over 5000 seeds): no SEPARATION here.
    ratio = float(np.max(np.abs(y_textbook[1] - y_pytorch[1]) / (2 * bound32.atol[1])))
    if ratio <= 1:
        fail("gru.cell.textbook", "reference",
             f"at step 2 the variants differ by only {ratio:.3g}× their float32 bounds: h_1 ≠ 0 "
             f"should separate them", call=call)


# ---- argument validation ---------------------------------------------------------------------

@pytest.mark.spec("gru.cell.pytorch", "gru.layer")
@pytest.mark.parametrize(("fn", "shapes", "message"), [
    (ref.gru_cell, ((2, 3), (2, 4), (12, 3), (12, 5)), "w_hh must have shape"),
    (ref.gru_cell, ((2, 3), (2, 4), (8, 3), (12, 4)), "w_ih must have shape"),
    (ref.gru_cell, ((2, 2), (2, 4), (12, 3), (12, 4)), "x must have shape"),
    (ref.gru_cell, ((2, 3), (1, 4), (12, 3), (12, 4)), "h must have shape"),
    (ref.gru_layer, ((2, 3), (2, 4), (12, 3), (12, 4)), "x must have shape"),
    (ref.gru_layer, ((0, 2, 3), (2, 4), (12, 3), (12, 4)), "T ≥ 1"),
])
def test_reference_rejects_inconsistent_shapes_naming_them(fn, shapes, message):
    with pytest.raises(ValueError, match=message):
        fn(*(np.zeros(s) for s in shapes))


@pytest.mark.spec("gru.cell.pytorch")
def test_reference_rejects_a_bias_of_the_wrong_length():
    x, h, w_ih, w_hh = np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((12, 3)), np.zeros((12, 4))
    with pytest.raises(ValueError, match="b_hh must be None or have shape"):
        ref.gru_cell(x, h, w_ih, w_hh, np.zeros(12), np.zeros(4))
