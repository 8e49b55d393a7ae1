"""Checks of spec/stability.md: deep linear products, clipping by global norm and by value."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds import stability as bounds
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import stability as ref

#: The norm types the conformance checks cover: the spec's p ≥ 1, and the max-norm.
NORM_TYPES = (1.0, 2.0, 3.0, math.inf)


@st.composite
def linear_chains(draw: st.DrawFn, *, max_depth: int = 6) -> tuple[np.ndarray, ...]:
    """(X, W⁽¹⁾, …, W⁽ˡ⁾) with matching inner dimensions, 1 ≤ l ≤ max_depth."""
    dims = draw(st.lists(nst.sizes(max_size=5), min_size=2, max_size=max_depth + 1))
    n = draw(nst.sizes(max_size=4))
    X = draw(nst.moderate_float_arrays((n, dims[0]), smallest=1e-2, largest=1e2))
    W = [draw(nst.moderate_float_arrays((a, b), smallest=1e-2, largest=1e2))
         for a, b in itertools.pairwise(dims)]
    return (X, *W)


def gradient_lists() -> st.SearchStrategy[list[np.ndarray]]:
    """1–4 gradients of 0 to 3 dimensions, nonzero elements of magnitude 10⁻³ … 10³."""
    shapes = st.lists(st.lists(nst.sizes(max_size=5), max_size=3).map(tuple), min_size=1, max_size=4)
    return shapes.flatmap(lambda ss: st.tuples(*map(nst.moderate_float_arrays, ss)).map(list))


def chain_through_linear(impl: Implementation, X: np.ndarray, W: list[np.ndarray]) -> np.ndarray:
    """H⁽ˡ⁾ computed by the implementation's ``linear``: H⁽ⁱ⁾ = linear(H⁽ⁱ⁻¹⁾, W⁽ⁱ⁾ᵀ), no bias."""
    H = X
    for W_i in W:
        H = impl.array(impl.call("linear", H, impl.cast(W_i.T)), fn="linear", what="H",
                       shape=(X.shape[0], W_i.shape[1]))
    return H


# --- stability.deep_linear_product ---------------------------------------------------------------

@pytest.mark.spec("stability.deep_linear_product")
def test_seed_scalar_example_is_right_to_the_figure_it_gives():
    vanish, explode = Fraction(1, 5) ** 30, Fraction(5) ** 30
    if vanish != Fraction(1073741824, 10**30) or explode != 931322574615478515625:
        fail("stability.deep_linear_product", "seed 000",
             f"0.2³⁰ = {vanish}, 5³⁰ = {explode}; expected 1.073741824e-21 and 9.31e20")
    for value, stated in ((vanish, "1e-21"), (explode, "9e+20")):
        if f"{float(value):.0e}" != stated:
            fail("stability.deep_linear_product", "seed 000",
                 f"{float(value)!r} rounds to {float(value):.0e}, but the seed states ≈ {stated}")


@pytest.mark.spec("stability.deep_linear_product")
@pytest.mark.parametrize(("w", "exact"), [(0.2, Fraction(1, 5) ** 30), (5.0, Fraction(5) ** 30)])
def test_reference_scalar_chain_gives_the_exact_power(w, exact):
    H = ref.deep_linear_product(np.ones((1, 1)), *[np.full((1, 1), w)] * 30)
    assert_close(H, np.full((1, 1), float(exact)), bounds.scalar_power(float(exact)),
                 spec_id="stability.deep_linear_product", impl="reference",
                 call=f"deep_linear_product(1, {w} × 30 layers)")


def check_chain(impl: Implementation, X: np.ndarray, W: list[np.ndarray], *, what: str,
                call: str) -> None:
    """The implementation's linear chained over W against the deep linear product."""
    assert_close(chain_through_linear(impl, X, W), ref.deep_linear_product(X, *W),
                 bounds.deep_linear_chain(X, W, dtype=impl.dtype),
                 spec_id="stability.deep_linear_product", impl=impl, what=what, call=call)


@pytest.mark.spec("stability.deep_linear_product")
@pytest.mark.parametrize("w", [0.2, 5.0])
def test_chained_linear_vanishes_and_explodes_as_the_seed_states(impl, w):
    X, W = impl.cast(np.ones((1, 1))), [impl.cast(np.full((1, 1), w))] * 30
    check_chain(impl, X, W, what="H⁽³⁰⁾", call=f"linear(…linear(1, [[{w}]]ᵀ)…, [[{w}]]ᵀ), 30 layers")


@pytest.mark.spec("stability.deep_linear_product")
@given(chain=linear_chains())
def test_chained_linear_computes_the_deep_linear_product(impl, chain):
    X, *W = (impl.cast(a) for a in chain)
    check_chain(impl, X, W, what="H⁽ˡ⁾", call=f"linear chained over {describe_args(chain)}")


@pytest.mark.spec("stability.deep_linear_product")
@given(chain=linear_chains(), rng=nst.generators())
def test_reference_deep_linear_gradient_matches_finite_differences(chain, rng):
    check_gradient(ref.deep_linear_product, ref.deep_linear_product_vjp, chain,
                   wrt=range(len(chain)), rng=rng, spec_id="stability.deep_linear_product",
                   name="reference", call=f"deep_linear_product_vjp{describe_args(chain)}")


