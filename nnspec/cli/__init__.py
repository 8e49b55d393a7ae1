"""The ``nnspec`` command: ``nnspec spec [--check]``, ``nnspec check``, ``nnspec report``,
``nnspec decay``, ``nnspec vectors``, ``nnspec soak``, ``nnspec identify`` and ``nnspec atlas``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

import nnspec
from nnspec.cli import atlas, check, decay, identify, report, soak, spec, vectors


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the subcommand and return its exit status."""
    parser = argparse.ArgumentParser(prog="nnspec", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nnspec {nnspec.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (spec, check, report, decay, vectors, soak, identify, atlas):
        command.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:
        # The reader went away (`nnspec check … | head -1`): no traceback, and no second one at
        # exit when Python flushes stdout again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
