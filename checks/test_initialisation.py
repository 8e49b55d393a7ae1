"""Checks of spec/initialisation.md.

An initialiser's output is a sample: the contract's initialisers are checked by claims that hold
for every draw (shape, bound) and by hypothesis tests at false-alarm rate stats.ALPHA (KS against
the exact law, z-test of the variance). The symmetry claim is checked on the reference MLP.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as dist

from nnspec.checks.bounds import initialisation as bounds
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import designs, stats
from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.designs import LINEAR_IN, LINEAR_OUT, RNN_HIDDEN, RNN_INPUT
from nnspec.checks.harness.failure import assert_close, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.reference import initialisation as ref

XAVIER_CASES = [pytest.param(shape, gain, id=name) for shape, gain, name in designs.XAVIER_CASES]

weight_shapes = st.lists(nst.sizes(), min_size=2, max_size=4).map(tuple)
gains = st.floats(0.1, 5.0)


def assert_within_bound(w: np.ndarray, bound: float, *, impl: Implementation, spec_id: str,
                        what: str, call: str) -> None:
    """Fail unless every |w| ≤ bound, up to the rounding of the bound in DTYPE (the spec's
    bound tolerance: the bound is a square root and a few products, tol.elementwise)."""
    __tracebackhide__ = True
    slack = bounds.limit_rounding(bound, dtype=impl.dtype)
    limit = bound + float(slack.atol)
    outside = np.abs(w) > limit
    if np.any(outside):
        worst = np.unravel_index(int(np.argmax(np.abs(w))), w.shape)
        fail(spec_id, impl,
             f"{what}{[int(i) for i in worst]} was {float(w[worst])!r}, but should lie in "
             f"[−{bound!r}, {bound!r}] (|{what}| ≤ {limit!r} from bound + {slack.rule}); "
             f"{int(outside.sum())} of {w.size} samples outside", call=call)


def uniform_cdf(bound: float) -> object:
    return dist.uniform(loc=-bound, scale=2 * bound).cdf


# initialisation.fans ----------------------------------------------------------------------


@pytest.mark.spec("initialisation.fans")
@pytest.mark.parametrize(("shape", "expected"), [
    ((10, 20), (20, 10)),                 # nn.Linear(20, 10)
    ((64, 3, 7, 7), (147, 3136)),         # nn.Conv2d(3, 64, 7)
    ((8, 4, 3), (12, 24)),                # nn.Conv1d(4, 8, 3)
    ((2, 5, 1, 1, 1), (5, 2)),            # a 1×1×1 Conv3d is a linear map
])
def test_fans_match_worked_examples(shape, expected):
    got = np.array(ref.fans(shape), dtype=np.float64)
    assert_close(got, np.array(expected, dtype=np.float64), tol.exact(got),
                 spec_id="initialisation.fans", impl="reference", what="(fan_in, fan_out)",
                 call=f"fans({shape})")


@pytest.mark.spec("initialisation.fans")
@given(out_features=nst.sizes(), in_features=nst.sizes())
def test_fans_of_a_linear_weight_are_its_in_and_out_features(out_features, in_features):
    got = np.array(ref.fans((out_features, in_features)), dtype=np.float64)
    want = np.array([in_features, out_features], dtype=np.float64)
    assert_close(got, want, tol.exact(want), spec_id="initialisation.fans", impl="reference",
                 what="(fan_in, fan_out)", call=f"fans({(out_features, in_features)})")


@pytest.mark.spec("initialisation.fans")
@given(shape=weight_shapes)
def test_fans_times_the_other_channel_count_is_the_number_of_weights(shape):
    fan_in, fan_out = ref.fans(shape)
    got = np.array([fan_in * shape[0], fan_out * shape[1]], dtype=np.float64)
    want = np.full(2, float(np.prod(shape)))
    assert_close(got, want, tol.exact(want), spec_id="initialisation.fans", impl="reference",
                 what="[fan_in·out, fan_out·in]", call=f"fans({shape})")


@pytest.mark.spec("initialisation.fans")
@pytest.mark.parametrize("shape", [(), (5,)])
def test_fans_reject_fewer_than_two_dimensions(shape):
    with pytest.raises(ValueError, match=r"at least 2 dimensions"):
        ref.fans(shape)


# initialisation.xavier_uniform / xavier_normal ----------------------------------------------


@pytest.mark.spec("initialisation.xavier_uniform")
@given(shape=weight_shapes, gain=gains, rng=nst.generators())
def test_xavier_uniform_returns_the_shape_within_the_bound(impl, shape, gain, rng):
    call = f"xavier_uniform{describe_args((shape, gain, rng))}"
    w = impl.array(impl.call("xavier_uniform", shape, gain, rng), fn="xavier_uniform", what="W",
                   shape=shape)
    assert_within_bound(w, ref.xavier_uniform_bound(*ref.fans(shape), gain), impl=impl,
                        spec_id="initialisation.xavier_uniform", what="W", call=call)


@pytest.mark.spec("initialisation.xavier_uniform")
@pytest.mark.parametrize(("shape", "gain"), XAVIER_CASES)
def test_xavier_uniform_samples_are_uniform(impl, rng, shape, gain):
    w = impl.array(impl.call("xavier_uniform", shape, gain, rng), fn="xavier_uniform", what="W",
                   shape=shape)
    bound = ref.xavier_uniform_bound(*ref.fans(shape), gain)
    stats.distributed_as(w, uniform_cdf(bound), spec_id="initialisation.xavier_uniform",
                         impl=impl, claim=f"'xavier_uniform({shape}, gain={gain:.4g}) is "
                                          f"U(−{bound:.6g}, {bound:.6g})' (KS)")


@pytest.mark.spec("initialisation.xavier_uniform")
@pytest.mark.parametrize(("shape", "gain"), XAVIER_CASES)
def test_xavier_uniform_variance_is_gain_squared_times_2_over_fan_sum(impl, rng, shape, gain):
    w = impl.array(impl.call("xavier_uniform", shape, gain, rng), fn="xavier_uniform", what="W",
                   shape=shape)
    bound = ref.xavier_uniform_bound(*ref.fans(shape), gain)
    # For U(−r, r): E[W²] = r²/3 and Var[W²] = E[W⁴] − (E[W²])² = r⁴/5 − r⁴/9 = 4r⁴/45.
    stats.mean_equals(w**2, bound**2 / 3, 4 * bound**4 / 45,
                      spec_id="initialisation.xavier_uniform", impl=impl,
                      claim=f"'Var W = gain²·2/(fan_in + fan_out) = {bound**2 / 3:.6g}' for "
                            f"xavier_uniform({shape}, gain={gain:.4g})")


@pytest.mark.spec("initialisation.xavier_normal")
@given(shape=weight_shapes, gain=gains, rng=nst.generators())
def test_xavier_normal_returns_the_requested_shape(impl, shape, gain, rng):
    impl.array(impl.call("xavier_normal", shape, gain, rng), fn="xavier_normal", what="W",
               shape=shape)


@pytest.mark.spec("initialisation.xavier_normal")
@pytest.mark.parametrize(("shape", "gain"), XAVIER_CASES)
def test_xavier_normal_samples_are_normal(impl, rng, shape, gain):
    w = impl.array(impl.call("xavier_normal", shape, gain, rng), fn="xavier_normal", what="W",
                   shape=shape)
    σ = ref.xavier_normal_std(*ref.fans(shape), gain)
    stats.distributed_as(w, dist.norm(scale=σ).cdf, spec_id="initialisation.xavier_normal",
                         impl=impl, claim=f"'xavier_normal({shape}, gain={gain:.4g}) is "
                                          f"N(0, {σ:.6g}²)' (KS)")


@pytest.mark.spec("initialisation.xavier_normal")
@pytest.mark.parametrize(("shape", "gain"), XAVIER_CASES)
def test_xavier_normal_variance_is_gain_squared_times_2_over_fan_sum(impl, rng, shape, gain):
    w = impl.array(impl.call("xavier_normal", shape, gain, rng), fn="xavier_normal", what="W",
                   shape=shape)
    σ = ref.xavier_normal_std(*ref.fans(shape), gain)
    # For N(0, σ²): E[W²] = σ² and Var[W²] = 3σ⁴ − σ⁴ = 2σ⁴.
    stats.mean_equals(w**2, σ**2, 2 * σ**4, spec_id="initialisation.xavier_normal", impl=impl,
                      claim=f"'Var W = gain²·2/(fan_in + fan_out) = {σ**2:.6g}' for "
                            f"xavier_normal({shape}, gain={gain:.4g})")


@pytest.mark.spec("initialisation.xavier_uniform", "initialisation.xavier_normal")
@pytest.mark.parametrize("gain", [0.0, -1.0])
def test_reference_xavier_rejects_a_non_positive_gain(gain):
    with pytest.raises(ValueError, match=r"gain = "):
        ref.xavier_uniform((3, 4), gain, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"gain = "):
        ref.xavier_normal((3, 4), gain, np.random.default_rng(0))


# initialisation.torch_default_linear / torch_default_rnn --------------------------------------


def linear_parameters(impl: Implementation, out_features: int, in_features: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    fn = "torch_default_linear"
    w, b = impl.outputs(impl.call(fn, out_features, in_features, rng), fn=fn, names=("w", "b"))
    return {"w": impl.array(w, fn=fn, what="w", shape=(out_features, in_features)),
            "b": impl.array(b, fn=fn, what="b", shape=(out_features,))}


RNN_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh")


def rnn_parameters(impl: Implementation, kind: str, input_size: int, hidden_size: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    fn = "torch_default_rnn"
    rows = ref.GATES[kind] * hidden_size
    shapes = ((rows, input_size), (rows, hidden_size), (rows,), (rows,))
    got = impl.outputs(impl.call(fn, kind, input_size, hidden_size, rng), fn=fn, names=RNN_NAMES)
    return {name: impl.array(a, fn=fn, what=name, shape=s)
            for name, a, s in zip(RNN_NAMES, got, shapes, strict=True)}


@pytest.mark.spec("initialisation.torch_default_linear")
@given(out_features=nst.sizes(), in_features=nst.sizes(), rng=nst.generators())
def test_torch_default_linear_returns_shapes_within_the_bound(impl, out_features, in_features,
                                                              rng):
    call = f"torch_default_linear{describe_args((out_features, in_features, rng))}"
    for name, a in linear_parameters(impl, out_features, in_features, rng).items():
        assert_within_bound(a, ref.torch_default_linear_bound(in_features), impl=impl,
                            spec_id="initialisation.torch_default_linear", what=name, call=call)


@pytest.mark.spec("initialisation.torch_default_linear")
@pytest.mark.parametrize("name", ["w", "b"])
def test_torch_default_linear_parameters_are_uniform(impl, rng, name):
    a = linear_parameters(impl, LINEAR_OUT, LINEAR_IN, rng)[name]
    bound = ref.torch_default_linear_bound(LINEAR_IN)
    stats.distributed_as(a, uniform_cdf(bound), spec_id="initialisation.torch_default_linear",
                         impl=impl, claim=f"'{name} of nn.Linear({LINEAR_IN}, {LINEAR_OUT}) is "
                                          f"U(±1/√{LINEAR_IN})' (KS)")


@pytest.mark.spec("initialisation.torch_default_rnn")
@given(kind=st.sampled_from(sorted(ref.GATES)), input_size=nst.sizes(),
       hidden_size=nst.sizes(), rng=nst.generators())
def test_torch_default_rnn_returns_shapes_within_the_bound(impl, kind, input_size, hidden_size,
                                                           rng):
    call = f"torch_default_rnn{describe_args((kind, input_size, hidden_size, rng))}"
    for name, a in rnn_parameters(impl, kind, input_size, hidden_size, rng).items():
        assert_within_bound(a, ref.torch_default_rnn_bound(hidden_size), impl=impl,
                            spec_id="initialisation.torch_default_rnn", what=name, call=call)


@pytest.mark.spec("initialisation.torch_default_rnn")
@pytest.mark.parametrize("kind", sorted(ref.GATES))
@pytest.mark.parametrize("group", [("w_ih", "w_hh"), ("b_ih", "b_hh")], ids=["weights", "biases"])
def test_torch_default_rnn_parameters_are_uniform(impl, rng, kind, group):
    params = rnn_parameters(impl, kind, RNN_INPUT, RNN_HIDDEN, rng)
    # Tensors of one law are pooled; weights and biases apart, so that biases started at 0
    # (Keras' convention) are not hidden among 100 times as many weights. A tensor whose
    # bound is too large is caught by the bound check.
    pooled = np.concatenate([params[name].ravel() for name in group])
    bound = ref.torch_default_rnn_bound(RNN_HIDDEN)
    stats.distributed_as(pooled, uniform_cdf(bound), spec_id="initialisation.torch_default_rnn",
                         impl=impl, claim=f"'{' and '.join(group)} of a {kind} with input_size "
                                          f"{RNN_INPUT}, hidden_size {RNN_HIDDEN} are "
                                          f"U(±1/√{RNN_HIDDEN})' (KS)")


# initialisation.symmetry ------------------------------------------------------------------


@st.composite
def mlp_problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, float, int]:
    n, d, h = draw(nst.sizes()), draw(nst.sizes(max_size=6)), draw(nst.sizes(min_size=2,
                                                                              max_size=6))
    X = draw(nst.float_arrays((n, d), magnitude=4.0))
    y = draw(nst.float_arrays((n,), magnitude=4.0))
    return X, y, h, draw(st.floats(1e-3, 0.5)), draw(st.integers(0, 10))


def assert_units_equal(W: np.ndarray, b: np.ndarray, w_o: np.ndarray, *, call: str) -> None:
    __tracebackhide__ = True
    for name, got, unit in (("W", W, W[:, :1]), ("b", b, b[:1]), ("w_o", w_o, w_o[:1])):
        want = np.broadcast_to(unit, got.shape)
        assert_close(got, want, tol.exact(want), spec_id="initialisation.symmetry",
                     impl="reference", what=f"{name} (every hidden unit equal to unit 0)",
                     call=call)


@pytest.mark.spec("initialisation.symmetry")
@given(problem=mlp_problems(), w=nst.float_arrays(st.just(6), magnitude=1.0),
       c=st.tuples(nst.reals(magnitude=1.0), nst.reals(magnitude=1.0), nst.reals(magnitude=1.0)))
def test_equal_hidden_units_stay_equal_under_sgd(problem, w, c):
    X, y, h, lr, steps = problem
    β, v, b_o = c
    W0 = np.repeat(w[:X.shape[1], None], h, axis=1)
    params = ref.mlp_sgd(X, y, (W0, np.full(h, β), np.full(h, v), b_o), lr, steps)
    assert_units_equal(*params[:3], call=f"mlp_sgd{describe_args((X, y, W0, lr, steps))}")


@pytest.mark.spec("initialisation.symmetry", "initialisation.xavier_uniform")
@given(problem=mlp_problems(), rng=nst.generators())
def test_random_initialisation_breaks_the_symmetry(problem, rng):
    X, y, h, lr, steps = problem
    W0 = ref.xavier_uniform((h, X.shape[1]), 1.0, rng).T
    W, *_ = ref.mlp_sgd(X, y, (W0, np.zeros(h), np.full(h, 0.5), 0.0), lr, steps)
    for i in range(h):
        for j in range(i):
            if np.array_equal(W[:, i], W[:, j]):
                fail("initialisation.symmetry", "reference",
                     f"hidden units {j} and {i} started different but are equal after {steps} "
                     f"steps: W[:, {i}] = {W[:, i]}",
                     call=f"mlp_sgd{describe_args((X, y, W0, lr, steps))}")


@pytest.mark.spec("initialisation.symmetry")
@given(problem=mlp_problems(), rng=nst.generators())
def test_reference_mlp_gradient_matches_finite_differences(problem, rng):
    X, y, h, _, _ = problem
    args = (X, y, rng.standard_normal((X.shape[1], h)), rng.standard_normal(h),
            rng.standard_normal(h), float(rng.standard_normal()))
    check_gradient(ref.mlp_loss, ref.mlp_loss_vjp, args, wrt=(2, 3, 4, 5), rng=rng,
                   spec_id="initialisation.symmetry", name="reference",
                   call=f"mlp_loss_vjp{describe_args(args)}")
