"""Importing the module of an implementation under test, and what makes one unusable.

Light on purpose (the standard library and NumPy only): the isolation worker
(checks/harness/worker.py) runs it in a fresh process before the implementation's own imports, so
its cost is paid on every worker start.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

#: Short names for the shipped implementations; anything else is an importable module path.
SHIPPED: dict[str, str] = {
    "torch": "nnspec.implementations.torch_cpu",
    "torch_float32": "nnspec.implementations.torch_cpu_float32",
    "torch_cuda": "nnspec.implementations.torch_cuda",
    "torch_cuda_float32": "nnspec.implementations.torch_cuda_float32",
    "torch_cuda_tf32": "nnspec.implementations.torch_cuda_tf32",
    "reference": "nnspec.implementations.reference",
    **{n: f"nnspec.implementations.{n}"
       for n in ("onnx_reference", "onnx_runtime", "flax_cells", "flax_nnx", "torch_modules",
                 "keras_torch", "keras_jax", "keras_tensorflow", "keras_torch_float64",
                 "keras_misordered", "openvino_runtime", "openvino_default_precision")},
}


class ImplementationUnavailable(Exception):
    """The implementation cannot run here (e.g. CUDA without a GPU); its checks skip."""


class ImplementationLoadError(Exception):
    """The module named as the implementation under test cannot be used at all."""


def import_module(name: str) -> tuple[ModuleType, np.dtype]:
    """Import an implementation by short name or module path and read its ``DTYPE``.

    Raises :class:`ImplementationUnavailable` as the module raised it, and
    :class:`ImplementationLoadError` with a one-line message for anything else that goes wrong.
    """
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
    except SystemExit as exc:
        raise ImplementationLoadError(
            f"importing implementation {name!r} called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        raise ImplementationLoadError(
            f"importing implementation {name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    dtype = dtype_of(module, name, path)
    precision_of(module, name, dtype)
    return module, dtype


def dtype_of(module: object, name: str, path: str | None = None) -> np.dtype:
    """The floating dtype a module declares in ``DTYPE``, or a one-line load error."""
    where = f" ({path})" if path and path != name else ""
    if not hasattr(module, "DTYPE"):
        raise ImplementationLoadError(
            f"implementation {name!r}{where} does not define DTYPE, the NumPy dtype it computes in"
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
    if dtype not in SUPPORTED_DTYPES:
        # The checks cast their inputs to DTYPE and derive bounds from its unit roundoff against a
        # float64 reference: float16 overflows the checks' inputs, and a dtype wider than float64
        # would be held to a bound the reference itself cannot meet.
        raise ImplementationLoadError(
            f"implementation {name!r}: DTYPE = {dtype} is not supported; the contract's dtypes are "
            f"float32 and float64 (a lower precision behind float32: PRECISION = 'tf32' or "
            f"'bfloat16')"
        )
    return dtype


#: The dtypes an implementation may declare.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


#: What an implementation may declare in PRECISION, behind DTYPE float32: the precision its
#: matrix products really take their operands in, and its unit roundoff (TF32: cuBLAS's and
#: cuDNN's default for float32 on NVIDIA Ampere and later; bfloat16: mixed precision).
PRECISIONS = {"tf32": 2.0**-11, "bfloat16": 2.0**-8}


def precision_of(module: object, name: str, dtype: np.dtype) -> str | None:
    """The lower precision a module declares in ``PRECISION`` (None if none), or a one-line
    load error: the checks then compute its bounds at that precision's u."""
    value = getattr(module, "PRECISION", None)
    if value is None:
        return None
    if value not in PRECISIONS:
        raise ImplementationLoadError(
            f"implementation {name!r}: PRECISION = {value!r} is not one of {sorted(PRECISIONS)} "
            f"(the precision its matrix products take their operands in)")
    if dtype != np.float32:
        raise ImplementationLoadError(
            f"implementation {name!r}: PRECISION = {value!r} needs DTYPE float32, not {dtype}")
    return str(value)


def public_callables(module: object) -> list[str]:
    """The names of a module's public callables (the contract functions among them, and near
    misses a message can point out)."""
    return sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n, None)))
