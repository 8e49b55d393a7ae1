"""Loading an implementation under test and calling it safely.

Every check calls the implementation through :class:`Implementation`, so torch, the reference
and a user's module take one and the same code path. What can go wrong on the implementation's
side becomes a clear message: a missing function is *not provided* (a skip, never a failure); an
exception inside it, a hang, a crash or an exit of its process (checks/harness/isolation.py), a
write into its arguments (checks/harness/mutation.py), or an output of the wrong shape, dtype or
with NaNs, is a failure that names the function and the cause.

It also records which contract functions each check called (:attr:`Implementation.called`): a
verdict goes to the spec ids whose functions were called, never to every id a check is marked
with (nnspec/conformance.py).

A function that raises ``NotImplementedError`` for some arguments only (an ``rnn_cell`` without
``nonlinearity='relu'``, a module without packed ``lengths``) must not end a Hypothesis check on
its first refusal, or the examples it does support would never be checked: inside a Hypothesis
test the refused example is rejected and the search goes on, and :attr:`Implementation.provision`
keeps which calls were refused. A check that had no supported example is skipped as *not
provided* (:meth:`Implementation.every_example_refused`); one that passed on the others carries a
"partly provided" note (:meth:`Implementation.partly`). Outside Hypothesis a refusal skips the
check, as a missing function does.
"""

from __future__ import annotations

import inspect
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any, NoReturn

import numpy as np
import pytest
from hypothesis import currently_in_test_context, reject
from hypothesis.errors import FailedHealthCheck, Unsatisfiable

from nnspec.checks.bounds.rules import own_unit
from nnspec.checks.harness import contract, mutation
from nnspec.checks.harness.failure import Failure, Reported, final_replay
from nnspec.checks.harness.isolation import DEFAULT_TIMEOUT, InProcess, Reply, Stopped, Worker
from nnspec.checks.harness.loading import (
    SHIPPED,
    ImplementationLoadError,
    ImplementationUnavailable,
    import_module,
)
from nnspec.checks.oracle.diagnosis import Call, diagnose

__all__ = ["DEFAULT", "SHIPPED", "Implementation", "ImplementationError", "ImplementationLoadError",
           "ImplementationUnavailable", "Provision", "bug_model", "describe_args", "features", "load",
           "prestart"]

#: Implementations the default ``pytest`` run checks (CUDA ones skip without a GPU).
DEFAULT = ("torch", "torch_float32", "reference", "torch_cuda", "torch_cuda_float32",
           "torch_cuda_tf32")

#: Where an implementation runs: "process" (a worker process of its own) or "none" (in-process).
ISOLATION = ("process", "none")


class ImplementationError(Reported):
    """The implementation raised, or returned something the contract does not allow; ``.failure``
    names the function, the output and what was wrong with it."""


@dataclass
class Provision:
    """How one contract function answered the calls of the current check: the :func:`features` of
    the calls it answered (their union and their intersection), and of the calls it refused with
    ``NotImplementedError``, by the refusal's message (its first line)."""

    answered: int = 0
    seen: set[str] = field(default_factory=set)
    #: The features every answered call had (None before the first).
    always: frozenset[str] | None = None
    #: Message → the features of each call refused with it, in the order first refused.
    refused: dict[str, list[frozenset[str]]] = field(default_factory=dict)

    @property
    def n_refused(self) -> int:
        """How many calls were refused, with any message."""
        return sum(len(calls) for calls in self.refused.values())

    def answer(self, call: frozenset[str]) -> None:
        """Record a call answered cleanly, with its features."""
        self.answered += 1
        self.seen |= call
        self.always = call if self.always is None else self.always & call

    def refuse(self, call: frozenset[str], message: str) -> None:
        """Record a call refused with NotImplementedError(message), with its features."""
        self.refused.setdefault(_first_line(message), []).append(call)

    def summary(self) -> str:
        """Which calls were refused, in a few words, per message the implementation refused them
        with (a function may refuse ``bidirectional=True`` and ``lengths`` for reasons of their
        own): the features every call refused with that message had and no answered call had
        (``nonlinearity='relu'``); else those they shared that not every answered call had
        (``some calls with b_ih=None, nonlinearity='relu'``: a combination); else ``some calls``;
        and ``every call`` when none was answered. Each is followed by its message."""
        # Sorted, so that checks whose refusals came in another order give the same note.
        messages = sorted(m for m in self.refused if m)
        if not self.answered:
            return "every call" + (f" ({'; '.join(messages)})" if messages else "")
        parts = []
        for message, calls in self.refused.items():
            common = frozenset.intersection(*calls)
            if only := common - self.seen:
                text = _joined(only)
            elif shared := common - (self.always or frozenset()):
                text = f"some calls with {_joined(shared)}"
            else:
                text = "some calls"
            parts.append(f"{text} ({message})" if message else text)
        return "; ".join(sorted(parts))


