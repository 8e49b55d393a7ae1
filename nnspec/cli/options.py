"""The options ``nnspec check`` and ``nnspec report`` share: how the implementation runs
(``--timeout``, ``--no-isolation``, given to pytest as ``--nnspec-timeout`` and
``--nnspec-isolation``) and whether progress is shown on stderr (``--quiet``, ``--progress``)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from nnspec.progress import Progress


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


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Add ``--timeout``, ``--no-isolation``, ``--quiet`` and ``--progress`` to ``p``."""
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="time one call of the implementation may take before it is stopped and "
                        "fails, naming the function (default: DEFAULT_TIMEOUT of "
                        "checks/harness/isolation.py); pytest's --nnspec-timeout")
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
    return out


def progress(args: argparse.Namespace) -> Progress:
    """The progress display the options ask for."""
    return Progress(show=False if args.quiet else True if args.progress else None)
