"""The files of an export: arguments and outputs as JSON, arrays as ``.npz``, and reading them back.

A case is a JSON document (metadata, scalars inline) beside an ``.npz`` of plain arrays that
``numpy.load(..., allow_pickle=False)`` reads, so another language needs no Python to use it.
Writing is reproducible byte for byte: fixed zip timestamps, one key per JSON line.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.vectors.recipes import RngArgument, call_values

SCHEMA = "nnspec-vectors/1"

#: The dtypes bounds are exported for: an implementation in another dtype cannot use the vectors.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ---- writing ---------------------------------------------------------------------------------

def _float_name(x: float) -> float | str:
    return x if math.isfinite(x) else {math.inf: "inf", -math.inf: "-inf"}.get(x, "nan")


def encode(name: str | tuple[str, ...], value: Any, arrays: dict[str, np.ndarray]) -> dict:
    """The JSON description of one argument; its arrays go into ``arrays``."""
    label = name if isinstance(name, str) else "(" + ", ".join(name) + ")"
    if value is None:
        return {"name": label, "kind": "none"}
    if isinstance(value, RngArgument):
        return {"name": label, "kind": "generator", "seed": value.seed,
                "note": "any random generator: the result must not depend on it"}
    if isinstance(value, np.ndarray):
        key = re.sub(r"\W", "_", label)
        arrays[key] = value
        return {"name": label, "kind": "array", "key": key, "dtype": str(value.dtype),
                "shape": list(value.shape)}
    if isinstance(value, tuple | list):
        names = name if isinstance(name, tuple) else [f"{name}_{i}" for i in range(len(value))]
        return {"name": label, "kind": "tuple" if isinstance(value, tuple) else "list",
                "items": [encode(n, v, arrays) for n, v in zip(names, value, strict=True)]}
    if isinstance(value, bool):
        return {"name": label, "kind": "scalar", "type": "bool", "value": value}
    if isinstance(value, int | np.integer):
        return {"name": label, "kind": "scalar", "type": "int", "value": int(value)}
    if isinstance(value, float):
        return {"name": label, "kind": "scalar", "type": "float", "value": _float_name(value)}
    if isinstance(value, str):
        return {"name": label, "kind": "scalar", "type": "str", "value": value}
    raise TypeError(f"argument {label} of type {type(value).__name__} has no vector encoding")


def leaves(out: Any, names: tuple[str, ...]) -> list[tuple[str, list[int], Any]]:
    """(name, path, value) of each output: the path indexes into the returned tuples and lists."""
    if len(names) == 1 and names[0].endswith("[]"):
        return [(f"{names[0][:-2]}_{j}", [j], v) for j, v in enumerate(out)]
    if not isinstance(out, tuple | list):
        if len(names) != 1:
            raise ValueError(f"one output returned, but the contract names {names}")
        return [(names[0], [], out)]
    if len(out) != len(names):
        raise ValueError(f"{len(out)} outputs returned, but the contract names {names}")
    found: list[tuple[str, list[int], Any]] = []
    for i, (name, value) in enumerate(zip(names, out, strict=True)):
        if name.endswith("[]"):
            found += [(f"{name[:-2]}_{j}", [i, j], v) for j, v in enumerate(value)]
        else:
            found.append((name, [i], value))
    return found


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (a zip of .npy files) with fixed timestamps, so an export is reproducible byte for
    byte; ``numpy.load(path, allow_pickle=False)`` reads it."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, a in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.array(a, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())


def _dumps(value: Any, level: int = 0) -> str:
    """JSON, one key per line, lists of scalars (shapes, paths) on one line."""
    pad = " " * (level + 1)
    if isinstance(value, dict) and value:
        items = (f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dumps(v, level + 1)}"
                 for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return ("[\n" + ",\n".join(pad + _dumps(v, level + 1) for v in value) + "\n"
                + " " * level + "]")
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, document: dict) -> None:
    """Write ``document`` as :func:`_dumps` lays it out, with a final newline."""
    path.write_text(_dumps(document) + "\n", encoding="utf-8")


# ---- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """One expected output: ``expected`` is None where the contract returns None."""

    name: str
    path: tuple[int, ...]
    expected: np.ndarray | None
    bounds: dict[str, np.ndarray]
    rules: dict[str, str]


@dataclass(frozen=True)
class VectorCase:
    """One case read back from its JSON and .npz."""

    spec_id: str
    case: str
    function: str
    document: dict
    args: tuple
    outputs: tuple[Output, ...]
    reference: str

    def call_args(self) -> list[Any]:
        """The positional arguments, with a fresh numpy Generator for each generator argument."""
        return call_values(self.args)

    def bound(self, output: Output, dtype: np.dtype | type) -> tol.Bound:
        """The stored bound of ``output`` for an implementation computing in ``dtype``."""
        name = np.dtype(dtype).name
        if name not in output.bounds:
            raise KeyError(f"{self.spec_id}/{self.function}.{self.case}: no bound for {name}; "
                           f"the vectors hold bounds for {sorted(output.bounds)}")
        # Stored at the dtype's own unit roundoff, whatever precision the checks now compute at.
        return tol.Bound(output.bounds[name], output.rules[name] + " [stored in the vectors]",
                         tol.own_unit(dtype))


def _decode(arg: dict, arrays: Any) -> Any:
    kind = arg["kind"]
    if kind == "none":
        return None
    if kind == "generator":
        return RngArgument(arg["seed"])
    if kind == "array":
        return arrays[arg["key"]]
    if kind in ("tuple", "list"):
        items = [_decode(a, arrays) for a in arg["items"]]
        return tuple(items) if kind == "tuple" else items
    value = arg["value"]
    if arg["type"] == "float":
        return float(value)
    return value


def load_index(directory: Path) -> dict:
    """The index.json of an export in ``directory``."""
    return json.loads((Path(directory) / "index.json").read_text(encoding="utf-8"))


def load_case(path: Path) -> VectorCase:
    """Read a case from its JSON file and the .npz beside it (``allow_pickle=False``)."""
    path = Path(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    with np.load(path.parent / document["arrays"], allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    outputs = tuple(
        Output(o["name"], tuple(o["path"]), None if o["kind"] == "none" else arrays[o["expected"]],
               {dt: arrays[key] for dt, key in o.get("bound", {}).items()}, dict(o.get("rule", {})))
        for o in document["outputs"])
    return VectorCase(document["spec_id"], document["case"], document["function"], document,
                      tuple(_decode(a, arrays) for a in document["args"]), outputs,
                      document["reference"])


def output_at(value: Any, path: Sequence[int]) -> Any:
    """The output a path names inside a returned value (tuples and lists, nested)."""
    for i in path:
        value = value[i]
    return value
