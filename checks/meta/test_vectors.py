"""Checks of the export itself (nnspec/vectors/, ``nnspec vectors``).

The vectors are exported once per module into a temporary folder and read back as a C++ or Rust
user would, from JSON and ``numpy.load(..., allow_pickle=False)``. They must reproduce the
reference bit for bit, restate the contract's signatures and the designs' parameters, and tell
apart what they claim to tell apart: the GRU variants and the LSTM gate orders. That every
implementation under test holds them is checked by checks/test_vectors.py, whose helpers these
tests reuse.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from nnspec import speclib, vectors
from nnspec.checks.harness import contract
from nnspec.checks.harness.failure import NonConformance, assert_close
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.checks.test_lstm import WRONG_CELLS
from nnspec.checks.test_vectors import check_vectors, value_cases
from nnspec.implementations import reference as contract_reference
from nnspec.reference import initialisation as ref_initialisation
from nnspec.vectors import readme


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors")
    vectors.export(out, seed=0)
    return out


def cases_of(spec_id: str, function: str) -> list[str]:
    return [case for sid, fn, case in vectors.planned() if (sid, fn) == (spec_id, function)]


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


def test_readme_names_the_keys_the_files_really_have(exported):
    index = json.loads((exported / "index.json").read_text(encoding="utf-8"))
    assert readme.index_keys(index) == readme.described_index_keys()
    case_keys = set()
    for entry in index["cases"]:
        if entry["kind"] == "values":
            case_keys |= set(json.loads((exported / entry["json"]).read_text(encoding="utf-8")))
    assert case_keys == set(readme.CASE_KEYS)
    text = (exported / "README.md").read_text(encoding="utf-8")
    for key in {k for keys in readme.described_index_keys().values() for k in keys} | case_keys:
        assert f"`{key}`" in text, key


def test_readme_refuses_an_index_whose_keys_it_does_not_describe(exported):
    index = json.loads((exported / "index.json").read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="update INDEX_KEYS"):
        readme.readme({**index, "created": "yesterday"})
    index["generated"].pop("seed")
    with pytest.raises(ValueError, match="update INDEX_KEYS"):
        readme.readme(index)


def test_argument_names_follow_the_contract_signatures(exported):
    for entry in vectors.load_index(exported)["cases"]:
        if entry["kind"] == "values":
            case = vectors.load_case(exported / entry["json"])
            names = [a["name"] for a in case.document["args"]]
            want = [p if isinstance(p, str) else "(" + ", ".join(p) + ")"
                    for p in contract.arguments(case.function)]
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


def test_every_bound_is_a_function_of_the_checks_bound_modules_and_no_test_module_is_imported():
    for row in vectors.VECTORS:
        if isinstance(row, vectors.Values) and row.bound is not None:
            source = inspect.unwrap(row.bound)
            assert source.__module__.startswith("nnspec.checks.bounds."), (row.spec_id, row.function)
            assert row.bound_source == f"{source.__module__}.{source.__name__}"
    for path in Path(vectors.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not [n for n in names for part in n.split(".") if part.startswith("test_")], (
                    f"{path.name} imports a test module: {names}")


# ---- the conformance checks cover every exported id ------------------------------------------

def test_every_exported_spec_id_is_marked_on_a_vector_check():
    marked = {sid for sid, checks in speclib.check_index().items()
              if any(c.startswith("checks/test_vectors.py::test_") and
                     c.endswith("_vectors_hold_for_the_implementation") for c in checks)}
    exported_ids = {sid for sid, _, _ in vectors.planned()}
    assert exported_ids <= marked, f"exported but not marked: {sorted(exported_ids - marked)}"
    families = {sid.split(".")[0] for sid in exported_ids}
    assert all(value_cases(f) for f in families)


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
