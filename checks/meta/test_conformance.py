"""Checks that a failed check's findings travel as data: from the exception the check raises
(:class:`~nnspec.checks.harness.failure.Failure`), through the report's ``user_properties``
(checks/conftest.py), to :func:`nnspec.conformance.run`'s result, without reading pytest's text.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import uuid
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from _pytest.reports import BaseReport

from nnspec import conformance, speclib
from nnspec.checks.harness.failure import Failure, NonConformance, failures_in, none_of
from nnspec.checks.harness.implementation import Implementation, ImplementationError
from nnspec.oracle import check
from nnspec.reference import gru
from nnspec.reference.activations import sigmoid as gru_sigmoid

#: What the implementation below adds to every element of x wᵀ + b.
OFFSET = 1e-3


@pytest.fixture
def off_by_offset(tmp_path, monkeypatch) -> str:
    """A float64 ``linear`` that is the reference plus :data:`OFFSET`, under a name of its own."""
    name = f"user_linear_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import numpy as np
        from nnspec.reference.linear import affine

        DTYPE = np.float64

        def linear(x, w, b=None):
            return affine(x, w, b) + {OFFSET!r}
    """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def run_linear(name: str) -> conformance.Cell:
    result = conformance.run([name], quiet=True, extra_args=[
        "--only=linear.affine", "--nnspec-examples=1", "--nnspec-impl-only", "-p", "no:randomly"])
    return result.cells[("linear.affine", name)]


def forward_failure(cell: conformance.Cell) -> Failure:
    return next(f for f, node in zip(cell.failures, cell.failed_checks, strict=True)
                if "test_linear_computes_x_wt_plus_b" in node)


def assert_fields(failure: Failure, name: str) -> None:
    """The fields assert_close knew when it raised: the comparison, not words about it."""
    assert failure.spec_id == "linear.affine"
    assert failure.implementation == name
    assert failure.function == "linear"
    assert failure.what == "output"
    assert isinstance(failure.index, tuple) and len(failure.index) == 2
    assert failure.got is not None and failure.want is not None
    assert math.isclose(failure.got - failure.want, OFFSET, rel_tol=1e-6)
    assert failure.bound is not None and 0 < failure.bound < OFFSET
    assert failure.rule
    assert failure.message.startswith(f"[linear.affine] {name}: output{list(failure.index)} was ")


def test_failure_fields_reach_the_conformance_result_without_the_report_text(off_by_offset,
                                                                             monkeypatch):
    # With the report's text blanked, only the recorded data can carry the fields.
    monkeypatch.setattr(BaseReport, "longreprtext", property(lambda self: ""))
    cell = run_linear(off_by_offset)
    assert cell.verdict == "fail"
    failure = forward_failure(cell)
    assert_fields(failure, off_by_offset)
    assert failure.headline in cell.messages


def test_without_the_recorded_failure_the_fields_are_not_there(off_by_offset, monkeypatch):
    """The check above can fail: drop the conftest's records and only the exception's first
    line (the fallback for exceptions that are not the checks' own) is left."""
    collect = conformance._Collector.pytest_runtest_logreport

    def without_records(self, report):
        report.user_properties = [p for p in report.user_properties if p[0] != "nnspec_failure"]
        collect(self, report)

    monkeypatch.setattr(conformance._Collector, "pytest_runtest_logreport", without_records)
    failure = forward_failure(run_linear(off_by_offset))
    # The id is the cell's (a failure that names none counts for the ids of its check).
    assert failure.spec_id == "linear.affine" and failure.got is None and failure.bound is None
    assert "NonConformance: [linear.affine]" in failure.message
    with pytest.raises(AssertionError):
        assert_fields(failure, off_by_offset)


