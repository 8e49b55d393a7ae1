"""Checks of spec/model_selection.md (reference-only formulas: compared with NumPy and SciPy,
and tested for the properties the seed states)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, example, given
from hypothesis import strategies as st

from nnspec.checks.bounds import model_selection as bounds
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import assert_close, fail
from nnspec.checks.harness.implementation import describe_args
from nnspec.reference import model_selection as ref

#: Degrees drawn: up to 10, where the Vandermonde matrix of 11 grid points in [0, 1] has κ ≈ 1.2·10⁸.
MAX_DEGREE = 10


@st.composite
def polynomial_data(draw: st.DrawFn, *, min_points: int = 1,
                    max_points: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Distinct x on the grid {−1, −0.9, …, 1} (so A has full rank) and labels y."""
    grid = draw(st.lists(st.integers(-10, 10), min_size=min_points, max_size=max_points,
                         unique=True))
    x = np.array(grid, dtype=np.float64) / 10
    return x, draw(nst.moderate_float_arrays((x.size,)))


# --- model_selection.polynomial ------------------------------------------------------------------

@pytest.mark.spec("model_selection.polynomial")
@given(x=nst.moderate_float_arrays(st.tuples(nst.sizes())), b=nst.reals(),
       w=nst.moderate_float_arrays(st.tuples(nst.sizes(min_size=0, max_size=MAX_DEGREE))))
def test_polynomial_evaluates_b_plus_sum_of_x_to_the_k_times_w_k(x, b, w):
    got = ref.polynomial(x, b, w)
    want = np.polynomial.polynomial.polyval(x, np.concatenate([[b], w]))
    assert_close(got, want, bounds.polynomial(x, b, w), spec_id="model_selection.polynomial",
                 impl="reference", what="ŷ (against numpy.polynomial.polynomial.polyval)",
                 call=f"polynomial{describe_args((x, b, w))}")


def solver_fits(x: np.ndarray, y: np.ndarray, K: int) -> dict[str, np.ndarray]:
    """The least-squares (minimum-norm when K + 1 > n) coefficients by NumPy's and SciPy's
    solvers; polyfit only where the fit is unique (its minimum norm is that of scaled θ)."""
    A = ref.design_matrix(x, K)
    fits = {"numpy.linalg.lstsq": np.linalg.lstsq(A, y)[0],
            "scipy.linalg.lstsq (gelsd)": scipy.linalg.lstsq(A, y)[0],
            "scipy.linalg.lstsq (gelsy)": scipy.linalg.lstsq(A, y, lapack_driver="gelsy")[0]}
    if x.size >= K + 1:
        fits["numpy.polynomial.polynomial.polyfit"] = np.polynomial.polynomial.polyfit(x, y, K)
    return fits


@st.composite
def least_squares_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """(x, y, K), K ≤ MAX_DEGREE; when n ≥ K + 1, y is either arbitrary (a residual r ≠ 0) or
    exact samples of a degree-K polynomial (r ≈ 0), where QR's κ·u and the normal equations'
    κ²·u part ways."""
    x, y = draw(polynomial_data())
    K = draw(st.integers(0, MAX_DEGREE))
    if x.size >= K + 1 and draw(st.booleans()):
        y = ref.design_matrix(x, K) @ draw(nst.moderate_float_arrays((K + 1,)))
    return x, y, K


@pytest.mark.spec("model_selection.polynomial")
@given(problem=least_squares_problems())
def test_polynomial_fit_agrees_with_numpy_and_scipy_least_squares(problem):
    x, y, K = problem
    b, w = ref.polynomial_fit(x, y, K)
    θ = np.concatenate([[b], w])
    A = ref.design_matrix(x, K)
    D = np.linalg.norm(A, axis=0)
    others = solver_fits(x, y, K)
    r = bounds.least_residual(A, y, [θ, *others.values()])
    call = f"polynomial_fit{describe_args((x, y, K))}"
    for solver, θ_other in others.items():
        # polyfit scales the columns of A to unit norm: compare in those coordinates.
        scaled = solver.endswith("polyfit")
        got, want = (D * θ, D * θ_other) if scaled else (θ, θ_other)
        assert_close(got, want, bounds.fit_against_solver(A, θ, r, column_scaled=scaled),
                     spec_id="model_selection.polynomial", impl="reference",
                     what=f"(b, w) against {solver}", call=call)


@pytest.mark.spec("model_selection.polynomial")
@given(design=polynomial_data(min_points=8, max_points=21).flatmap(
    lambda d: st.tuples(st.just(d[0]), st.integers(6, min(d[0].size - 1, MAX_DEGREE)))),
       θ_true=nst.moderate_float_arrays((MAX_DEGREE + 1,)))
