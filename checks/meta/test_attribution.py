"""Checks that a check's outcome goes to the right spec ids (nnspec/conformance.py): a test vector
to its own id, not to every id of its family it is marked with; a failure of a function that
computes several ids to all of them; a failure that names no id to the cell it counts for; and
the "partly provided" note of a check skipped after refusals to the ids that pass on other checks.

The collector is fed reports built here, with the ``user_properties`` the checks' conftest and
nnspec/pytest_plugin.py put on real ones; the runs at the end check the trial's two modules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pytest

from nnspec import conformance
from nnspec.checks.harness.failure import Failure
from nnspec.oracle import OracleResult, check
from nnspec.reference import gru as ref_gru

LOSSES = ("losses.softmax", "losses.log_softmax", "losses.cross_entropy", "losses.sequence_mean",
          "losses.sequence_sum")
VECTOR = "checks/test_vectors.py::test_loss_vectors_hold_for_the_implementation"
NOTE = "partly provided: gru_cell() raised NotImplementedError for b_hh given, b_ih given (9 of 10 calls)"


def report(nodeid: str, outcome: Literal["passed", "failed", "skipped"], ids: tuple[str, ...],
           called: set[str], *, case: str | None = None, missing: frozenset[str] = frozenset(),
           partly: tuple[tuple[str, str], ...] = (), failure: Failure | None = None
           ) -> pytest.TestReport:
    """A report of the call phase with what the checks' hooks record on a real one."""
    props: list[tuple[str, Any]] = [("nnspec_spec_ids", list(ids)), ("nnspec_impl", "m"),
                                    ("nnspec_called", sorted(called)),
                                    ("nnspec_missing", sorted(missing)),
                                    ("nnspec_partly", [list(p) for p in partly])]
    if case is not None:
        props.append(("nnspec_case_id", case))
    if failure is not None:
        props.append(("nnspec_failure", failure.to_dict()))
    longrepr = ("x.py", 1, "Skipped: not provided: m.gru_cell() raised NotImplementedError")
    return pytest.TestReport(nodeid, ("x.py", 1, nodeid), {}, outcome,
                             longrepr if outcome == "skipped" else None, "call", user_properties=props)


def cells(*reports: pytest.TestReport) -> dict[tuple[str, str], conformance.Cell]:
    collector = conformance._Collector()
    for r in reports:
        collector.pytest_runtest_logreport(r)
    return collector.cells()


# ---- a test vector counts for its own id --------------------------------------------------------

def test_a_vector_of_one_id_counts_for_it_alone_not_for_an_id_sharing_its_function():
    passed = report(f"{VECTOR}[m-losses.sequence_mean/cross_entropy.basic]", "passed", LOSSES,
                    {"cross_entropy"}, case="losses.sequence_mean")
    got = cells(passed)
    assert got[("losses.sequence_mean", "m")].verdict == "pass"
    # losses.cross_entropy is computed by cross_entropy() too, but this vector is not its.
    assert ("losses.cross_entropy", "m") not in got


def test_without_the_case_id_the_vector_would_pass_the_other_id_too():
    """The false pass the case id exists for: every id of the family sharing the function."""
    passed = report(f"{VECTOR}[m-losses.sequence_mean/cross_entropy.basic]", "passed", LOSSES,
                    {"cross_entropy"})
    assert cells(passed)[("losses.cross_entropy", "m")].verdict == "pass"


def test_a_failed_vector_of_one_id_fails_it_even_when_another_id_fails_alone():
    """The trial's ce_unshifted: losses.cross_entropy fails a check of its own, and the vector
    of losses.sequence_mean at large logits fails too; it must fail losses.sequence_mean."""
    own = report("checks/test_losses.py::test_one_position[m]", "failed", ("losses.cross_entropy",),
                 {"cross_entropy"}, failure=Failure(spec_id="losses.cross_entropy", message="off"))
    vector = report(f"{VECTOR}[m-losses.sequence_mean/cross_entropy.large_logits]", "failed", LOSSES,
                    {"cross_entropy"}, case="losses.sequence_mean",
                    failure=Failure(implementation="m", function="cross_entropy", message="nan"))
    got = cells(own, vector)
    assert got[("losses.sequence_mean", "m")].verdict == "fail"
    assert got[("losses.sequence_mean", "m")].failed_checks == [vector.nodeid]
    assert got[("losses.cross_entropy", "m")].failed_checks == [own.nodeid]


# ---- a failure of a shared function, and the narrowing it must not undo --------------------------

def test_a_failure_of_a_function_several_ids_share_fails_all_of_them():
    own = report("checks/test_losses.py::test_one_position[m]", "failed", ("losses.cross_entropy",),
                 {"cross_entropy"})
    both = report("checks/test_losses.py::test_gradient[m]", "failed",
                  ("losses.sequence_mean", "losses.cross_entropy"), {"vjp_cross_entropy"})
    got = cells(own, both)
    assert got[("losses.sequence_mean", "m")].failed_checks == [both.nodeid]
    assert got[("losses.cross_entropy", "m")].failed == 2


def test_a_layer_against_its_wrong_cell_still_blames_the_cell_alone():
    cell = report("checks/test_gru.py::test_cell[m]", "failed", ("gru.cell.pytorch",), {"gru_cell"})
    layer = report("checks/test_gru.py::test_layer_vs_cell[m]", "failed",
                   ("gru.layer", "gru.cell.pytorch"), {"gru_layer", "gru_cell"})
    passed = report("checks/test_gru.py::test_layer[m]", "passed", ("gru.layer",), {"gru_layer"})
    got = cells(cell, layer, passed)
    assert got[("gru.layer", "m")].verdict == "pass"
    assert got[("gru.cell.pytorch", "m")].failed == 2


