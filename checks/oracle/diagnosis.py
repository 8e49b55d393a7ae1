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

A random operation (a contract function taking ``rng``: dropout, the initialisers) cannot be
replayed value by value: the implementation and a candidate consume their generators differently.
Its recorded call is replayed instead with fresh generators, on the implementation and on every
candidate, until about :data:`REPLAY_SAMPLES` values are pooled per output, and the pooled
values are compared by a two-sample Kolmogorov–Smirnov test: a candidate whose law the test keeps
at the suite's false-alarm rate ``stats.ALPHA`` while it rejects the spec's law is named — the drop
rate, the scale of the kept units, the behaviour in evaluation mode or the width of an
initialiser's law all show in the pooled values.
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

#: Values pooled per output when a random operation is replayed: at 10⁵ a two-sample KS test at
#: α = 10⁻⁶ rejects CDFs 0.012 apart (c(α)·√(2/n), c(α) = 2.69): drop rates 0.30 and 0.32, say.
REPLAY_SAMPLES = 100_000

#: At most this many replays of one recorded call (a shrunk example may hold a single value).
MAX_REPLAYS = 2_000

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
    if spec_fn is None:
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
            # The same inf or NaN on both sides is agreement (an overflow the candidate shares).
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            err = float(np.max(np.where(same, 0.0, np.abs(x - y))))
        scale = float(np.max(np.abs(y[np.isfinite(y)]), initial=0.0)) or 1.0
        worst = max(worst, err / scale if np.isfinite(err) else float("inf"))
    return worst


def diagnose(calls: list[Call], unit: float, *,
             draw: Callable[..., Any] | None = None) -> list[str]:
    """Name the known variants and bugs that the recorded calls reproduce instead of the spec.

    ``draw(fn, *args, **kwargs)`` calls the implementation again, unrecorded; without it random
    operations are not diagnosed.
    """
    from nnspec.implementations import reference

    lines: list[str] = []
    # The most recent call per function belongs to the failing example; earlier ones may be
    # left over from examples Hypothesis tried before.
    latest = {c.fn: c for c in calls}
    for call in latest.values():
        found = candidates(call.fn)
        if not found:
            continue
        if _is_random(call):
            if draw is not None:
                lines.extend(_diagnose_random(call, found, unit, draw))
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
                 if d <= ROUNDING_LEVEL * unit or (np.isfinite(d) and d * SEPARATION <= d_spec)]
        spec_id = _doc_id(getattr(reference, call.fn)) or call.fn
        if named:
            best = ", ".join(f"{sid} (relative distance {d:.2g})" for d, sid in named)
            lines.append(f"{call.fn}() matches {best}; the spec {spec_id} is at {d_spec:.2g}")
        else:
            lines.append(f"{call.fn}() matches no known variant or bug of {spec_id} "
                         f"(spec at relative distance {d_spec:.2g}; closest "
                         f"{min(scored)[1] if scored else '—'})")
    return list(dict.fromkeys(lines))


def _is_random(call: Call) -> bool:
    return any(isinstance(a, np.random.Generator) for a in (*call.args, *call.kwargs.values()))


def _pooled(f: Callable[..., Any], call: Call, replays: int, stream: int) -> list[np.ndarray]:
    """``f`` on the call's arguments, a fresh generator per replay; the values of each output
    pooled across replays. Replay i of stream s draws from default_rng([s, i]): reproducible."""

    def fresh(a: Any, i: int) -> Any:
        return np.random.default_rng([stream, i]) if isinstance(a, np.random.Generator) else a

    pooled: list[list[np.ndarray]] = []
    for i in range(replays):
        out = _arrays(f(*(fresh(a, i) for a in call.args),
                        **{k: fresh(v, i) for k, v in call.kwargs.items()}))
        pooled = pooled or [[] for _ in out]
        if len(out) != len(pooled):
            raise ValueError("the number of outputs changed between replays")
        for acc, a in zip(pooled, out, strict=True):
            acc.append(a.ravel())
    return [np.concatenate(acc) for acc in pooled]


