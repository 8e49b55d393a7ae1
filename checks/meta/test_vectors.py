"""Checks of the exported test vectors (nnspec/vectors.py, ``nnspec vectors``).

The vectors are exported once per module into a temporary folder and read back as a C++ or Rust
user would, from JSON and ``numpy.load(..., allow_pickle=False)``. They must reproduce the
reference bit for bit, hold every implementation under test within their stored bounds (which
makes them a conformance check of their own), agree with the bounds the checks compute, and tell
apart what they claim to tell apart: the GRU variants and the LSTM gate orders.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from nnspec import speclib, vectors
from nnspec.checks import test_activations as checks_activations
from nnspec.checks import test_linear as checks_linear
from nnspec.checks import test_losses as checks_losses
from nnspec.checks import test_stability as checks_stability
from nnspec.checks.harness.failure import NonConformance, assert_close, fail
from nnspec.checks.harness.implementation import Implementation, ImplementationError, describe_args
from nnspec.checks.test_lstm import WRONG_CELLS
from nnspec.implementations import reference as contract_reference
from nnspec.reference import initialisation as ref_initialisation


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors")
    vectors.export(out, seed=0)
    return out


def value_cases(*families: str) -> list:
    return [pytest.param(sid, fn, case, id=f"{sid}/{fn}.{case}")
            for sid, fn, case in vectors.planned() if sid.split(".")[0] in families]


def cases_of(spec_id: str, function: str) -> list[str]:
    return [case for sid, fn, case in vectors.planned() if (sid, fn) == (spec_id, function)]


def case_path(directory: Path, spec_id: str, function: str, case: str) -> Path:
    return directory / spec_id / f"{function}.{case}.json"


def returned(impl: Implementation, case: vectors.VectorCase, out: Any, path: tuple[int, ...]) -> Any:
    """The output at ``path`` of what the implementation returned, or a contract error."""
    __tracebackhide__ = True
    for depth, i in enumerate(path):
        if not isinstance(out, tuple | list) or len(out) <= i:
            raise ImplementationError(
                f"{impl.name}.{case.function}() returned {type(out).__name__} where the contract "
                f"has a tuple or list with an item at {list(path[:depth + 1])} "
                f"({case.document['signature']})")
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
            failures.append(str(exc))
        else:
            return
    if len(failures) == 1:
        raise NonConformance(failures[0])
    raise NonConformance("conforms to none of the variants the vectors accept:\n"
                         + "\n".join(failures))


# ---- the export reads back and reproduces the reference ---------------------------------------

def test_every_case_reloads_without_pickle_and_recomputes_bit_for_bit(exported):
    index = vectors.load_index(exported)
    values = [c for c in index["cases"] if c["kind"] == "values"]
    assert len(values) == len(vectors.planned())
    for entry in values:
        case = vectors.load_case(exported / entry["json"])
        with np.load(exported / entry["npz"], allow_pickle=False) as npz:
            kinds = {key: npz[key].dtype.kind for key in npz.files}
        assert set(kinds.values()) <= {"f", "i"}, f"{entry['npz']} holds arrays of kinds {kinds}"
        out = vectors.resolve(case.reference)(*case.call_args())
        call = f"{case.reference}{describe_args(case.call_args())}"
        for o in case.outputs:
            want = vectors.output_at(out, o.path)
            if o.expected is None:
                assert want is None, f"{entry['json']}: {o.name} stored as None"
                continue
            want = np.asarray(want, dtype=np.float64)
            assert np.array_equal(want, o.expected, equal_nan=True), (
                f"{entry['json']}: {o.name} recomputed by the reference differs from the stored one")
            assert_close(want, o.expected, case.bound(o, np.float64), spec_id=case.spec_id,
                         impl="reference (recomputed)", what=o.name, call=call)


def test_float_inputs_are_float32_values_so_one_expectation_serves_both_dtypes(exported):
    for entry in vectors.load_index(exported)["cases"]:
        if entry["kind"] == "values":
            with np.load(exported / entry["npz"], allow_pickle=False) as npz:
                for key in npz.files:
                    a = npz[key]
                    if not key.startswith(("expected_", "bound_")) and a.dtype.kind == "f":
                        assert np.array_equal(a.astype(np.float32).astype(np.float64), a,
                                              equal_nan=True), f"{entry['npz']}: {key}"


def test_export_is_reproducible_byte_for_byte_and_follows_the_seed(exported, tmp_path):
    again = tmp_path / "again"
    vectors.export(again, seed=0)
    files = sorted(p.relative_to(exported) for p in exported.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    differ = [f for f in files if (exported / f).read_bytes() != (again / f).read_bytes()
              and f.name not in ("index.json", "README.md")]
    assert not differ, f"a second export with the same seed differs in {differ[:5]}"
    row = next(r for r in vectors.VECTORS if isinstance(r, vectors.Values) and r.function == "lstm_cell")
    first, other = (vectors.arguments(row, row.cases[0], seed) for seed in (0, 1))
    assert not np.array_equal(first[0], other[0]), "seed 1 drew the same inputs as seed 0"


def test_an_export_replaces_a_previous_one_but_refuses_a_foreign_folder(exported, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing"):
        vectors.export(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_index_accounts_for_every_spec_id_and_contract_function(exported):
    index = vectors.load_index(exported)
    skipped = {s.get("spec_id") or s["function"]: s["reason"] for s in index["skipped"]}
    assert all(skipped.values())
    assert set(speclib.load()) <= {c["spec_id"] for c in index["cases"]} | set(skipped)
    functions = {c["function"] for c in index["cases"]} | set(skipped)
    assert set(vectors.contract_ids()) <= functions
    # "no contract function" is said only of ids that no function of the reference names.
    named = set(vectors.contract_ids().values())
    assert not [sid for sid, why in skipped.items() if "no contract function" in why and sid in named]
    assert index["generated"]["numpy_version"] == np.__version__
    assert "Generated by" in (exported / "README.md").read_text(encoding="utf-8")


def test_argument_names_follow_the_contract_signatures(exported):
    for entry in vectors.load_index(exported)["cases"]:
        if entry["kind"] == "values":
            case = vectors.load_case(exported / entry["json"])
            names = [a["name"] for a in case.document["args"]]
            want = [p if isinstance(p, str) else "(" + ", ".join(p) + ")"
                    for p in vectors.parameters(case.function)]
            assert names == want, f"{entry['json']}: arguments {names}, contract {want}"


def test_statistical_claims_restate_the_reference_parameters(exported):
    claims = {c["function"]: json.loads((exported / c["json"]).read_text(encoding="utf-8"))
              for c in vectors.load_index(exported)["cases"] if c["kind"] == "statistical"}
    assert set(claims) == {"dropout", "xavier_uniform", "xavier_normal", "torch_default_linear",
                           "torch_default_rnn"}
    for doc in claims.values():
        assert doc["parameters"]["alpha"] == 1e-6 and doc["claims"]
    for case in claims["xavier_uniform"]["parameters"]["cases"]:
        fan_in, fan_out = ref_initialisation.fans(case["shape"])
        assert case["bound"] == ref_initialisation.xavier_uniform_bound(fan_in, fan_out,
                                                                         case["gain"])


# ---- the vectors are a conformance check: every implementation holds them ---------------------

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


def test_every_exported_spec_id_is_marked_on_a_vector_check():
    marked = {sid for sid, checks in speclib.check_index().items()
              if any(c.startswith("checks/test_vectors.py::test_") and
                     c.endswith("_vectors_hold_for_the_implementation") for c in checks)}
    exported_ids = {sid for sid, _, _ in vectors.planned()}
    assert exported_ids <= marked, f"exported but not marked: {sorted(exported_ids - marked)}"
    families = {sid.split(".")[0] for sid in exported_ids}
    assert all(value_cases(f) for f in families)


# ---- the stored bounds are the checks' bounds --------------------------------------------------

#: The checks whose bound expression the exporter evaluates itself (bound_source "mirrored:"),
#: called with a case's arguments. vjp_linear's check draws its own cotangent (g = 1), so it
#: cannot be given a case's; its expression is the same sums' tol.accumulated as linear's.
MIRRORED_CHECKS = {
    "linear": lambda impl, x, w, b: checks_linear.test_linear_computes_x_wt_plus_b.hypothesis
    .inner_test(impl, problem=(x, w, b)),
    "sigmoid": checks_activations.check_sigmoid,
    "vjp_sigmoid": checks_activations.check_sigmoid_gradient,
    "tanh": checks_activations.check_tanh,
    "softplus": checks_activations.check_softplus,
    "vjp_softplus": checks_activations.check_softplus_gradient,
    "prelu": checks_activations.check_prelu,
    "vjp_prelu": checks_activations.check_prelu_gradient,
    "vjp_cross_entropy": lambda impl, g, y, k: checks_losses.check_cross_entropy_gradient(
        impl, float(g), y, k),
    "clip_grad_norm": checks_stability.check_clip_grad_norm,
}


def shifted(case: vectors.VectorCase, factor: float) -> Implementation:
    """A float32 implementation that returns the expected outputs moved by ``factor`` times their
    stored float32 bounds (non-finite and unbounded elements unmoved)."""
    def moved(o: vectors.Output) -> np.ndarray:
        bound = o.bounds["float32"]
        return np.where(np.isfinite(o.expected), o.expected + factor * bound, o.expected)

    def result(*_: Any) -> Any:
        leaves = {o.path: moved(o) for o in case.outputs}
        if () in leaves:
            return leaves[()]
        top = [leaves.get((i,)) for i in range(1 + max(p[0] for p in leaves))]
        for path, value in leaves.items():
            if len(path) == 2:
                top[path[0]] = [*(top[path[0]] or []), value]
        return tuple(top)

    module = SimpleNamespace(DTYPE=np.float32, **{case.function: result})
    return Implementation(name=f"expected + {factor:g}×bound", module=module,
                          dtype=np.dtype(np.float32))


def mirrored_cases() -> list:
    return [pytest.param(row.spec_id, row.function, case.name,
                         id=f"{row.spec_id}/{row.function}.{case.name}")
            for row in vectors.VECTORS if isinstance(row, vectors.Values)
            and row.function in MIRRORED_CHECKS and row.bound_source.count("mirrored:")
            for case in row.cases]


@pytest.mark.parametrize(("spec_id", "function", "case"), mirrored_cases())
def test_mirrored_bounds_equal_the_bounds_of_their_check(exported, spec_id, function, case):
    loaded = vectors.load_case(case_path(exported, spec_id, function, case))
    check = MIRRORED_CHECKS[function]
    # Just inside the stored bound, the check passes: its bound is at least the stored one.
    check(shifted(loaded, 0.99), *loaded.call_args())
    if any(np.any(o.bounds["float32"][np.isfinite(o.expected)] > 0) for o in loaded.outputs
           if o.expected is not None):
        # Just outside, it fails somewhere: its bound is not larger.
        with pytest.raises(NonConformance):
            check(shifted(loaded, 1.01), *loaded.call_args())


def test_every_mirrored_bound_is_compared_with_its_check():
    mirrored = {row.function for row in vectors.VECTORS if isinstance(row, vectors.Values)
                and "mirrored:" in row.bound_source}
    assert mirrored - set(MIRRORED_CHECKS) == {"vjp_linear"}


# ---- the vectors separate what they must ------------------------------------------------------

def float32_model(name: str, **functions: Any) -> Implementation:
    """A float32 implementation computing ``functions`` (the reference's, given float32 arrays)."""
    return Implementation(name=name, module=SimpleNamespace(DTYPE=np.float32, **functions),
                          dtype=np.dtype(np.float32))


@pytest.mark.spec("gru.cell.pytorch", "gru.cell.textbook")
@pytest.mark.parametrize(("spec_id", "function", "other"), [
    ("gru.cell.pytorch", "gru_cell", contract_reference.gru_cell_textbook),
    ("gru.cell.textbook", "gru_cell_textbook", contract_reference.gru_cell),
])
def test_gru_vectors_reject_the_other_variant_in_every_case(exported, spec_id, function, other):
    wrong = float32_model(f"{other.__name__} as {function}", **{function: other})
    for case in cases_of(spec_id, function):
        with pytest.raises(NonConformance, match="should be"):
            check_vectors(wrong, exported, spec_id, function, case)


@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize("wrong", list(WRONG_CELLS))
def test_lstm_vectors_reject_every_gate_order_permutation_and_known_bug(exported, wrong):
    model = float32_model(wrong, lstm_cell=WRONG_CELLS[wrong])
    # Every case has distinct blocks, so each rejects a permutation. A known bug needs the gate
    # it mishandles unsaturated: the separating case (no gate saturates) rejects them all, while
    # in the saturating one o = 1 hides lstm.bug.ungated_hidden.
    cases = (cases_of("lstm.cell", "lstm_cell") if wrong.startswith("blocks read in order")
             else ["separating"])
    for case in cases:
        with pytest.raises(NonConformance, match="should be"):
            check_vectors(model, exported, "lstm.cell", "lstm_cell", case)
