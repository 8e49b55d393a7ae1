"""``nnspec vectors --out DIR``: compute every row of the table and write its files and the index."""

from __future__ import annotations

import json
import platform
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

import nnspec
from nnspec import speclib
from nnspec.checks.harness import contract
from nnspec.checks.harness.stats import ALPHA
from nnspec.implementations import reference as contract_reference
from nnspec.vectors.files import DTYPES, SCHEMA, encode, leaves, write_json, write_npz
from nnspec.vectors.readme import readme
from nnspec.vectors.recipes import Case, call_values, rounded
from nnspec.vectors.table import NOT_EXPORTED, VECTORS, Claims, Values, reference_of, resolve


def arguments(row: Values, case: Case, seed: int) -> tuple:
    """The positional arguments of a case: drawn from a generator seeded by ``seed`` and the case's
    name (so adding a case changes no other), float arrays rounded to float32 values."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{row.spec_id}/{row.function}/{case.name}".encode())])
    args = rounded(case.draw(rng))
    names = contract.arguments(row.function)
    if len(args) != len(names):
        raise ValueError(f"{row.function} case {case.name!r} draws {len(args)} arguments, but "
                         f"the contract names {len(names)}: {names}")
    return args


def _case_file(row: Values, case: Case, seed: int, folder: Path, spec_tolerance: str) -> dict:
    args = arguments(row, case, seed)
    reference = reference_of(row)
    out = resolve(reference)(*call_values(args))
    arrays: dict[str, np.ndarray] = {}
    arg_json = [encode(n, v, arrays) for n, v in zip(contract.arguments(row.function), args, strict=True)]
    found = leaves(out, row.outputs)
    want: dict[str, Any] = {name: None if v is None else np.asarray(v, dtype=np.float64)
                            for name, _, v in found}
    bounds = {dt.name: row.bounds(args, want, dt) for dt in DTYPES}
    outputs: list[dict[str, Any]] = []
    for name, path, _ in found:
        if want[name] is None:
            outputs.append({"name": name, "path": path, "kind": "none"})
            continue
        arrays[f"expected_{name}"] = want[name]
        entry: dict[str, Any] = {"name": name, "path": path, "kind": "array", "shape": list(want[name].shape),
                 "expected": f"expected_{name}", "bound": {}, "rule": {}}
        for dt in DTYPES:
            b = bounds[dt.name][name]
            if b is None:
                raise ValueError(f"{row.bound_source} gives no bound for {row.function}'s {name}, "
                                 "which the reference computes")
            atol = np.broadcast_to(np.asarray(b.atol, dtype=np.float64), want[name].shape)
            arrays[f"bound_{dt.name}_{name}"] = np.array(atol, order="C")
            entry["bound"][dt.name] = f"bound_{dt.name}_{name}"
            entry["rule"][dt.name] = b.rule
        outputs.append(entry)
    stem = f"{row.function}.{case.name}"
    write_npz(folder / f"{stem}.npz", arrays)
    document = {
        "schema": SCHEMA, "spec_id": row.spec_id, "case": case.name, "description": case.why,
        "function": row.function, "signature": contract.ALL[row.function],
        "reference": reference, "arrays": f"{stem}.npz", "args": arg_json, "outputs": outputs,
        "tolerance": {"spec_rule": spec_tolerance, "bound_source": row.bound_source,
                      "dtypes": [dt.name for dt in DTYPES],
                      "statement": "pass if |got − expected| ≤ bound elementwise (equal "
                                   "infinities and NaN against NaN count as equal); the bounds "
                                   "hold for these inputs only"},
    }
    if row.accepts_instead:
        document["accepts_instead"] = [f"{sid}/{stem}.json" for sid in row.accepts_instead]
    write_json(folder / f"{stem}.json", document)
    return {"spec_id": row.spec_id, "function": row.function, "case": case.name, "kind": "values",
            "json": f"{row.spec_id}/{stem}.json", "npz": f"{row.spec_id}/{stem}.npz"}


def _claims_file(row: Claims, folder: Path, spec_tolerance: str) -> dict:
    stem = f"{row.function}.claims"
    write_json(folder / f"{stem}.json", {
        "schema": SCHEMA, "spec_id": row.spec_id, "function": row.function,
        "signature": contract.ALL[row.function], "kind": "statistical",
        "tolerance": {"spec_rule": spec_tolerance},
        "why": "a random operation: its output is a sample, so there is no value to compare; "
               "an implementation is checked by these claims, each exact or a hypothesis test "
               f"at false-alarm rate α = {ALPHA:g} (checks/harness/stats.py)",
        **row.claims()})
    return {"spec_id": row.spec_id, "function": row.function, "case": "claims",
            "kind": "statistical", "json": f"{row.spec_id}/{stem}.json"}


def contract_ids() -> dict[str, str | None]:
    """Each contract function of the reference implementation → the spec id its reference
    function's docstring names (None if it names none)."""
    by_function = {name: sid for sid, names in speclib.reference_index().items() for name in names}
    out: dict[str, str | None] = {}
    for fn in contract_reference.__all__:
        if fn in contract.ALL:
            f = getattr(contract_reference, fn)
            out[fn] = by_function.get(f"{f.__module__}.{f.__name__}")
    return out


