"""One comparison, end to end: call a contract function on the implementation, compute the
reference's outputs and their bounds on the same (cast) arguments, and hold every output to its
bound — the shape most checks of a multi-output function take."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from nnspec.checks.harness.failure import assert_outputs_close, fail
from nnspec.checks.harness.implementation import Implementation, describe_args


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
    if finite:
        for name, bound in zip(names, limits, strict=True):
            if bound is not None and not np.all(np.isfinite(bound.atol)):
                vacuous = int(np.sum(~np.isfinite(bound.atol)))
                if impl.precision:
                    # At a declared TF32 or bfloat16 unit the first-order bound leaves its range
                    # (LINEARISATION_LIMIT) within a long run: the model cannot judge it there.
                    pytest.skip(f"not judged at {impl.precision}'s unit roundoff: the bound of "
                                f"{name} is infinite at {vacuous} of {bound.atol.size} elements "
                                f"(the first-order error model leaves its range over this run)")
                fail(spec_id, "reference", f"setup: the bound of {name} is infinite at {vacuous} "
                     f"of {bound.atol.size} elements, so no value could fail there "
                     f"({bound.rule})", call=call)
    got = impl.outputs(impl.call(fn, *args, **kwargs), fn=fn, names=tuple(names))
    assert_outputs_close(impl, fn, spec_id, names, got, reference(*args, **kwargs), limits,
                         call=call, absent_is_none=absent_is_none)
