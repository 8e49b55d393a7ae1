"""Checks of the oracle against false alarms, on the corpus of correct alternatives
(checks/oracle/alternatives.py).

Every entry computes some formula of the spec another legitimate way (σ through tanh or expit,
log-softmax through logsumexp, cells by einsum or one matmul per gate, float32, ONNX's reference
evaluator, ONNX Runtime, Flax, torch modules through the adapters); the oracle, run on it through
:func:`nnspec.oracle.check` with ``implementation_only=True``, must pass every spec id it provides.
An entry whose framework is not installed skips with the reason. Each run is a nested pytest
session (one to a dozen seconds), so the default run takes a cheaper subset, one entry of each way
of differing; ``-m slow`` runs the whole corpus.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import replace

import numpy as np
import pytest

from nnspec import selftest, speclib
from nnspec.checks.harness.implementation import SHIPPED, ImplementationUnavailable
from nnspec.checks.oracle import alternatives
from nnspec.checks.oracle.alternatives import Alternative

#: The entries of the default run (about 2-5 s each): σ in another form, log-softmax through
#: logsumexp, per-gate matmuls, float32, and a framework (ONNX Runtime's float32 kernels).
DEFAULT_RUN = frozenset({"sigmoid_tanh_form", "log_softmax_logsumexp", "cells_per_gate_matmul",
                         "float32_tanh_form_sigmoid", "onnx_runtime"})


def params() -> list[object]:
    return [pytest.param(e, id=e.name, marks=() if e.name in DEFAULT_RUN else pytest.mark.slow)
            for e in alternatives.CORPUS]


def report(o: selftest.Outcome) -> str:
    lines = [f"{o.entry.name} ({o.entry.origin}): verdicts {o.verdicts}"]
    lines += [f"  failure: {f.headline}" for f in o.failures[:4]]
    lines += [f"  diagnosis: {line}" for line in o.diagnoses[:6]]
    return "\n".join(lines)


# ---- the corpus itself --------------------------------------------------------------------------

def test_the_corpus_holds_at_least_12_entries_with_unique_names_and_known_spec_ids():
    names = [e.name for e in alternatives.CORPUS]
    assert len(names) >= 12, f"the corpus has {len(names)} entries; the issue asks for at least 12"
    assert len(set(names)) == len(names), f"entry names repeat: {names}"
    known = set(speclib.load())
    for e in alternatives.CORPUS:
        assert set(e.only) <= known, f"{e.name} names ids the spec does not define: " \
                                     f"{sorted(set(e.only) - known)}"


def test_every_framework_entry_is_a_shipped_short_name():
    shipped = set(SHIPPED.values())
    for e in alternatives.FRAMEWORKS:
        assert e.implementation in shipped, f"{e.name}: {e.implementation} is not in SHIPPED"


def test_an_entry_must_say_why_it_is_legitimate_and_be_correct():
    entry = alternatives.NUMPY[0]
    with pytest.raises(ValueError, match="legitimate"):
        replace(entry, legitimate="")
    with pytest.raises(ValueError, match="correct"):
        replace(entry, kind="mistake")
    with pytest.raises(ValueError, match="not both"):
        replace(entry, implementation="nnspec.implementations.onnx_runtime")


def test_a_framework_entry_without_its_package_is_unavailable_with_the_reason(monkeypatch):
    # A None entry in sys.modules makes `import onnx` raise ImportError, as if it were absent.
    monkeypatch.setitem(sys.modules, "onnx", None)
    for name in ("nnspec.implementations.onnx_graphs", "nnspec.implementations.onnx_runtime"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    entry = next(e for e in alternatives.FRAMEWORKS if e.name == "onnx_runtime")
    with pytest.raises(ImplementationUnavailable, match=r"onnx package is not installed.*nnspec\[onnx\]"):
        entry.module()


def test_numpy_entries_build_modules_with_their_dtype_and_functions():
    for e in alternatives.NUMPY:
        module = e.module()
        assert module.DTYPE is e.dtype and all(callable(getattr(module, f)) for f in e.functions)
    assert np.float32 in {e.dtype for e in alternatives.NUMPY}


# ---- the oracle on every entry ------------------------------------------------------------------

@pytest.mark.parametrize("entry", params())
def test_a_correct_alternative_passes_every_spec_id_it_provides(entry: Alternative):
    try:
        importlib.invalidate_caches()
        o = selftest.run(entry)
    except ImplementationUnavailable as exc:
        pytest.skip(f"{entry.name} cannot run here: {exc}")
    if not o.passed:
        pytest.fail(f"a correct alternative does not pass every id of {entry.only}:\n{report(o)}")


def test_the_self_test_counts_passes_failures_and_absent_frameworks(monkeypatch):
    """selftest.alternatives on a corpus of three: a pass, a wrong σ (off by 1e-3) that must be
    counted as a failure with its message, and a framework made absent."""
    right = next(e for e in alternatives.NUMPY if e.name == "sigmoid_expit")
    wrong = replace(right, name="sigmoid_off_by_1e_3",
                    functions={"sigmoid": lambda x, alpha=1.0: 1e-3 + 1 / (1 + np.exp(-alpha * x))})
    absent = next(e for e in alternatives.FRAMEWORKS if e.name == "onnx_reference")
    monkeypatch.setitem(sys.modules, "onnx", None)
    for name in ("nnspec.implementations.onnx_graphs", "nnspec.implementations.onnx_reference"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(selftest, "CORPUS", (right, wrong, absent))
    corpus = selftest.alternatives()
    rows = {r["name"]: r for r in corpus["entries"]}
    assert (corpus["passed"], corpus["ran"]) == (1, 2), corpus
    assert rows["sigmoid_expit"]["passed"] is True
    assert rows["sigmoid_off_by_1e_3"]["passed"] is False
    assert rows["sigmoid_off_by_1e_3"]["failures"], rows["sigmoid_off_by_1e_3"]
    assert not rows["onnx_reference"]["available"] and "onnx" in rows["onnx_reference"]["reason"]