@example(design=(np.arange(11) / 10, 10), θ_true=np.ones(11))  # κ ≈ 1.2e8: κ² is beyond 1/u
def test_polynomial_fit_recovers_exact_samples_to_kappa_not_kappa_squared(design, θ_true):
    x, K = design
    θ_true = θ_true[:K + 1]
    A = ref.design_matrix(x, K)
    y = A @ θ_true
    b, w = ref.polynomial_fit(x, y, K)
    assert_close(np.concatenate([[b], w]), θ_true, bounds.fit_of_exact_samples(A, θ_true),
                 spec_id="model_selection.polynomial", impl="reference",
                 what="(b, w) fitted to exact samples of b + Σ x^k w_k",
                 call=f"polynomial_fit{describe_args((x, y, K))}")


@pytest.mark.spec("model_selection.polynomial")
@given(data=polynomial_data(), extra=st.integers(0, 3))
def test_polynomial_of_degree_n_minus_1_or_more_interpolates(data, extra):
    x, y = data
    K = x.size - 1 + extra
    b, w = ref.polynomial_fit(x, y, K)
    got = ref.squared_loss(ref.polynomial(x, b, w), y)
    Δ = bounds.residual_error(x, y, K, b, w)
    allowed = bounds.interpolant_training_error(Δ, x.size)
    if not got <= allowed:
        fail("model_selection.polynomial", "reference",
             f"training error of a degree-{K} fit to {x.size} distinct points was {got!r}, but "
             f"an interpolant's is 0 (allowed rounding: {allowed:.3g} from Δ = {Δ:.3g}, "
             f"spec/model_selection.md)", call=f"polynomial_fit{describe_args((x, y, K))}")


@pytest.mark.spec("model_selection.polynomial")
@given(data=polynomial_data(min_points=2))
def test_training_error_does_not_increase_with_the_degree(data):
    x, y = data
    n = x.size
    fits = [ref.polynomial_fit(x, y, K) for K in range(min(n + 1, MAX_DEGREE) + 1)]
    errors = [ref.squared_loss(ref.polynomial(x, b, w), y) for b, w in fits]
    Δ = [bounds.residual_error(x, y, K, b, w) for K, (b, w) in enumerate(fits)]
    for K in range(len(fits) - 1):
        # ‖r_{K+1}‖ ≤ ‖r_K‖ exactly; each computed norm is within Δ of the exact one.
        lower_next, _ = bounds.residual_norm_range(errors[K + 1], n)
        _, upper_this = bounds.residual_norm_range(errors[K], n)
        if not lower_next <= upper_this + Δ[K] + Δ[K + 1]:
            fail("model_selection.polynomial", "reference",
                 f"training error rose from {errors[K]!r} (degree {K}) to {errors[K + 1]!r} "
                 f"(degree {K + 1}), beyond the rounding allowed (Δ = {Δ[K]:.3g}, "
                 f"{Δ[K + 1]:.3g})", call=f"polynomial_fit{describe_args((x, y, K + 1))}")


@pytest.mark.spec("model_selection.polynomial")
def test_reference_rejects_too_few_distinct_points_and_a_negative_degree():
    with pytest.raises(ValueError, match=r"needs at least 3 distinct x"):
        ref.polynomial_fit(np.array([0.0, 1.0, 1.0, 0.0]), np.zeros(4), 2)
    with pytest.raises(ValueError, match=r"degree K = -1"):
        ref.polynomial_fit(np.array([0.0, 1.0]), np.zeros(2), -1)


# --- model_selection.kfold -----------------------------------------------------------------------

folds_of = st.integers(2, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(2, n)))
seeds = st.integers(0, 2**32 - 1)


@pytest.mark.spec("model_selection.kfold")
@given(nK=folds_of, seed=seeds)
def test_kfold_partitions_the_samples_into_k_folds_of_near_equal_size(nK, seed):
    n, K = nK
    folds = ref.kfold(n, K, seed)
    call = f"kfold({n}, {K}, seed={seed})"
    if len(folds) != K:
        fail("model_selection.kfold", "reference", f"{len(folds)} folds, but should be {K}", call=call)
    covered = np.sort(np.concatenate(folds))
    if not np.array_equal(covered, np.arange(n)):
        missing = sorted(set(range(n)) - set(covered.tolist()))
        fail("model_selection.kfold", "reference",
             f"the folds hold {covered.size} indices (missing {missing[:5]}, repeated "
             f"{covered.size - np.unique(covered).size}), but should hold each of 0…{n - 1} once",
             call=call)
    sizes = [f.size for f in folds]
    if sizes != [-(-n // K)] * (n % K) + [n // K] * (K - n % K):
        fail("model_selection.kfold", "reference",
             f"fold sizes were {sizes}, but should be ⌈n/K⌉ for the first n mod K folds and ⌊n/K⌋ "
             f"after", call=call)


@pytest.mark.spec("model_selection.kfold")
@given(nK=folds_of, seed=seeds)
def test_kfold_with_the_same_seed_gives_the_same_folds(nK, seed):
    n, K = nK
    first, second = ref.kfold(n, K, seed), ref.kfold(n, K, seed)
    if not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True)):
        fail("model_selection.kfold", "reference", "two calls with one seed gave different folds",
             call=f"kfold({n}, {K}, seed={seed})")


