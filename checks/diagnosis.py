"""Diagnosis: when an implementation fails, which known formula did it compute instead?

Every spec id carries named variants and known bugs (spec/*.md), and each has a reference function
(its docstring starts with the id). A function of the reference whose parameters are exactly
those of a contract function is a *candidate* for that contract function: ``gru_cell_textbook``
and ``gate_order_zrn`` for ``gru_cell``, say. When a comparison fails, the calls the check made to
the implementation are replayed on every candidate, and a candidate whose output the
implementation reproduces at the rounding level while the spec's own output is far off is named:
"matches gru.cell.textbook".

The thresholds here decide what is *named*, never what passes: the verdict itself always comes
from the tolerance model. A candidate is named when its distance to the implementation's output
is within :data:`ROUNDING_LEVEL` units of the implementation's own rounding, or
:data:`SEPARATION` times closer than the spec — so a variant is still named when the
implementation's rounding noise is far above float64's.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

#: Relative distance, in units of the implementation's u, that counts as "the same formula".
ROUNDING_LEVEL = 1e4

#: A candidate this many times closer to the implementation than the spec is named as well.
SEPARATION = 1e3

_DOC_ID = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?=$|[\s:—-])")


@dataclass(frozen=True)
class Call:
    """One call the check made to the implementation, with the values it saw (as float64)."""

    fn: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


def _doc_id(f: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(f) or ""
    m = _DOC_ID.match(doc.strip().splitlines()[0]) if doc.strip() else None
    return m.group(1) if m else None


def _params(f: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(f).parameters)


@cache
def candidates(fn: str) -> dict[str, Callable[..., Any]]:
    """Variant and bug functions of the reference that take exactly the arguments of ``fn``."""
    from nnspec.implementations import reference

    spec_fn = getattr(reference, fn, None)
    if spec_fn is None or "rng" in _params(spec_fn):
        return {}
    own = _doc_id(spec_fn)
    module = sys.modules[spec_fn.__module__]
    found: dict[str, Callable[..., Any]] = {}
    for _, f in inspect.getmembers(module, inspect.isfunction):
        sid = _doc_id(f)
        if (f.__module__ == module.__name__ and sid and sid != own and sid not in found
                and _params(f) == _params(spec_fn)):
            found[sid] = f
    return found


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, tuple | list):
        return [a for v in value for a in _arrays(v)]
    return [np.asarray(value, dtype=np.float64)]


def distance(got: Any, want: Any) -> float:
    """Largest error relative to the scale of ``want``, over all output arrays (inf if unlike)."""
    a, b = _arrays(got), _arrays(want)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.size == 0:
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            err = float(np.max(np.abs(x - y)))
        scale = float(np.max(np.abs(y))) or 1.0
        worst = max(worst, err / scale if np.isfinite(err) else float("inf"))
    return worst


def diagnose(calls: list[Call], unit: float) -> list[str]:
    """Name the known variants and bugs that the recorded calls reproduce instead of the spec."""
    from nnspec.implementations import reference

    lines: list[str] = []
    # The most recent call per function belongs to the failing example; earlier ones may be
    # left over from examples Hypothesis tried before.
    latest = {c.fn: c for c in calls}
    for call in latest.values():
        found = candidates(call.fn)
        if not found:
            continue
        try:
            spec_out = getattr(reference, call.fn)(*call.args, **call.kwargs)
        except Exception:
            continue
        d_spec = distance(call.output, spec_out)
        if d_spec <= ROUNDING_LEVEL * unit:
            continue
        scored = []
        for sid, f in found.items():
            try:
                scored.append((distance(call.output, f(*call.args, **call.kwargs)), sid))
            except Exception:
                continue
        named = [(d, sid) for d, sid in sorted(scored)
                 if d <= ROUNDING_LEVEL * unit or d * SEPARATION <= d_spec]
        spec_id = _doc_id(getattr(reference, call.fn)) or call.fn
        if named:
            best = ", ".join(f"{sid} (relative distance {d:.2g})" for d, sid in named)
            lines.append(f"{call.fn}() matches {best}; the spec {spec_id} is at {d_spec:.2g}")
        else:
            lines.append(f"{call.fn}() matches no known variant or bug of {spec_id} "
                         f"(spec at relative distance {d_spec:.2g}; closest "
                         f"{min(scored)[1] if scored else '—'})")
    return list(dict.fromkeys(lines))
