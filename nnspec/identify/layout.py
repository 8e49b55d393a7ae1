"""An identified layout as Python source: ``from_torch(w_ih, w_hh, b_ih, b_hh) -> {name: array}``.

The probe finds, for every entry of the cell's parameters, a :class:`Formula`: a sign, the
PyTorch entries it sums and a constant. This module finds the block structure behind those
formulas — each parameter a concatenation (or stack, or transpose) of whole gate blocks of
``w_ih``, ``w_hh``, ``b_ih``, ``b_hh`` — and writes it as code that works for every input size D
and hidden size H, not only the probe's: the code is what is verified and then printed. Entries
that follow no block structure raise :class:`LayoutError` naming the parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from nnspec.adapters import BLOCKS
from nnspec.identify.probe import Term


class LayoutError(ValueError):
    """The entries of a parameter follow no rule of whole gate blocks."""


@dataclass(frozen=True)
class Formula:
    """One cell entry = sign · (Σ terms + const); ``row``, ``col`` place its slot in PyTorch's
    layout (gate row // H, unit row % H; ``col`` None for a bias)."""

    sign: int
    terms: tuple[Term, ...]
    const: float
    row: int
    col: int | None

    def value(self, theta: Mapping[str, np.ndarray]) -> float:
        """The entry for PyTorch's ``theta``, rounded as the code :func:`source` writes computes
        it: the terms summed left to right, then the constant added (``t - c`` is ``t + (-c)``
        exactly), then the sign (exact) — so the two agree bit for bit."""
        total = 0.0
        for t in self.terms:
            total += float(theta[t.tensor][t.row] if t.col is None else theta[t.tensor][t.row, t.col])
        return self.sign * (total + self.const)

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(t.tensor for t in self.terms)


def convert(formulas: Mapping[str, np.ndarray], theta: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cell's parameters for PyTorch's ``theta``, entry by entry (at the probe's sizes)."""
    out = {}
    for name, table in formulas.items():
        values = np.zeros(table.shape)
        for index in np.ndindex(*table.shape):
            formula = cast(Formula, table[index])
            values[index] = formula.value(theta)
        out[name] = values
    return out


# ---- block structure -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Piece:
    """A run of gate blocks k0 … k1 taken alike: sign · (Σ tensors[k0:k1+1] + const)."""

    sign: int
    tensors: tuple[str, ...]
    const: float
    k0: int
    k1: int


def _index(kind: str, k0: int, k1: int) -> str:
    """The index of gates k0 … k1: one gate by its letter, all of them by none."""
    return f"[{BLOCKS[kind][k0]}]" if k0 == k1 and len(BLOCKS[kind]) > 1 else ""


def _signed(expr: str, sign: int, compound: bool) -> str:
    if sign > 0:
        return expr
    return f"-({expr})" if compound else f"-{expr}"


def _piece_expr(kind: str, p: _Piece, column: bool = False) -> str:
    if not p.tensors:
        raise LayoutError("an entry that takes no PyTorch entry (a duplicate) is not a block")
    idx = _index(kind, p.k0, p.k1)
    expr = " + ".join(f"{t}{idx}" for t in p.tensors)
    if p.const:
        expr += f" {'-' if p.const < 0 else '+'} {abs(p.const)!r}"
    compound = len(p.tensors) > 1 or bool(p.const)
    expr = _signed(expr, p.sign, compound)
    if column:
        expr = f"({expr})[:, None]"
    return expr


def _merge(kind: str, pieces: list[_Piece]) -> list[_Piece]:
    """All gates in PyTorch's order, taken alike, become one piece (the whole tensor); a gate
    named by its letter reads better than a partial slice, so nothing else merges."""
    first = pieces[0]
    if (len(pieces) == len(BLOCKS[kind]) and [(p.k0, p.k1) for p in pieces] ==
            [(k, k) for k in range(len(pieces))]
            and all((p.sign, p.tensors, p.const) == (first.sign, first.tensors, first.const)
                    for p in pieces)):
        return [_Piece(first.sign, first.tensors, first.const, 0, len(pieces) - 1)]
    return pieces


def _concat(exprs: list[str], axis: int = 0) -> str:
    if len(exprs) == 1:
        return exprs[0]
    tail = "" if axis == 0 else f", axis={axis}"
    return f"np.concatenate([{', '.join(exprs)}]{tail})"


def _vector(kind: str, table: np.ndarray, hidden: int, what: str) -> str:
    """A 1-D parameter of bias entries: gate blocks of H consecutive units."""
    if table.size % hidden:
        raise LayoutError(f"{what} has {table.size} entries, not whole blocks of H = {hidden}")
    pieces = []
    for start in range(0, table.size, hidden):
        block = list(table[start:start + hidden])
        first = block[0]
        k = first.row // hidden
        for j, f in enumerate(block):
            if (f.col is not None or f.row != k * hidden + j
                    or (f.sign, f.tensors, f.const) != (first.sign, first.tensors, first.const)):
                raise LayoutError(f"{what}[{start}:{start + hidden}] is not one bias block taken "
                                  f"alike (units 0 … H − 1 of one gate)")
        pieces.append(_Piece(first.sign, first.tensors, first.const, k, k))
    return _concat([_piece_expr(kind, p) for p in _merge(kind, pieces)])


def _segments(row: list[Formula], what: str) -> list[tuple[tuple[str, ...], float, bool]]:
    """A row of a weight matrix as segments: (tensors, const, is a bias column)."""
    out = []
    c = 0
    while c < len(row):
        f = row[c]
        if f.col is None:
            out.append((f.tensors, f.const, True))
            c += 1
            continue
        width = 0
        while (c + width < len(row) and row[c + width].col == width
               and row[c + width].tensors == f.tensors):
            width += 1
        if width == 0 or f.col != 0:
            raise LayoutError(f"{what}: the columns of a row are not whole rows of w_ih or w_hh")
        out.append((f.tensors, 0.0, False))
        c += width
    return out


def _matrix(kind: str, table: np.ndarray, hidden: int, what: str) -> str:
    """A 2-D parameter whose rows are output units (gate blocks of H rows), each row a
    concatenation of whole rows of w_ih, w_hh and bias columns."""
    rows, _ = table.shape
    if rows % hidden:
        raise LayoutError(f"{what} has {rows} rows, not whole blocks of H = {hidden}")
    blocks = []
    for start in range(0, rows, hidden):
        pattern = None
        k = table[start, 0].row // hidden
        sign = table[start, 0].sign
        for j in range(hidden):
            row = list(table[start + j])
            if any(f.row != k * hidden + j or f.sign != sign for f in row):
                raise LayoutError(f"{what}: rows {start} … {start + hidden - 1} are not one gate "
                                  f"block's units 0 … H − 1 with one sign")
            segs = _segments(row, what)
            if pattern is None:
                pattern = segs
            elif segs != pattern:
                raise LayoutError(f"{what}: the rows of one gate block differ in their columns")
        assert pattern is not None
        blocks.append((k, sign, tuple(pattern)))
    # All gates in PyTorch's order with the same columns are the whole tensors.
    groups: list[tuple[int, int, int, tuple[Any, ...]]] = [(k, k, sign, pattern)
                                                            for k, sign, pattern in blocks]
    if ([k for k, _, _ in blocks] == list(range(len(BLOCKS[kind])))
            and len({(sign, pattern) for _, sign, pattern in blocks}) == 1):
        groups = [(0, len(blocks) - 1, blocks[0][1], blocks[0][2])]
    exprs = []
    for k0, k1, sign, columns in groups:
        parts = [_piece_expr(kind, _Piece(1, tensors, const, k0, k1), column=is_bias)
                 for tensors, const, is_bias in columns]
        exprs.append(_signed(_concat(parts, axis=1), sign, len(parts) > 1))
    return _concat(exprs)


_ATOM = re.compile(r"(np\.\w+\(.*\)|\w+(\[[^\]]*\])?)")


def _atom(expr: str) -> bool:
    """Whether ``.T`` may follow ``expr`` without parentheses."""
    return _ATOM.fullmatch(expr) is not None


def _array(kind: str, table: np.ndarray, hidden: int, what: str) -> str:
    if table.ndim == 1:
        return _vector(kind, table, hidden, what)
    if table.ndim == 2:
        weights = any(f.col is not None for f in table.ravel())
        if weights:
            errors = []
            for candidate, suffix in ((table, ""), (table.T, ".T")):
                try:
                    expr = _matrix(kind, candidate, hidden, what)
                except LayoutError as exc:
                    errors.append(str(exc))
                    continue
                return expr + suffix if not suffix or _atom(expr) else f"({expr}){suffix}"
            raise LayoutError(errors[0])
        for axis in (0, 1):
            try:
                parts = [_vector(kind, np.take(table, i, axis=axis), hidden, f"{what} slice {i}")
                         for i in range(table.shape[axis])]
            except LayoutError:
                continue
            return f"np.stack([{', '.join(parts)}]{'' if axis == 0 else ', axis=1'})"
        raise LayoutError(f"{what}: neither its rows nor its columns are bias vectors")
    if table.ndim == 3:
        parts = [_array(kind, table[i], hidden, f"{what}[{i}]") for i in range(table.shape[0])]
        return f"np.stack([{', '.join(parts)}])"
    raise LayoutError(f"{what} has {table.ndim} dimensions; layouts of 1 to 3 are written as code")


def source(kind: str, formulas: Mapping[str, np.ndarray], hidden: int, summary: str) -> str:
    """The code of ``from_torch`` for ``formulas`` (parameter name → table of :class:`Formula`
    of the parameter's shape); ``summary`` becomes its docstring's first line."""
    G = len(BLOCKS[kind])
    rows = f"{G}H" if G > 1 else "H"
    blocks = (f"gate blocks {', '.join(BLOCKS[kind])} of H rows each; " if G > 1 else "")
    lines = ["import numpy as np", "", "",
             "def from_torch(w_ih, w_hh, b_ih, b_hh):",
             f'    """{summary}', "",
             f"    PyTorch's layout: w_ih ({rows}, D), w_hh ({rows}, H), b_ih, b_hh ({rows},);",
             f"    {blocks}an absent bias (None) is zeros.",
             '    """',
             "    b_ih = np.zeros(len(w_ih), np.asarray(w_ih).dtype) if b_ih is None else b_ih",
             "    b_hh = np.zeros(len(w_hh), np.asarray(w_hh).dtype) if b_hh is None else b_hh"]
    if G > 1:
        lines += ["    H = w_hh.shape[1]",
                  f"    {', '.join(BLOCKS[kind])} = (slice(k * H, (k + 1) * H) for k in range({G}))"]
    lines.append("    return {")
    for name, table in formulas.items():
        key = json.dumps(name)
        lines += _wrapped(f"{key}: {_array(kind, table, hidden, key)},", " " * 8)
    lines.append("    }")
    return "\n".join(lines) + "\n"


#: Generated lines longer than this are broken at the items of their concatenations.
WIDTH = 99


def _wrapped(text: str, indent: str) -> list[str]:
    """``text`` at ``indent``, its outermost ``np.concatenate([…])`` or ``np.stack([…])`` broken
    into one item per line (recursively) when the line is longer than :data:`WIDTH`."""
    if len(indent) + len(text) <= WIDTH:
        return [indent + text]
    opening = min((i for i in (text.find("np.concatenate(["), text.find("np.stack([")) if i >= 0),
                  default=-1)
    if opening < 0:
        return [indent + text]
    start = text.index("([", opening) + 2
    depth, items, item_start, end = 0, [], start, -1
    for pos in range(start, len(text)):
        ch = text[pos]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                end = pos
                break
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[item_start:pos].strip())
            item_start = pos + 1
    items.append(text[item_start:end].strip())
    lines = [indent + text[:start]]
    for item in items:
        lines += _wrapped(item + ",", indent + "    ")
    lines.append(indent + text[end:])
    return lines
