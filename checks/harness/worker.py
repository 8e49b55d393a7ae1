"""The worker process an isolated implementation under test runs in (checks/harness/isolation.py).

    python -m nnspec.checks.harness.worker FD

FD is one end of a socket pair; the checks' process holds the other. The worker imports the
implementation, then answers one call at a time until the socket closes. Whatever the
implementation does — raise, call ``sys.exit``, write into its arguments — comes back as a reply;
whatever ends the process (``os._exit``, a segmentation fault, an abort) or never returns is seen
by the checks' side, which stops the worker and names the function. Every message is a tuple whose
first item says what it is:

- ``("load", name, sys_path)`` → ``("loaded", dtype, callables, file)``, ``("unavailable", message)`` or
  ``("load_error", message)``;
- ``("call", fn, args, kwargs)`` → ``("ok", output, changes, generator_states)``,
  ``("not_provided", message)``, ``("raised", type_name, message, changes)`` or
  ``("unsendable", type_name, error, changes, generator_states)``.

Only the standard library, NumPy and the light harness modules are imported here, so a worker
starts in the time its implementation takes to import.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import signal
import sys
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

from nnspec.checks.harness import mutation
from nnspec.checks.harness.loading import (
    ImplementationLoadError,
    ImplementationUnavailable,
    import_module,
    public_callables,
)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the checks' process dies, even if it is hung in C."""
    # Not Linux: no prctl, and the socket's end of file still ends a worker that is not hung.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def load(conn: Connection) -> ModuleType | None:
    """Answer the ``load`` message: the module, or ``None`` after replying why it is unusable."""
    _, name, path = conn.recv()
    sys.path[:] = path
    try:
        module, dtype = import_module(name)
    except ImplementationUnavailable as exc:
        conn.send(("unavailable", str(exc)))
        return None
    except ImplementationLoadError as exc:
        conn.send(("load_error", str(exc)))
        return None
    conn.send(("loaded", dtype.str, public_callables(module), getattr(module, "__file__", None)))
    return module


def call(module: ModuleType, fn: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Run one call and build its reply."""
    before = mutation.snapshot(args, kwargs)
    try:
        out = getattr(module, fn)(*args, **kwargs)
    except NotImplementedError as exc:
        return ("not_provided", str(exc))
    except SystemExit as exc:
        return ("raised", "SystemExit", f"sys.exit({exc.code!r})", mutation.changes(before))
    except BaseException as exc:  # the implementation's failure, whatever it is, is a reply
        return ("raised", type(exc).__name__, str(exc), mutation.changes(before))
    states = [g.bit_generator.state for g in mutation.generators(args, kwargs)]
    return ("ok", out, mutation.changes(before), states)


def serve(conn: Connection, module: ModuleType) -> None:
    while True:
        try:
            _, fn, args, kwargs = conn.recv()
        except EOFError:
            return
        reply = call(module, fn, args, kwargs)
        try:
            conn.send(reply)
        except Exception as exc:  # the output cannot be pickled: say so instead
            conn.send(("unsendable", type(reply[1]).__name__, f"{type(exc).__name__}: {exc}",
                       reply[2], reply[3]))


def main(argv: list[str]) -> None:
    _die_with_parent()
    faulthandler.enable()  # a crash leaves its Python traceback in the log the checks read
    conn = Connection(int(argv[1]))
    module = load(conn)
    if module is not None:
        serve(conn, module)


if __name__ == "__main__":
    main(sys.argv)
