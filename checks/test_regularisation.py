"""Checks of spec/regularisation.md.

The implementation is asked for the contract's ``sgd_step``, ``adam_step`` and ``adamw_step``; the
seed's update, the textbook convention and the L2-penalised loss are reached through the stated
mappings (weight_decay = λ/|B|, = λ, or the penalty in the gradient). Both sides compute from the
same numbers: inputs are rounded to the implementation's DTYPE and the reference runs in float64
on those values (``impl.cast``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks.bounds import regularisation as bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import regularisation as ref

#: Gradient descent for the ridge minimiser stops at ‖∇‖ ≤ GD_RTOL·‖∇ at θ = 0‖.
GD_RTOL = 1e-10

#: Drawn array elements and rates are 0 or at least this large in magnitude, so that every
#: intermediate stays above float32's smallest normal number 1.2e-38 (the smallest is Adam's
#: (1 − β₂)·(λw)² ≥ 1e-4·FLOOR⁴): the rounding model behind every bound is relative, (1 + δ), and
#: says nothing about underflow (spec/regularisation.md).
FLOOR = 1e-8


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """|a| ∈ [0.5, 2] with random signs, so that a decay of a acts on every element."""
    return rng.choice((-1.0, 1.0), size=shape) * rng.uniform(0.5, 2.0, size=shape)


# --- strategies ----------------------------------------------------------------------------------

def arrays(shape: object) -> st.SearchStrategy[np.ndarray]:
    """nst.float_arrays with elements below FLOOR in magnitude set to 0."""
    return nst.float_arrays(shape).map(lambda a: np.where(np.abs(a) < FLOOR, 0.0, a))


def rates(high: float) -> st.SearchStrategy[float]:
    """Step sizes and decay rates: 0 or in [FLOOR, high]."""
    return st.just(0.0) | st.floats(FLOOR, high)


@st.composite
def minibatch_steps(draw: st.DrawFn, *, max_batch: int = 8) -> tuple:
    """(X_B, y_B, w, b, η, λ): a minibatch of the seed's linear regression and a step's settings."""
    B, d = draw(nst.sizes(max_size=max_batch)), draw(nst.sizes())
    X, y, w, b = (draw(arrays(shape)) for shape in ((B, d), (B,), (d,), ()))
    return X, y, w, b, draw(rates(1.0)), draw(rates(4.0))


@st.composite
def regression_batches(draw: st.DrawFn) -> tuple:
    """(X, y, w, b, λ) with standard-normal entries: a generic point for finite differences."""
    rng = draw(nst.generators())
    n, d = draw(nst.sizes()), draw(nst.sizes())
    X, y, w = rng.standard_normal((n, d)), rng.standard_normal(n), rng.standard_normal(d)
    return X, y, w, np.asarray(rng.standard_normal()), draw(st.floats(0.0, 4.0))


@st.composite
def decaying_steps(draw: st.DrawFn) -> tuple:
    """Minibatches of |B| ≥ 2 where the decay is plain to see: |w_j|, |b| ∈ [0.5, 2],
    x, y ∈ [−1, 1], η ∈ [0.01, 1], λ ∈ [0.1, 4] (spec: the ratio of the difference to the bound)."""
    rng = draw(nst.generators())
    B, d = draw(nst.sizes(min_size=2)), draw(nst.sizes())
    X, y = rng.uniform(-1.0, 1.0, (B, d)), rng.uniform(-1.0, 1.0, B)
    w, b = away_from_zero(rng, (d,)), away_from_zero(rng, ())
    return X, y, w, b, draw(st.floats(0.01, 1.0)), draw(st.floats(0.1, 4.0))


@st.composite
def adam_steps(draw: st.DrawFn, *, weight_decay: float | None = None) -> tuple:
    """(w, grad, m, v, t, lr, β₁, β₂, ε, weight_decay) over the ranges torch accepts (ε > 0)."""
    shape = draw(st.lists(nst.sizes(), min_size=1, max_size=2).map(tuple))
    w, grad, m = (draw(arrays(shape)) for _ in range(3))
    v = draw(arrays(shape)) ** 2
    wd = draw(rates(1.0)) if weight_decay is None else weight_decay
    return (w, grad, m, v, draw(st.integers(1, 10_000)), draw(rates(1.0)),
            draw(st.floats(0.0, 0.999)), draw(st.floats(0.0, 0.9999)), draw(st.floats(1e-10, 1.0)),
            wd)


@st.composite
def gradient_histories(draw: st.DrawFn) -> tuple:
    """Adam steps with grad = m = 0, so that only weight decay moves w, and second moments v from
    10⁻⁸ to 10² across coordinates, both ends included (small and large gradient histories)."""
    rng = draw(nst.generators())
    size = draw(nst.sizes(min_size=2, max_size=16))
    zeros = np.zeros(size)
    v = rng.permutation(np.logspace(-8.0, 2.0, size))
    return (away_from_zero(rng, (size,)), zeros, zeros, v,
            draw(st.integers(1, 1000)), draw(st.floats(1e-3, 0.1)), draw(st.floats(0.5, 0.99)),
            draw(st.floats(0.9, 0.9999)), 1e-8, draw(st.floats(0.01, 1.0)))


@st.composite
def ridge_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    """(X, y, λ): n ≤ 12 samples of d ≤ 4 standard-normal features, y linear plus noise, λ ≥ 0.5
    (which keeps the condition number of the Hessian, and gradient descent's step count, small)."""
    rng = draw(nst.generators())
    n, d = draw(nst.sizes(max_size=12)), draw(nst.sizes(max_size=4))
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal() + 0.1 * rng.standard_normal(n)
    return X, y, draw(st.floats(0.5, 10.0))


# --- helpers: the implementation's steps ----------------------------------------------------------

def impl_sgd_step(impl: Implementation, w: np.ndarray, grad: np.ndarray, lr: float,
                  weight_decay: float) -> np.ndarray:
    return impl.array(impl.call("sgd_step", w, grad, lr, weight_decay), fn="sgd_step", what="w'",
                      shape=np.shape(w))


def batch_gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray,
                   lam: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """∇ of the batch-mean loss (+ λ/(2|B|)‖w‖²), as an autograd framework hands it to SGD."""
    dw, db = ref.l2_penalised_loss_grad(X, y, w, b, lam)
    return dw, np.asarray(db)


def impl_adam(impl: Implementation, fn: str, args: tuple) -> tuple[np.ndarray, ...]:
    out = impl.outputs(impl.call(fn, *args), fn=fn, names=("w'", "m'", "v'"))
    return tuple(impl.array(o, fn=fn, what=name, shape=np.shape(args[0]))
                 for o, name in zip(out, ("w'", "m'", "v'"), strict=True))


# --- regularisation.l2_penalty -------------------------------------------------------------------

@pytest.mark.spec("regularisation.l2_penalty")
@given(batch=regression_batches(), rng=nst.generators())
def test_reference_penalised_loss_gradient_matches_finite_differences(batch, rng):
    X, y, w, b, lam = batch
    check_gradient(ref.l2_penalised_loss, ref.l2_penalised_loss_vjp, (X, y, w, b, lam),
                   wrt=(0, 1, 2, 3), rng=rng, spec_id="regularisation.l2_penalty",
                   name="reference", call=f"l2_penalised_loss_vjp{describe_args((X, y, w, b, lam))}")


@pytest.mark.spec("regularisation.l2_penalty")
@pytest.mark.parametrize(("X", "y", "w", "lam", "message"), [
    (np.ones((2, 3)), np.ones(2), np.ones(3), -0.5, r"λ = -0.5 must be ≥ 0"),
    (np.ones((2, 3)), np.ones(3), np.ones(3), 0.5, r"y has shape \(3,\), but X has 2 rows"),
    (np.ones((2, 3)), np.ones(2), np.ones(2), 0.5, r"w has shape \(2,\), but X has 3 columns"),
])
def test_reference_penalised_loss_rejects_bad_arguments(X, y, w, lam, message):
    with pytest.raises(ValueError, match=message):
        ref.l2_penalised_loss(X, y, w, np.float64(0.0), lam)


# --- regularisation.sgd_step.torch ---------------------------------------------------------------

@pytest.mark.spec("regularisation.sgd_step.torch")
@given(w=arrays(st.lists(nst.sizes(), min_size=0, max_size=3).map(tuple)),
       data=st.data(), lr=rates(1.0), weight_decay=rates(1.0))
def test_sgd_step_computes_w_minus_lr_times_grad_plus_weight_decay_times_w(impl, w, data, lr,
                                                                           weight_decay):
    w = impl.cast(np.asarray(w, dtype=np.float64))
    grad = impl.cast(np.asarray(data.draw(arrays(w.shape), label="grad"), dtype=np.float64))
    got = impl_sgd_step(impl, w, grad, lr, weight_decay)
    assert_close(got, ref.sgd_step(w, grad, lr, weight_decay),
                 bounds.sgd_step(w, grad, lr, weight_decay, dtype=impl.dtype),
                 spec_id="regularisation.sgd_step.torch", impl=impl, what="w'",
                 call=f"sgd_step{describe_args((w, grad, lr, weight_decay))}")


@pytest.mark.spec("regularisation.sgd_step.torch")
@pytest.mark.parametrize(("grad", "lr", "weight_decay", "message"), [
    (np.ones(3), -0.1, 0.0, r"lr = -0.1 must be ≥ 0"),
    (np.ones(3), 0.1, float("nan"), r"weight_decay = nan must be ≥ 0"),
    (np.ones(2), 0.1, 0.0, r"grad has shape \(2,\), but w has shape \(3,\)"),
])
def test_reference_sgd_step_rejects_bad_arguments(grad, lr, weight_decay, message):
    with pytest.raises(ValueError, match=message):
        ref.sgd_step(np.ones(3), grad, lr, weight_decay)


# --- regularisation.sgd_step.seed000 -------------------------------------------------------------

@pytest.mark.spec("regularisation.sgd_step.seed000", "regularisation.sgd_step.torch")
@given(step=minibatch_steps())
def test_seed_step_is_torch_sgd_with_weight_decay_lambda_over_batch_size(impl, step):
    X, y, w, b = (impl.cast(np.asarray(a, dtype=np.float64)) for a in step[:4])
    eta, lam = step[4:]
    B = X.shape[0]
    dw, db = (impl.cast(np.asarray(g, dtype=np.float64)) for g in batch_gradient(X, y, w, b))
    want_w, want_b = ref.sgd_step_seed000(X, y, w, b, eta, lam)
    for what, p, g, wd, want in (("w'", w, dw, lam / B, want_w), ("b'", b, db, 0.0, want_b)):
        assert_close(impl_sgd_step(impl, p, g, eta, wd), want,
                     bounds.sgd_step(p, g, eta, wd, dtype=impl.dtype),
                     spec_id="regularisation.sgd_step.seed000", impl=impl,
                     what=f"{what} (lr = η, weight_decay = {'λ/|B|' if wd else '0 for the bias'})",
                     call=f"sgd_step{describe_args((p, g, eta, wd))}")


@pytest.mark.spec("regularisation.sgd_step.seed000", "regularisation.l2_penalty")
@given(step=minibatch_steps())
def test_seed_step_is_plain_sgd_on_the_l2_penalised_batch_loss(impl, step):
    X, y, w, b = (impl.cast(np.asarray(a, dtype=np.float64)) for a in step[:4])
    eta, lam = step[4:]
    B = X.shape[0]
    dw, db = batch_gradient(X, y, w, b)
    pw, pb = (impl.cast(np.asarray(g, dtype=np.float64)) for g in batch_gradient(X, y, w, b, lam))
    want_w, want_b = ref.sgd_step_seed000(X, y, w, b, eta, lam)
    # The bound's magnitude splits the penalised gradient into its two terms, |∂ℓ| + λ/|B|·|w|.
    for what, p, g, magnitude_args, want in (("w'", w, pw, (w, dw, eta, lam / B), want_w),
                                             ("b'", b, pb, (b, db, eta, 0.0), want_b)):
        assert_close(impl_sgd_step(impl, p, g, eta, 0.0), want,
                     bounds.sgd_step(*magnitude_args, dtype=impl.dtype),
                     spec_id="regularisation.sgd_step.seed000", impl=impl,
                     what=f"{what} (gradient of ℓ_B + λ/(2|B|)‖w‖², weight_decay = 0)",
                     call=f"sgd_step{describe_args((p, g, eta, 0.0))}")


@pytest.mark.spec("regularisation.sgd_step.seed000")
@given(step=minibatch_steps())
def test_seed_step_through_the_contract_decays_w_by_eta_lambda_over_batch_and_not_b(impl, step):
    X, y, w, b = (impl.cast(np.asarray(a, dtype=np.float64)) for a in step[:4])
    eta, lam = step[4:]
    got = impl.outputs(impl.call("sgd_step_seed000", X, y, w, b, eta, lam),
                       fn="sgd_step_seed000", names=("w'", "b'"))
    want = ref.sgd_step_seed000(X, y, w, b, eta, lam)
    for what, got_i, want_i, bound in zip(("w'", "b'"), got, want,
                                          bounds.sgd_step_seed000(X, y, w, b, eta, lam,
                                                                  dtype=impl.dtype),
                                          strict=True):
        assert_close(impl.array(got_i, fn="sgd_step_seed000", what=what, shape=np.shape(want_i)),
                     want_i, bound, spec_id="regularisation.sgd_step.seed000", impl=impl,
                     what=what, call=f"sgd_step_seed000{describe_args((X, y, w, b, eta, lam))}")


@pytest.mark.spec("regularisation.sgd_step.seed000")
@pytest.mark.parametrize("bug", [ref.decay_bias, ref.lambda_not_divided, ref.decay_sign],
                         ids=lambda f: f.__name__)
@given(step=decaying_steps())
def test_each_known_sgd_bug_fails_the_seed_step_check_even_in_float32(bug, step):
    X, y, w, b, eta, lam = step
    dw, db = batch_gradient(X, y, w, b)
    B = X.shape[0]
    outputs = zip(("w'", "b'"), bug(X, y, w, b, eta, lam), ref.sgd_step_seed000(X, y, w, b, eta, lam),
                  (bounds.sgd_step(w, dw, eta, lam / B, dtype=np.float32),
                   bounds.sgd_step(b, db, eta, 0.0, dtype=np.float32)),
                  strict=True)
    if not any(np.any(np.abs(got - want) > bound.atol) for _, got, want, bound in outputs):
        fail("regularisation.sgd_step.seed000", "reference",
             f"the known bug {bug.__doc__.split(' — ')[0]} is within the float32 bound of the seed "
             f"step, so the seed-step check cannot catch it",
             call=f"{bug.__name__}{describe_args((X, y, w, b, eta, lam))}")


# --- regularisation.sgd_step.textbook ------------------------------------------------------------

@pytest.mark.spec("regularisation.sgd_step.textbook", "regularisation.sgd_step.torch")
@given(step=minibatch_steps())
def test_textbook_step_is_torch_sgd_with_weight_decay_lambda(impl, step):
    X, y, w, b = (impl.cast(np.asarray(a, dtype=np.float64)) for a in step[:4])
    eta, lam = step[4:]
    dw, db = (impl.cast(np.asarray(g, dtype=np.float64)) for g in batch_gradient(X, y, w, b))
    want_w, want_b = ref.sgd_step_textbook(X, y, w, b, eta, lam)
    for what, p, g, wd, want in (("w'", w, dw, lam, want_w), ("b'", b, db, 0.0, want_b)):
        assert_close(impl_sgd_step(impl, p, g, eta, wd), want,
                     bounds.sgd_step(p, g, eta, wd, dtype=impl.dtype),
                     spec_id="regularisation.sgd_step.textbook", impl=impl,
                     what=f"{what} (lr = η, weight_decay = {'λ' if wd else '0 for the bias'})",
                     call=f"sgd_step{describe_args((p, g, eta, wd))}")


@pytest.mark.spec("regularisation.sgd_step.textbook", "regularisation.sgd_step.seed000")
@given(step=minibatch_steps(max_batch=1))
def test_textbook_and_seed_steps_are_bit_identical_for_a_batch_of_one(step):
    textbook = ref.sgd_step_textbook(*step)
    for what, got, want in zip(("w'", "b'"), textbook, ref.sgd_step_seed000(*step), strict=True):
        assert_close(got, want, tol.exact(want), spec_id="regularisation.sgd_step.textbook",
                     impl="reference", what=what, call=f"sgd_step_textbook{describe_args(step)}")


@pytest.mark.spec("regularisation.sgd_step.textbook", "regularisation.sgd_step.seed000")
@given(step=minibatch_steps())
def test_textbook_minus_seed_step_is_minus_eta_lambda_times_1_minus_1_over_B_times_w(step):
    X, y, w, b, eta, lam = step
    B = X.shape[0]
    dw, _ = batch_gradient(X, y, w, b)
    difference = ref.sgd_step_textbook(*step)[0] - ref.sgd_step_seed000(*step)[0]
    # Each side is one float64 step; the difference carries both of their errors.
    bound = (bounds.sgd_step(w, dw, eta, lam, dtype=np.float64)
             + bounds.sgd_step(w, dw, eta, lam / B, dtype=np.float64))
    assert_close(difference, -eta * lam * (1 - 1 / B) * w, bound,
                 spec_id="regularisation.sgd_step.textbook", impl="reference",
                 what="textbook w' − seed w'", call=f"sgd_step_textbook{describe_args(step)}")


@pytest.mark.spec("regularisation.sgd_step.textbook", "regularisation.sgd_step.seed000")
@given(step=decaying_steps())
def test_textbook_mapping_misses_the_seed_step_in_every_weight_when_batch_exceeds_1(impl, step):
    X, y, w, b = (impl.cast(np.asarray(a, dtype=np.float64)) for a in step[:4])
    eta, lam = step[4:]
    B = X.shape[0]
    dw, _ = (impl.cast(np.asarray(g, dtype=np.float64)) for g in batch_gradient(X, y, w, b))
    got = impl_sgd_step(impl, w, dw, eta, lam)
    want = ref.sgd_step_seed000(X, y, w, b, eta, lam)[0]
    bound = bounds.sgd_step(w, dw, eta, lam / B, dtype=impl.dtype)
    inside = np.abs(got - want) <= bound.atol
    if np.any(inside):
        j = int(np.argmax(inside))
        fail("regularisation.sgd_step.textbook", impl,
             f"with weight_decay = λ (the textbook convention) w'[{j}] = {got[j]!r} is within the "
             f"seed step's bound {bound.atol[j]:.3g} of {want[j]!r}, but the conventions differ by "
             f"ηλ(1 − 1/|B|)·|w_j| = {eta * lam * (1 - 1 / B) * abs(w[j]):.3g} with |B| = {B}",
             call=f"sgd_step{describe_args((w, dw, eta, lam))}")


# --- regularisation.adam_l2 and regularisation.adamw ---------------------------------------------

@pytest.mark.spec("regularisation.adam_l2")
@given(step=adam_steps())
def test_adam_step_adds_weight_decay_times_w_to_the_gradient(impl, step):
    args = tuple(impl.cast(np.asarray(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a for a in step)
    got = impl_adam(impl, "adam_step", args)
    for name, g, want, bound in zip(("w'", "m'", "v'"), got, ref.adam_step(*args),
                                    bounds.adam_step(*args, dtype=impl.dtype), strict=True):
        assert_close(g, want, bound, spec_id="regularisation.adam_l2", impl=impl, what=name,
                     call=f"adam_step{describe_args(args)}")


@pytest.mark.spec("regularisation.adamw")
@given(step=adam_steps())
def test_adamw_step_decays_w_by_lr_times_weight_decay_before_the_adam_update(impl, step):
    args = tuple(impl.cast(np.asarray(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a for a in step)
    got = impl_adam(impl, "adamw_step", args)
    for name, g, want, bound in zip(("w'", "m'", "v'"), got, ref.adamw_step(*args),
                                    bounds.adamw_step(*args, dtype=impl.dtype), strict=True):
        assert_close(g, want, bound, spec_id="regularisation.adamw", impl=impl, what=name,
                     call=f"adamw_step{describe_args(args)}")


@pytest.mark.spec("regularisation.adamw", "regularisation.adam_l2")
@given(step=adam_steps(weight_decay=0.0))
def test_adamw_without_weight_decay_is_adam(impl, step):
    args = tuple(impl.cast(np.asarray(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a for a in step)
    got = impl_adam(impl, "adamw_step", args)
    for name, g, want, bound in zip(("w'", "m'", "v'"), got, ref.adam_step(*args),
                                    bounds.adam_step(*args, dtype=impl.dtype), strict=True):
        assert_close(g, want, bound, spec_id="regularisation.adamw", impl=impl,
                     what=f"{name} (weight_decay = 0: AdamW must equal Adam)",
                     call=f"adamw_step{describe_args(args)}")


@pytest.mark.spec("regularisation.adamw", "regularisation.adam_l2")
@given(step=adam_steps(weight_decay=0.0))
def test_reference_adam_and_adamw_are_bit_identical_without_weight_decay(step):
    for name, got, want in zip(("w'", "m'", "v'"), ref.adamw_step(*step), ref.adam_step(*step),
                               strict=True):
        assert_close(got, want, tol.exact(want), spec_id="regularisation.adamw", impl="reference",
                     what=name, call=f"adamw_step{describe_args(step)}")


@pytest.mark.spec("regularisation.adamw")
@given(step=gradient_histories())
def test_adamw_decays_every_weight_by_1_minus_lr_wd_whatever_its_gradient_history(impl, step):
    args = tuple(impl.cast(np.asarray(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a for a in step)
    w, _, _, v, _, lr, _, beta2, _, wd = args
    got = impl_adam(impl, "adamw_step", args)
    # grad = m = 0: the decay alone moves w and never enters the moments.
    wants = ((1 - lr * wd) * w, np.zeros_like(w), beta2 * v)
    for name, g, want, bound in zip(("w'", "m'", "v'"), got, wants,
                                    bounds.adamw_step(*args, dtype=impl.dtype), strict=True):
        assert_close(g, want, bound, spec_id="regularisation.adamw", impl=impl,
                     what=f"{name} (grad = m = 0: w' = (1 − lr·λ)·w, m' = 0, v' = β₂v)",
                     call=f"adamw_step{describe_args(args)}")


@pytest.mark.spec("regularisation.adam_l2")
@given(step=gradient_histories())
def test_adam_l2_decays_weights_with_a_larger_gradient_history_less(impl, step):
    args = tuple(impl.cast(np.asarray(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a for a in step)
    w, _, _, v, t, lr, beta1, beta2, eps, wd = args
    got = impl_adam(impl, "adam_step", args)
    # grad = m = 0: the decay term λw is the whole gradient, so it is rescaled per coordinate by
    # ρ = (1 − β₁)/((1 − β₁ᵗ)(√v̂ + ε)), which falls as the history v grows.
    v_new = beta2 * v + (1 - beta2) * (wd * w) ** 2
    ρ = (1 - beta1) / ((1 - beta1**t) * (np.sqrt(v_new / (1 - beta2**t)) + eps))
    wants = ((1 - lr * wd * ρ) * w, (1 - beta1) * wd * w, v_new)
    for name, g, want, bound in zip(("w'", "m'", "v'"), got, wants,
                                    bounds.adam_step(*args, dtype=impl.dtype), strict=True):
        assert_close(g, want, bound, spec_id="regularisation.adam_l2", impl=impl,
                     what=f"{name} (grad = m = 0: w' = (1 − lr·λ·ρ(v))·w)",
                     call=f"adam_step{describe_args(args)}")


@pytest.mark.spec("regularisation.adamw")
@given(step=gradient_histories())
def test_adam_l2_as_adamw_bug_fails_the_decoupled_decay_check_even_in_float32(step):
    w, _, _, _, _, lr, _, _, _, wd = step
    got = ref.adam_l2_as_adamw(*step)[0]
    bound = bounds.adamw_step(*step, dtype=np.float32)[0]
    if not np.any(np.abs(got - (1 - lr * wd) * w) > bound.atol):
        fail("regularisation.adamw", "reference",
             "the known bug regularisation.bug.adam_l2_as_adamw decays every weight by "
             "1 − lr·λ within the float32 bound, so the decoupled-decay check cannot catch it",
             call=f"adam_l2_as_adamw{describe_args(step)}")


@pytest.mark.spec("regularisation.adam_l2", "regularisation.adamw")
@pytest.mark.parametrize(("change", "message"), [
    ({"t": 0}, r"t = 0 must be an integer ≥ 1"),
    ({"beta1": 1.0}, r"beta1 = 1.0 must be in \[0, 1\)"),
    ({"v": -np.ones(3)}, r"v holds a negative value -1.0"),
    ({"m": np.ones(2)}, r"m has shape \(2,\), but w has shape \(3,\)"),
])
def test_reference_adam_steps_reject_bad_arguments(change, message):
    args = {"w": np.ones(3), "grad": np.ones(3), "m": np.zeros(3), "v": np.zeros(3), "t": 1,
            "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01} | change
    for step in (ref.adam_step, ref.adamw_step):
        with pytest.raises(ValueError, match=message):
            step(**args)


# --- regularisation.ridge ------------------------------------------------------------------------

@pytest.mark.spec("regularisation.ridge")
@given(problem=ridge_problems())
def test_ridge_closed_form_equals_gradient_descent_run_to_convergence(problem):
    X, y, lam = problem
    w, b = ref.ridge(X, y, lam)
    w_gd, b_gd = ref.ridge_by_gradient_descent(X, y, lam, rtol=GD_RTOL)
    tau = GD_RTOL * bounds.ridge_gradient_norm_and_rounding(X, y, lam, np.zeros_like(w), 0.0)[0]
    _, rounding = bounds.ridge_gradient_norm_and_rounding(X, y, lam, w_gd, b_gd)
    allowed = bounds.ridge_distance(X, y, lam, np.r_[w, b], gradient=tau, rounding=rounding)
    distance = float(np.linalg.norm(np.r_[w - w_gd, b - b_gd]))
    if not distance <= allowed.distance:
        fail("regularisation.ridge", "reference",
             f"‖θ_closed − θ_GD‖₂ = {distance:.3g} exceeds {allowed.distance:.3g} = closed-form "
             f"rounding {allowed.closed:.3g} + (τ = {tau:.3g} + gradient rounding {rounding:.3g})/μ, "
             f"μ = {allowed.mu:.3g}; θ_closed = {np.r_[w, b]}, θ_GD = {np.r_[w_gd, b_gd]}",
             call=f"ridge{describe_args((X, y, lam))}")


@pytest.mark.spec("regularisation.ridge")
@given(problem=ridge_problems())
def test_ridge_closed_form_equals_lstsq_on_the_augmented_system(problem):
    X, y, lam = problem
    n, d = X.shape
    # ‖[X 1; √λ·I 0]·(w, b) − (y, 0)‖² = ‖Xw + b − y‖² + λ‖w‖² = 2n·(ℓ + λ/(2n)‖w‖²).
    M = np.block([[X, np.ones((n, 1))], [np.sqrt(lam) * np.eye(d), np.zeros((d, 1))]])
    θ_lstsq = np.linalg.lstsq(M, np.r_[y, np.zeros(d)], rcond=None)[0]
    w, b = ref.ridge(X, y, lam)
    grad_norm, rounding = bounds.ridge_gradient_norm_and_rounding(X, y, lam, θ_lstsq[:-1],
                                                                  θ_lstsq[-1])
    allowed = bounds.ridge_distance(X, y, lam, np.r_[w, b], gradient=grad_norm, rounding=rounding)
    distance = float(np.linalg.norm(np.r_[w, b] - θ_lstsq))
    if not distance <= allowed.distance:
        fail("regularisation.ridge", "reference",
             f"‖θ_closed − θ_lstsq‖₂ = {distance:.3g} exceeds {allowed.distance:.3g} = closed-form "
             f"rounding {allowed.closed:.3g} + (‖∇L(θ_lstsq)‖ = {grad_norm:.3g} + rounding "
             f"{rounding:.3g})/μ; "
             f"θ_closed = {np.r_[w, b]}, θ_lstsq = {θ_lstsq}",
             call=f"ridge{describe_args((X, y, lam))}")


@pytest.mark.spec("regularisation.ridge")
@given(problem=ridge_problems().filter(lambda p: p[0].shape[0] >= 2))
def test_ridge_with_lambda_over_n_bug_is_not_the_minimiser(problem):
    X, y, lam = problem
    w, b = ref.ridge_lambda_over_n(X, y, lam)
    grad_norm, rounding = bounds.ridge_gradient_norm_and_rounding(X, y, lam, w, b)
    allowed = bounds.ridge_distance(X, y, lam, np.r_[w, b], gradient=grad_norm, rounding=rounding)
    if not grad_norm > allowed.minimiser_gradient:
        fail("regularisation.ridge", "reference",
             f"the known bug regularisation.bug.ridge_lambda_over_n has ‖∇L‖ = {grad_norm:.3g}, "
             f"within rounding of a minimiser, so the ridge checks cannot catch it",
             call=f"ridge_lambda_over_n{describe_args((X, y, lam))}")


@pytest.mark.spec("regularisation.ridge")
@pytest.mark.parametrize("lam", [0.0, -1.0, float("nan")])
def test_reference_ridge_rejects_a_lambda_that_is_not_positive(lam):
    for solve in (ref.ridge, lambda X, y, lam: ref.ridge_by_gradient_descent(X, y, lam, rtol=1e-6)):
        with pytest.raises(ValueError, match=r"λ = .* must be > 0"):
            solve(np.ones((3, 2)), np.ones(3), lam)
