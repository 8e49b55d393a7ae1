"""The worker process an isolated implementation under test runs in (checks/harness/isolation.py).

    python -m nnspec.checks.harness.worker FD

FD is one end of a socket pair; the checks' process holds the other. The worker imports the
implementation, then answers one call at a time until the socket closes. Whatever the
implementation does — raise, call ``sys.exit``, write into its arguments — comes back as a reply;
whatever ends the process (``os._exit``, a segmentation fault, an abort) or never returns is seen
by the checks' side, which stops the worker and names the function. Every message is a tuple whose
first item says what it is:

- ``("load", name, sys_path, contract_names)`` → ``("loaded", dtype, callables, file, precision)``,
  ``("unavailable", message)`` or ``("load_error", message)``;
- ``("call", fn, args, kwargs)`` → ``("ok", output, changes, generator_states)``,
  ``("not_provided", message)``, ``("raised", type_name, message, changes)``,
  ``("unsendable", type_name, error, changes, generator_states)`` or, for a failure of the
  worker's own code, ``("harness_error", traceback)``.

Outputs travel as plain data (:func:`plain`), so reading them runs none of the implementation's
code in the checks' process.

Only the standard library, NumPy and the light harness modules are imported here, so a worker
starts in the time its implementation takes to import.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

import numpy as np

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
    _, name, path, contract_names = conn.recv()
    sys.path[:] = path
    try:
        module, dtype = import_module(name)
    except ImplementationUnavailable as exc:
        conn.send(("unavailable", str(exc)))
        return None
    except ImplementationLoadError as exc:
        conn.send(("load_error", str(exc)))
        return None
    # A module may provide functions through a module-level __getattr__ (PEP 562), which dir()
    # does not list: the contract's names are looked up as the in-process checks would.
    names = sorted({*public_callables(module),
                    *(n for n in contract_names if callable(getattr(module, n, None)))})
    conn.send(("loaded", dtype.str, names, getattr(module, "__file__", None),
               getattr(module, "PRECISION", None)))
    return module


class Unsendable(Exception):
    """An output that is not plain data (numbers, strings, arrays of numbers, and lists, tuples
    and dicts of them)."""


def plain(value: Any) -> Any:
    """``value`` as plain data the checks' process can read without running any of the
    implementation's code: arrays become base-class NumPy arrays (a torch or JAX array by
    ``numpy.asarray``, as the checks would convert it), containers become lists, tuples and
    dicts, anything else is :class:`Unsendable`. Unpickling an object of the implementation's
    own class would import its module, and its ``__reduce__`` could run anything, in the checks'
    process."""
    if value is None or type(value) in (bool, int, float, complex, str):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return value
    if isinstance(value, list | tuple):
        return (list if isinstance(value, list) else tuple)(plain(v) for v in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise Unsendable(f"{type(exc).__name__}: {exc}") from None
    if array.dtype.kind not in "biufc":
        raise Unsendable(f"numpy.asarray gives dtype {array.dtype}")
    return np.array(array, copy=True, subok=False)


def _spawned(g: np.random.Generator) -> int:
    """How many children the generator's seed sequence has spawned (Generator.spawn uses it)."""
    return int(getattr(getattr(g.bit_generator, "seed_seq", None), "n_children_spawned", 0))


def call(module: ModuleType, fn: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Run one call and build its reply."""
    before = mutation.snapshot(args, kwargs)
    generators = mutation.generators(args, kwargs)
    spawned = [_spawned(g) for g in generators]
    try:
        out = getattr(module, fn)(*args, **kwargs)
    except NotImplementedError as exc:
        return ("not_provided", str(exc))
    except SystemExit as exc:
        return ("raised", "SystemExit", f"sys.exit({exc.code!r})", mutation.changes(before))
    except BaseException as exc:  # the implementation's failure, whatever it is, is a reply
        return ("raised", type(exc).__name__, str(exc), mutation.changes(before))
    # Where the caller's generators must go: their states and how many children they spawned.
    states = [(g.bit_generator.state, _spawned(g) - n) for g, n in zip(generators, spawned, strict=True)]
    try:
        return ("ok", plain(out), mutation.changes(before), states)
    except Unsendable as exc:
        return ("unsendable", type(out).__name__, str(exc), mutation.changes(before), states)


def serve(conn: Connection, module: ModuleType) -> None:
    while True:
        try:
            _, fn, args, kwargs = conn.recv()
        except EOFError:
            return
        try:
            reply = call(module, fn, args, kwargs)
        except Exception:  # nnspec's own failure here, not the implementation's: say so
            reply = ("harness_error", traceback.format_exc())
        conn.send(reply)


def main(argv: list[str]) -> None:
    _die_with_parent()
    faulthandler.enable()  # a crash leaves its Python traceback in the log the checks read
    conn = Connection(int(argv[1]))
    module = load(conn)
    if module is not None:
        serve(conn, module)


if __name__ == "__main__":
    main(sys.argv)
