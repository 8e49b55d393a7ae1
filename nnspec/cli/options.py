"""The options ``nnspec check`` and ``nnspec report`` share: how the implementation runs
(``--timeout``, ``--no-isolation``, given to pytest as ``--nnspec-timeout`` and
``--nnspec-isolation``), in how many processes the checks run (``--jobs``, pytest-xdist's
``-n``) and whether progress is shown on stderr (``--quiet``, ``--progress``)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from nnspec.progress import Progress

#: ``--jobs auto`` uses at most this many workers: each one collects every check and starts its
#: own worker process for the implementation (seconds each), which more cores repay only on
#: runs far longer than nnspec check's.
AUTO_JOBS = 4

#: ``--jobs auto`` runs in parallel only on at least this many cores. A second worker costs about
#: 11 s of CPU time (it imports pytest, Hypothesis and SciPy and collects every check; the
#: controller does too; each starts the implementation's own worker process) against the 20 s of
#: a serial `nnspec check torch`: on two cores the run takes as long either way, and longer as
#: soon as another process wants a core (bench/test_isolation.py; README.md, Parallel runs).
AUTO_MIN_CORES = 3

#: ``--jobs auto`` runs in parallel only when at least this many spec ids are selected: a run of
#: a few ids does not win back the workers' start.
AUTO_MIN_IDS = 12


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def seed(value: str) -> int:
    """A non-negative integer seed (NumPy's generators take no other)."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a non-negative integer seed")
    return number


def jobs(value: str) -> int | str:
    """``--jobs``: a positive number of worker processes, or ``auto``."""
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a positive number of processes nor 'auto'")
    return number


def _sequence_size(value: str) -> str:
    """A size checks/harness/sizes.py accepts, or argparse's one-line error."""
    from nnspec.checks.harness import sizes

    try:
        return str(sizes.parse(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_run_options(p: argparse.ArgumentParser, size_flag: str = "--size") -> None:
    """Add ``--timeout``, ``--no-isolation``, ``--jobs``, the sequence size (``size_flag``),
    ``--quiet`` and ``--progress`` to ``p``."""
    p.add_argument("-j", "--jobs", type=jobs, default="auto", metavar="N",
                   help="run the checks in N processes (pytest-xdist's -n; the verdicts are those "
                        "of a serial run); 'auto' (the default): one per core, at most "
                        f"{AUTO_JOBS}, on {AUTO_MIN_CORES} cores or more and for {AUTO_MIN_IDS} "
                        "spec ids or more, else 1 (the workers' start would eat the gain). "
                        "Without pytest-xdist installed the run is serial")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="time one call of the implementation may take before it is stopped and "
                        "fails, naming the function (default: DEFAULT_TIMEOUT of "
                        "checks/harness/isolation.py); pytest's --nnspec-timeout")
    p.add_argument(size_flag, dest="sequence_size", type=_sequence_size, metavar="SIZE",
                   help="sequence size of the long-sequence layer checks: default (T=128,B=2,H=8), "
                        "medium (T=300,B=4,H=256), production (T=1000,B=8,H=512) or "
                        "T=…,B=…,H=…[,D=…]; pytest's --nnspec-size")
    p.add_argument("--no-isolation", action="store_true",
                   help="call the implementation in the checks' own process, not in a worker "
                        "process of its own: faster, but a hang, a crash or an exit inside it is "
                        "not contained (a hang in native code hangs the run, an exit ends it); pytest's "
                        "--nnspec-isolation=none")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true",
                       help="no progress line on stderr (shown by default when stderr is a "
                            "terminal and the run takes more than a few seconds)")
    shown.add_argument("--progress", action="store_true",
                       help="show progress on stderr even when it is not a terminal (a CI log)")


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``checks.harness.implementation.load`` for the run options."""
    from nnspec.checks.harness.isolation import DEFAULT_TIMEOUT

    return {"isolation": "none" if args.no_isolation else "process",
            "timeout": DEFAULT_TIMEOUT if args.timeout is None else args.timeout}


def pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest options for the run options that differ from the defaults, as separate words
    (so the reproduce command can show them)."""
    out = []
    if args.timeout is not None:
        # repr: the same float the worker was started with (its key), not a rounded one.
        out += ["--nnspec-timeout", repr(args.timeout)]
    if args.no_isolation:
        out += ["--nnspec-isolation", "none"]
    if args.sequence_size is not None:
        out += ["--nnspec-size", args.sequence_size]
    return out


def progress(args: argparse.Namespace) -> Progress:
    """The progress display the options ask for."""
    return Progress(show=False if args.quiet else True if args.progress else None)


def workers(args: argparse.Namespace, selected_ids: int, command: str) -> int:
    """How many pytest-xdist workers a run of ``selected_ids`` spec ids (per implementation)
    gets under ``--jobs`` (1: serial). Asked for more than one without pytest-xdist installed,
    it says so on stderr and runs serially."""
    from nnspec.conformance import parallel_available

    if args.jobs == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if cores < AUTO_MIN_CORES or selected_ids < AUTO_MIN_IDS or not parallel_available():
            return 1
        return min(cores, AUTO_JOBS)
    if args.jobs > 1 and not parallel_available():
        print(f"nnspec {command}: --jobs {args.jobs} needs pytest-xdist, which is not installed "
              f"(pip install pytest-xdist); running serially", file=sys.stderr)
        return 1
    return int(args.jobs)
