"""One comparison, end to end: call a contract function on the implementation, compute the
reference's outputs and their bounds on the same (cast) arguments, and hold every output to its
bound — the shape most checks of a multi-output function take."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from nnspec.checks.bounds.rules import Bound, declared_precision
from nnspec.checks.harness.failure import assert_outputs_close, fail
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.checks.harness.loading import PRECISIONS


def check_outputs(impl: Implementation, fn: str, spec_id: str, names: Sequence[str],
                  args: Sequence[Any], reference: Callable[..., Sequence[Any]],
                  bounds: Callable[..., Sequence[Any]], *, kwargs: dict[str, Any] | None = None,
                  absent_is_none: bool = False, finite: bool = False) -> None:
    """``impl.fn(*args, **kwargs)`` against ``reference(*args, **kwargs)`` within
    ``bounds(*args, **kwargs, dtype=impl.dtype)``, output by output (``names`` in order); the
    arguments are the values the implementation sees (already cast). With ``finite``, an
    infinite bound — which would accept any value — fails the check as nnspec's own defect
    before the implementation is called, instead of passing it."""
    __tracebackhide__ = True
    kwargs = kwargs or {}
    call = f"{fn}{describe_args(args, kwargs)}"
    limits = bounds(*args, **kwargs, dtype=impl.dtype)
    if impl.precision:
        limits = _scaled_where_infinite(limits, lambda: bounds(*args, **kwargs, dtype=impl.dtype),
                                        impl.precision)
    if finite:
        for name, bound in zip(names, limits, strict=True):
            if bound is not None and not np.all(np.isfinite(bound.atol)):
                vacuous = int(np.sum(~np.isfinite(bound.atol)))
                if impl.precision and not impl.provides(fn):
                    break  # the call below says it is not provided
                if impl.precision:
                    pytest.skip(f"not judged at {impl.precision}'s unit roundoff: the bound of "
                                f"{name} is infinite at {vacuous} of {bound.atol.size} elements, "
                                f"at that unit and at float32's scaled to it")
                fail(spec_id, "reference", f"setup: the bound of {name} is infinite at {vacuous} "
                     f"of {bound.atol.size} elements, so no value could fail there "
                     f"({bound.rule})", call=call)
    got = impl.outputs(impl.call(fn, *args, **kwargs), fn=fn, names=tuple(names))
    assert_outputs_close(impl, fn, spec_id, names, got, reference(*args, **kwargs), limits,
                         call=call, absent_is_none=absent_is_none)


def _scaled_where_infinite(limits: Sequence[Bound | None], at_own_unit: Callable[[], Sequence[Any]],
                           precision: str) -> list[Bound | None]:
    """``limits``, computed at a declared precision's unit (rules.declared_precision), where they
    are infinite — the probabilistic bound of a long run leaves its linear range at that unit,
    and the worst case grows without limit — completed by the bounds at float32's own unit scaled
    to it, to first order (spec/tolerances.md, "A declared lower precision")."""
    if all(b is None or np.all(np.isfinite(b.atol)) for b in limits):
        return list(limits)
    with declared_precision(None):
        own = at_own_unit()
    unit = PRECISIONS[precision]
    completed: list[Bound | None] = []
    for bound, float32 in zip(limits, own, strict=True):
        if bound is None or float32 is None or not float32.unit or np.all(np.isfinite(bound.atol)):
            completed.append(bound)
            continue
        completed.append(Bound(np.where(np.isfinite(bound.atol), bound.atol, float32.at_unit(unit)),
                               f"{bound.rule}; where infinite, ({float32.rule}) scaled to "
                               f"{precision}'s u={unit:.3g}, first order", unit))
    return completed
