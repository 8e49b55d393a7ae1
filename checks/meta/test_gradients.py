"""The power of the finite-difference gradient check (checks/harness/gradients.py, tol.fd).

The requirement: an error of 0.1% in a single entry of an LSTM cell's gradient (hidden 64) is
caught, at a cost that does not grow with the number of parameters. The cell has
4·64·(32 + 64) + 2·256 = 25,088 parameters here, plus 640 input and state entries, and
check_gradient looks at all of them through two random directions. Each check below corrupts
one entry of the reference VJP by a relative 0.1% and requires check_gradient to reject it, and
requires the uncorrupted VJP to pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nnspec.checks.harness import strategies as nst
from nnspec.checks.harness.failure import NonConformance, fail
from nnspec.checks.harness.gradients import check_gradient
from nnspec.reference import lstm as ref

#: The relative error put into one gradient entry.
ENTRY_ERROR = 1e-3

#: Batch, input and hidden sizes of the LSTM cell whose gradient is corrupted.
SIZES = {"B": 4, "D": 32, "H": 64}


def corrupted(vjp: Callable[..., tuple], array: int, index: int,
              relative_error: float) -> Callable[..., tuple]:
    """``vjp`` with entry ``index`` (flat) of gradient number ``array`` scaled by 1 + error."""

    def wrong(*args: Any) -> tuple:
        grads = [None if g is None else np.array(g) for g in vjp(*args)]
        corrupt = grads[array]
        assert corrupt is not None, "the corrupted gradient exists"
        corrupt.flat[index] *= 1 + relative_error
        return tuple(grads)

    return wrong


def entries(args: tuple[np.ndarray, ...], n: int,
            rng: np.random.Generator) -> list[tuple[int, int]]:
    """n (gradient, flat index) pairs: one in each of the 7 gradients, the rest drawn uniformly
    over all entries (so mostly weights, as in the cell)."""
    sizes = np.array([a.size for a in args])
    first = [(k, int(rng.integers(sizes[k]))) for k in range(len(args))]
    flat = rng.choice(sizes.sum(), size=n - len(first), replace=False)
    bounds = np.cumsum(sizes)
    rest = [(int(k), int(j - (bounds[k] - sizes[k])))
            for j in flat for k in [int(np.searchsorted(bounds, j, side="right"))]]
    return first + rest


def flags(vjp: Callable[..., tuple], args: tuple[np.ndarray, ...], method: str,
          rng: np.random.Generator) -> bool:
    try:
        check_gradient(ref.lstm_cell, vjp, args, wrt=range(len(args)), rng=rng, method=method,
                       spec_id="lstm.cell", name="vjp under test", call="lstm_cell_vjp")
    except NonConformance:
        return True
    return False


def require_power(args: tuple[np.ndarray, ...], n_entries: int, method: str,
                  rng: np.random.Generator) -> None:
    __tracebackhide__ = True
    if flags(ref.lstm_cell_vjp, args, method, rng):
        fail("lstm.cell", "check_gradient", f"false alarm ({method}): the reference VJP is rejected")
    missed = [f"{ref.LSTM_CELL_GRADIENT_NAMES[k]}{list(np.unravel_index(j, args[k].shape))}"
              for k, j in entries(args, n_entries, rng)
              if not flags(corrupted(ref.lstm_cell_vjp, k, j, ENTRY_ERROR), args, method, rng)]
    if missed:
        fail("lstm.cell", "check_gradient",
             f"({method}) accepted a VJP with a {ENTRY_ERROR:.1%} error in one entry, for "
             f"{len(missed)} of {n_entries} entries: {', '.join(missed[:5])}",
             call=f"lstm_cell_vjp(B={SIZES['B']}, D={SIZES['D']}, H={SIZES['H']})")


@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize("method", ["complex", "richardson"])
def test_check_gradient_catches_a_0_1_percent_error_in_one_lstm_gradient_entry(method, rng):
    require_power(nst.typical_lstm_cell(rng, **SIZES), 10, method, rng)


@pytest.mark.slow
@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize("method", ["complex", "richardson"])
def test_check_gradient_catches_a_0_1_percent_error_in_each_of_200_entries(method, rng):
    require_power(nst.typical_lstm_cell(rng, **SIZES), 200, method, rng)


@pytest.mark.slow
@pytest.mark.spec("lstm.cell")
@pytest.mark.parametrize("method", ["complex", "richardson"])
def test_check_gradient_raises_no_false_alarm_on_200_lstm_cells(method, rng):
    alarms = sum(flags(ref.lstm_cell_vjp, nst.typical_lstm_cell(rng, **SIZES), method, rng)
                 for _ in range(200))
    if alarms:
        fail("lstm.cell", "check_gradient",
             f"({method}) rejected the correct reference VJP on {alarms} of 200 random cells")