def _why_not(spec_id: str, ids: dict[str, str | None]) -> str:
    functions = sorted(fn for fn, sid in ids.items() if sid == spec_id)
    if functions:
        return f"no input recipe in nnspec/vectors/table.py (VECTORS) yet for {', '.join(functions)}"
    return "no contract function computes this id (its checks run on the reference)"


def _clear_previous(out: Path) -> None:
    """Make ``out`` ready: absent, empty, or a previous export (whose files alone are removed)."""
    index = out / "index.json"
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    try:
        previous = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileExistsError(f"{out} is not empty and holds no readable index.json of a previous "
                              f"export; refusing to write into it ({exc})") from exc
    if not str(previous.get("schema", "")).startswith("nnspec-vectors/"):
        raise FileExistsError(f"{out}/index.json is not an nnspec vectors index; refusing to "
                              f"write into {out}")
    for spec_id in {c["spec_id"] for c in previous.get("cases", [])}:
        shutil.rmtree(out / spec_id, ignore_errors=True)
    for name in ("index.json", "README.md"):
        (out / name).unlink(missing_ok=True)


def export(out: Path, *, seed: int = 0, command: str | None = None) -> dict:
    """Write every vector under ``out`` (index.json, README.md, <spec id>/<case>.json + .npz)."""
    out = Path(out)
    _clear_previous(out)
    entries = speclib.load()
    cases = []
    for row in VECTORS:
        folder = out / row.spec_id
        folder.mkdir(exist_ok=True)
        tolerance = entries[row.spec_id].tolerance
        if isinstance(row, Values):
            cases += [_case_file(row, case, seed, folder, tolerance) for case in row.cases]
        else:
            cases.append(_claims_file(row, folder, tolerance))
    exported = {c["spec_id"] for c in cases}
    ids = contract_ids()
    without_recipe = sorted(fn for fn in ids if fn not in {row.function for row in VECTORS})
    skipped = [{"spec_id": sid, "reason": NOT_EXPORTED.get(sid) or _why_not(sid, ids)}
               for sid in entries if sid not in exported]
    skipped += [{"function": fn, "reason": f"no input recipe in nnspec/vectors/table.py (VECTORS) "
                 f"yet; its reference function names {ids[fn] or 'no spec id'}"}
                for fn in without_recipe]
    index = {
        "schema": SCHEMA,
        "generated": {"by": "nnspec vectors", "command": command or f"nnspec vectors --out {out} "
                      f"--seed {seed}", "seed": seed, "nnspec_version": nnspec.__version__,
                      "numpy_version": np.__version__, "python_version": platform.python_version()},
        "dtypes": [dt.name for dt in DTYPES],
        "cases": cases,
        "skipped": skipped,
    }
    write_json(out / "index.json", index)
    (out / "README.md").write_text(readme(index), encoding="utf-8")
    return index
