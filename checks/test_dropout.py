"""Checks of spec/dropout.md.

Dropout's output is random, so the contract's ``dropout`` is checked by claims that hold for
every draw (exact) and by hypothesis tests at false-alarm rate stats.ALPHA (claims 2–4 of the
spec). The mask an implementation drew is read off its output: inputs are never 0, so
ξ_i = [h'_i ≠ 0].
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks.bounds import dropout as bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import stats
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.designs import P_PAIRS, P_VALUES, SHAPE, N, nonzero_inputs
from nnspec.checks.harness.failure import assert_close
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import dropout as ref


def dropped(impl: Implementation, x: np.ndarray, p: float,
            rng: np.random.Generator) -> np.ndarray:
    """The mask 1 − ξ an implementation drew in training mode (x has no zeros)."""
    y = impl.array(impl.call("dropout", x, p, True, rng), fn="dropout", what="h'", shape=x.shape)
    return y == 0


inputs = st.tuples(st.lists(nst.sizes(), min_size=1, max_size=3).map(tuple),
                   st.sampled_from(nst.MAGNITUDES), nst.generators())


@pytest.mark.spec("dropout.inverted")
@given(problem=inputs, p=st.floats(0.0, 1.0))
def test_dropout_output_is_zero_or_input_over_keep_probability(impl, problem, p):
    shape, magnitude, rng = problem
    x = impl.cast(nonzero_inputs(rng, shape, magnitude))
    got = impl.array(impl.call("dropout", x, p, True, rng), fn="dropout", what="h'", shape=shape)
    kept = got != 0
    assert_close(got, ref.inverted(x, kept, p), bounds.dropout(x, kept, p, dtype=impl.dtype),
                 spec_id="dropout.inverted", impl=impl,
                 what="h' (each element must be 0 or x/(1 − p))",
                 call=f"dropout{describe_args((x, p, True, rng))}")


@pytest.mark.spec("dropout.inverted")
@pytest.mark.parametrize("p", P_VALUES)
def test_dropout_drops_a_binomial_number_of_units(impl, rng, p):
    x = impl.cast(nonzero_inputs(rng, SHAPE))
    k = int(dropped(impl, x, p, rng).sum())
    stats.binomial(k, N, p, spec_id="dropout.inverted", impl=impl,
                   claim=f"'the number of zeros of dropout(x, p={p}) is Binomial({N}, {p})'")


@pytest.mark.spec("dropout.inverted")
@pytest.mark.parametrize("p", P_VALUES)
def test_dropout_preserves_the_expectation(impl, rng, p):
    # Positive inputs: with signs mixed, a wrong scale would shift the mean of h' − h by a
    # multiple of mean(h) ≈ 0 and go unseen.
    h = impl.cast(rng.uniform(0.5, 2.0, size=SHAPE))
    got = impl.array(impl.call("dropout", h, p, True, rng), fn="dropout", what="h'", shape=SHAPE)
    stats.mean_equals(got - h, 0.0, float(np.mean(h**2)) * p / (1 - p),
                      spec_id="dropout.inverted", impl=impl,
                      claim=f"'E[h' − h] = 0 for dropout(h, p={p})' (Var = h²·p/(1 − p))")


@pytest.mark.spec("dropout.inverted")
@pytest.mark.parametrize("source", ["successive calls", "different seeds"])
def test_dropout_masks_are_independent_between_draws(impl, rng, source):
    x = impl.cast(nonzero_inputs(rng, SHAPE))
    seed = int(rng.integers(2**32))
    first_rng = np.random.default_rng(seed)
    first = dropped(impl, x, P_PAIRS, first_rng)
    second_rng = first_rng if source == "successive calls" else np.random.default_rng(seed + 1)
    second = dropped(impl, x, P_PAIRS, second_rng)
    stats.binomial(int((first & second).sum()), N, P_PAIRS**2, spec_id="dropout.inverted",
                   impl=impl, claim=f"'a unit is dropped by two {source} with probability p²' "
                                    f"(p = {P_PAIRS}; a reused mask gives p)")


@pytest.mark.spec("dropout.inverted")
@pytest.mark.parametrize("axis", [0, 1])
def test_dropout_drops_neighbouring_units_independently(impl, rng, axis):
    mask = np.moveaxis(dropped(impl, impl.cast(nonzero_inputs(rng, SHAPE)), P_PAIRS, rng), axis, 0)
    both = mask[0::2] & mask[1::2]
    stats.binomial(int(both.sum()), both.size, P_PAIRS**2, spec_id="dropout.inverted", impl=impl,
                   claim=f"'neighbours along axis {axis} are dropped together with probability "
                         f"p²' (p = {P_PAIRS}; a mask shared along the axis gives p)")


@pytest.mark.spec("dropout.inverted")
def test_dropout_mask_does_not_depend_on_input_values(impl, rng):
    x = impl.cast(nonzero_inputs(rng, SHAPE))
    smaller_half = np.argsort(np.abs(x), axis=None)[:N // 2]
    k = int(dropped(impl, x, P_PAIRS, rng).ravel()[smaller_half].sum())
    stats.binomial(k, N // 2, P_PAIRS, spec_id="dropout.inverted", impl=impl,
                   claim=f"'the units with the smaller half of |x| are dropped with probability "
                         f"p' (p = {P_PAIRS})")


@pytest.mark.spec("dropout.inverted")
@given(x=nst.float_arrays(st.lists(nst.sizes(), min_size=1, max_size=3).map(tuple)),
       p=st.floats(0.0, 1.0), rng=nst.generators())
def test_dropout_is_the_identity_in_evaluation_mode(impl, x, p, rng):
    x = impl.cast(x)
    got = impl.array(impl.call("dropout", x, p, False, rng), fn="dropout", what="h'",
                     shape=x.shape)
    assert_close(got, x, tol.exact(x), spec_id="dropout.inverted", impl=impl,
                 call=f"dropout{describe_args((x, p, False, rng))}")


@pytest.mark.spec("dropout.inverted")
@given(x=nst.float_arrays(st.lists(nst.sizes(), min_size=1, max_size=3).map(tuple)),
       p=st.sampled_from([0.0, 1.0]), rng=nst.generators())
def test_dropout_with_p_0_keeps_everything_and_with_p_1_drops_everything(impl, x, p, rng):
    x = impl.cast(x)
    got = impl.array(impl.call("dropout", x, p, True, rng), fn="dropout", what="h'",
                     shape=x.shape)
    want = x if p == 0.0 else np.zeros_like(x)
    assert_close(got, want, tol.exact(want), spec_id="dropout.inverted", impl=impl,
                 call=f"dropout{describe_args((x, p, True, rng))}")


@pytest.mark.spec("dropout.inverted")
@given(problem=inputs, p=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_dropout_gradient_is_zero_where_dropped_and_scaled_where_kept(impl, problem, p, seed):
    shape, magnitude, rng = problem
    x = impl.cast(nonzero_inputs(rng, shape, magnitude))
    g = impl.cast(nonzero_inputs(rng, shape))
    # Two generators in the same state: the contract requires the forward's mask.
    kept = ~dropped(impl, x, p, np.random.default_rng(seed))
    got = impl.outputs(impl.call("vjp_dropout", g, x, p, True, np.random.default_rng(seed)),
                       fn="vjp_dropout", names=("dx",))
    dx = impl.array(got[0], fn="vjp_dropout", what="dx", shape=shape)
    want, _, _ = ref.inverted_vjp(g, x, kept, p)
    assert_close(dx, want, bounds.vjp_dropout(g, x, kept, p, dtype=impl.dtype),
                 spec_id="dropout.inverted", impl=impl,
                 what="dx (0 where the forward dropped, g/(1 − p) where it kept)",
                 call=f"vjp_dropout{describe_args((g, x, p, True, f'default_rng({seed})'))}")


@pytest.mark.spec("dropout.inverted")
@given(problem=inputs, p=st.floats(0.0, 1.0))
def test_dropout_gradient_in_evaluation_mode_is_the_cotangent(impl, problem, p):
    shape, magnitude, rng = problem
    x = impl.cast(nonzero_inputs(rng, shape, magnitude))
    g = impl.cast(nonzero_inputs(rng, shape))
    got = impl.outputs(impl.call("vjp_dropout", g, x, p, False, rng), fn="vjp_dropout",
                       names=("dx",))
    dx = impl.array(got[0], fn="vjp_dropout", what="dx", shape=shape)
    assert_close(dx, g, tol.exact(g), spec_id="dropout.inverted", impl=impl, what="dx",
                 call=f"vjp_dropout{describe_args((g, x, p, False, rng))}")


@pytest.mark.spec("dropout.inverted")
@given(problem=inputs, p=st.floats(0.0, 1.0))
def test_reference_inverted_gradient_matches_finite_differences(problem, p):
    shape, magnitude, rng = problem
    h = nonzero_inputs(rng, shape, magnitude)
    mask = rng.random(shape) < 0.5
    check_gradient(ref.inverted, ref.inverted_vjp, (h, mask, p), wrt=(0,), rng=rng,
                   spec_id="dropout.inverted", name="reference",
                   call=f"inverted_vjp{describe_args((h, mask, p))}")


@pytest.mark.spec("dropout.inverted")
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_reference_rejects_a_drop_probability_outside_0_1(p):
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"p = "):
        ref.dropout(x, p, True, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"p = "):
        ref.inverted(x, np.ones((2, 3), dtype=bool), p)


@pytest.mark.spec("dropout.inverted")
def test_reference_rejects_a_mask_of_another_shape():
    with pytest.raises(ValueError, match=r"mask has shape \(3, 2\), but h has shape \(2, 3\)"):
        ref.inverted(np.ones((2, 3)), np.ones((3, 2), dtype=bool), 0.3)


@pytest.mark.spec("dropout.inverted_keep_prob", "dropout.inverted")
@given(problem=inputs, p=st.floats(0.0, 1.0))
def test_keep_probability_form_equals_drop_probability_form(problem, p):
    shape, magnitude, rng = problem
    h = nonzero_inputs(rng, shape, magnitude)
    mask = rng.random(shape) < 0.5
    q = 1.0 - p
    got = ref.inverted_keep_prob(h, mask, q)
    want = ref.inverted(h, mask, p)
    assert_close(got, want, tol.exact(want), spec_id="dropout.inverted_keep_prob",
                 impl="reference", call=f"inverted_keep_prob{describe_args((h, mask, q))}")