@pytest.mark.spec("model_selection.kfold")
@given(n=st.integers(40, 200), data=st.data(), seed=seeds, other=seeds)
def test_kfold_with_different_seeds_gives_different_folds(n, data, seed, other):
    # A coincidence has probability ∏|F_k|!/n! ≤ (20!)²/40! ≈ 7.3e-12 for n ≥ 40.
    assume(seed != other)
    K = data.draw(st.integers(2, n))
    first, second = ref.kfold(n, K, seed), ref.kfold(n, K, other)
    if all(np.array_equal(np.sort(a), np.sort(b)) for a, b in zip(first, second, strict=True)):
        fail("model_selection.kfold", "reference", f"seeds {seed} and {other} gave the same folds",
             call=f"kfold({n}, {K}, seed)")


@pytest.mark.spec("model_selection.kfold")
@pytest.mark.parametrize(("n", "K"), [(10, 1), (10, 0), (5, 6), (0, 2)])
def test_kfold_rejects_fewer_than_2_or_more_than_n_folds(n, K):
    with pytest.raises(ValueError, match=rf"K = {K} folds of n = {n} samples"):
        ref.kfold(n, K, 0)


# --- model_selection.kfold_error -----------------------------------------------------------------

def mean_predictor(x: np.ndarray, y: np.ndarray):
    """fit: predict the training mean ȳ everywhere."""
    ȳ = float(np.mean(y))
    return lambda x_new: np.full(len(x_new), ȳ)


@pytest.mark.spec("model_selection.kfold_error")
@given(y=nst.moderate_float_arrays(st.tuples(nst.sizes(min_size=3, max_size=40))), seed=seeds)
def test_leave_one_out_errors_of_the_mean_predictor_match_the_closed_form(y, seed):
    n = y.size
    x = np.arange(n, dtype=np.float64)
    got_train, got_valid = ref.kfold_error(x, y, n, fit=mean_predictor, loss=ref.squared_loss,
                                           seed=seed)
    S = float(np.sum((y - np.mean(y)) ** 2))
    want_train, want_valid = 0.5 * (n - 2) * S / (n - 1) ** 2, 0.5 * n * S / (n - 1) ** 2
    bound = bounds.leave_one_out_mean_predictor(y)
    call = f"kfold_error(x, y, K={n}, fit=mean, loss=squared_loss, seed={seed}) with y {describe_args((y,))}"
    assert_close(got_valid, want_valid, bound, spec_id="model_selection.kfold_error",
                 impl="reference", what="E_valid (½·n·S/(n − 1)²)", call=call)
    assert_close(got_train, want_train, bound, spec_id="model_selection.kfold_error",
                 impl="reference", what="E_train (½·(n − 2)·S/(n − 1)²)", call=call)


@pytest.mark.spec("model_selection.kfold_error")
@given(fold_size=nst.sizes(max_size=8), K=st.integers(2, 8), b=nst.reals(),
       w=nst.moderate_float_arrays((3,), largest=1.0), data=st.data(), seed=seeds)
def test_errors_of_a_fixed_predictor_over_equal_folds_equal_its_loss_on_all_samples(
        fold_size, K, b, w, data, seed):
    n = fold_size * K
    x, y = data.draw(nst.moderate_float_arrays((n,))), data.draw(nst.moderate_float_arrays((n,)))

    def fixed(x_train: np.ndarray, y_train: np.ndarray):
        return lambda x_new: ref.polynomial(x_new, b, w)

    got_train, got_valid = ref.kfold_error(x, y, K, fit=fixed, loss=ref.squared_loss, seed=seed)
    want = ref.squared_loss(ref.polynomial(x, b, w), y)
    bound = bounds.fixed_predictor_folds(want, n, K)
    call = f"kfold_error{describe_args((x, y, K))} with a fixed predictor, seed={seed}"
    for what, got in (("E_train", got_train), ("E_valid", got_valid)):
        assert_close(got, want, bound, spec_id="model_selection.kfold_error", impl="reference",
                     what=f"{what} (the loss on all {n} samples)", call=call)


@pytest.mark.spec("model_selection.kfold_error")
def test_kfold_error_rejects_bad_folds_and_mismatched_samples():
    x = y = np.zeros(5)
    with pytest.raises(ValueError, match=r"K = 6 folds of n = 5"):
        ref.kfold_error(x, y, 6, fit=mean_predictor, loss=ref.squared_loss, seed=0)
    with pytest.raises(ValueError, match=r"same number of samples"):
        ref.kfold_error(np.zeros(4), y, 2, fit=mean_predictor, loss=ref.squared_loss, seed=0)
