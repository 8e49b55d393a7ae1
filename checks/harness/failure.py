"""One helper that makes every comparison failure explain itself.

A failure names the spec id, the implementation, the function and its arguments, the worst
element (position, got, want, error) against the bound and the rule it came from, and how many
elements exceed it, in the array-api-tests style "got X, but should be Y [function(args)]".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nnspec.checks.bounds.rules import Bound, unit_roundoff
from nnspec.checks.harness.implementation import Implementation


class NonConformance(AssertionError):
    """An implementation computed something the spec does not allow."""


def _fmt(a: np.ndarray, limit: int = 6) -> str:
    flat = np.asarray(a).ravel()
    body = ", ".join(f"{v:.17g}" for v in flat[:limit])
    return f"[{body}{', …' if flat.size > limit else ''}] shape {np.shape(a)}"


def assert_close(got: ArrayLike, want: ArrayLike, bound: Bound, *, spec_id: str,
                 impl: Implementation | str, call: str, what: str = "output") -> None:
    """Fail with a self-explaining message unless ``|got − want| ≤ bound`` everywhere."""
    __tracebackhide__ = True
    got_a = np.asarray(got, dtype=np.float64)
    want_a = np.asarray(want, dtype=np.float64)
    name = impl.name if isinstance(impl, Implementation) else impl
    if got_a.shape != want_a.shape:
        raise NonConformance(
            f"[{spec_id}] {name}: {what} has shape {got_a.shape}, but should have shape "
            f"{want_a.shape} [{call}]"
        )
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf is masked just below
        err = np.abs(got_a - want_a)
    same_nonfinite = (got_a == want_a) | (np.isnan(got_a) & np.isnan(want_a))
    err = np.where(same_nonfinite, 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    excess = err > bound.atol
    if not np.any(excess):
        return
    ratio = np.where(excess, err / np.maximum(bound.atol, np.finfo(np.float64).tiny), 0.0)
    findings = _findings(err, bound, impl)
    worst = np.unravel_index(int(np.argmax(ratio)), got_a.shape) if got_a.ndim else ()
    pos = tuple(int(i) for i in worst)
    raise NonConformance(
        f"[{spec_id}] {name}: {what}{list(pos) if pos else ''} was {float(got_a[worst])!r}, but should "
        f"be {float(want_a[worst])!r} [{call}]\n"
        f"  |error| = {err[worst]:.3g} exceeds the bound {bound.atol[worst]:.3g} "
        f"({ratio[worst]:.3g}×) from {bound.rule}\n"
        f"  {int(excess.sum())} of {excess.size} elements out of bound\n"
        f"  got  {_fmt(got_a)}\n  want {_fmt(want_a)}"
        + "".join(f"\n  Diagnosis: {line}" for line in findings)
    )


def _findings(err: np.ndarray, bound: Bound, impl: Implementation | str) -> list[str]:
    """What the oracle can say beyond "out of bound": a lower precision, a known variant or bug."""
    if not isinstance(impl, Implementation):
        return []
    lines = []
    u32 = unit_roundoff(np.float32)
    if (impl.dtype == np.float64 and bound.unit and np.all(np.isfinite(err))
            and np.all(err <= bound.at_unit(u32))):
        lines.append("the error is within the same bound at float32's rounding (u = 2⁻²⁴): "
                     "the implementation computes in float32 while declaring DTYPE float64")
    named = impl.diagnosis()
    if lines:  # a lower precision already explains the error; unmatched-formula lines add noise
        named = [line for line in named if "matches no known" not in line]
    return lines + named


def fail(spec_id: str, impl: Implementation | str, message: str, *, call: str = "") -> None:
    """Fail a non-numeric claim (a property, a statistical test) with the same framing, and
    the diagnosis of the implementation's recorded calls."""
    __tracebackhide__ = True
    name = impl.name if isinstance(impl, Implementation) else impl
    findings = impl.diagnosis() if isinstance(impl, Implementation) else []
    raise NonConformance(f"[{spec_id}] {name}: {message}" + (f" [{call}]" if call else "")
                         + "".join(f"\n  Diagnosis: {line}" for line in findings))