# ---- a failure names its id -----------------------------------------------------------------------

def test_a_failure_found_on_an_output_alone_carries_the_id_of_its_cell():
    nan = Failure(implementation="m", function="cross_entropy", message="returned a non-finite value")
    vector = report(f"{VECTOR}[m-losses.sequence_mean/cross_entropy.large_logits]", "failed", LOSSES,
                    {"cross_entropy"}, case="losses.sequence_mean", failure=nan)
    named = Failure(spec_id="losses.sequence_mean", message="off")
    gradient = report("checks/test_losses.py::test_gradient[m]", "failed",
                      ("losses.sequence_mean", "losses.cross_entropy"), {"vjp_cross_entropy"},
                      failure=named)
    got = cells(vector, gradient)
    assert [f.spec_id for f in got[("losses.sequence_mean", "m")].failures] == ["losses.sequence_mean"] * 2
    # A failure that names its id keeps it, in every cell it counts for.
    assert [f.spec_id for f in got[("losses.cross_entropy", "m")].failures] == ["losses.sequence_mean"]


# ---- a check skipped after refusals ----------------------------------------------------------------

def test_a_pass_beside_a_check_skipped_after_refusals_carries_its_note():
    """The trial's gru_nobias_nie: the formula check gave up for refusals, one vector passed."""
    skipped = report("checks/test_gru.py::test_formula[m]", "skipped", ("gru.cell.pytorch",),
                     {"gru_cell"}, missing=frozenset({"gru_cell"}), partly=(("gru_cell", NOTE),))
    vector = report("checks/test_vectors.py::test_gru_vectors[m-gru.cell.pytorch/gru_cell.nobias]",
                    "passed", ("gru.cell.pytorch", "gru.cell.textbook", "gru.layer"), {"gru_cell"},
                    case="gru.cell.pytorch")
    got = cells(skipped, vector)[("gru.cell.pytorch", "m")]
    assert got.verdict == "pass" and got.partly == [NOTE]


def test_a_cell_every_check_of_which_skipped_is_not_provided_without_a_note():
    skipped = report("checks/test_gru.py::test_formula[m]", "skipped", ("gru.cell.pytorch",),
                     {"gru_cell"}, missing=frozenset({"gru_cell"}), partly=(("gru_cell", NOTE),))
    got = cells(skipped)[("gru.cell.pytorch", "m")]
    assert got.verdict == "not provided" and got.partly == []


# ---- the trial's modules, end to end ----------------------------------------------------------------

def run(only: list[str], examples: int | None = 5, **functions: Callable[..., Any]) -> OracleResult:
    module = ModuleType(f"attribution_{uuid.uuid4().hex[:8]}")
    module.DTYPE = np.float64  # type: ignore[attr-defined]
    for name, fn in functions.items():
        setattr(module, name, fn)
    return check(module, only=only, examples=examples, implementation_only=True)


def unshifted_cross_entropy(logits: np.ndarray, target: np.ndarray) -> Any:
    """Softmax without subtracting the maximum: exp overflows at large logits."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(logits)
        p = e / e.sum(axis=-1, keepdims=True)
        picked = np.take_along_axis(p, target[..., None].astype(np.int64), axis=-1)[..., 0]
        return -np.log(picked).mean()


def test_an_unshifted_softmax_fails_both_ids_it_computes_and_every_failure_names_its_id():
    result = run(["losses.cross_entropy", "losses.sequence_mean"],
                 cross_entropy=unshifted_cross_entropy)
    assert result.verdicts["losses.sequence_mean"] == "fail"
    assert result.verdicts["losses.cross_entropy"] == "fail"
    for sid in ("losses.sequence_mean", "losses.cross_entropy"):
        assert all(f.spec_id is not None for f in result.failures[sid]), result.failures[sid]
    mean = result.conformance.cells[("losses.sequence_mean", result.implementation)]
    assert any("losses.sequence_mean/cross_entropy.large_logits" in node for node in mean.failed_checks)
    ce = result.conformance.cells[("losses.cross_entropy", result.implementation)]
    assert not any("losses.sequence_mean/" in node for node in ce.failed_checks), ce.failed_checks


def gru_cell_without_biases(x, h, w_ih, w_hh, b_ih=None, b_hh=None):  # type: ignore[no-untyped-def]
    if b_ih is not None or b_hh is not None:
        raise NotImplementedError("biases")
    return ref_gru.gru_cell(x, h, w_ih, w_hh)


def test_a_gru_refusing_biases_passes_only_with_the_partly_provided_note():
    # The profile's 20 examples, as in the trial: too few of them have no bias, so the formula
    # checks give up and only the vectors without biases pass.
    result = run(["gru.cell.pytorch"], examples=None, gru_cell=gru_cell_without_biases)
    cell = result.conformance.cells[("gru.cell.pytorch", result.implementation)]
    assert cell.verdict == "pass" and cell.skipped > 0
    assert cell.partly, "a pass resting on what was not refused must say so"
    assert all(note.startswith("partly provided: gru_cell() raised NotImplementedError for ")
               and " calls)" in note for note in cell.partly), cell.partly

