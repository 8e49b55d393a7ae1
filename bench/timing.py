"""Timed comparisons of two sides (bench/test_recurrent.py, bench/test_bounds.py,
bench/bound_evidence.py): interleaved rounds, on one thread.

Interleaved, each round calls every side, the first one alternating, so load on a shared
machine falls on all sides alike. On one thread because on this project's 2-core machine,
NumPy's OpenBLAS and torch's OpenMP pools, two threads each, spin after every call and fight
for the cores: the reference's layer against nn.GRU on the default two threads read anything
from 0.2× to 1.4× between runs, torch's own median for one call from 17 ms to 892 ms; on one
thread the same code repeated within ±3 % over seven runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """NumPy's BLAS (threadpoolctl, in the dev extra; without it the case skips) and torch on one
    thread for the block, both restored after."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def interleaved(sides: dict[str, Callable[[], object]], rounds: int) -> dict[str, np.ndarray]:
    """Seconds per call of each side over ``rounds`` rounds, the first side alternating, after
    one more round that warms up and is dropped: wall-clock seconds under each side's name, CPU
    seconds of the process under ``cpu <name>``."""
    times: dict[str, list[float]] = {key: [] for name in sides for key in (name, f"cpu {name}")}
    pair = list(sides.items())
    for r in range(rounds + 1):
        for name, fn in (pair if r % 2 == 0 else pair[::-1]):
            start, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            times[f"cpu {name}"].append(time.process_time() - cpu)
    return {name: np.array(t[1:]) for name, t in times.items()}
