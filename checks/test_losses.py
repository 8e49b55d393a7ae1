"""Checks of spec/losses.md.

The contract's softmax, log_softmax, cross_entropy (mean over positions), cross_entropy_sum and
vjp_cross_entropy are compared with the reference under the bounds the spec derives for
log-sum-exp; identities (rows sum to 1, shift invariance, sum = N·mean) are checked on the
implementation alone; one-hot codes and embeddings, which no contract function computes, are
checked on the reference. As in checks/test_activations.py, one ``check_*`` helper per
comparison serves the Hypothesis checks, the check at large logits and the known bugs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnspec.checks.bounds import losses as bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.designs import LARGE_LOGITS, LARGE_TARGETS
from nnspec.checks.harness.failure import NonConformance, assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, ImplementationError, bug_model, describe_args
from nnspec.reference import losses as ref

# ---- one comparison per contract function ----------------------------------------------------

def check_softmax(impl: Implementation, y: np.ndarray) -> None:
    y = impl.cast(y)
    got = impl.array(impl.call("softmax", y), fn="softmax", what="ŷ", shape=y.shape)
    assert_close(got, ref.softmax(y), bounds.softmax(y, dtype=impl.dtype), spec_id="losses.softmax",
                 impl=impl, what="ŷ", call=f"softmax{describe_args((y,))}")


def check_log_softmax(impl: Implementation, y: np.ndarray) -> None:
    y = impl.cast(y)
    got = impl.array(impl.call("log_softmax", y), fn="log_softmax", what="log ŷ", shape=y.shape)
    assert_close(got, ref.log_softmax(y), bounds.log_softmax(y, dtype=impl.dtype),
                 spec_id="losses.log_softmax", impl=impl, what="log ŷ",
                 call=f"log_softmax{describe_args((y,))}")


def check_cross_entropy(impl: Implementation, y: np.ndarray, k: np.ndarray, *,
                        spec_id: str = "losses.sequence_mean") -> None:
    y = impl.cast(y)
    got = impl.array(impl.call("cross_entropy", y, k), fn="cross_entropy", what="L", shape=())
    assert_close(got, ref.sequence_mean(y, k), bounds.cross_entropy(y, k, dtype=impl.dtype),
                 spec_id=spec_id, impl=impl, what="L (mean over positions)",
                 call=f"cross_entropy{describe_args((y, k))}")


def check_cross_entropy_sum(impl: Implementation, y: np.ndarray, k: np.ndarray) -> None:
    y = impl.cast(y)
    got = impl.array(impl.call("cross_entropy_sum", y, k), fn="cross_entropy_sum", what="L",
                     shape=())
    assert_close(got, ref.sequence_sum(y, k), bounds.cross_entropy_sum(y, k, dtype=impl.dtype),
                 spec_id="losses.sequence_sum", impl=impl, what="L_total (sum over positions)",
                 call=f"cross_entropy_sum{describe_args((y, k))}")


def check_cross_entropy_gradient(impl: Implementation, g: float, y: np.ndarray,
                                 k: np.ndarray) -> None:
    y, g = impl.cast(y), impl.cast(np.asarray(g, dtype=np.float64))
    (dy,) = impl.outputs(impl.call("vjp_cross_entropy", g, y, k), fn="vjp_cross_entropy",
                         names=("dlogits",))
    got = impl.array(dy, fn="vjp_cross_entropy", what="dlogits", shape=y.shape)
    (want,) = ref.sequence_mean_vjp(g, y, k)
    assert_close(got, want, bounds.vjp_cross_entropy(g, y, k, dtype=impl.dtype),
                 spec_id="losses.sequence_mean", impl=impl, what="dlogits",
                 call=f"vjp_cross_entropy{describe_args((g, y, k))}")


# ---- strategies ------------------------------------------------------------------------------

@st.composite
def classification_problems(draw: st.DrawFn, *, min_steps: int = 1, max_leading: int = 2,
                            magnitudes: tuple[float, ...] = nst.MAGNITUDES,
                            ) -> tuple[np.ndarray, np.ndarray]:
    """(y, k): logits (…, C) up to one of ``magnitudes`` and integer targets (…), 0 to
    max_leading leading axes — none is a single position, two are (T, B) — with T ≥ min_steps."""
    n_lead = draw(st.integers(0 if min_steps <= 1 else 1, max_leading))
    lead = tuple(draw(st.lists(nst.sizes(max_size=5), min_size=n_lead, max_size=n_lead)))
    if lead:
        lead = (max(lead[0], min_steps), *lead[1:])
    C = draw(nst.sizes(max_size=10))
    y = draw(nst.float_arrays((*lead, C), magnitude=draw(st.sampled_from(magnitudes))))
    k = draw(hnp.arrays(np.int64, lead, elements=st.integers(0, C - 1)))
    return y, k


@st.composite
def grid_logits(draw: st.DrawFn) -> tuple[np.ndarray, float]:
    """(y, c): logits that are multiples of 1/8 below 64 in magnitude and an integer shift c with
    |c| ≤ 10⁴, so that y + c is exact even in float32 (17 significant bits)."""
    shape = draw(st.lists(nst.sizes(max_size=5), min_size=1, max_size=2).map(tuple))
    y = draw(hnp.arrays(np.float64, shape, elements=st.integers(-511, 511).map(lambda i: i / 8)))
    c = draw(st.sampled_from([1000.0, -1000.0, 1e4]) | st.integers(-10**4, 10**4).map(float))
    return y, c


# ---- forward and gradient against the reference ----------------------------------------------

@pytest.mark.spec("losses.softmax")
@given(problem=classification_problems())
def test_softmax_matches_reference(impl, problem):
    check_softmax(impl, problem[0])


@pytest.mark.spec("losses.log_softmax")
@given(problem=classification_problems())
def test_log_softmax_is_y_minus_logsumexp(impl, problem):
    check_log_softmax(impl, problem[0])


@pytest.mark.spec("losses.cross_entropy")
@given(problem=classification_problems(max_leading=0))
def test_cross_entropy_of_one_position_is_minus_log_probability_of_the_target(impl, problem):
    check_cross_entropy(impl, *problem, spec_id="losses.cross_entropy")


@pytest.mark.spec("losses.sequence_mean")
@given(problem=classification_problems())
def test_cross_entropy_is_the_mean_over_positions(impl, problem):
    check_cross_entropy(impl, *problem)


@pytest.mark.spec("losses.sequence_sum")
@given(problem=classification_problems())
def test_cross_entropy_sum_is_the_sum_over_positions(impl, problem):
    check_cross_entropy_sum(impl, *problem)


@pytest.mark.spec("losses.sequence_mean", "losses.cross_entropy")
@given(problem=classification_problems(), g=nst.reals(magnitude=2.0))
def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n(impl, problem, g):
    check_cross_entropy_gradient(impl, g, *problem)


@pytest.mark.spec("losses.softmax", "losses.log_softmax", "losses.sequence_mean",
                  "losses.sequence_sum")
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy", "cross_entropy_sum",
                                  "vjp_cross_entropy"])
def test_losses_are_finite_and_accurate_at_logits_of_1e3_and_beyond(impl, name):
    y, k = LARGE_LOGITS, LARGE_TARGETS
    {"softmax": lambda: check_softmax(impl, y),
     "log_softmax": lambda: check_log_softmax(impl, y),
     "cross_entropy": lambda: check_cross_entropy(impl, y, k),
     "cross_entropy_sum": lambda: check_cross_entropy_sum(impl, y, k),
     "vjp_cross_entropy": lambda: check_cross_entropy_gradient(impl, 1.0, y, k)}[name]()


# ---- identities the spec states, on the implementation alone ----------------------------------

@pytest.mark.spec("losses.softmax")
@given(problem=classification_problems())
def test_softmax_rows_sum_to_one(impl, problem):
    y = impl.cast(problem[0])
    got = impl.array(impl.call("softmax", y), fn="softmax", what="ŷ", shape=y.shape)
    assert_close(got.sum(axis=-1), np.ones(y.shape[:-1]),
                 bounds.softmax_row_sum(y, dtype=impl.dtype), spec_id="losses.softmax",
                 impl=impl, what="Σ_j ŷ_j", call=f"softmax{describe_args((y,))}")


@pytest.mark.spec("losses.softmax", "losses.log_softmax")
@given(problem=grid_logits())
def test_softmax_is_unchanged_by_adding_a_constant_to_the_logits(impl, problem):
    y, c = problem
    shifted = impl.cast(y + c)
    if not np.array_equal(shifted, y + c):
        fail("losses.softmax", impl, "the shifted logits are not exact in DTYPE (test setup)")
    want = ref.softmax(y)
    got = impl.array(impl.call("softmax", shifted), fn="softmax", what="ŷ", shape=y.shape)
    assert_close(got, want, bounds.softmax_bound(shifted, want, dtype=impl.dtype),
                 spec_id="losses.softmax",
                 impl=impl, what=f"softmax(y + {c:g}) against softmax(y)",
                 call=f"softmax{describe_args((shifted,))}")
    got = impl.array(impl.call("log_softmax", shifted), fn="log_softmax", what="log ŷ",
                     shape=y.shape)
    assert_close(got, ref.log_softmax(y), bounds.log_softmax(shifted, dtype=impl.dtype),
                 spec_id="losses.log_softmax", impl=impl,
                 what=f"log_softmax(y + {c:g}) against log_softmax(y)",
                 call=f"log_softmax{describe_args((shifted,))}")


@pytest.mark.spec("losses.sequence_mean", "losses.sequence_sum")
@given(problem=classification_problems(min_steps=2))
def test_sum_over_time_is_n_times_the_mean_and_so_differs_from_it(impl, problem):
    y, k = impl.cast(problem[0]), problem[1]
    N = k.size
    total = impl.array(impl.call("cross_entropy_sum", y, k), fn="cross_entropy_sum", what="L",
                       shape=())
    mean = impl.array(impl.call("cross_entropy", y, k), fn="cross_entropy", what="L", shape=())
    call = f"cross_entropy, cross_entropy_sum{describe_args((y, k))}"
    assert_close(total, N * mean, bounds.sum_against_n_times_mean(y, k, dtype=impl.dtype),
                 spec_id="losses.sequence_sum", impl=impl, what="Σ_t ℓ_t against N·(1/N)Σ_t ℓ_t",
                 call=call)
    apart = bounds.sum_and_mean(y, k, dtype=impl.dtype).atol
    if ref.sequence_sum(y, k) > apart and abs(total - mean) <= apart:
        fail("losses.sequence_mean", impl, f"the mean over N = {N} > 1 positions equals their "
             f"sum ({mean!r} and {total!r}): one of them is not what its name says", call=call)


# ---- one-hot codes, embeddings and the seed's two ways of writing ℓ (reference) ----------------

@pytest.mark.spec("losses.one_hot")
@given(C=nst.sizes(min_size=2, max_size=50), data=st.data())
def test_one_hot_codes_have_one_1_distance_sqrt2_and_inner_product_0(C, data):
    k, k2 = data.draw(st.lists(st.integers(0, C - 1), min_size=2, max_size=2, unique=True))
    o, o2 = ref.one_hot(np.array(k), C), ref.one_hot(np.array(k2), C)
    claims = {
        "o has exactly one 1, at k, and zeros elsewhere": (
            o[k] == 1.0 and np.count_nonzero(o) == 1 and set(np.unique(o)) <= {0.0, 1.0}),
        "‖o_k − o_k'‖ = √2": np.linalg.norm(o - o2) == np.sqrt(2.0),
        "⟨o_k, o_k'⟩ = 0 and ⟨o_k, o_k⟩ = 1": o @ o2 == 0.0 and o @ o == 1.0,
    }
    for claim, holds in claims.items():
        if not holds:
            fail("losses.one_hot", "reference", f"{claim} fails for k = {k}, k' = {k2}",
                 call=f"one_hot(k, C={C})")


@pytest.mark.spec("losses.embedding", "losses.embedding.rows")
@given(d=nst.sizes(), V=nst.sizes(), data=st.data())
def test_embedding_of_a_one_hot_code_is_exactly_a_column_of_w(d, V, data):
    W = data.draw(nst.float_arrays((d, V)))
    k = data.draw(hnp.arrays(np.int64, st.lists(nst.sizes(max_size=4), max_size=2).map(tuple),
                             elements=st.integers(0, V - 1)))
    column = np.moveaxis(W[:, k], 0, -1)
    assert_close(ref.embedding(W, k), column, tol.exact(column), spec_id="losses.embedding",
                 impl="reference", what="W·one_hot(k) against column k of W",
                 call=f"embedding{describe_args((W, k))}")
    assert_close(ref.embedding_rows(W.T, k), column, tol.exact(column),
                 spec_id="losses.embedding.rows", impl="reference",
                 what="row k of E = Wᵀ against column k of W",
                 call=f"embedding_rows{describe_args((W.T, k))}")


@pytest.mark.spec("losses.cross_entropy", "losses.one_hot")
@given(problem=classification_problems())
def test_seed_form_with_one_hot_target_equals_minus_log_probability_of_the_target(problem):
    y, k = problem
    assert_close(ref.cross_entropy_onehot(ref.one_hot(k, y.shape[-1]), y), ref.cross_entropy(y, k),
                 bounds.seed_form_against_index_form(y), spec_id="losses.cross_entropy", impl="reference",
                 what="−Σ_j o_j log ŷ_j against −log ŷ_k", call=f"cross_entropy{describe_args((y, k))}")


@pytest.mark.spec("losses.sequence_mean", "losses.sequence_sum", "losses.cross_entropy")
@given(problem=classification_problems(magnitudes=nst.FD_MAGNITUDES), rng=nst.generators())
def test_reference_cross_entropy_gradients_match_finite_differences(problem, rng):
    y, k = problem
    for forward, vjp, spec_id in ((ref.sequence_mean, ref.sequence_mean_vjp, "losses.sequence_mean"),
                                  (ref.sequence_sum, ref.sequence_sum_vjp, "losses.sequence_sum")):
        check_gradient(forward, vjp, (y, k), wrt=(0,), rng=rng, spec_id=spec_id,
                       name="reference", call=f"{vjp.__name__}{describe_args((y, k))}")


# ---- the known bugs are caught, and bad arguments rejected ------------------------------------

@pytest.mark.spec("losses.softmax", "losses.bug.softmax_no_shift")
def test_softmax_check_catches_exp_without_the_max_shift():
    buggy = bug_model("losses.bug.softmax_no_shift", softmax=ref.softmax_no_shift)
    with pytest.raises(ImplementationError, match="non-finite"):
        check_softmax(buggy, LARGE_LOGITS)


@pytest.mark.spec("losses.log_softmax", "losses.bug.log_of_softmax")
def test_log_softmax_check_catches_the_log_of_an_underflowed_softmax():
    buggy = bug_model("losses.bug.log_of_softmax", log_softmax=ref.log_of_softmax)
    with pytest.raises(ImplementationError, match="non-finite"):
        check_log_softmax(buggy, LARGE_LOGITS)


@pytest.mark.spec("losses.sequence_mean", "losses.bug.sum_instead_of_mean")
def test_cross_entropy_check_catches_a_sum_over_positions():
    buggy = bug_model("losses.bug.sum_instead_of_mean", cross_entropy=ref.sum_instead_of_mean)
    with pytest.raises(NonConformance, match="should be"):
        check_cross_entropy(buggy, np.zeros((2, 1, 3)), np.array([[0], [2]]))


@pytest.mark.spec("losses.softmax", "losses.bug.softmax_hidden_activation")
@given(H=nst.sizes(), D=nst.sizes(), T=nst.sizes(), rng=nst.generators())
def test_a_softmax_hidden_state_is_confined_to_the_probability_simplex(H, D, T, rng):
    W_ax, W_aa, W_h = rng.standard_normal((H, D)), rng.standard_normal((H, H)), rng.standard_normal((2, H))
    b_a, b_h = rng.standard_normal(H), rng.standard_normal(2)
    a = np.zeros(H)  # the seed's a_0 = 0: not on the simplex, never reached again
    for x_t in rng.standard_normal((T, D)):
        a, _ = ref.softmax_hidden_activation(x_t, a, W_ax, W_aa, b_a, W_h, b_h)
        if np.any(a < 0):
            fail("losses.bug.softmax_hidden_activation", "reference",
                 f"a softmax state has a negative component: {a}")
        assert_close(a.sum(), 1.0, bounds.softmax_state_sum(H),
                     spec_id="losses.bug.softmax_hidden_activation",
                     impl="reference", what="Σ a_t", call="softmax_hidden_activation")


@pytest.mark.spec("losses.bug.softmax_hidden_activation")
def test_a_one_unit_softmax_hidden_state_carries_no_information(rng):
    states = [ref.softmax_hidden_activation(x_t, np.zeros(1), np.ones((1, 1)), np.ones((1, 1)),
                                            np.zeros(1), np.ones((1, 1)), np.zeros(1))[0]
              for x_t in rng.standard_normal((5, 1)) * 100]
    if not all(s[0] == 1.0 for s in states):
        fail("losses.bug.softmax_hidden_activation", "reference",
             f"a one-unit softmax state should be 1 whatever the input, got {states}")


@pytest.mark.spec("losses.cross_entropy")
@pytest.mark.parametrize(("k", "complaint"), [
    (np.array([0, 3]), "not a class index"),
    (np.array([-1, 0]), "not a class index"),
    (np.array([0.0, 1.0]), "integer class indices"),
    (np.array([0]), "targets have shape"),
])
def test_reference_rejects_targets_that_are_not_class_indices_of_each_position(k, complaint):
    with pytest.raises(ValueError, match=complaint):
        ref.cross_entropy(np.zeros((2, 3)), k)
