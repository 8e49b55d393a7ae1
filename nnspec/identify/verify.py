"""Verifying a conversion with the full checks: the cell and ``from_torch`` as a contract module.

:func:`contract_module` builds the module the checks call — the contract function of the
identified variant (``gru_cell``, ``gru_cell_textbook``, ``lstm_cell`` or ``rnn_cell``) converting
the contract's PyTorch-layout weights with ``from_torch`` and calling the cell — and
:func:`verify` runs :func:`nnspec.oracle.check` on it for that function's spec id. The verdict
comes from the checks' own tolerance model; nothing here decides a pass.
"""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnspec.checks.harness import contract

_DOC_ID = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")

FromTorch = Callable[..., Mapping[str, Any]]


def spec_id(function: str) -> str:
    """The spec id a contract function is checked as: the id that starts the docstring of the
    reference function bound to it (nnspec.implementations.reference)."""
    from nnspec.implementations import reference

    doc = (getattr(reference, function).__doc__ or "").strip()
    found = _DOC_ID.match(doc)
    if not found:
        raise ValueError(f"the reference's {function} names no spec id")
    return found.group(0)


def contract_module(cell: Callable[..., Any], from_torch: FromTorch, *, kind: str,
                    function: str, dtype: Any, nonlinearity: str | None = None,
                    name: str = "identified_cell") -> types.ModuleType:
    """A module defining ``DTYPE`` and ``function`` (the contract's signature): the cell called
    on ``from_torch(w_ih, w_hh, b_ih, b_hh)``, an absent bias passed as zeros. For the RNN, the
    other nonlinearity than ``nonlinearity`` raises NotImplementedError (*not provided*)."""
    states = ("h", "c") if kind == "lstm" else ("h",)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = contract.signature(function).bind(*args, **kwargs)
        bound.apply_defaults()
        v = bound.arguments
        if kind == "rnn" and v["nonlinearity"] != nonlinearity:
            raise NotImplementedError(f"the cell computes nonlinearity={nonlinearity!r} only")
        w_ih, w_hh = v["w_ih"], v["w_hh"]
        zero = np.zeros(w_hh.shape[0], dtype=w_hh.dtype)
        params = from_torch(w_ih, w_hh, zero if v["b_ih"] is None else v["b_ih"],
                            zero if v["b_hh"] is None else v["b_hh"])
        out = cell(v["x"], *(v[s] for s in states), **params)
        if kind == "lstm":
            return tuple(np.asarray(o) for o in out)
        return np.asarray(out)

    call.__name__ = call.__qualname__ = function
    call.__module__ = name
    call.__signature__ = contract.signature(function)  # type: ignore[attr-defined]
    module = types.ModuleType(name, f"{name}: the identified conversion as {function}")
    module.DTYPE = np.dtype(dtype).type  # type: ignore[attr-defined]
    setattr(module, function, call)
    module.__all__ = ["DTYPE", function]  # type: ignore[attr-defined]
    return module


@dataclass
class Verification:
    """The full checks' verdict on the conversion."""

    spec_id: str
    verdict: str
    seconds: float
    passed: int
    failed: int
    #: Checks not provided: the gradient checks (the cell is called, never differentiated) and
    #: those of functions the module does not define.
    not_provided: int
    diagnoses: list[str] = field(default_factory=list)
    first_failure: str = ""
    #: Why no verdict came, when none did (the checks could not be collected or run).
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"


def verify(module: types.ModuleType, sid: str, *, seed: int = 0,
           examples: int | None = None) -> Verification:
    """Run the checks of ``sid`` on ``module`` (in-process) and return the verdict."""
    from nnspec.oracle import check

    start = time.perf_counter()
    result = check(module, only=[sid], seed=seed, examples=examples, implementation_only=True)
    seconds = time.perf_counter() - start
    failures = result.failures.get(sid, [])
    totals = result.conformance.totals
    verdict = result.verdicts.get(sid, "not provided")
    code = result.conformance.exit_code
    problem = ("" if verdict in ("pass", "fail") else
               f"the checks of {sid} gave no verdict (pytest exit code {code}; "
               f"{'; '.join(result.messages.get(sid, [])[:1]) or 'none ran'})")
    return Verification(spec_id=sid, verdict=verdict, seconds=seconds, passed=totals["passed"],
                        failed=totals["failed"], not_provided=totals["skipped"],
                        diagnoses=list(result.diagnoses.get(sid, [])),
                        first_failure=failures[0].headline if failures else "", problem=problem)
