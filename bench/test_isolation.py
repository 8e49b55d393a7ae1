"""What isolating the implementation under test costs (checks/harness/isolation.py).

Per call: the same torch ``gru_cell`` on the checks' typical sizes (B = 4, H = 8), called through
:meth:`Implementation.call` in-process and through a worker process, in one run; the ratio is the
worker's round trip (pickling both ways, the socket, the argument copy) over the call itself.
Per start: the time a worker takes to import torch and answer, paid once per implementation and
run (and again after a crash or a hang). And the whole of ``nnspec check torch``, a fresh process,
without isolation, with it, and with it in two pytest-xdist workers (``--jobs 2``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnspec.checks.harness.implementation import load
from nnspec.conformance import parallel_available

B, H = 4, 8


@pytest.mark.parametrize("isolation", ["in-process", "worker process"])
def test_call_overhead(benchmark, rng, isolation):
    impl = load("torch", isolation="none" if isolation == "in-process" else "process")
    try:
        args = [rng.standard_normal(shape) for shape in ((B, H), (B, H), (3 * H, H), (3 * H, H),
                                                         (3 * H,), (3 * H,))]
        benchmark.group = f"isolation: one gru_cell call, B={B} H={H}"
        benchmark.extra_info.update(impl=isolation, what="isolation")
        benchmark(impl.call, "gru_cell", *args)
    finally:
        impl.close()


def test_worker_start(benchmark):
    benchmark.group = "isolation: starting a worker that imports torch"
    benchmark.extra_info.update(impl="worker process", what="isolation")
    benchmark.pedantic(lambda: load("torch", isolation="process").close(), rounds=3, iterations=1)


@pytest.mark.parametrize(("isolation", "jobs"), [("in-process", 1), ("worker process", 1),
                                                 ("worker process", 2)],
                         ids=["in-process", "worker process", "worker process, 2 jobs"])
def test_whole_check_of_torch(benchmark, isolation, jobs):
    """`nnspec check torch` as a user runs it, a fresh process each way (in this process torch
    would already be imported and warmed by the other benchmarks, which only the in-process case
    would profit from): serially, with and without isolation, and isolated in two pytest-xdist
    workers (``--jobs 2``: each worker collects the checks and starts its own worker process for
    torch, so the gain is the checks' time halved less that start-up, on as many free cores)."""
    if jobs > 1 and not parallel_available():
        pytest.skip("pytest-xdist is not installed")
    command = [sys.executable, "-m", "nnspec", "check", "torch", "--quiet", "--jobs", str(jobs),
               *(["--no-isolation"] if isolation == "in-process" else [])]
    benchmark.group = "isolation: nnspec check torch, a fresh process"
    benchmark.extra_info.update(impl=isolation if jobs == 1 else f"{isolation}, {jobs} jobs",
                                what="isolation", jobs=jobs)
    # Three rounds: one whole run varies by a second or more with the page cache and whatever
    # else the machine runs; the report gives their median.
    runs: list[subprocess.CompletedProcess[str]] = []
    benchmark.pedantic(lambda: runs.append(subprocess.run(command, capture_output=True, text=True)),
                       rounds=3, iterations=1)
    assert all(done.returncode == 0 for done in runs), [done.stdout[-2000:] for done in runs]
