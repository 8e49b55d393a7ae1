"""Running the implementation under test where it cannot take the checks down with it.

An implementation is a stranger's code: it may hang, end the process (``os._exit``, ``sys.exit``
from C), crash in a native library, or write into its arguments. Run in the checks' own process,
a hang hangs the run and an ``os._exit(0)`` ends it with status 0 — read by CI as "conforms".
So, by default (``--nnspec-isolation process``), an implementation loaded by name runs in a
:class:`Worker`: a fresh Python process (checks/harness/worker.py) that imports the module and
answers one call at a time over a socket. The checks' side waits at most ``timeout`` seconds for
each answer; a call that does not answer in time is stopped (the worker is killed with its process
group) and a worker that died is seen at once. Either becomes :class:`Stopped`, which the harness
turns into a one-line failure naming the function; the next call starts a new worker.

A fresh process, not a fork: a child forked from a process whose PyTorch already ran parallel code
hangs in its first parallel region (GNU OpenMP is not fork-safe; seen here with torch 2.13). A
module built in memory (a catalogue entry, a module object handed to ``nnspec.oracle.check``)
cannot be imported by a fresh process and runs in-process (:class:`InProcess`), where a
pure-Python hang is still stopped by a timer signal.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType, ModuleType, SimpleNamespace
from typing import Any, cast

import numpy as np

from nnspec.checks.harness import contract, mutation
from nnspec.checks.harness.loading import ImplementationLoadError, ImplementationUnavailable

#: Seconds one call may take. The checks' inputs are small (a layer call takes milliseconds); the
#: margin is for a first call that compiles (JAX's jit, an ONNX Runtime session) on a loaded
#: two-core machine, measured at under 3 s here. Settable with --nnspec-timeout.
DEFAULT_TIMEOUT = 10.0

#: Seconds a worker may take to import its implementation (PyTorch or JAX alone take 2-5 s).
LOAD_TIMEOUT = 120.0

_SIGNALS = {signal.SIGSEGV: "a segmentation fault (SIGSEGV)", signal.SIGABRT: "an abort (SIGABRT)",
            signal.SIGBUS: "a bus error (SIGBUS)", signal.SIGFPE: "a floating-point trap (SIGFPE)",
            signal.SIGILL: "an illegal instruction (SIGILL)",
            signal.SIGKILL: "SIGKILL (killed from outside, e.g. out of memory)"}


class Stopped(Exception):
    """A call did not come back: it ran past the time limit, or the process running it ended."""


@dataclass(frozen=True)
class Reply:
    """What one call gave back: its output; or the exception it raised, by its type's name
    (``raised``: "NotImplementedError" and "SystemExit" are told apart by the harness) and text
    (``message``); and the arguments it wrote into."""

    output: Any = None
    raised: str | None = None
    message: str = ""
    changes: tuple[mutation.Change, ...] = ()
    #: The output could not be sent back from the worker (it cannot be pickled): why.
    unsendable: str | None = None


class InProcess:
    """Calls in the checks' own process, with the argument check and a timer for Python hangs."""

    isolated = False

    def __init__(self, module: ModuleType | SimpleNamespace, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.module = module
        self.timeout = timeout

    def provides(self, fn: str) -> bool:
        return callable(getattr(self.module, fn, None))

    def call(self, fn: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Reply:
        before = mutation.snapshot(args, kwargs)
        try:
            with _timer(self.timeout):
                out = getattr(self.module, fn)(*args, **kwargs)
        except _Expired as exc:
            raise Stopped(str(exc)) from None
        except NotImplementedError as exc:
            return Reply(raised="NotImplementedError", message=str(exc))
        except SystemExit as exc:
            return Reply(raised="SystemExit", message=f"sys.exit({exc.code!r})",
                         changes=tuple(mutation.changes(before)))
        except Exception as exc:
            return Reply(raised=type(exc).__name__, message=str(exc),
                         changes=tuple(mutation.changes(before)))
        return Reply(output=out, changes=tuple(mutation.changes(before)))

    def close(self) -> None:
        pass


class _Expired(BaseException):
    """The in-process timer's signal: a BaseException, so that an implementation's own
    ``except Exception`` cannot swallow it and go on looping."""


@contextmanager
def _timer(seconds: float) -> Iterator[None]:
    """Raise :class:`_Expired` in the main thread after ``seconds`` (a pure-Python loop only: a
    hang inside C code is only stopped by a worker process)."""
    if seconds <= 0 or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None) or (
            os.getpid() != _MAIN_PID) or not _in_main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Expired(f"did not return within {seconds:g} s (the per-call time limit: nnspec "
                      f"check --timeout, pytest --nnspec-timeout; a hang in native code is only "
                      f"stopped with process isolation)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_MAIN_PID = os.getpid()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Worker:
    """An implementation imported and called in a process of its own (see the module's text)."""

    isolated = True

    def __init__(self, name: str, timeout: float = DEFAULT_TIMEOUT, *, wait: bool = True) -> None:
        """Start the worker importing ``name``; unless ``wait``, return at once and let
        :meth:`ready` wait for the import (it takes seconds, which the caller can spend
        elsewhere)."""
        self.name = name
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        # The worker's stdout and stderr: what the implementation prints, and a crash's traceback.
        # What it prints is relayed to this process's stderr after each answer (stdout may be
        # data, e.g. nnspec check --json).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker)
        self.relayed = 0
        self.file: str | None = None
        self.dtype = np.dtype(np.float64)
        self.precision: str | None = None
        self.callables: list[str] = []
        self._loaded = False
        _LIVE.append(self)
        self._launch()
        if wait:
            self.ready()

    def ready(self) -> Worker:
        """Wait for the first import of the implementation; raise what made it unusable (and
        release the worker)."""
        if not self._loaded:
            try:
                self.dtype, self.callables = self._await_load()
            except (ImplementationLoadError, ImplementationUnavailable):
                self.close()
                raise
            self._loaded = True
        return self

    @property
    def module(self) -> SimpleNamespace:
        """A stand-in for the module: its DTYPE, PRECISION and the names of its public
        callables."""
        names = {n: _remote(n) for n in self.callables if n not in ("DTYPE", "PRECISION")}
        return SimpleNamespace(**names, DTYPE=self.dtype, PRECISION=self.precision)

    def provides(self, fn: str) -> bool:
        return fn in self.callables

    def _launch(self) -> None:
        ours, theirs = socket.socketpair()
        self.log.seek(0)
        self.log.truncate()
        self.relayed = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nnspec.checks.harness.worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=self.log, start_new_session=True)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send(("load", self.name, list(sys.path), list(contract.ALL)))

    def _await_load(self) -> tuple[np.dtype, list[str]]:
        try:
            reply = self._receive(LOAD_TIMEOUT, f"importing {self.name!r} ",
                                  "the time limit on importing an implementation")
        except Stopped as exc:
            raise ImplementationLoadError(str(exc)) from None
        if reply[0] == "unavailable":
            self._stop()
            raise ImplementationUnavailable(reply[1])
        if reply[0] == "load_error":
            self._stop()
            raise ImplementationLoadError(reply[1])
        self.file, self.precision = reply[3], reply[4]
        return np.dtype(reply[1]), list(reply[2])

    def call(self, fn: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Reply:
        if self.conn is None:  # stopped after an earlier call: start again
            try:
                self._launch()
                self._await_load()
            except (ImplementationLoadError, ImplementationUnavailable) as exc:
                raise Stopped(f"could not be called: the worker did not start again after the "
                              f"earlier stop ({exc})") from None
        assert self.conn is not None
        with contextlib.suppress(OSError):  # the worker is gone: _receive says how
            self.conn.send(("call", fn, args, kwargs))
        reply = self._receive(self.timeout, "")
        kind = reply[0]
        if kind == "harness_error":
            raise RuntimeError(f"nnspec's worker process failed while calling {fn} (a defect of "
                               f"nnspec, not of the implementation):\n{reply[1]}")
        if kind == "not_provided":
            return Reply(raised="NotImplementedError", message=reply[1])
        if kind == "raised":
            return Reply(raised=reply[1], message=reply[2], changes=tuple(reply[3]))
        if kind == "unsendable":
            states, changes = reply[4], reply[3]
        else:
            states, changes = reply[3], reply[2]
        # The worker advanced copies of the generators; move the caller's own to where they went:
        # the same state, and as many children spawned (Generator.spawn counts them).
        for g, (state, spawned) in zip(mutation.generators(args, kwargs), states, strict=True):
            g.bit_generator.state = state
            if spawned:  # only a SeedSequence spawns (worker._spawned counts none otherwise)
                cast(np.random.SeedSequence, g.bit_generator.seed_seq).spawn(spawned)
        if kind == "unsendable":
            return Reply(unsendable=f"returned {reply[1]}, which cannot be sent back from the "
                                    f"worker process ({reply[2]})", changes=tuple(changes))
        return Reply(output=reply[1], changes=tuple(changes))

    def _receive(self, timeout: float, what: str,
                 limit: str = "the per-call time limit: nnspec check --timeout, pytest "
                              "--nnspec-timeout") -> Any:
        assert self.conn is not None and self.process is not None
        start = time.monotonic()
        if not self.conn.poll(timeout):
            self._stop()
            raise Stopped(f"{what}did not return within {timeout:g} s ({limit}); its process was "
                          f"stopped")
        try:
            data = self.conn.recv_bytes()
        except (EOFError, ConnectionResetError, OSError):
            pass
        else:
            self._relay()
            try:
                return _PlainUnpickler(io.BytesIO(data)).load()
            except Exception as exc:
                self._stop()
                raise Stopped(f"{what}sent back something that is not plain data "
                              f"({type(exc).__name__}: {exc}); its process was stopped") from None
        try:
            code = self.process.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            code = None
        self._relay()
        where = self._crash_site()
        self._stop()
        raise Stopped(f"{what}ended the process running it: {_ending(code)}"
                      + (f", at {where}" if where else ""))

    def _relay(self) -> None:
        """Write what the worker printed since the last time to this process's stderr."""
        self.log.seek(self.relayed)
        data = self.log.read()
        if data:
            self.relayed += len(data)
            sys.stderr.write(data.decode(errors="replace"))
            sys.stderr.flush()

    def _crash_site(self) -> str:
        """Where the fatal-error traceback in the log enters the implementation's module (the
        innermost such frame; faulthandler lists the most recent call first), else its
        innermost frame outside the harness."""
        self.log.seek(0)
        text = self.log.read().decode(errors="replace")
        frames = [line.strip().removeprefix("File ") for line in text.splitlines()
                  if line.strip().startswith("File ")]
        frames = [f for f in frames if "checks/harness/" not in f]
        own = [f for f in frames if self.file and f.startswith(f'"{self.file}"')]
        return (own or frames or [""])[0]

    def close(self) -> None:
        """Stop the worker for good and release its log."""
        self._stop()
        self.log.close()
        if self in _LIVE:
            _LIVE.remove(self)

    def _stop(self) -> None:
        """Stop the worker process (the next call starts another)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.process is not None:
            kill_group(self.process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process``, started with ``start_new_session=True``, with its process group (what it
    started too, which may outlive it), and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is gone, or not ours to kill
        if process.poll() is None:
            process.kill()
    process.wait()


class _PlainUnpickler(pickle.Unpickler):
    """Reads the worker's replies, which hold plain data only (worker.plain): builtins, NumPy
    arrays, scalars and dtypes, and mutation.Change. Anything else is refused, so a reply can
    neither import the implementation's module nor run its code here."""

    ALLOWED = frozenset({("builtins", "complex"), ("numpy", "dtype"), ("numpy", "ndarray"),
                         ("numpy._core.multiarray", "_reconstruct"),
                         ("numpy._core.multiarray", "scalar"),
                         ("numpy.core.multiarray", "_reconstruct"),
                         ("numpy.core.multiarray", "scalar"),
                         ("nnspec.checks.harness.mutation", "Change")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")
        return super().find_class(module, name)


def _ending(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return _SIGNALS.get(signal.Signals(-code), f"signal {signal.Signals(-code).name}")
        except ValueError:  # a real-time signal has no name
            return f"signal {-code}"
    return (f"exit status {code}, without returning (os._exit, or exit() called from native "
            f"code; sys.exit would have been reported as such)")


def _remote(name: str) -> Callable[..., Any]:
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{name} runs in the worker process; call it through Implementation.call")

    stand_in.__name__ = name
    return stand_in


_LIVE: list[Worker] = []


@atexit.register
def _close_all() -> None:
    for worker in list(_LIVE):
        worker.close()
