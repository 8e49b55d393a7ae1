"""Checks that an implementation refusing some arguments only (``NotImplementedError`` for
``nonlinearity='relu'``, for ``b_ih=None``, for packed ``lengths``) is checked on the others.

Inside a Hypothesis check a refusal rejects that example and the search goes on
(checks/harness/implementation.py): the check passes or fails on the supported examples, and a
pass carries a "partly provided" note in its spec ids' cells (nnspec/conformance.py). A check
with no supported example is skipped as *not provided*, never a Hypothesis error; outside
Hypothesis a refusal skips the check as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Unsatisfiable

from nnspec import conformance
from nnspec.checks.harness import implementation
from nnspec.checks.harness.implementation import Implementation, Provision, bug_model, features
from nnspec.oracle import OracleResult, check
from nnspec.reference import rnn as ref

#: The check of rnn.cell's forward pass: Hypothesis draws tanh and ReLU examples for it.
FORWARD = "test_rnn_cell_computes_activation_of_input_and_state_terms"


def tanh_only(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    if nonlinearity != "tanh":
        raise NotImplementedError("computes tanh only")
    return ref.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)


def wrong_tanh_only(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """Refuses ReLU and is off by 10⁻³ for tanh, far beyond a float64 bound: only the tanh path
    can fail."""
    return tanh_only(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity) + 1e-3


def refuses_everything(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    raise NotImplementedError("not yet")


class Outcomes:
    """A pytest plugin keeping each check's outcome by its function's name."""

    def __init__(self) -> None:
        self.by_name: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.skipped:
            self.by_name[report.nodeid.split("::")[-1].split("[")[0]] = report.outcome


def run_rnn_cell(rnn_cell: Callable[..., Any]) -> tuple[OracleResult, Outcomes]:
    module = ModuleType(f"{rnn_cell.__name__}_{uuid.uuid4().hex[:8]}")
    module.DTYPE = np.float64  # type: ignore[attr-defined]
    module.rnn_cell = rnn_cell  # type: ignore[attr-defined]
    outcomes = Outcomes()
    result = check(module, only=["rnn.cell"], examples=5, implementation_only=True,
                   plugins=[outcomes])
    return result, outcomes


@pytest.fixture(scope="module")
def tanh_only_run() -> tuple[OracleResult, Outcomes]:
    return run_rnn_cell(tanh_only)


def test_a_cell_refusing_relu_passes_on_tanh_with_a_partly_provided_note(tanh_only_run):
    result, outcomes = tanh_only_run
    assert outcomes.by_name[FORWARD] == "passed"  # run on the tanh examples, not skipped
    assert result.verdicts["rnn.cell"] == "pass"
    cell = result.conformance.cells[("rnn.cell", result.implementation)]
    # First the note of the check that ran, naming what it refused; then those of the checks
    # skipped, every call refused (the ReLU vectors, the ReLU-only check).
    assert cell.partly[0].startswith("partly provided: rnn_cell() raised NotImplementedError for "
                                     "nonlinearity='relu' (computes tanh only) ("), cell.partly
    assert all(note.startswith("partly provided: rnn_cell() raised NotImplementedError for "
                               "every call (computes tanh only) (") for note in cell.partly[1:]), cell.partly
    assert result.conformance.totals["failed"] == 0


def test_a_check_drawing_relu_only_is_not_provided_not_a_hypothesis_error(tanh_only_run):
    result, outcomes = tanh_only_run
    assert outcomes.by_name["test_relu_states_are_never_negative"] == "skipped"
    cell = result.conformance.cells[("rnn.cell", result.implementation)]
    assert any("rnn_cell() raised NotImplementedError for every example" in m and "computes tanh only" in m
               for m in cell.messages), cell.messages


def test_the_tanh_path_is_checked_a_wrong_tanh_fails():
    result, outcomes = run_rnn_cell(wrong_tanh_only)
    assert outcomes.by_name[FORWARD] == "failed"
    assert result.verdicts["rnn.cell"] == "fail"
    assert all(f.function == "rnn_cell" for f in result.failures["rnn.cell"])


def test_a_cell_refusing_every_example_is_not_provided():
    result, outcomes = run_rnn_cell(refuses_everything)
    assert result.verdicts["rnn.cell"] == "not provided"
    assert outcomes.by_name[FORWARD] == "skipped"
    assert result.conformance.totals["failed"] == 0  # no Unsatisfiable, no FailedHealthCheck
    reasons = result.messages["rnn.cell"]
    assert any(m.startswith("not provided: ") and "rnn_cell() raised NotImplementedError for every "
               "example" in m and "not yet" in m for m in reasons), reasons
    assert not result.conformance.cells[("rnn.cell", result.implementation)].partly


def test_without_the_conversion_hypothesis_giving_up_would_be_an_error(monkeypatch):
    # The mutant the conftest's conversion exists for: Hypothesis' Unsatisfiable or its
    # filter_too_much health check reaches pytest, and a missing feature reads as a failure.
    monkeypatch.setattr(Implementation, "every_example_refused", lambda self, exc: None)
    result, outcomes = run_rnn_cell(refuses_everything)
    assert outcomes.by_name[FORWARD] == "failed"
    assert result.verdicts["rnn.cell"] == "fail"


def test_without_rejection_the_first_refusal_skips_the_whole_check(monkeypatch):
    """The mutant the rejection exists for: a refusal that skips even inside Hypothesis leaves the
    tanh examples unchecked, and the wrong tanh goes unnoticed (or is seen by chance only)."""
    monkeypatch.setattr(implementation, "currently_in_test_context", lambda: False)
    result, outcomes = run_rnn_cell(tanh_only)
    assert outcomes.by_name[FORWARD] == "skipped"
    # Only the notes of checks skipped at their first refusal: no check ran past one.
    partly = result.conformance.cells[("rnn.cell", result.implementation)].partly
    assert partly and all(note.endswith("(1 of 1 calls)") for note in partly), partly


# ---- the summary of what was refused -----------------------------------------------------------

def _cell_args(bias: bool) -> tuple[Any, ...]:
    x, h, w_ih, w_hh = np.ones((1, 2)), np.ones((1, 3)), np.ones((3, 2)), np.ones((3, 3))
    return (x, h, w_ih, w_hh, np.ones(3) if bias else None, np.ones(3) if bias else None)


def _search(impl: Implementation, draw: st.SearchStrategy[tuple[bool, str]]) -> None:
    @settings(max_examples=30, database=None, derandomize=True)
    @given(draw)
    def search(drawn: tuple[bool, str]) -> None:
        bias, nonlinearity = drawn
        impl.call("rnn_cell", *_cell_args(bias), nonlinearity=nonlinearity)

    search()


def test_the_note_names_the_arguments_only_refused_calls_had():
    def no_bias_free(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        if b_ih is None:
            raise NotImplementedError("needs biases")
        return ref.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)

    impl = bug_model("no_bias_free", rnn_cell=no_bias_free)
    _search(impl, st.tuples(st.booleans(), st.sampled_from(["tanh", "relu"])))
    [(fn, note)] = impl.partly()
    assert fn == "rnn_cell"
    assert note.startswith("partly provided: rnn_cell() raised NotImplementedError for "
                           "b_hh=None, b_ih=None (")


def test_a_combination_is_named_as_some_calls_with_its_arguments():
    def no_biasless_relu(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        if b_ih is None and nonlinearity == "relu":
            raise NotImplementedError
        return ref.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)

    impl = bug_model("no_biasless_relu", rnn_cell=no_biasless_relu)
    _search(impl, st.tuples(st.booleans(), st.sampled_from(["tanh", "relu"])))
    [(_, note)] = impl.partly()
    assert "for some calls with b_hh=None, b_ih=None, nonlinearity='relu' (" in note


def test_each_reason_the_implementation_gives_is_summarised_on_its_own():
    def tanh_with_biases(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        if nonlinearity != "tanh":
            raise NotImplementedError("computes tanh only\n(second line)")
        if b_ih is None:
            raise NotImplementedError("needs biases")
        return ref.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)

    impl = bug_model("tanh_with_biases", rnn_cell=tanh_with_biases)
    _search(impl, st.tuples(st.booleans(), st.sampled_from(["tanh", "relu"])))
    [(_, note)] = impl.partly()
    assert "nonlinearity='relu' (computes tanh only)" in note
    assert "b_hh=None, b_ih=None (needs biases)" in note


def test_features_of_a_module_call_name_options_and_given_optional_arrays():
    got = features("rnn_module", ("lstm", np.ones((2, 1, 3)), None, {"weight_ih_l0": np.ones(1)}),
                   {"bidirectional": True, "lengths": np.array([2]), "dropout": 0.5,
                    "num_layers": np.int64(2), "rng": np.random.default_rng(0)})
    assert got == {"mode='lstm'", "state=None", "bidirectional=True", "lengths given",
                   "dropout!=0.0", "num_layers=2", "rng given"}


def test_outside_hypothesis_a_refusal_skips_the_check_as_before():
    impl = bug_model("tanh_only", rnn_cell=tanh_only)
    with pytest.raises(pytest.skip.Exception, match=r"not provided: tanh_only\.rnn_cell\(\) raised "
                                                    r"NotImplementedError computes tanh only"):
        impl.call("rnn_cell", *_cell_args(True), nonlinearity="relu")
    assert impl.missing == {"rnn_cell"}


def test_only_hypothesis_giving_up_after_refusals_becomes_not_provided():
    impl = bug_model("tanh_only", rnn_cell=tanh_only)
    unsatisfiable = Unsatisfiable("Unable to satisfy assumptions")
    too_much = FailedHealthCheck("... suppress_health_check=[HealthCheck.filter_too_much] ...")
    too_slow = FailedHealthCheck("... suppress_health_check=[HealthCheck.too_slow] ...")
    assert impl.every_example_refused(unsatisfiable) is None  # the check's own filter: an error
    impl.provision["rnn_cell"] = Provision()
    impl.provision["rnn_cell"].refuse(frozenset({"nonlinearity='relu'"}), "computes tanh only")
    assert impl.every_example_refused(too_slow) is None
    reason = impl.every_example_refused(too_much)
    assert reason == ("not provided: tanh_only.rnn_cell() raised NotImplementedError for every "
                      "example (1 call: computes tanh only)")
    assert impl.every_example_refused(unsatisfiable) == reason and impl.missing == {"rnn_cell"}


def test_a_note_goes_to_the_ids_of_the_refusing_function_and_to_all_for_a_helper():
    collector = conformance._Collector()
    note = "partly provided: rnn_cell() raised NotImplementedError for nonlinearity='relu' (tanh only)"
    layer = conformance._Record("checks/test_rnn.py::layer_vs_cell", ("rnn.layer", "rnn.cell"), "m",
                                "passed", frozenset({"rnn_cell", "rnn_layer"}), frozenset(), None, "",
                                (("rnn_cell", note),))
    assert collector.partly("rnn.cell", layer) == [note]
    assert collector.partly("rnn.layer", layer) == []
    helper = replace(layer, partly=(("linear", note),))
    assert collector.partly("rnn.layer", helper) == collector.partly("rnn.cell", helper) == [note]


def test_a_rarely_supported_check_is_not_provided_naming_what_was_refused():
    """Hypothesis' filter_too_much health check (50 rejected before 10 supported) is the same
    skip, and says that some examples were supported."""
    impl = bug_model("tanh_only", rnn_cell=tanh_only)

    @settings(max_examples=20, database=None, derandomize=True)
    @given(st.integers(1, 10**6))
    def search(n: int) -> None:  # one example in 20 is tanh
        impl.call("rnn_cell", *_cell_args(True), nonlinearity="tanh" if n % 20 == 0 else "relu")

    with pytest.raises(FailedHealthCheck) as gave_up:
        search()
    assert impl.provision["rnn_cell"].answered > 0
    assert impl.every_example_refused(gave_up.value) == (
        "not provided: tanh_only.rnn_cell() raised NotImplementedError for nonlinearity='relu' "
        "(computes tanh only), leaving too few examples to check")
