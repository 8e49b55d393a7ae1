"""Checks of spec/activations.md.

Each activation is checked in three ways: the implementation's forward and gradient against the
reference with the bound its spec section derives, identities the spec states (evaluated on the
implementation alone), and the reference's gradients against finite differences. One
``check_*`` helper per comparison is shared by the Hypothesis checks, the check at extreme
inputs and the checks that the known bugs are caught.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnspec.checks.bounds import activations as bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.designs import EXTREMES
from nnspec.checks.harness.failure import Failure, NonConformance, assert_close, fail, none_of
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, ImplementationError, bug_model, describe_args
from nnspec.reference import activations as ref


def representable(alpha: float, impl: Implementation) -> float:
    """α rounded to DTYPE, so the implementation and the reference use the same slope."""
    return float(impl.dtype.type(alpha))


# ---- one comparison per contract function ----------------------------------------------------

def check_threshold(impl: Implementation, x: np.ndarray) -> None:
    x = impl.cast(x)
    got = impl.array(impl.call("threshold", x), fn="threshold", what="φ(x)", shape=x.shape)
    want = ref.threshold(x)
    assert_close(got, want, tol.exact(want), spec_id="activations.threshold", impl=impl,
                 what="φ(x)", call=f"threshold{describe_args((x,))}")


def check_sigmoid(impl: Implementation, x: np.ndarray, alpha: float = 1.0) -> None:
    x, alpha = impl.cast(x), representable(alpha, impl)
    got = impl.array(impl.call("sigmoid", x, alpha), fn="sigmoid", what="φ(x)", shape=x.shape)
    assert_close(got, ref.sigmoid(x, alpha), bounds.sigmoid(x, alpha, dtype=impl.dtype),
                 spec_id="activations.sigmoid", impl=impl, what="φ(x)",
                 call=f"sigmoid{describe_args((x, alpha))}")


def check_sigmoid_gradient(impl: Implementation, g: np.ndarray, x: np.ndarray,
                           alpha: float = 1.0) -> None:
    g, x, alpha = impl.cast(g), impl.cast(x), representable(alpha, impl)
    (dx,) = impl.outputs(impl.call("vjp_sigmoid", g, x, alpha), fn="vjp_sigmoid", names=("dx",))
    got = impl.array(dx, fn="vjp_sigmoid", what="dx", shape=x.shape)
    (want,) = ref.sigmoid_vjp(g, x, alpha)
    assert_close(got, want, bounds.vjp_sigmoid(g, x, alpha, dtype=impl.dtype),
                 spec_id="activations.sigmoid", impl=impl, what="dx",
                 call=f"vjp_sigmoid{describe_args((g, x, alpha))}")


def check_tanh(impl: Implementation, x: np.ndarray) -> None:
    x = impl.cast(x)
    got = impl.array(impl.call("tanh", x), fn="tanh", what="φ(x)", shape=x.shape)
    assert_close(got, ref.tanh(x), bounds.tanh(x, dtype=impl.dtype), spec_id="activations.tanh",
                 impl=impl, what="φ(x)", call=f"tanh{describe_args((x,))}")


#: The range every conforming σ and tanh keeps (spec/activations.md, "Range"): the exact values lie
#: inside it and rounding is monotone, so a correctly rounded or faithful result stays inside too.
RANGES = {"sigmoid": ("activations.sigmoid", "σ", 0.0, 1.0),
          "tanh": ("activations.tanh", "tanh", -1.0, 1.0)}


def check_in_range(impl: Implementation, fn: str, x: np.ndarray, *args: Any) -> None:
    """σ(x) ∈ [0, 1] and tanh(x) ∈ [−1, 1], element by element; a value outside fails by name."""
    __tracebackhide__ = True
    spec_id, symbol, lo, hi = RANGES[fn]
    x = impl.cast(x)
    got = impl.array(impl.call(fn, x, *args), fn=fn, what="φ(x)", shape=x.shape)
    outside = ~((got >= lo) & (got <= hi))
    if not np.any(outside):
        return
    i = tuple(int(j) for j in np.argwhere(outside)[0])
    call = f"{fn}{describe_args((x, *args))}"
    findings = impl.diagnosis()
    message = (f"[{spec_id}] {impl.name}: {fn} returned {float(got[i]):.8g} at x = {float(x[i]):.6g}"
               f"{f' (α = {args[0]:g})' if args else ''}: outside {symbol}'s range [{lo:g}, {hi:g}] "
               f"({int(outside.sum())} of {outside.size} values) [{call}]"
               + "".join(f"\n  Diagnosis: {line}" for line in findings))
    raise NonConformance(Failure(spec_id=spec_id, implementation=impl.name, function=fn,
                                 what="φ(x)", index=i, got=float(got[i]), call=call,
                                 rule=f"range [{lo:g}, {hi:g}]", diagnosis=findings,
                                 message=message))


def check_tanh_gradient(impl: Implementation, g: np.ndarray, x: np.ndarray) -> None:
    g, x = impl.cast(g), impl.cast(x)
    (dx,) = impl.outputs(impl.call("vjp_tanh", g, x), fn="vjp_tanh", names=("dx",))
    got = impl.array(dx, fn="vjp_tanh", what="dx", shape=x.shape)
    (want,) = ref.tanh_vjp(g, x)
    assert_close(got, want, bounds.vjp_tanh(g, x, dtype=impl.dtype),
                 spec_id="activations.tanh", impl=impl, what="dx",
                 call=f"vjp_tanh{describe_args((g, x))}")


def check_relu(impl: Implementation, x: np.ndarray) -> None:
    x = impl.cast(x)
    got = impl.array(impl.call("relu", x), fn="relu", what="φ(x)", shape=x.shape)
    want = ref.relu(x)
    assert_close(got, want, tol.exact(want), spec_id="activations.relu", impl=impl, what="φ(x)",
                 call=f"relu{describe_args((x,))}")


def check_relu_gradient(impl: Implementation, g: np.ndarray, x: np.ndarray) -> None:
    g, x = impl.cast(g), impl.cast(x)
    (dx,) = impl.outputs(impl.call("vjp_relu", g, x), fn="vjp_relu", names=("dx",))
    got = impl.array(dx, fn="vjp_relu", what="dx", shape=x.shape)
    (want,) = ref.relu_vjp(g, x)
    assert_close(got, want, tol.exact(want), spec_id="activations.relu", impl=impl, what="dx",
                 call=f"vjp_relu{describe_args((g, x))}")


def assert_close_to_either(got: np.ndarray, candidates: list[tuple[str, np.ndarray, tol.Bound]],
                           *, impl: Implementation, what: str, call: str) -> None:
    """Pass if ``got`` conforms, over the whole array, to one of the spec's variants."""
    __tracebackhide__ = True
    failures = []
    for spec_id, want, bound in candidates:
        try:
            assert_close(got, want, bound, spec_id=spec_id, impl=impl, what=what, call=call)
        except NonConformance as exc:
            failures.append(exc.failure)
        else:
            return
    raise NonConformance(none_of("conforms to none of the variants the spec allows:", failures))