def test_an_exception_that_is_not_a_checks_own_keeps_its_type_and_first_line(tmp_path):
    (tmp_path / "test_foreign.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.spec("linear.affine")
        def test_crashes():
            raise ValueError("not a check's own\\nsecond line")
    """), encoding="utf-8")
    collector = conformance._Collector()
    pytest.main([str(tmp_path), "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                 "--rootdir", str(tmp_path)], plugins=[collector])
    cell = collector.cells()[("linear.affine", "(implementation-independent)")]
    assert cell.failed == 1
    assert cell.failures[0] == Failure(spec_id="linear.affine", message="ValueError: not a check's own")


# ---- parallel runs (pytest-xdist) -------------------------------------------------------------

#: A pytest plugin for the run below. Each worker writes the statistical tests it ran, as its own
#: process counted them (not as its reports say); the controller, before nnspec's plugin checks
#: the budget, lowers it to one less than their sum: the whole run exceeds it, no worker alone.
BUDGET_PROBE = """
    import json
    import os
    from pathlib import Path

    import pytest
    from nnspec.checks.harness import stats

    SHARES = Path("{shares}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(session):
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker:
            (SHARES / f"{{worker}}.json").write_text(json.dumps(stats.RUN_COUNTS["reference"]))
        else:
            total = sum(json.loads(path.read_text()) for path in SHARES.glob("*.json"))
            stats.MAX_STATISTICAL_TESTS = total - 1
"""


@pytest.mark.skipif(not conformance.parallel_available(), reason="pytest-xdist is not installed")
def test_the_statistical_budget_holds_for_a_parallel_run_as_a_whole(tmp_path):
    shares = tmp_path / "shares"
    shares.mkdir()
    (tmp_path / "budget_probe.py").write_text(textwrap.dedent(BUDGET_PROBE.format(
        shares=shares.as_posix())), encoding="utf-8")
    # Run inside an outer pytest-xdist worker, the inner controller inherited its
    # PYTEST_XDIST_WORKER and wrote a share of 0 over one of its own workers' (counts [0, 16]).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "budget_probe", "--pyargs", "nnspec.checks",
         "--impl", "reference", "--nnspec-isolation", "none", "--nnspec-impl-only",
         "--only", "dropout.", "--only", "initialisation.", "-n", "2", "--dist", "each", "-q",
         "-p", "no:cacheprovider"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    counts = [json.loads(path.read_text()) for path in shares.glob("*.json")]
    total = sum(counts)
    # Every test on each worker (--dist each): both run statistical tests whatever the scheduler
    # does. Each worker stayed within the budget: checked worker by worker, the run would pass.
    assert len(counts) == 2 and max(counts) <= total - 1, counts
    assert done.returncode == 1, done.stdout[-3000:]
    assert (f"statistical tests per implementation in this run {{'reference': {total}}} exceed "
            f"MAX_STATISTICAL_TESTS = {total - 1}") in done.stdout
    assert " failed" not in done.stdout.splitlines()[-1]  # every check passed: it is the budget


# ---- the Failure record itself ----------------------------------------------------------------

FAILURE = Failure(spec_id="lstm.cell", implementation="mine", function="lstm_cell", what="h'",
                  index=(0, 1), got=math.nan, want=-math.inf, bound=1e-15, rule="γ₂(|x|)",
                  call="lstm_cell(array(1, 1):float64)", diagnosis=["matches lstm.bug.x"],
                  message="[lstm.cell] mine: h'[0, 1] was nan, but should be -inf\n  Diagnosis: …")


def test_failure_round_trips_through_strict_json():
    text = json.dumps(FAILURE.to_dict(), allow_nan=False)
    back = Failure.from_dict(json.loads(text))
    assert back.index == (0, 1) and math.isnan(back.got) and back.want == -math.inf
    assert back.to_dict() == FAILURE.to_dict()


def test_exceptions_print_the_message_and_carry_the_failure():
    exc = NonConformance(FAILURE)
    assert str(exc) == FAILURE.message and str(FAILURE) == FAILURE.message
    assert exc.failure is FAILURE and FAILURE.headline == FAILURE.message.splitlines()[0]
    bare = NonConformance("a property does not hold")
    assert bare.failure.message == "a property does not hold" and bare.failure.spec_id is None


def test_failures_are_found_in_groups_and_chains_but_not_in_foreign_exceptions():
    other = NonConformance(Failure(spec_id="gru.cell.pytorch", message="other"))
    group = ExceptionGroup("two bugs", [NonConformance(FAILURE), ValueError("x"), other])
    assert failures_in(group) == [FAILURE, other.failure]
    try:
        try:
            raise NonConformance(FAILURE)
        except NonConformance as inner:
            raise RuntimeError("while reporting") from inner
    except RuntimeError as outer:
        assert failures_in(outer) == [FAILURE]
    assert failures_in(ValueError("not ours")) == []


def test_none_of_keeps_the_first_variants_fields_and_every_diagnosis_once():
    second = Failure(spec_id="lstm.cell.coupled", diagnosis=["matches lstm.bug.x", "float32"],
                     message="second")
    merged = none_of("conforms to none of the variants:", [FAILURE, second])
    assert merged.spec_id == "lstm.cell" and merged.got is FAILURE.got
    assert merged.diagnosis == ["matches lstm.bug.x", "float32"]
    assert merged.message == "\n".join(["conforms to none of the variants:", FAILURE.message,
                                        "second"])


def test_an_output_the_contract_does_not_allow_is_a_failure_naming_function_and_output():
    impl = Implementation(name="mine", module=SimpleNamespace(DTYPE=np.float64),
                          dtype=np.dtype(np.float64))
    with pytest.raises(ImplementationError) as shape:
        impl.array(np.zeros((2, 3)), fn="linear", what="y", shape=(2, 4))
    assert (shape.value.failure.function, shape.value.failure.what) == ("linear", "y")
    assert shape.value.failure.implementation == "mine" and "shape (2, 3)" in str(shape.value)
    with pytest.raises(ImplementationError) as nonfinite:
        impl.array(np.array([0.0, np.inf]), fn="tanh", what="φ(x)")
    assert nonfinite.value.failure.index == (1,) and nonfinite.value.failure.got == math.inf


def _module(name: str, **functions: object) -> ModuleType:
    module = ModuleType(f"{name}_{uuid.uuid4().hex[:8]}")
    module.DTYPE = np.float64  # type: ignore[attr-defined]
    for fn, f in functions.items():
        setattr(module, fn, f)
    return module


def test_a_verdict_goes_only_to_the_ids_whose_functions_a_check_called():
    # Checks marked gru.cell.pytorch and gru.cell.textbook (and the vectors, marked with every
    # GRU id) run on a module that has only the textbook cell: they say nothing about the others.
    result = check(_module("only_textbook", gru_cell_textbook=gru.gru_cell_textbook), only=["gru."],
                   examples=5, implementation_only=True)
    assert result.verdicts == {"gru.cell.textbook": "pass", "gru.cell.pytorch": "not provided",
                               "gru.layer": "not provided"}
    cell = result.conformance.cells[("gru.cell.textbook", result.implementation)]
    assert cell.functions == {"gru_cell_textbook"}


def test_a_cell_computing_the_other_variant_fails_its_own_id_and_no_other():
    result = check(_module("textbook_as_pytorch", gru_cell=gru.gru_cell_textbook), only=["gru."],
                   examples=5, implementation_only=True)
    assert result.verdicts == {"gru.cell.pytorch": "fail", "gru.cell.textbook": "not provided",
                               "gru.layer": "not provided"}
    assert any("matches gru.cell.textbook" in line for line in result.diagnoses["gru.cell.pytorch"])


def test_without_attribution_the_marks_would_give_the_other_ids_a_verdict(monkeypatch):
    # The mutant this attribution exists for: every marked id counts, whatever was called, and
    # a test vector counts for every id of its family (its marks), not for its own id alone.
    monkeypatch.setattr(conformance._Collector, "counts", lambda *args: True)
    collect = conformance._Collector.pytest_runtest_logreport

    def without_case_ids(self, report):
        report.user_properties = [p for p in report.user_properties if p[0] != "nnspec_case_id"]
        collect(self, report)

    monkeypatch.setattr(conformance._Collector, "pytest_runtest_logreport", without_case_ids)
    result = check(_module("only_textbook", gru_cell_textbook=gru.gru_cell_textbook), only=["gru."],
                   examples=5, implementation_only=True)
    assert result.verdicts["gru.cell.pytorch"] == "pass"


def test_every_id_checked_on_an_implementation_names_its_contract_functions():
    entries, gaps = speclib.traceability()
    assert not [g for g in gaps if "names no contract functions" in g]
    calling = speclib.check_index(calling=True)
    assert {sid for sid in calling if entries[sid].functions} == set(calling)


def _crude_sigmoid(x, alpha=1.0):
    return np.clip(0.5 + 0.25 * alpha * x, 0.0, 1.0)


def test_a_check_of_two_functions_blames_the_one_that_fails_on_its_own():
    # tanh(x) = 2σ(2x) − 1 calls both; only σ fails its own checks, so only σ is blamed.
    result = check(_module("crude_sigmoid", tanh=np.tanh, sigmoid=_crude_sigmoid),
                   only=["activations.sigmoid", "activations.tanh"], examples=5,
                   implementation_only=True)
    assert (result.verdicts["activations.sigmoid"], result.verdicts["activations.tanh"]) == (
        "fail", "pass")
    # A correct layer beside a cell of the other variant: the layer against its own cell fails,
    # but the cell is the one that fails alone.
    result = check(_module("textbook_cell", gru_cell=gru.gru_cell_textbook, gru_layer=gru.gru_layer),
                   only=["gru."], examples=5, implementation_only=True)
    assert (result.verdicts["gru.cell.pytorch"], result.verdicts["gru.layer"]) == ("fail", "pass")


def test_without_the_dedicated_rule_both_functions_would_be_blamed(monkeypatch):
    monkeypatch.setattr(conformance._Collector, "counts",
                        lambda self, sid, record, dedicated: (
                            record.outcome != "passed" or not record.called or bool(
                                record.called & self.functions.get(sid, frozenset()))))
    result = check(_module("crude_sigmoid", tanh=np.tanh, sigmoid=_crude_sigmoid),
                   only=["activations.sigmoid", "activations.tanh"], examples=5,
                   implementation_only=True)
    assert result.verdicts["activations.tanh"] == "fail"


def test_a_skip_counts_for_the_ids_whose_function_is_missing():
    result = check(_module("only_sigmoid", sigmoid=gru_sigmoid), only=["activations."], examples=3,
                   implementation_only=True)
    for sid, fn in (("activations.relu", "relu"), ("activations.maxout", "maxout"),
                    ("activations.tanh", "tanh")):
        assert result.verdicts[sid] == "not provided"
        assert all(f"does not define {fn}()" in m or f"does not define vjp_{fn}()" in m
                   for m in result.messages[sid]), result.messages[sid]


def test_a_module_object_is_checked_as_it_is_in_memory(tmp_path, monkeypatch):
    (tmp_path / "on_disk_sigmoid.py").write_text(textwrap.dedent("""
        import numpy as np
        from scipy.special import expit
        DTYPE = np.float64
        def sigmoid(x, alpha=1.0):
            return expit(alpha * x)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import on_disk_sigmoid

    monkeypatch.setattr(on_disk_sigmoid, "sigmoid", _crude_sigmoid)  # patched, as in a notebook
    result = check(on_disk_sigmoid, only=["activations.sigmoid"], examples=3, implementation_only=True)
    assert result.verdicts["activations.sigmoid"] == "fail"
