"""One thread for a timed comparison (bench/test_recurrent.py, bench/test_bounds.py).

On this project's 2-core machine, NumPy's OpenBLAS and torch's OpenMP pools, two threads each,
spin after every call and fight for the cores: the reference's layer against nn.GRU on the
default two threads read anything from 0.2× to 1.4× between runs, torch's own median for one
call from 17 ms to 892 ms; on one thread the same code repeated within ±3 % over seven runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