def check_softplus(impl: Implementation, x: np.ndarray) -> None:
    x = impl.cast(x)
    got = impl.array(impl.call("softplus", x), fn="softplus", what="φ(x)", shape=x.shape)
    candidates = [(spec_id, variant(x), bound(x, dtype=impl.dtype))
                  for spec_id, variant, bound in (
                      ("activations.softplus", ref.softplus, bounds.softplus),
                      ("activations.softplus.torch_threshold", ref.softplus_torch_threshold,
                       bounds.softplus_torch_threshold))]
    assert_close_to_either(got, candidates, impl=impl, what="φ(x)",
                           call=f"softplus{describe_args((x,))}")


def check_softplus_gradient(impl: Implementation, g: np.ndarray, x: np.ndarray) -> None:
    g, x = impl.cast(g), impl.cast(x)
    (dx,) = impl.outputs(impl.call("vjp_softplus", g, x), fn="vjp_softplus", names=("dx",))
    got = impl.array(dx, fn="vjp_softplus", what="dx", shape=x.shape)
    candidates = [(spec_id, variant(g, x)[0], bound(g, x, dtype=impl.dtype))
                  for spec_id, variant, bound in (
                      ("activations.softplus", ref.softplus_vjp, bounds.vjp_softplus),
                      ("activations.softplus.torch_threshold", ref.softplus_torch_threshold_vjp,
                       bounds.vjp_softplus_torch_threshold))]
    assert_close_to_either(got, candidates, impl=impl, what="dx",
                           call=f"vjp_softplus{describe_args((g, x))}")