@pytest.mark.spec("stability.deep_linear_product")
@given(w=st.one_of(st.floats(0.05, 20.0), st.floats(-20.0, -0.05)), depth=st.integers(0, 30),
       d=nst.sizes(max_size=5), n=nst.sizes(max_size=4), rng=nst.generators())
def test_input_gradient_norm_is_w_to_the_depth_times_cotangent_norm(w, depth, d, n, rng):
    # W⁽ⁱ⁾ = w·Pᵢ with Pᵢ a random signed permutation: orthogonal, every eigenvalue of modulus 1,
    # and w·Pᵢ is exact, so the only roundings are the products by w and the norms.
    W = [w * rng.choice((-1.0, 1.0), size=d)[:, None] * np.eye(d)[rng.permutation(d)]
         for _ in range(depth)]
    X, G = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    dX = ref.deep_linear_product_vjp(G, X, *W)[0]
    got, want = np.linalg.norm(dX), abs(w) ** depth * np.linalg.norm(G)
    assert_close(got, want, bounds.input_gradient_norm(G, X, W, want),
                 spec_id="stability.deep_linear_product", impl="reference",
                 what="‖∂L/∂X‖_F (should be |w|ˡ·‖G‖_F)",
                 call=f"deep_linear_product_vjp(G, X, {depth} × {w!r}·P)")


@pytest.mark.spec("stability.deep_linear_product")
def test_reference_rejects_a_chain_whose_dimensions_do_not_match():
    with pytest.raises(ValueError, match=r"W⁽2⁾ has shape \(4, 2\)"):
        ref.deep_linear_product(np.ones((2, 3)), np.ones((3, 5)), np.ones((4, 2)))


# --- stability.clip_grad_norm --------------------------------------------------------------------

def check_clip_grad_norm(impl: Implementation, grads: list[np.ndarray], max_norm: float,
                         p: float) -> None:
    """Compare the implementation's clip_grad_norm with the reference, total then each gradient."""
    __tracebackhide__ = True
    grads = [impl.cast(np.asarray(g, dtype=np.float64)) for g in grads]
    call = f"clip_grad_norm{describe_args((grads, max_norm, p))}"
    clipped, total = impl.outputs(impl.call("clip_grad_norm", grads, max_norm, p),
                                  fn="clip_grad_norm", names=("clipped", "total"))
    clipped = impl.outputs(clipped, fn="clip_grad_norm",
                           names=[f"clipped[{i}]" for i in range(len(grads))])
    want_clipped, T = ref.clip_grad_norm(grads, max_norm, p)
    bound_T, bound_clipped = bounds.clip_grad_norm(grads, max_norm, p, dtype=impl.dtype)
    got_T = impl.array(total, fn="clip_grad_norm", what="total", shape=())
    assert_close(got_T, T, bound_T, spec_id="stability.clip_grad_norm", impl=impl,
                 what="total norm", call=call)
    for i, (g, got_i, want_i, bound) in enumerate(zip(grads, clipped, want_clipped, bound_clipped,
                                                      strict=True)):
        arr = impl.array(got_i, fn="clip_grad_norm", what=f"clipped[{i}]", shape=g.shape)
        assert_close(arr, want_i, bound, spec_id="stability.clip_grad_norm", impl=impl,
                     what=f"clipped[{i}] (g·min(max_norm/(total + 1e-6), 1))", call=call)


@pytest.mark.spec("stability.clip_grad_norm")
@given(grads=gradient_lists(), p=st.sampled_from(NORM_TYPES), ratio=st.floats(1e-2, 1e2))
def test_clip_grad_norm_scales_all_gradients_by_one_global_coefficient(impl, grads, p, ratio):
    # max_norm relative to the total, so both sides of the threshold are drawn.
    max_norm = ratio * ref.total_norm([impl.cast(g) for g in grads], p)
    check_clip_grad_norm(impl, grads, max_norm, p)


@pytest.mark.spec("stability.clip_grad_norm")
@pytest.mark.parametrize("p", NORM_TYPES)
def test_clip_grad_norm_adds_eps_to_the_total(impl, rng, p):
    # Totals of a few 10⁻³ make the ε = 1e-6 visible: 1 + ε/total ≈ 1 + 3e-4, far above
    # the float32 bound.
    grads = [rng.choice((-1.0, 1.0), size=s) * rng.uniform(1e-3, 2e-3, size=s) for s in ((2,), (1, 1))]
    max_norm = 0.1 * ref.total_norm([impl.cast(g) for g in grads], p)
    check_clip_grad_norm(impl, grads, max_norm, p)


