"""Checks of spec/linear.md."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnspec.checks.bounds import linear as bounds
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import assert_close
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import describe_args
from nnspec.reference import linear as ref


@st.composite
def affine_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    lead = draw(st.lists(nst.sizes(max_size=4), min_size=1, max_size=2))
    n_in, n_out = draw(nst.sizes()), draw(nst.sizes())
    x = draw(nst.float_arrays((*lead, n_in)))
    W = draw(nst.float_arrays((n_out, n_in)))
    b = draw(nst.optional(nst.float_arrays((n_out,))))
    return x, W, b


@pytest.mark.spec("linear.affine")
@given(problem=affine_problems())
def test_linear_computes_x_wt_plus_b(impl, problem):
    x, W, b = (impl.cast(a) for a in problem)
    got = impl.array(impl.call("linear", x, W, b), fn="linear", what="y",
                     shape=(*x.shape[:-1], W.shape[0]))
    assert_close(got, ref.affine(x, W, b), bounds.linear(x, W, b, dtype=impl.dtype),
                 spec_id="linear.affine", impl=impl,
                 call=f"linear{describe_args((x, W, b))}")


@pytest.mark.spec("linear.affine")
@given(problem=affine_problems())
def test_linear_gradients_match_reference(impl, problem):
    x, W, b = (impl.cast(a) for a in problem)
    g = np.ones((*x.shape[:-1], W.shape[0]))
    got = impl.outputs(impl.call("vjp_linear", g, x, W, b), fn="vjp_linear",
                       names=("dx", "dW", "db"))
    for name, got_i, want_i, bound in zip(("dx", "dW", "db"), got, ref.affine_vjp(g, x, W, b),
                                          bounds.vjp_linear(g, x, W, b, dtype=impl.dtype),
                                          strict=True):
        if want_i is None:
            continue
        arr = impl.array(got_i, fn="vjp_linear", what=name, shape=want_i.shape)
        assert_close(arr, want_i, bound, spec_id="linear.affine", impl=impl, what=name,
                     call=f"vjp_linear{describe_args((g, x, W, b))}")


@pytest.mark.spec("linear.affine")
@given(problem=affine_problems(), rng=nst.generators())
def test_reference_affine_gradient_matches_finite_differences(problem, rng):
    x, W, b = problem
    wrt = (0, 1) if b is None else (0, 1, 2)
    check_gradient(ref.affine, ref.affine_vjp, (x, W, b), wrt=wrt, rng=rng,
                   spec_id="linear.affine", name="reference",
                   call=f"affine_vjp{describe_args((x, W, b))}")