def check_prelu(impl: Implementation, x: np.ndarray, a: np.ndarray) -> None:
    x, a = impl.cast(x), impl.cast(a)
    got = impl.array(impl.call("prelu", x, a), fn="prelu", what="φ(x)", shape=x.shape)
    assert_close(got, ref.prelu(x, a), bounds.prelu(x, a, dtype=impl.dtype),
                 spec_id="activations.prelu", impl=impl, what="φ(x)",
                 call=f"prelu{describe_args((x, a))}")


def check_prelu_gradient(impl: Implementation, g: np.ndarray, x: np.ndarray,
                         a: np.ndarray) -> None:
    g, x, a = impl.cast(g), impl.cast(x), impl.cast(a)
    got = impl.outputs(impl.call("vjp_prelu", g, x, a), fn="vjp_prelu", names=("dx", "da"))
    for name, got_i, want_i, bound in zip(("dx", "da"), got, ref.prelu_vjp(g, x, a),
                                          bounds.vjp_prelu(g, x, a, dtype=impl.dtype), strict=True):
        arr = impl.array(got_i, fn="vjp_prelu", what=name, shape=want_i.shape)
        assert_close(arr, want_i, bound, spec_id="activations.prelu", impl=impl,
                     what=name, call=f"vjp_prelu{describe_args((g, x, a))}")


def check_maxout(impl: Implementation, z: np.ndarray, k: int) -> None:
    z = impl.cast(z)
    want = ref.maxout(z, k)
    got = impl.array(impl.call("maxout", z, k), fn="maxout", what="h", shape=want.shape)
    assert_close(got, want, tol.exact(want), spec_id="activations.maxout", impl=impl, what="h",
                 call=f"maxout{describe_args((z, k))}")


def check_maxout_gradient(impl: Implementation, g: np.ndarray, z: np.ndarray, k: int) -> None:
    """Exact where a unit's maximum is unique; where pieces tie, any split of g_i among the tied
    maxima with weights of g_i's sign is a subgradient: zero elsewhere, summing to g_i."""
    g, z = impl.cast(g), impl.cast(z)
    call = f"vjp_maxout{describe_args((g, z, k))}"
    (dz,) = impl.outputs(impl.call("vjp_maxout", g, z, k), fn="vjp_maxout", names=("dz",))
    got = impl.array(dz, fn="vjp_maxout", what="dz", shape=z.shape)
    (want,) = ref.maxout_vjp(g, z, k)
    pieces = z.reshape(*g.shape, k)
    at_max = pieces == pieces.max(axis=-1, keepdims=True)
    tied = np.broadcast_to((at_max.sum(axis=-1) > 1)[..., None], pieces.shape).reshape(z.shape)
    assert_close(np.where(tied, 0.0, got), np.where(tied, 0.0, want), tol.exact(want),
                 spec_id="activations.maxout", impl=impl, what="dz (units with one maximum)",
                 call=call)
    off_max = ~at_max.reshape(z.shape)
    assert_close(np.where(off_max, got, 0.0), np.zeros(z.shape), tol.exact(want),
                 spec_id="activations.maxout", impl=impl, what="dz (pieces below the maximum)",
                 call=call)
    shares = got.reshape(pieces.shape)
    if np.any(shares * g[..., None] < 0):
        fail("activations.maxout", impl, "dz splits g_i among tied maxima with a weight of the "
             "opposite sign, which is no subgradient", call=call)
    assert_close(shares.sum(axis=-1), g, bounds.vjp_maxout_split(g, k, dtype=impl.dtype),
                 spec_id="activations.maxout", impl=impl, what="Σ_j dz_ij (must equal g_i)",
                 call=call)


# ---- strategies ------------------------------------------------------------------------------

shapes = st.lists(nst.sizes(), min_size=1, max_size=3).map(tuple)
alphas = st.sampled_from([1.0, 0.5, 2.0]) | st.floats(0.1, 10.0)


