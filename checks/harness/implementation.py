"""Loading an implementation under test and calling it safely.

Every check calls the implementation through :class:`Implementation`, so torch, the reference
and a user's module take one and the same code path. What can go wrong on the implementation's
side becomes a clear message: a missing function is *not provided* (a skip, never a failure); an
exception inside it, or an output of the wrong shape, dtype or with NaNs, is a failure that names
the function and the cause.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis.control import current_build_context, currently_in_test_context

from nnspec.checks.bounds.rules import unit_roundoff
from nnspec.checks.harness.failure import Failure, Reported
from nnspec.checks.oracle.diagnosis import Call, diagnose

#: Short names for the shipped implementations; anything else is an importable module path.
SHIPPED: dict[str, str] = {
    "torch": "nnspec.implementations.torch_cpu",
    "torch_float32": "nnspec.implementations.torch_cpu_float32",
    "torch_cuda": "nnspec.implementations.torch_cuda",
    "torch_cuda_float32": "nnspec.implementations.torch_cuda_float32",
    "reference": "nnspec.implementations.reference",
}

#: Implementations the default ``pytest`` run checks (CUDA ones skip without a GPU).
DEFAULT = ("torch", "torch_float32", "reference", "torch_cuda", "torch_cuda_float32")


class ImplementationUnavailable(Exception):
    """The implementation cannot run here (e.g. CUDA without a GPU); its checks skip."""


class ImplementationLoadError(Exception):
    """The module named as the implementation under test cannot be used at all."""


class ImplementationError(Reported):
    """The implementation raised, or returned something the contract does not allow; ``.failure``
    names the function, the output and what was wrong with it."""


@dataclass(frozen=True)
class Implementation:
    """An implementation under test: a module defining ``DTYPE`` and contract functions."""

    name: str
    #: The module, or a namespace standing for one (a bug's model, an adapter's functions).
    module: ModuleType | SimpleNamespace
    dtype: np.dtype
    #: The last calls made, with the values the implementation saw, for the oracle's diagnosis.
    calls: deque = field(default_factory=lambda: deque(maxlen=8), compare=False, repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints a failing example's arguments with this; its dataclass printer would
        # show every field, the recorded calls' arrays included (tens of kB per failure).
        printer.text(f"Implementation({self.name!r}, dtype={self.dtype})")

    def provides(self, fn: str) -> bool:
        return callable(getattr(self.module, fn, None))

    def require(self, fn: str) -> Any:
        """Return the function ``fn`` or skip the calling check as *not provided*."""
        f = getattr(self.module, fn, None)
        if not callable(f):
            pytest.skip(f"not provided: {self.name} does not define {fn}()")
        return f

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
        f = self.require(fn)
        args = tuple(self._to_dtype(a) for a in args)
        kwargs = {k: self._to_dtype(v) for k, v in kwargs.items()}
        try:
            out = f(*args, **kwargs)
        except NotImplementedError as exc:
            pytest.skip(f"not provided: {self.name}.{fn}() raised NotImplementedError {exc}".strip())
        except Exception as exc:
            raise ImplementationError(self._failure(
                fn, None, f"{self.name}.{fn}() raised {type(exc).__name__}: {exc}\n"
                          f"  called with {describe_args(args, kwargs)}")) from exc
        self.calls.append(Call(fn, tuple(self.cast_all(a) for a in args),
                               {k: self.cast_all(v) for k, v in kwargs.items()}, out))
        return out

    def draw(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` again outside any check, unrecorded, arguments cast as by :meth:`call`:
        the diagnosis replays a random operation with fresh generators. Errors propagate."""
        return getattr(self.module, fn)(*(self._to_dtype(a) for a in args),
                                        **{k: self._to_dtype(v) for k, v in kwargs.items()})

    def diagnosis(self) -> list[str]:
        """The known variants and bugs the recorded calls reproduce (checks/oracle/diagnosis.py).

        Empty while Hypothesis is still searching or shrinking: only the failure of its final
        replay is reported, and replaying a random operation costs a fraction of a second.
        """
        if currently_in_test_context() and not current_build_context().is_final:
            return []
        return diagnose(list(self.calls), unit_roundoff(self.dtype), draw=self.draw)

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


def load(name: str) -> Implementation:
    """Import an implementation under test by short name or module path."""
    path = SHIPPED.get(name, name)
    try:
        module = importlib.import_module(path)
    except ImplementationUnavailable:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is None or not (path == exc.name or path.startswith(exc.name + ".")):
            raise ImplementationLoadError(
                f"importing implementation {name!r} raised ModuleNotFoundError: {exc} "
                f"(the module exists; something it imports is not installed)"
            ) from exc
        raise ImplementationLoadError(
            f"cannot import implementation {name!r}: no module named {exc.name!r} "
            f"(give an importable module path, e.g. mypkg.my_lstm, or one of {sorted(SHIPPED)})"
        ) from exc
    except Exception as exc:
        raise ImplementationLoadError(
            f"importing implementation {name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not hasattr(module, "DTYPE"):
        raise ImplementationLoadError(
            f"implementation {name!r} ({path}) does not define DTYPE, the NumPy dtype it computes in"
        )
    try:
        dtype = np.dtype(module.DTYPE)
    except TypeError as exc:
        raise ImplementationLoadError(
            f"implementation {name!r}: DTYPE = {module.DTYPE!r} is not a NumPy dtype"
        ) from exc
    if dtype.kind != "f":
        raise ImplementationLoadError(
            f"implementation {name!r}: DTYPE = {dtype} is not a floating-point dtype"
        )
    return Implementation(name=name, module=module, dtype=dtype)


def bug_model(bug_id: str, **functions: Any) -> Implementation:
    """A float64 implementation whose contract functions are a known bug's reference model."""
    return Implementation(name=bug_id, module=SimpleNamespace(DTYPE=np.float64, **functions),
                          dtype=np.dtype(np.float64))
