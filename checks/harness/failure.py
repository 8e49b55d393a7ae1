"""What a failed check found, as data, and the helpers that make every comparison failure explain
itself.

A :class:`Failure` names the spec id, the implementation, the contract function, the worst element
(position, got, want) against the bound and the rule it came from, and the oracle's diagnosis; its
text (``str``) is the message pytest prints, in the array-api-tests style "got X, but should be Y
[function(args)]". The exceptions the checks raise carry it (``.failure``), and the checks'
conftest records it on pytest's report, so tools read the fields instead of the traceback's text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis.control import current_build_context, currently_in_test_context
from numpy.typing import ArrayLike

from nnspec.checks.bounds.rules import Bound
from nnspec.checks.harness import contract
from nnspec.checks.harness.loading import PRECISIONS
from nnspec.checks.oracle.diagnosis import lower_precision_behind
from nnspec.checks.oracle.localise_findings import Finding, from_fields
from nnspec.checks.oracle.localise_findings import fields as finding_fields

if TYPE_CHECKING:
    from nnspec.checks.harness.implementation import Implementation


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One way an implementation failed a check: the message and the fields it was made from.

    Fields a failure does not have are None (a shape mismatch has no worst element, an exception
    raised inside the implementation no bound; an error raised outside any check no spec id).
    """

    spec_id: str | None = None
    implementation: str | None = None
    #: The contract function called, where the check names one.
    function: str | None = None
    #: The output compared (``h'``, ``dx``, ``φ(x)``…).
    what: str | None = None
    #: Position of the worst element in the output; ``()`` for a scalar.
    index: tuple[int, ...] | None = None
    got: float | None = None
    want: float | None = None
    #: The bound at the worst element, and the tolerance rule it came from.
    bound: float | None = None
    rule: str | None = None
    #: The call as the check describes it: the function and its arguments' shapes.
    call: str | None = None
    #: The oracle's findings: a lower precision than declared, a known variant or bug matched, a
    #: fault localised (checks/oracle/localisation.py). Each line is a ``Finding`` (a ``str``
    #: with kind, location, evidence and confidence) where the diagnosis made it.
    diagnosis: list[str] = field(default_factory=list)
    #: The whole text pytest prints.
    message: str = ""

    def __str__(self) -> str:
        return self.message

    @property
    def headline(self) -> str:
        """The message's first line: what failed, on which output, got against want."""
        return self.message.split("\n", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-safe values: lists for tuples, and non-finite floats as the strings
        'nan', 'inf' and '-inf' (strict JSON has no NaN)."""
        return {"spec_id": self.spec_id, "implementation": self.implementation,
                "function": self.function, "what": self.what,
                "index": None if self.index is None else list(self.index),
                "got": _to_json(self.got), "want": _to_json(self.want),
                "bound": _to_json(self.bound), "rule": self.rule, "call": self.call,
                # Plain strings: pytest-xdist's serializer takes no str subclass (a Finding).
                "diagnosis": [str(line) for line in self.diagnosis],
                "findings": [finding_fields(line) for line in self.diagnosis],
                "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        """The inverse of :meth:`to_dict`."""
        index = data.get("index")
        return cls(spec_id=data.get("spec_id"), implementation=data.get("implementation"),
                   function=data.get("function"), what=data.get("what"),
                   index=None if index is None else tuple(int(i) for i in index),
                   got=_from_json(data.get("got")), want=_from_json(data.get("want")),
                   bound=_from_json(data.get("bound")), rule=data.get("rule"),
                   call=data.get("call"), diagnosis=_diagnosis(data),
                   message=data.get("message", ""))


def _diagnosis(data: dict[str, Any]) -> list[str]:
    """The diagnosis lines of :meth:`Failure.to_dict`'s data, as findings where it has them."""
    lines = list(data.get("diagnosis", []))
    found = data.get("findings")
    if not isinstance(found, list) or len(found) != len(lines):
        return lines
    return [from_fields(f) if f.get("line") == line else line
            for f, line in zip(found, lines, strict=True)]


def _to_json(x: float | None) -> float | str | None:
    return x if x is None or math.isfinite(x) else str(x)


def _from_json(x: float | str | None) -> float | None:
    return None if x is None else float(x)


class Reported(AssertionError):
    """A check's failure whose data is a :class:`Failure` (``.failure``); its text is the
    failure's message. Built from a bare message, the other fields are None."""

    def __init__(self, failure: Failure | str) -> None:
        self.failure = failure if isinstance(failure, Failure) else Failure(message=str(failure))
        super().__init__(self.failure.message)

    def __reduce__(self) -> tuple[type, tuple[Failure]]:
        return type(self), (self.failure,)


class NonConformance(Reported):
    """An implementation computed something the spec does not allow."""


def failures_in(exc: BaseException | None) -> list[Failure]:
    """The failures an exception carries: its own, those of an exception group's members
    (Hypothesis reports several distinct bugs as one), or, for an exception that is not a
    check's, those of the exception it was raised from or while handling."""
    if exc is None:
        return []
    if isinstance(exc, Reported):
        return [exc.failure]
    if isinstance(exc, BaseExceptionGroup):
        return [f for member in exc.exceptions for f in failures_in(member)]
    return failures_in(exc.__cause__ or exc.__context__)


def none_of(header: str, failures: Sequence[Failure]) -> Failure:
    """One failure for an output that conforms to none of several accepted variants: the first
    variant's fields, ``header`` above every variant's message, each diagnosis line once."""
    return replace(failures[0], message="\n".join([header, *(f.message for f in failures)]),
                   diagnosis=list(dict.fromkeys(line for f in failures for line in f.diagnosis)))


def _fmt(a: np.ndarray, limit: int = 6) -> str:
    flat = np.asarray(a).ravel()
    body = ", ".join(f"{v:.17g}" for v in flat[:limit])
    return f"[{body}{', …' if flat.size > limit else ''}] shape {np.shape(a)}"


def _name(impl: Implementation | str) -> str:
    return impl if isinstance(impl, str) else impl.name


def _function(call: str) -> str | None:
    """The contract function a check's call description starts with (``lstm_cell(…)``), if any."""
    head = re.match(r"[A-Za-z_]\w*", call)
    return head[0] if head and head[0] in contract.ALL else None


def assert_close(got: ArrayLike, want: ArrayLike, bound: Bound, *, spec_id: str,
                 impl: Implementation | str, call: str, what: str = "output") -> None:
    """Fail with a self-explaining message unless ``|got − want| ≤ bound`` everywhere."""
    __tracebackhide__ = True
    got_a = np.asarray(got, dtype=np.float64)
    want_a = np.asarray(want, dtype=np.float64)
    name = _name(impl)
    known: dict[str, Any] = {"spec_id": spec_id, "implementation": name,
                             "function": _function(call), "what": what, "call": call}
    if got_a.shape != want_a.shape:
        raise NonConformance(Failure(
            **known, rule=bound.rule,
            message=f"[{spec_id}] {name}: {what} has shape {got_a.shape}, but should have shape "
                    f"{want_a.shape} [{call}]"))
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf is masked just below
        err = np.abs(got_a - want_a)
    same_nonfinite = (got_a == want_a) | (np.isnan(got_a) & np.isnan(want_a))
    err = np.where(same_nonfinite, 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    if not isinstance(impl, str) and impl.precision and bound.unit:
        # Declared TF32 or bfloat16 products: the checks compute their bounds at that unit
        # (rules.declared_precision). One computed before, at float32's (an exported vector's
        # stored bound), is restated to first order: its values are moderate, far from flipping
        # a gate.
        unit = PRECISIONS[impl.precision]
        restated = "" if bound.unit == unit else " restated"
        bound = Bound(bound.atol if bound.unit == unit else bound.at_unit(unit),
                      f"({bound.rule}){restated} at {impl.precision}'s u={unit:.3g}", unit)
    excess = err > bound.atol
    if not np.any(excess):
        return
    ratio = np.where(excess, err / np.maximum(bound.atol, np.finfo(np.float64).tiny), 0.0)
    findings = _findings(err, bound, impl, known["function"], want_a)
    worst = np.unravel_index(int(np.argmax(ratio)), got_a.shape) if got_a.ndim else ()
    pos = tuple(int(i) for i in worst)
    raise NonConformance(Failure(
        **known, index=pos, got=float(got_a[worst]), want=float(want_a[worst]),
        bound=float(bound.atol[worst]), rule=bound.rule, diagnosis=findings,
        message=f"[{spec_id}] {name}: {what}{list(pos) if pos else ''} was {float(got_a[worst])!r}, "
                f"but should be {float(want_a[worst])!r} [{call}]\n"
                f"  |error| = {err[worst]:.3g} exceeds the bound {bound.atol[worst]:.3g} "
                f"({ratio[worst]:.3g}×) from {bound.rule}\n"
                f"  {int(excess.sum())} of {excess.size} elements out of bound\n"
                f"  got  {_fmt(got_a)}\n  want {_fmt(want_a)}"
                + "".join(f"\n  Diagnosis: {line}" for line in findings)))


def assert_outputs_close(impl: Implementation, fn: str, spec_id: str, names: Sequence[str],
                         got: Sequence[Any], want: Sequence[Any], bounds: Sequence[Bound | None],
                         *, call: str, absent_is_none: bool = False) -> None:
    """Every output of ``fn`` (or gradient) within its bound of the reference's. Where the
    reference returns None (the gradient of an absent bias) the output is not compared; with
    ``absent_is_none`` the implementation must return None there too."""
    __tracebackhide__ = True
    for name, got_i, want_i, bound in zip(names, got, want, bounds, strict=True):
        if want_i is None:
            if absent_is_none and got_i is not None:
                fail(spec_id, impl, f"{fn}() returned an array for {name}, but should return "
                                    f"None: that bias was not passed", call=call)
            continue
        assert bound is not None, f"a bound for every output the reference returns ({name})"
        arr = impl.array(got_i, fn=fn, what=name, shape=want_i.shape)
        assert_close(arr, want_i, bound, spec_id=spec_id, impl=impl, what=name, call=call)


def final_replay() -> bool:
    """Whether a failure found now is final: outside Hypothesis, or on its final replay of the
    shrunk example (while it searches and shrinks, diagnoses are not worth their cost)."""
    return not currently_in_test_context() or current_build_context().is_final


#: Findings a lower precision makes moot: the experiments ran because no formula matched.
_EXPLAINED_BY_PRECISION = ("argument", "gate", "output order", "time", "unlocalised")


def _findings(err: np.ndarray, bound: Bound, impl: Implementation | str, fn: str | None,
              want: np.ndarray) -> list[str]:
    """What the oracle can say beyond "out of bound": a lower precision (an error that scales like
    float32 rounding, checks/oracle/diagnosis.py), a known variant or bug, an approximation."""
    if isinstance(impl, str):
        return []
    named = impl.diagnosis()
    if any(isinstance(line, Finding) and line.kind == "variant or bug" and line.confidence == "high"
           for line in named):
        # A formula reproduced at the rounding level explains the error: a lower precision would
        # be a second explanation of the same error, and the atlas met it as a false one (Flax
        # NNX's GRU, gru.bug.no_bias_hn at 1.9e-16, also said to compute in float32). Asked
        # first, so that the precision test's calls to the implementation are not made for
        # nothing.
        return named
    lines = []
    # Like impl.diagnosis(), only on Hypothesis's final replay: the claim re-evaluates the spec.
    if bound.unit and final_replay():
        line = lower_precision_behind(impl.precision or impl.dtype.name, err, bound.atol,
                                      bound.unit, list(impl.calls), fn, want, draw=impl.draw)
        lines += [line] if line else []
    if lines:  # a lower precision already explains the error; unmatched-formula lines add noise
        named = [line for line in named if "matches no known" not in line
                 and " is an approximat" not in line and "by float32 rounding" not in line
                 and not (isinstance(line, Finding) and line.kind in _EXPLAINED_BY_PRECISION)]
    return lines + named


def fail(spec_id: str, impl: Implementation | str, message: str, *, call: str = "") -> None:
    """Fail a non-numeric claim (a property, a statistical test) with the same framing, and
    the diagnosis of the implementation's recorded calls."""
    __tracebackhide__ = True
    name = _name(impl)
    findings = [] if isinstance(impl, str) else impl.diagnosis()
    raise NonConformance(Failure(
        spec_id=spec_id, implementation=name, function=_function(call), call=call or None,
        diagnosis=findings,
        message=f"[{spec_id}] {name}: {message}" + (f" [{call}]" if call else "")
                + "".join(f"\n  Diagnosis: {line}" for line in findings)))