@st.composite
def cotangent_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(g, x): a cotangent of ordinary size and inputs of any magnitude, same shape."""
    shape = draw(shapes)
    return draw(nst.float_arrays(shape, magnitude=1.0)), draw(nst.float_arrays(shape))


@st.composite
def prelu_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, x, a): x of shape (N, C, …) and a scalar, (1,) or per-channel (C,) slope."""
    shape = draw(st.lists(nst.sizes(max_size=5), min_size=2, max_size=3).map(tuple))
    a_shape = draw(st.sampled_from([(), (1,), (shape[1],)]))
    return (draw(nst.float_arrays(shape, magnitude=1.0)), draw(nst.float_arrays(shape)),
            draw(nst.float_arrays(a_shape, magnitude=2.0)))


@st.composite
def maxout_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """(g, z, k): pieces z of shape (…, m·k) drawn from few values, so ties occur."""
    lead = draw(st.lists(nst.sizes(max_size=4), min_size=0, max_size=2).map(tuple))
    m, k = draw(nst.sizes(max_size=4)), draw(nst.sizes(max_size=4))
    z = draw(nst.float_arrays((*lead, m * k)) | hnp.arrays(
        np.float64, (*lead, m * k), elements=st.sampled_from([-1.0, 0.0, 2.0])))
    return draw(nst.float_arrays((*lead, m), magnitude=1.0)), z, k


def away_from_kinks(rng: np.random.Generator, shape: tuple[int, ...],
                    magnitude: float) -> np.ndarray:
    """|x| ∈ [0.5, 2]·magnitude with random signs: at least 0.5·magnitude from relu's and
    prelu's kink at 0, so Richardson steps up to FD_KINK_STEP·magnitude never cross it."""
    return rng.choice((-1.0, 1.0), size=shape) * rng.uniform(0.5, 2.0, size=shape) * magnitude


#: Richardson's largest step, relative to the distance scale of the kinks (0.5·magnitude from
#: 0; 1 between maxout pieces): crossing a kink needs |d_i| > 10, probability < 2e-23. Steps
#: scale with the inputs, so the differences' rounding stays relative to the function's slope.
FD_KINK_STEP = 0.05

fd_inputs = st.sampled_from(nst.FD_MAGNITUDES).flatmap(
    lambda m: nst.float_arrays(shapes, magnitude=m))


# ---- forward and gradient against the reference ----------------------------------------------

@pytest.mark.spec("activations.threshold")
@given(x=nst.float_arrays(shapes))
def test_threshold_is_one_above_zero_and_zero_elsewhere(impl, x):
    check_threshold(impl, x)


@pytest.mark.spec("activations.sigmoid")
@given(x=nst.float_arrays(shapes), alpha=alphas)
def test_sigmoid_matches_reference(impl, x, alpha):
    check_sigmoid(impl, x, alpha)


@pytest.mark.spec("activations.sigmoid")
@pytest.mark.parametrize("alpha", [1.1, 0.3])
def test_sigmoid_with_a_slope_holds_its_bound_where_it_is_ill_conditioned(impl, rng, alpha):
    # σ's relative condition number is |z|(1 − σ(z)), ≈ 85 at z = −85: the rounding of α·x
    # dominates there (measured: 65u for PyTorch float32, beyond tol.elementwise's 16u alone).
    x = rng.uniform(-85.0, 0.0, size=10_000) / alpha
    check_sigmoid(impl, x, alpha)
    check_sigmoid_gradient(impl, rng.standard_normal(x.size), x, alpha)


@pytest.mark.spec("activations.sigmoid")
@given(problem=cotangent_problems(), alpha=alphas)
def test_sigmoid_gradient_is_alpha_phi_times_one_minus_phi(impl, problem, alpha):
    check_sigmoid_gradient(impl, *problem, alpha)


@pytest.mark.spec("activations.tanh")
@given(x=nst.float_arrays(shapes))
def test_tanh_matches_reference(impl, x):
    check_tanh(impl, x)


@pytest.mark.spec("activations.tanh")
@given(problem=cotangent_problems())
def test_tanh_gradient_is_one_minus_tanh_squared(impl, problem):
    check_tanh_gradient(impl, *problem)


@pytest.mark.spec("activations.relu")
@given(x=nst.float_arrays(shapes))
def test_relu_is_max_of_x_and_0(impl, x):
    check_relu(impl, x)


