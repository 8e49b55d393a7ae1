"""Verifying a conversion with the full checks: the cell and ``from_torch`` as a contract module.

:func:`conversion_module` builds the module the checks call — the contract function of the
identified variant (``gru_cell``, ``gru_cell_textbook``, ``lstm_cell`` or ``rnn_cell``) converting
the contract's PyTorch-layout weights with ``from_torch`` and calling the cell — and
:func:`verify` runs :func:`nnspec.oracle.check` on it for that function's spec id. The verdict
comes from the checks' own tolerance model; nothing here decides a pass.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnspec.adapters import contract_module

FromTorch = Callable[..., Mapping[str, Any]]


def spec_id(function: str) -> str:
    """The spec id a contract function is checked as: the id that starts the docstring of the
    reference function bound to it (nnspec.implementations.reference), read as the diagnosis
    reads it (nnspec.checks.oracle.diagnosis.doc_id)."""
    from nnspec.checks.oracle.diagnosis import doc_id
    from nnspec.implementations import reference

    found = doc_id(getattr(reference, function))
    if found is None:
        raise ValueError(f"the reference's {function} names no spec id")
    return found


def conversion_module(cell: Callable[..., Any], from_torch: FromTorch, *, kind: str,
                      function: str, dtype: Any, nonlinearity: str | None = None,
                      name: str = "identified_cell") -> types.ModuleType:
    """A contract module (nnspec.adapters.contract_module) defining ``DTYPE`` and ``function``:
    the cell called on ``from_torch(w_ih, w_hh, b_ih, b_hh)``, an absent bias passed as zeros.
    For the RNN, the other nonlinearity than ``nonlinearity`` raises NotImplementedError (*not
    provided*)."""

    def forward(x: np.ndarray, states: tuple[np.ndarray, ...], params: tuple[Any, ...],
                phi: str) -> tuple[np.ndarray, ...]:
        if kind == "rnn" and phi != nonlinearity:
            raise NotImplementedError(f"the cell computes nonlinearity={nonlinearity!r} only")
        w_ih, w_hh, b_ih, b_hh = params
        zero = np.zeros(w_hh.shape[0], dtype=w_hh.dtype)
        out = cell(x, *states, **from_torch(w_ih, w_hh, zero if b_ih is None else b_ih,
                                            zero if b_hh is None else b_hh))
        return tuple(np.asarray(o) for o in out) if kind == "lstm" else (np.asarray(out),)

    return contract_module(name, function, np.dtype(dtype), forward, None,
                           f"{name}: the identified conversion as {function}")


@dataclass
class Verification:
    """The full checks' verdict on the conversion: the spec id's own row of the oracle's result
    (the checks that count for that id, not the run's totals, which hold other ids' skips)."""

    spec_id: str
    verdict: str
    seconds: float
    passed: int
    failed: int
    #: The spec id's checks not provided: typically its gradient checks (the cell is called,
    #: never differentiated); ``not_provided_reasons`` says which.
    not_provided: int
    diagnoses: list[str] = field(default_factory=list)
    first_failure: str = ""
    #: Why no verdict came, when none did (the checks could not be collected or run).
    problem: str = ""
    #: The distinct reasons among the skips the oracle recorded for the id. It keeps only the
    #: first few messages of a row: ``reasons_complete`` is False when skips went unrecorded.
    not_provided_reasons: list[str] = field(default_factory=list)
    reasons_complete: bool = True
    #: "partly provided" notes: what the checks that ran could not check (an RNN cell computing
    #: one nonlinearity only).
    partly: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"


def verify(module: types.ModuleType, sid: str, *, seed: int = 0,
           examples: int | None = None) -> Verification:
    """Run the checks of ``sid`` on ``module`` (in-process) and return the verdict, with the
    counts and reasons of ``sid``'s own row of the result."""
    from nnspec.conformance import Cell
    from nnspec.oracle import check

    start = time.perf_counter()
    result = check(module, only=[sid], seed=seed, examples=examples, implementation_only=True)
    seconds = time.perf_counter() - start
    cells = result.conformance.cells
    row = cells.get((sid, result.implementation)) or cells.get((sid, "(implementation-independent)"))
    row = row or Cell()
    verdict = result.verdicts.get(sid, "not provided")
    headlines = {f.headline for f in row.failures}
    reasons = [m.removeprefix("not provided: ") for m in row.messages if m not in headlines]
    problem = ("" if verdict in ("pass", "fail") else
               f"the checks of {sid} gave no verdict (pytest exit code "
               f"{result.conformance.exit_code}; {'; '.join(reasons[:1]) or 'none ran'})")
    return Verification(spec_id=sid, verdict=verdict, seconds=seconds, passed=row.passed,
                        failed=row.failed, not_provided=row.skipped,
                        diagnoses=list(result.diagnoses.get(sid, [])),
                        first_failure=row.failures[0].headline if row.failures else "",
                        problem=problem, not_provided_reasons=list(dict.fromkeys(reasons)),
                        reasons_complete=len(reasons) >= row.skipped, partly=list(row.partly))