def features(fn: str, args: Sequence[Any], kwargs: dict[str, Any]) -> frozenset[str]:
    """The arguments of one call of ``fn`` that may decide whether an implementation supports it,
    as short texts: an option by its value (``nonlinearity='relu'``, ``bidirectional=True``), an
    absent array as ``b_ih=None``, a present optional one as ``lengths given``, a float option by
    whether it has its default (``dropout!=0.0``). Arrays' values and shapes are left out: a
    refusal that depends on them reads "some calls" (:meth:`Provision.summary`)."""
    params = contract.signature(fn).parameters if fn in contract.STUBS else {}
    names = list(params)
    named = [(names[i] if i < len(names) else f"argument {i + 1}", v) for i, v in enumerate(args)]
    out = set()
    for name, value in [*named, *kwargs.items()]:
        default = params[name].default if name in params else inspect.Parameter.empty
        if (text := _feature(name, value, default)) is not None:
            out.add(text)
    return frozenset(out)


def _feature(name: str, value: Any, default: Any) -> str | None:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return f"{name}=None"
    if isinstance(value, float):
        if isinstance(default, int | float) and not isinstance(default, bool):
            return f"{name}={default!r}" if value == default else f"{name}!={default!r}"
        return None
    if isinstance(value, bool | int | str):
        return f"{name}={value!r}"
    return f"{name} given" if default is None else None


def _joined(texts: frozenset[str]) -> str:
    return ", ".join(sorted(texts))