@pytest.mark.spec("activations.relu")
@given(problem=cotangent_problems())
def test_relu_gradient_passes_g_where_x_is_positive_only(impl, problem):
    check_relu_gradient(impl, *problem)


@pytest.mark.spec("activations.softplus", "activations.softplus.torch_threshold")
@given(x=nst.float_arrays(shapes))
def test_softplus_matches_reference_or_its_torch_threshold_variant(impl, x):
    check_softplus(impl, x)


@pytest.mark.spec("activations.softplus", "activations.softplus.torch_threshold")
@given(problem=cotangent_problems())
def test_softplus_gradient_is_the_logistic_function(impl, problem):
    check_softplus_gradient(impl, *problem)


@pytest.mark.spec("activations.prelu")
@given(problem=prelu_problems())
def test_prelu_scales_the_negative_part_by_its_channel_slope(impl, problem):
    _, x, a = problem
    check_prelu(impl, x, a)


@pytest.mark.spec("activations.prelu")
@given(problem=prelu_problems())
def test_prelu_gradients_match_reference(impl, problem):
    check_prelu_gradient(impl, *problem)


@pytest.mark.spec("activations.maxout")
@given(problem=maxout_problems())
def test_maxout_is_the_largest_of_each_units_k_pieces(impl, problem):
    _, z, k = problem
    check_maxout(impl, z, k)


@pytest.mark.spec("activations.maxout")
@given(problem=maxout_problems())
def test_maxout_gradient_goes_to_the_maximal_piece(impl, problem):
    check_maxout_gradient(impl, *problem)


@pytest.mark.spec("activations.threshold", "activations.sigmoid", "activations.tanh",
                  "activations.relu", "activations.softplus",
                  "activations.softplus.torch_threshold", "activations.prelu",
                  "activations.maxout")
@pytest.mark.parametrize("name", ["threshold", "sigmoid", "vjp_sigmoid", "tanh", "vjp_tanh",
                                  "relu", "vjp_relu", "softplus", "vjp_softplus", "prelu",
                                  "vjp_prelu", "maxout", "vjp_maxout"])
def test_activations_are_finite_and_accurate_at_extreme_inputs(impl, name):
    x, g = EXTREMES, np.linspace(-1.0, 1.0, EXTREMES.size)
    runs: dict[str, Any] = {
        "threshold": lambda: check_threshold(impl, x),
        "sigmoid": lambda: (check_sigmoid(impl, x), check_sigmoid(impl, x, 0.5)),
        "vjp_sigmoid": lambda: (check_sigmoid_gradient(impl, g, x),
                                check_sigmoid_gradient(impl, g, x, 0.5)),
        "tanh": lambda: check_tanh(impl, x),
        "vjp_tanh": lambda: check_tanh_gradient(impl, g, x),
        "relu": lambda: check_relu(impl, x),
        "vjp_relu": lambda: check_relu_gradient(impl, g, x),
        "softplus": lambda: check_softplus(impl, x),
        "vjp_softplus": lambda: check_softplus_gradient(impl, g, x),
        "prelu": lambda: check_prelu(impl, x, np.array(0.25)),
        "vjp_prelu": lambda: check_prelu_gradient(impl, g, x, np.array(0.25)),
        "maxout": lambda: check_maxout(impl, x, 2),
        "vjp_maxout": lambda: check_maxout_gradient(impl, g[::2], x, 2),
    }
    runs[name]()


# ---- identities the spec states, on the implementation alone ----------------------------------

def forward(impl: Implementation, fn: str, x: np.ndarray, *args: Any) -> np.ndarray:
    return impl.array(impl.call(fn, impl.cast(x), *args), fn=fn, what="φ(x)", shape=np.shape(x))


@pytest.mark.spec("activations.sigmoid")
@given(x=nst.float_arrays(shapes), alpha=alphas)
def test_sigmoid_never_leaves_the_closed_unit_interval(impl, x, alpha):
    check_in_range(impl, "sigmoid", x, representable(alpha, impl))


