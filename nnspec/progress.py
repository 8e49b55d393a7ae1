"""A pytest plugin object that shows how far a run of the checks has got, on stderr, and notes
whether the run was interrupted (Ctrl-C).

``nnspec check`` and ``nnspec report`` pass one to :func:`nnspec.conformance.run` (``plugins=``).
It says nothing for the first :data:`QUIET_FOR` seconds, so a short run prints nothing, then at
most every :data:`EVERY` seconds ``nnspec: 23/47 checks, 6.1 s``: on a terminal, on one line it
rewrites and clears at the end; elsewhere (a log, when asked with ``show=True``) as whole lines.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import pytest

#: Seconds of silence before the first line, and between two lines.
QUIET_FOR = 3.0
EVERY = 2.0


class Progress:
    """Counts finished checks and writes the count now and then; ``interrupted`` tells whether
    the run ended by a KeyboardInterrupt (pytest reports that as its exit code 2, which a
    collection error shares).

    - ``stream``: where to write (default: ``sys.stderr`` when the run starts);
    - ``show``: True to write even when ``stream`` is not a terminal, False never to write,
      None (the default) to write on a terminal only.
    """

    def __init__(self, stream: TextIO | None = None, *, show: bool | None = None) -> None:
        self.stream = stream
        self.show = show
        self.total = 0
        self.done = 0
        self.interrupted = False
        self._start = 0.0  # set when the session starts
        self._last = -EVERY
        self._written = 0  # width of the line now on a terminal

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def _on(self) -> bool:
        return self.show if self.show is not None else self._out().isatty()

    def pytest_sessionstart(self) -> None:
        self._start = time.perf_counter()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's controller collects nothing itself
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.total = len(ids)

    def pytest_runtest_logfinish(self) -> None:
        self.done += 1
        now = time.perf_counter() - self._start
        if now >= QUIET_FOR and now - self._last >= EVERY and self._on():
            self._last = now
            self._write(f"nnspec: {self.done}/{self.total} checks, {now:.1f} s")

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def pytest_sessionfinish(self) -> None:
        """Clear the terminal's line, so what follows starts on a clean one."""
        if self._written:
            self._out().write("\r" + " " * self._written + "\r")
            self._out().flush()
            self._written = 0

    def _write(self, line: str) -> None:
        out = self._out()
        if out.isatty():
            out.write("\r" + line.ljust(self._written))
            self._written = max(self._written, len(line))
        else:
            out.write(line + "\n")
        out.flush()