@pytest.mark.spec("stability.clip_grad_norm")
@pytest.mark.parametrize("p", NORM_TYPES)
def test_clip_grad_norm_leaves_gradients_below_the_threshold_untouched(impl, rng, p):
    grads = [impl.cast(rng.standard_normal(s)) for s in ((3, 4), (5,), ())]
    # With max_norm = 2·total, c ≈ 2 whatever the rounding, so min(c, 1) = 1 and g·1 is exact.
    max_norm = 2 * ref.total_norm(grads, p)
    call = f"clip_grad_norm{describe_args((grads, max_norm, p))}"
    clipped, _ = impl.outputs(impl.call("clip_grad_norm", grads, max_norm, p),
                              fn="clip_grad_norm", names=("clipped", "total"))
    for i, (g, got_i) in enumerate(zip(grads, clipped, strict=True)):
        arr = impl.array(got_i, fn="clip_grad_norm", what=f"clipped[{i}]", shape=g.shape)
        assert_close(arr, g, tol.exact(g), spec_id="stability.clip_grad_norm", impl=impl,
                     what=f"clipped[{i}] (total < max_norm: unchanged)", call=call)


@pytest.mark.spec("stability.clip_grad_norm")
@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_clip_grad_norm_of_nonfinite_gradients_follows_torch(impl, rng, p, bad):
    grads = [impl.cast(rng.standard_normal(s)) for s in ((3, 4), (5,))]
    grads[0][rng.integers(3), rng.integers(4)] = bad
    call = f"clip_grad_norm{describe_args((grads, 1.0, p))} with {bad} in clipped[0]"
    clipped, total = impl.outputs(impl.call("clip_grad_norm", grads, 1.0, p),
                                  fn="clip_grad_norm", names=("clipped", "total"))
    want_clipped, want_T = ref.clip_grad_norm(grads, 1.0, p)
    got_T = impl.array(total, fn="clip_grad_norm", what="total", shape=(), allow_nonfinite=True)
    assert_close(got_T, want_T, tol.exact(want_T), spec_id="stability.clip_grad_norm", impl=impl,
                   what="total norm (inf for an infinite element, NaN for a NaN)", call=call)
    for i, (got_i, want_i) in enumerate(zip(clipped, want_clipped, strict=True)):
        arr = impl.array(got_i, fn="clip_grad_norm", what=f"clipped[{i}]", shape=want_i.shape,
                         allow_nonfinite=True)
        assert_close(arr, want_i, tol.exact(want_i), spec_id="stability.clip_grad_norm", impl=impl,
                       what=f"clipped[{i}] (g·0 for total = inf, NaN for total = NaN)", call=call)


@pytest.mark.spec("stability.clip_grad_norm")
@pytest.mark.parametrize(("max_norm", "p"), [(-1.0, 2.0), (math.nan, 2.0), (math.inf, 2.0),
                                             (1.0, 0.5), (1.0, math.nan)])
def test_reference_rejects_a_bad_threshold_or_norm_type(max_norm, p):
    with pytest.raises(ValueError, match=r"max_norm = |norm_type = "):
        ref.clip_grad_norm([np.ones(3)], max_norm, p)


# --- stability.clip_grad_value -------------------------------------------------------------------

def check_clip_grad_value(impl: Implementation, grads: list[np.ndarray], clip_value: float) -> None:
    __tracebackhide__ = True
    grads = [impl.cast(g) for g in grads]
    call = f"clip_grad_value{describe_args((grads, clip_value))}"
    clipped = impl.outputs(impl.call("clip_grad_value", grads, clip_value), fn="clip_grad_value",
                           names=[f"clipped[{i}]" for i in range(len(grads))])
    for i, (got_i, want_i) in enumerate(zip(clipped, ref.clip_grad_value(grads, clip_value),
                                            strict=True)):
        arr = impl.array(got_i, fn="clip_grad_value", what=f"clipped[{i}]", shape=want_i.shape,
                         allow_nonfinite=not np.all(np.isfinite(want_i)))
        assert_close(arr, want_i, tol.exact(want_i), spec_id="stability.clip_grad_value", impl=impl,
                       what=f"clipped[{i}] (min(max(g, −c), c))", call=call)


@pytest.mark.spec("stability.clip_grad_value")
@given(grads=st.lists(nst.float_arrays(st.lists(nst.sizes(max_size=5), max_size=3).map(tuple)),
                      min_size=1, max_size=4),
       clip_value=st.floats(0.0, 1e3))
def test_clip_grad_value_clamps_every_element(impl, grads, clip_value):
    # c rounded to DTYPE like the inputs: the clamp then only selects values, bit for bit.
    check_clip_grad_value(impl, grads, float(impl.dtype.type(clip_value)))


@pytest.mark.spec("stability.clip_grad_value")
def test_clip_grad_value_maps_infinities_to_the_bounds_and_keeps_nan(impl):
    check_clip_grad_value(impl, [np.array([math.inf, -math.inf, math.nan, 0.5, -3.0])], 1.0)


@pytest.mark.spec("stability.clip_grad_value")
@pytest.mark.parametrize("clip_value", [-1.0, math.nan, math.inf])
def test_reference_rejects_a_bad_clip_value(clip_value):
    with pytest.raises(ValueError, match=r"clip_value = "):
        ref.clip_grad_value([np.ones(3)], clip_value)