@pytest.mark.spec("activations.sigmoid", "activations.tanh")
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_sigmoid_and_tanh_stay_in_their_range_at_extreme_inputs(impl, fn):
    # Saturation is where a formula overshoots (1 + t below 0 for a tanh t below −1, a rational
    # tanh above 1), at scattered points: ONNX Runtime 1.32's float32 Tanh exceeds 1 at 94 of the
    # 80,001 points of this grid, its Sigmoid at one (x = 17.844).
    check_in_range(impl, fn, np.concatenate([EXTREMES, np.linspace(-40.0, 40.0, 80_001)]))


@pytest.mark.spec("activations.sigmoid")
@given(x=nst.float_arrays(shapes), alpha=alphas)
def test_sigmoid_of_x_plus_sigmoid_of_minus_x_is_one(impl, x, alpha):
    x, alpha = impl.cast(x), representable(alpha, impl)
    got = forward(impl, "sigmoid", x, alpha) + forward(impl, "sigmoid", -x, alpha)
    assert_close(got, np.ones(x.shape), bounds.sigmoid_reflection(x, alpha, dtype=impl.dtype),
                 spec_id="activations.sigmoid", impl=impl,
                 what="φ(x) + φ(−x)", call=f"sigmoid{describe_args((x, alpha))}")


@pytest.mark.spec("activations.tanh")
@given(x=nst.float_arrays(shapes))
def test_tanh_is_odd_and_within_minus_one_one(impl, x):
    x = impl.cast(x)
    check_in_range(impl, "tanh", x)
    got, got_neg = forward(impl, "tanh", x), forward(impl, "tanh", -x)
    assert_close(got + got_neg, np.zeros(x.shape), bounds.tanh_oddness(x, dtype=impl.dtype),
                 spec_id="activations.tanh", impl=impl,
                 what="tanh(x) + tanh(−x)", call=f"tanh{describe_args((x,))}")


@pytest.mark.spec("activations.tanh", "activations.sigmoid")
@given(x=nst.float_arrays(shapes))
def test_tanh_is_a_scaled_and_shifted_sigmoid(impl, x):
    x = impl.cast(x)
    got = 2.0 * forward(impl, "sigmoid", 2.0 * x) - forward(impl, "tanh", x)
    assert_close(got, np.ones(x.shape), bounds.tanh_from_sigmoid(x, dtype=impl.dtype),
                 spec_id="activations.tanh", impl=impl,
                 what="2σ(2x) − tanh(x) (must be 1)", call=f"tanh, sigmoid{describe_args((x,))}")


@pytest.mark.spec("activations.tanh")
@given(x=nst.float_arrays(shapes))
def test_tanh_derivative_equals_one_minus_tanh_squared(impl, x):
    x = impl.cast(x)
    ones = np.ones(x.shape)
    (dx,) = impl.outputs(impl.call("vjp_tanh", impl.cast(ones), x), fn="vjp_tanh", names=("dx",))
    got = impl.array(dx, fn="vjp_tanh", what="dx", shape=x.shape)
    f = forward(impl, "tanh", x)
    assert_close(got, 1.0 - f**2, bounds.tanh_derivative_identity(x, dtype=impl.dtype),
                 spec_id="activations.tanh", impl=impl,
                 what="vjp_tanh(1, x) against 1 − tanh(x)²", call=f"vjp_tanh{describe_args((x,))}")


@pytest.mark.spec("activations.softplus", "activations.softplus.torch_threshold")
@given(x=nst.float_arrays(shapes))
def test_softplus_of_x_minus_softplus_of_minus_x_is_x(impl, x):
    x = impl.cast(x)
    got = forward(impl, "softplus", x) - forward(impl, "softplus", -x)
    # the identity is exact for activations.softplus; the thresholded variant breaks it by
    # log1p(e^−|x|) < 2.1e-9 where |x| > 20, so its own difference is what it must equal
    torch_threshold = ref.softplus_torch_threshold
    candidates = [("activations.softplus", x, bounds.softplus_reflection(x, dtype=impl.dtype)),
                  ("activations.softplus.torch_threshold", torch_threshold(x) - torch_threshold(-x),
                   bounds.softplus_torch_threshold_reflection(x, dtype=impl.dtype))]
    assert_close_to_either(got, candidates, impl=impl, what="softplus(x) − softplus(−x)",
                           call=f"softplus{describe_args((x,))}")