def _first_line(message: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


@dataclass(frozen=True)
class Implementation:
    """An implementation under test: a module defining ``DTYPE`` and contract functions."""

    name: str
    #: The module, or a namespace standing for one (a bug's model, an adapter's functions; for an
    #: isolated implementation, its DTYPE and the names of its callables).
    module: ModuleType | SimpleNamespace
    dtype: np.dtype
    #: Where the calls run: in-process (the default for a module object) or a worker process.
    backend: InProcess | Worker | None = field(default=None, compare=False, repr=False)
    #: The last calls made, with the values the implementation saw, for the oracle's diagnosis.
    calls: deque = field(default_factory=lambda: deque(maxlen=8), compare=False, repr=False)
    #: The contract functions called since the current check began (the checks' conftest clears
    #: it before each check and records it on the check's report).
    called: set[str] = field(default_factory=set, compare=False, repr=False)
    #: The contract functions the current check found missing (skipped as not provided).
    missing: set[str] = field(default_factory=set, compare=False, repr=False)
    #: Per contract function, the calls of the current check it answered and those it refused
    #: with NotImplementedError (the checks' conftest clears it before each check).
    provision: dict[str, Provision] = field(default_factory=dict, compare=False, repr=False)
    #: Functions stopped earlier in the run (a hang, an ended process), with the failure they
    #: gave: they are not called again, so a search that shrinks a failing example stays fast.
    stopped: dict[str, Failure] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.backend is None:
            object.__setattr__(self, "backend", InProcess(self.module))

    @property
    def precision(self) -> str | None:
        """The lower precision the implementation declares its products take (``PRECISION``,
        checks/harness/loading.py): "tf32", "bfloat16", or None for DTYPE's own."""
        return getattr(self.module, "PRECISION", None)

    @property
    def isolated(self) -> bool:
        return bool(self.backend is not None and self.backend.isolated)

    def close(self) -> None:
        """Stop the worker process, if there is one; a later :func:`load` starts another."""
        if self.backend is not None:
            self.backend.close()
        for key in [k for k, v in _WORKERS.items() if v is self]:
            del _WORKERS[key]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints a failing example's arguments with this; its dataclass printer would
        # show every field, the recorded calls' arrays included (tens of kB per failure).
        printer.text(f"Implementation({self.name!r}, dtype={self.dtype})")

    def provides(self, fn: str) -> bool:
        assert self.backend is not None
        return self.backend.provides(fn)

    def require(self, fn: str) -> None:
        """Skip the calling check as *not provided* unless the implementation defines ``fn``."""
        if not self.provides(fn):
            self.missing.add(fn)
            pytest.skip(f"not provided: {self.name} does not define {fn}()")

    def cast(self, a: Any) -> Any:
        """The values the implementation will see, as float64: ``a`` rounded to DTYPE and back.

        Checks evaluate the reference on ``cast`` inputs, so the reference computes in float64 on
        exactly what the implementation received and input rounding never counts against it.
        """
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a.astype(self.dtype).astype(np.float64)
        return a

    def _to_dtype(self, a: Any) -> Any:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a.astype(self.dtype)
        if isinstance(a, list | tuple) and any(isinstance(x, np.ndarray) for x in a):
            return type(a)(self._to_dtype(x) for x in a)
        return a

    def call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` with float arrays cast to DTYPE; translate what goes wrong into messages."""
        __tracebackhide__ = True
        self.require(fn)
        self.called.add(fn)
        args = tuple(self._to_dtype(a) for a in args)
        kwargs = {k: self._to_dtype(v) for k, v in kwargs.items()}
        reply = self._invoke(fn, args, kwargs)
        record, call = self.provision.setdefault(fn, Provision()), features(fn, args, kwargs)
        if reply.raised == "NotImplementedError":
            self._refuse(fn, record, call, reply.message)
        if reply.changes:
            names = contract.parameters(fn) if fn in contract.ALL else ()
            raise ImplementationError(self._failure(fn, None, mutation.message(
                f"{self.name}.{fn}()", list(reply.changes), names)))
        if reply.raised == "SystemExit":
            raise ImplementationError(self._failure(
                fn, None, f"{self.name}.{fn}() called {reply.message}: a contract function must "
                          f"return its outputs, never end the process"))
        if reply.raised is not None:
            raise ImplementationError(self._failure(
                fn, None, f"{self.name}.{fn}() raised {reply.raised}: {reply.message}\n"
                          f"  called with {describe_args(args, kwargs)}"))
        if reply.unsendable is not None:
            raise ImplementationError(self._failure(fn, None, f"{self.name}.{fn}() {reply.unsendable}"))
        record.answer(call)  # only a clean reply: one that raised or wrote has answered nothing
        self.calls.append(Call(fn, tuple(self.cast_all(a) for a in args),
                               {k: self.cast_all(v) for k, v in kwargs.items()}, reply.output))
        return reply.output

    def _refuse(self, fn: str, record: Provision, call: frozenset[str], message: str) -> NoReturn:
        """``fn`` raised NotImplementedError: inside a Hypothesis test, reject this example and go
        on with the others; outside one, skip the check as *not provided*."""
        __tracebackhide__ = True
        record.refuse(call, message)
        if not record.answered:  # a function that never computed anything says nothing of its ids
            self.called.discard(fn)
        if currently_in_test_context():
            reject()
        self.missing.add(fn)
        pytest.skip(f"not provided: {self.name}.{fn}() raised NotImplementedError {message}".strip())

    def partly(self) -> list[tuple[str, str]]:
        """(function, note) for each function that refused some calls of the current check: "partly
        provided: rnn_cell() raised NotImplementedError for nonlinearity='relu' (computes tanh
        only)", the implementation's message in parentheses."""
        # The counts show how much of the check's search the pass rests on: a module refusing
        # exactly where it is wrong would refuse a share of the calls, not a feature.
        return [(fn, f"partly provided: {fn}() raised NotImplementedError for {record.summary()}"
                     f" ({record.n_refused} of {record.n_refused + record.answered} calls)")
                for fn, record in self.provision.items() if record.refused]

    def every_example_refused(self, exc: BaseException) -> str | None:
        """The *not provided* reason for a Hypothesis check that found too few examples the
        implementation supports (``exc``: Hypothesis' Unsatisfiable, or its filter_too_much health
        check), with the refusing functions recorded as missing; None when ``exc`` is not that, or
        nothing was refused (the check's own filtering is at fault, not the implementation)."""
        refused = {fn: record for fn, record in self.provision.items() if record.refused}
        exhausted = isinstance(exc, Unsatisfiable) or (
            isinstance(exc, FailedHealthCheck) and "filter_too_much" in str(exc))
        if not refused or not exhausted:
            return None
        self.missing.update(refused)
        reasons = []
        for fn, record in refused.items():
            if record.answered:
                reasons.append(f"{self.name}.{fn}() raised NotImplementedError for {record.summary()}, "
                               f"leaving too few examples to check")
            else:
                n, messages = record.n_refused, sorted(m for m in record.refused if m)
                told = f": {'; '.join(messages)}" if messages else ""
                reasons.append(f"{self.name}.{fn}() raised NotImplementedError for every example "
                               f"({n} call{'s' if n != 1 else ''}{told})")
        return "not provided: " + "; ".join(reasons)

    def _invoke(self, fn: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Reply:
        """One call through the backend; a hang or an ended process fails, and stops ``fn``."""
        __tracebackhide__ = True
        assert self.backend is not None
        if fn not in self.stopped:
            try:
                return self.backend.call(fn, args, kwargs)
            except Stopped as exc:
                self.stopped[fn] = self._failure(fn, None, f"{self.name}.{fn}() {exc}\n"
                                                           f"  called with {describe_args(args, kwargs)}")
        # One raise for the first stop and every later call, so that Hypothesis sees one failure.
        raise ImplementationError(self.stopped[fn])

    def draw(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` again outside any check, unrecorded, arguments cast as by :meth:`call`:
        the diagnosis replays a random operation with fresh generators. Errors propagate."""
        reply = self._invoke(fn, tuple(self._to_dtype(a) for a in args),
                             {k: self._to_dtype(v) for k, v in kwargs.items()})
        if reply.raised is not None or reply.unsendable is not None:
            raise RuntimeError(f"{fn} raised {reply.raised}: {reply.message}")
        return reply.output

    def diagnosis(self) -> list[str]:
        """The known variants and bugs the recorded calls reproduce (checks/oracle/diagnosis.py).

        Empty while Hypothesis is still searching or shrinking: only the failure of its final
        replay is reported, and replaying a random operation costs a fraction of a second.
        """
        if not final_replay():
            return []
        # The dtype's own unit, as the catalogue's distances are judged: at a declared TF32 or
        # bfloat16 unit every distance would read as rounding and nothing would be named.
        return diagnose(list(self.calls), own_unit(self.dtype), draw=self.draw)

    def cast_all(self, a: Any) -> Any:
        """:meth:`cast` applied inside lists and tuples too."""
        if isinstance(a, list | tuple):
            return type(a)(self.cast_all(x) for x in a)
        return self.cast(a)

    def array(self, value: Any, *, fn: str, what: str, shape: Sequence[int] | None = None,
              allow_nonfinite: bool = False) -> np.ndarray:
        """Convert one output to a NumPy array and validate it against the contract."""
        __tracebackhide__ = True
        try:
            out = np.asarray(value)
        except Exception as exc:
            raise ImplementationError(self._failure(
                fn, what, f"{self.name}.{fn}() returned {type(value).__name__} for {what}, "
                          f"which numpy.asarray cannot convert: {exc}")) from exc
        if out.dtype.kind not in "fiub":
            raise ImplementationError(self._failure(
                fn, what, f"{self.name}.{fn}() returned dtype {out.dtype} for {what}; expected a "
                          f"real numeric array (DTYPE is {self.dtype})"))
        if out.dtype.kind == "f" and out.dtype.itemsize < self.dtype.itemsize:
            raise ImplementationError(self._failure(
                fn, what, f"{self.name}.{fn}() returned {out.dtype} for {what} but declares DTYPE = "
                          f"{self.dtype}: its results carry less precision than it claims"))
        if shape is not None and out.shape != tuple(shape):
            raise ImplementationError(self._failure(
                fn, what, f"{self.name}.{fn}() returned shape {out.shape} for {what}; "
                          f"the contract requires {tuple(shape)}"))
        if not allow_nonfinite and out.dtype.kind == "f" and not np.all(np.isfinite(out)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
            findings = self.diagnosis()
            raise ImplementationError(self._failure(
                fn, what, f"{self.name}.{fn}() returned a non-finite value for {what} at index "
                          f"{bad}: {out[bad]} (inputs were finite)"
                          + "".join(f"\n  Diagnosis: {line}" for line in findings),
                index=bad, got=float(out[bad]), diagnosis=findings))
        return out.astype(np.float64) if out.dtype.kind == "f" else out

    def _failure(self, fn: str, what: str | None, message: str, **fields: Any) -> Failure:
        """What went wrong in a call of ``fn`` (on its output ``what``), as a failure's data."""
        return Failure(implementation=self.name, function=fn, what=what, message=message, **fields)

    def outputs(self, value: Any, *, fn: str, names: Sequence[str]) -> tuple[Any, ...]:
        """Check that a function returned a tuple of ``len(names)`` outputs."""
        __tracebackhide__ = True
        if not isinstance(value, tuple | list) or len(value) != len(names):
            got = f"{type(value).__name__} of length {len(value)}" if isinstance(
                value, tuple | list) else type(value).__name__
            raise ImplementationError(self._failure(
                fn, None, f"{self.name}.{fn}() must return a tuple ({', '.join(names)}); got {got}"))
        return tuple(value)


def describe_args(args: Sequence[Any], kwargs: dict[str, Any] | None = None) -> str:
    """A one-line description of call arguments: arrays by shape and dtype, scalars by value."""

    def one(a: Any) -> str:
        if isinstance(a, np.ndarray):
            return f"array{a.shape}:{a.dtype}"
        if isinstance(a, list | tuple):
            return "[" + ", ".join(one(x) for x in a) + "]"
        if isinstance(a, np.random.Generator):
            return "Generator"
        return repr(a)

    parts = [one(a) for a in args] + [f"{k}={one(v)}" for k, v in (kwargs or {}).items()]
    return "(" + ", ".join(parts) + ")"


def load(name: str, *, isolation: str = "none", timeout: float = DEFAULT_TIMEOUT) -> Implementation:
    """Import an implementation under test by short name or module path.

    ``isolation="process"`` imports and runs it in a worker process of its own
    (checks/harness/isolation.py), unless it is a module built in memory, which no other process
    can import: that one runs in-process. ``timeout`` is the per-call time limit in seconds.
    """
    path = SHIPPED.get(name, name)
    if isolation not in ISOLATION:
        raise ImplementationLoadError(f"isolation {isolation!r} is not one of {ISOLATION}")
    if timeout <= 0:
        raise ImplementationLoadError(f"the per-call time limit must be positive, got {timeout:g} s")
    if isolation == "process" and importable(path):
        key = (name, timeout)
        if key not in _WORKERS:
            worker = _STARTING.pop(key, None) or Worker(name, timeout, wait=False)
            worker.ready()
            _WORKERS[key] = Implementation(name=name, module=worker.module, dtype=worker.dtype,
                                           backend=worker)
        return _WORKERS[key]
    module, dtype = import_module(name)
    return Implementation(name=name, module=module, dtype=dtype, backend=InProcess(module, timeout))


#: Implementations running in a worker, until closed: a command that loads one to read its DTYPE
#: and functions (nnspec check) and the run of the checks after it share the worker, which starts
#: in seconds (it imports the implementation, torch or JAX with it).
_WORKERS: dict[tuple[str, float], Implementation] = {}


#: Workers started ahead of their :func:`load` (see :func:`prestart`).
_STARTING: dict[tuple[str, float], Worker] = {}


def prestart(name: str, *, isolation: str = "none", timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start importing ``name`` in its worker now and return at once; the :func:`load` with the
    same arguments takes that worker (nnspec check lets pytest start while torch imports)."""
    key = (name, timeout)
    if (isolation == "process" and importable(SHIPPED.get(name, name)) and key not in _WORKERS
            and key not in _STARTING):
        _STARTING[key] = Worker(name, timeout, wait=False)


def importable(path: str) -> bool:
    """Whether a fresh process can import ``path``: not a module object registered in memory."""
    module = sys.modules.get(path)
    return module is None or getattr(module, "__spec__", None) is not None


def bug_model(bug_id: str, **functions: Any) -> Implementation:
    """A float64 implementation whose contract functions are a known bug's reference model."""
    return Implementation(name=bug_id, module=SimpleNamespace(DTYPE=np.float64, **functions),
                          dtype=np.dtype(np.float64))