def _snapped(a: np.ndarray, unit: float) -> np.ndarray:
    """``a`` with its significands rounded to multiples of ROUNDING_LEVEL·unit: values that differ
    only by the implementation's rounding become one atom (x/(1 − p) in float32 and in float64),
    which the KS test would otherwise see as two laws."""
    with np.errstate(invalid="ignore"):
        significand, exponent = np.frexp(a)
        step = ROUNDING_LEVEL * unit
        return np.ldexp(np.round(significand / step) * step, exponent)


def _agreement(a: list[np.ndarray], b: list[np.ndarray], unit: float) -> float:
    """The smallest two-sample KS p-value over the outputs (0 when they are not comparable).

    The test depends only on the order of the pooled values, so each sample is replaced by its
    values' positions in the sorted union of both: ±inf keep their place, and NaN (which
    numpy.unique sorts last, all NaNs as one value) becomes an atom of its own.
    """
    from scipy import stats

    if len(a) != len(b) or any(x.size == 0 or y.size == 0 for x, y in zip(a, b, strict=True)):
        return 0.0
    pvalues = []
    for x, y in zip(a, b, strict=True):
        _, codes = np.unique(np.concatenate([_snapped(x, unit), _snapped(y, unit)]),
                             return_inverse=True)
        pvalues.append(stats.ks_2samp(codes[:x.size], codes[x.size:]).pvalue)
    return float(min(pvalues))


def _diagnose_random(call: Call, found: dict[str, Callable[..., Any]], unit: float,
                     draw: Callable[..., Any]) -> list[str]:
    """Name the candidates whose law the implementation's replayed outputs follow."""
    from nnspec.checks.harness.stats import ALPHA
    from nnspec.implementations import reference

    size = max(1, sum(a.size for a in _arrays(call.output)))
    replays = int(min(MAX_REPLAYS, -(-REPLAY_SAMPLES // size)))
    spec_fn = getattr(reference, call.fn)
    spec_id = _doc_id(spec_fn) or call.fn
    try:
        got = _pooled(lambda *a, **k: draw(call.fn, *a, **k), call, replays, stream=0)
        p_spec = _agreement(got, _pooled(spec_fn, call, replays, stream=1), unit)
    except Exception:
        return []
    how = f"{replays} replay{'s' if replays > 1 else ''} of {size} value{'s' if size > 1 else ''}"
    if p_spec >= ALPHA:
        return [f"{call.fn}() replayed ({how}) follows the law of the spec {spec_id} (two-sample "
                f"KS p = {p_spec:.2g}): the failure lies beyond one call's law (dependence "
                f"between draws or elements, or a rare event)"]
    scored = []
    for stream, (sid, f) in enumerate(found.items(), start=2):
        try:
            scored.append((_agreement(got, _pooled(f, call, replays, stream), unit), sid))
        except Exception:
            continue
    named = [(p, sid) for p, sid in sorted(scored, reverse=True) if p >= ALPHA]
    if named:
        best = ", ".join(f"{sid} (two-sample KS p = {p:.2g})" for p, sid in named)
        return [f"{call.fn}() replayed ({how}) follows the law of {best}; the spec {spec_id}'s "
                f"law is rejected (p = {p_spec:.2g} < α = {ALPHA:g})"]
    return [f"{call.fn}() replayed ({how}) follows no known variant or bug of {spec_id} (spec "
            f"rejected at p = {p_spec:.2g}; closest "
            f"{max(scored)[1] if scored else '—'})"]


_NAMED = re.compile(r"\b([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+) \((?:relative distance|two-sample KS)")


def named_ids(line: str) -> list[str]:
    """The variant and bug ids that one diagnosis line names as matched ([] for other lines)."""
    if "no known variant" in line or "follows the law of the spec" in line:
        return []
    return _NAMED.findall(line.split("; the spec ", 1)[0])