@pytest.mark.spec("activations.maxout")
@given(problem=maxout_problems())
def test_maxout_is_at_least_each_of_its_pieces_and_equals_one(impl, problem):
    _, z, k = problem
    z = impl.cast(z)
    h = impl.array(impl.call("maxout", z, k), fn="maxout", what="h", shape=(*z.shape[:-1],
                                                                          z.shape[-1] // k))
    pieces = z.reshape(*h.shape, k).astype(np.float64)
    below = pieces > h[..., None]
    if np.any(below) or not np.all(np.any(pieces == h[..., None], axis=-1)):
        fail("activations.maxout", impl, "h_i is not the largest of unit i's pieces: "
             f"h = {h.ravel()[:6]}, pieces = {pieces.reshape(-1, k)[:6].tolist()}",
             call=f"maxout{describe_args((z, k))}")


@pytest.mark.spec("activations.maxout", "activations.relu")
@given(x=nst.float_arrays(shapes))
def test_relu_is_maxout_over_the_pieces_x_and_0(impl, x):
    x = impl.cast(x)
    pieces = np.stack([x, np.zeros_like(x)], axis=-1).reshape(*x.shape[:-1], 2 * x.shape[-1])
    h = impl.array(impl.call("maxout", pieces, 2), fn="maxout", what="h", shape=x.shape)
    assert_close(h, forward(impl, "relu", x), tol.exact(x), spec_id="activations.maxout",
                 impl=impl, what="maxout(x, 0) against relu(x)", call=f"maxout{describe_args((x,))}")


@pytest.mark.spec("activations.threshold", "activations.relu")
@given(x=nst.float_arrays(shapes))
def test_threshold_is_the_derivative_of_relu(impl, x):
    x = impl.cast(x)
    ones = impl.cast(np.ones(x.shape))
    (dx,) = impl.outputs(impl.call("vjp_relu", ones, x), fn="vjp_relu", names=("dx",))
    got = impl.array(dx, fn="vjp_relu", what="dx", shape=x.shape)
    assert_close(got, forward(impl, "threshold", x), tol.exact(x), spec_id="activations.relu",
                 impl=impl, what="vjp_relu(1, x) against threshold(x)",
                 call=f"vjp_relu{describe_args((ones, x))}")


# ---- the reference's gradients against finite differences ------------------------------------

@pytest.mark.spec("activations.sigmoid")
@given(x=fd_inputs, alpha=alphas, rng=nst.generators())
def test_reference_sigmoid_gradient_matches_finite_differences(x, alpha, rng):
    x = x / alpha  # |αx| within nst.FD_MAGNITUDES
    check_gradient(ref.sigmoid, ref.sigmoid_vjp, (x, alpha), wrt=(0,), rng=rng,
                   spec_id="activations.sigmoid", name="reference",
                   call=f"sigmoid_vjp{describe_args((x, alpha))}")


@pytest.mark.spec("activations.tanh")
@given(x=fd_inputs, rng=nst.generators())
def test_reference_tanh_gradient_matches_finite_differences(x, rng):
    check_gradient(ref.tanh, ref.tanh_vjp, (x,), wrt=(0,), rng=rng, spec_id="activations.tanh",
                   name="reference", call=f"tanh_vjp{describe_args((x,))}")


@pytest.mark.spec("activations.softplus", "activations.softplus.torch_threshold")
@given(x=fd_inputs, rng=nst.generators())
def test_reference_softplus_gradients_match_finite_differences(x, rng):
    check_gradient(ref.softplus, ref.softplus_vjp, (x,), wrt=(0,), rng=rng,
                   spec_id="activations.softplus", name="reference",
                   call=f"softplus_vjp{describe_args((x,))}")
    check_gradient(ref.softplus_torch_threshold, ref.softplus_torch_threshold_vjp, (x,),
                   wrt=(0,), rng=rng, spec_id="activations.softplus.torch_threshold",
                   name="reference", call=f"softplus_torch_threshold_vjp{describe_args((x,))}")


@pytest.mark.spec("activations.relu", "activations.prelu")
@given(shape=st.lists(nst.sizes(max_size=5), min_size=2, max_size=3).map(tuple),
       magnitude=st.sampled_from(nst.MAGNITUDES), rng=nst.generators())
def test_reference_relu_and_prelu_gradients_match_finite_differences_away_from_0(shape, magnitude,
                                                                                rng):
    x = away_from_kinks(rng, shape, magnitude)
    a = rng.uniform(-1.0, 1.0, size=shape[1])
    check_gradient(ref.relu, ref.relu_vjp, (x,), wrt=(0,), rng=rng, spec_id="activations.relu",
                   name="reference", call=f"relu_vjp{describe_args((x,))}",
                   method="richardson", initial_step=FD_KINK_STEP * magnitude)
    check_gradient(ref.prelu, ref.prelu_vjp, (x, a), wrt=(0, 1), rng=rng,
                   spec_id="activations.prelu", name="reference",
                   call=f"prelu_vjp{describe_args((x, a))}", method="richardson",
                   initial_step=FD_KINK_STEP * magnitude)


@pytest.mark.spec("activations.maxout")
@given(lead=st.lists(nst.sizes(max_size=4), max_size=2).map(tuple), m=nst.sizes(max_size=4),
       k=nst.sizes(max_size=4), rng=nst.generators())
def test_reference_maxout_gradient_matches_finite_differences_away_from_ties(lead, m, k, rng):
    # distinct integers: every two pieces are ≥ 1 apart, so steps ≤ FD_KINK_STEP keep the order
    n = int(np.prod(lead, dtype=int)) * m * k
    z = (rng.permutation(n) - n / 2.0).reshape(*lead, m * k)
    check_gradient(ref.maxout, ref.maxout_vjp, (z, k), wrt=(0,), rng=rng,
                   spec_id="activations.maxout", name="reference",
                   call=f"maxout_vjp{describe_args((z, k))}", method="richardson",
                   initial_step=FD_KINK_STEP)


# ---- the known bugs are caught, and bad arguments rejected ------------------------------------

@pytest.mark.spec("activations.sigmoid", "activations.bug.sigmoid_overflow")
def test_sigmoid_check_catches_the_unguarded_exp_over_one_plus_exp():
    buggy = bug_model("activations.bug.sigmoid_overflow", sigmoid=ref.sigmoid_overflow)
    with pytest.raises((NonConformance, ImplementationError), match=r"non-finite|should be"):
        check_sigmoid(buggy, EXTREMES)


@pytest.mark.spec("activations.softplus", "activations.bug.softplus_naive")
def test_softplus_check_catches_log_of_one_plus_exp():
    buggy = bug_model("activations.bug.softplus_naive", softplus=ref.softplus_naive)
    with pytest.raises((NonConformance, ImplementationError), match=r"non-finite|should be"):
        check_softplus(buggy, EXTREMES)
    # and without any overflow: 1 + eˣ rounds to 1 below x ≈ −37
    with pytest.raises(NonConformance, match="should be"):
        check_softplus(buggy, np.array([-40.0]))


@pytest.mark.spec("activations.tanh", "activations.bug.tanh_derivative_from_input")
def test_tanh_gradient_check_catches_one_minus_input_squared():
    buggy = bug_model("activations.bug.tanh_derivative_from_input",
                      vjp_tanh=ref.tanh_derivative_from_input)
    with pytest.raises(NonConformance, match="should be"):
        check_tanh_gradient(buggy, np.ones(3), np.array([-0.5, 0.1, 2.0]))


@pytest.mark.spec("activations.sigmoid")
@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), float("nan")])
def test_reference_sigmoid_rejects_a_slope_that_is_not_positive(alpha):
    with pytest.raises(ValueError, match="alpha"):
        ref.sigmoid(np.zeros(2), alpha)


@pytest.mark.spec("activations.prelu")
def test_reference_prelu_rejects_a_slope_that_matches_no_channel_axis():
    with pytest.raises(ValueError, match="slope a has shape"):
        ref.prelu(np.zeros((2, 3)), np.ones(4))


@pytest.mark.spec("activations.maxout")
@pytest.mark.parametrize(("width", "k"), [(5, 2), (4, 0)])
def test_reference_maxout_rejects_pieces_not_grouping_into_units(width, k):
    with pytest.raises(ValueError, match="maxout"):
        ref.maxout(np.zeros((2, width)), k)
