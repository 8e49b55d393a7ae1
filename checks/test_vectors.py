"""The exported test vectors (``nnspec vectors``) as a conformance check of their own.

The vectors are exported once per module into a temporary folder and read back as a C++ or Rust
user would, from JSON and ``numpy.load(..., allow_pickle=False)``; every implementation under
test must hold every value case within its stored bound for the implementation's dtype. Each check
is marked with the ids of its family, for the traceability table, but one case counts for its
own ``spec_id`` alone (checks/conftest.py records it; nnspec/conformance.py). The tests of the
export itself are in checks/meta/test_vectors.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnspec import vectors
from nnspec.checks.harness.failure import Failure, NonConformance, assert_close, fail, none_of
from nnspec.checks.harness.implementation import Implementation, ImplementationError, describe_args


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors")
    vectors.export(out, seed=0)
    return out


def value_cases(*families: str) -> list:
    """pytest parameters (spec id, function, case) of the value cases of ``families``."""
    return [pytest.param(sid, fn, case, id=f"{sid}/{fn}.{case}")
            for sid, fn, case in vectors.planned() if sid.split(".")[0] in families]


def case_path(directory: Path, spec_id: str, function: str, case: str) -> Path:
    return directory / spec_id / f"{function}.{case}.json"


def returned(impl: Implementation, case: vectors.VectorCase, out: Any, path: tuple[int, ...]) -> Any:
    """The output at ``path`` of what the implementation returned, or a contract error."""
    __tracebackhide__ = True
    for depth, i in enumerate(path):
        if not isinstance(out, tuple | list) or len(out) <= i:
            raise ImplementationError(Failure(
                spec_id=case.spec_id, implementation=impl.name, function=case.function,
                message=f"{impl.name}.{case.function}() returned {type(out).__name__} where the "
                        f"contract has a tuple or list with an item at {list(path[:depth + 1])} "
                        f"({case.document['signature']})"))
        out = out[i]
    return out


def check_case(impl: Implementation, case: vectors.VectorCase) -> None:
    """Call the implementation on the case and hold every output to its stored bound."""
    __tracebackhide__ = True
    args = case.call_args()
    call = (f"{case.function}{describe_args(args)} from the vectors "
            f"{case.spec_id}/{case.function}.{case.case}")
    out = impl.call(case.function, *args)
    for o in case.outputs:
        got = returned(impl, case, out, o.path)
        if o.expected is None:
            if got is not None:
                fail(case.spec_id, impl, f"{case.function}() returned {type(got).__name__} for "
                     f"{o.name}, but the contract returns None there (an absent bias)", call=call)
            continue
        arr = impl.array(got, fn=case.function, what=o.name, shape=o.expected.shape,
                         allow_nonfinite=not np.all(np.isfinite(o.expected)))
        assert_close(arr, o.expected, case.bound(o, impl.dtype), spec_id=case.spec_id, impl=impl,
                     what=o.name, call=call)


def check_vectors(impl: Implementation, directory: Path, spec_id: str, function: str,
                  case: str) -> None:
    """The case, or for a case that accepts variants, the same case of one of them."""
    __tracebackhide__ = True
    if impl.dtype.name not in ("float32", "float64"):
        pytest.skip(f"the vectors hold bounds for float32 and float64 only, not {impl.dtype}")
    loaded = vectors.load_case(case_path(directory, spec_id, function, case))
    failures = []
    for candidate in [loaded] + [vectors.load_case(directory / p)
                                 for p in loaded.document.get("accepts_instead", [])]:
        try:
            check_case(impl, candidate)
        except NonConformance as exc:
            failures.append(exc.failure)
        else:
            return
    if len(failures) == 1:
        raise NonConformance(failures[0])
    raise NonConformance(none_of("conforms to none of the variants the vectors accept:", failures))


@pytest.mark.spec("linear.affine")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("linear"))
def test_linear_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("activations.threshold", "activations.sigmoid", "activations.tanh",
                  "activations.relu", "activations.softplus",
                  "activations.softplus.torch_threshold", "activations.prelu",
                  "activations.maxout")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("activations"))
def test_activation_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("losses.softmax", "losses.log_softmax", "losses.cross_entropy",
                  "losses.sequence_mean", "losses.sequence_sum")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("losses"))
def test_loss_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook", "gru.layer")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("gru"))
def test_gru_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("lstm"))
def test_lstm_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("rnn.cell", "rnn.layer")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("rnn"))
def test_rnn_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("regularisation.sgd_step.torch", "regularisation.adam_l2", "regularisation.adamw")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("regularisation"))
def test_optimiser_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("stability.clip_grad_norm", "stability.clip_grad_value")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("stability"))
def test_clipping_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)


@pytest.mark.spec("dropout.inverted")
@pytest.mark.parametrize(("spec_id", "function", "case"), value_cases("dropout"))
def test_dropout_vectors_hold_for_the_implementation(impl, exported, spec_id, function, case):
    check_vectors(impl, exported, spec_id, function, case)
