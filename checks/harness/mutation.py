"""Did the implementation write into its arguments?

A contract function receives NumPy arrays it must treat as read-only: a module that zeroes ``x``
or doubles ``h`` in place can still return the right values, and every later computation on the
same arrays — the reference's, the next call's — silently sees different inputs. Before a call the
array arguments are copied (:func:`snapshot`); afterwards :func:`changes` compares them bit for
bit, NaN and the sign of zero included, and names each argument that differs. Random generators
are meant to advance and are not compared; they are collected so that a worker process can send
their new states back (:func:`generators`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Where an array sits in a call: the argument (position or keyword) and the keys or indices
#: inside it (``("params", "weight_ih_l0")``, ``(0, 1)`` for the second array of a list).
Path = tuple[int | str, ...]


@dataclass(frozen=True)
class Change:
    """One argument the call wrote into."""

    path: Path
    changed: int
    size: int
    #: The first element that changed; None when the shape or dtype changed.
    index: tuple[int, ...] | None
    before: float
    after: float


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, np.ndarray | np.random.Generator):
        yield path, value
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))


def _leaves(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    for i, a in enumerate(args):
        yield from _walk(a, (i,))
    for k, v in kwargs.items():
        yield from _walk(v, (k,))


def snapshot(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """Copies of every array argument (inside lists, tuples and dicts too), with where it is."""
    return [(path, a, a.copy()) for path, a in _leaves(args, kwargs) if isinstance(a, np.ndarray)]


def changes(before: list[tuple[Path, np.ndarray, np.ndarray]]) -> list[Change]:
    """The arguments of :func:`snapshot` whose contents differ now, bit for bit."""
    found = []
    for path, now, copy in before:
        if now.shape != copy.shape or now.dtype != copy.dtype:
            found.append(Change(path, copy.size, copy.size, None, float("nan"), float("nan")))
            continue
        if now.tobytes() == copy.tobytes():  # C order for both, whatever their layouts
            continue
        # Bytes per element, in C order whatever the argument's layout (a transposed weight is not
        # C-contiguous, and a view as bytes needs it).
        differs = (np.ascontiguousarray(now).view(np.uint8).reshape(*now.shape, -1)
                   != np.ascontiguousarray(copy).view(np.uint8).reshape(*copy.shape, -1))
        mask = differs.any(axis=-1) if now.ndim else np.asarray(differs.any())
        index = tuple(int(i) for i in np.argwhere(mask)[0]) if now.ndim else ()
        found.append(Change(path, int(mask.sum()), int(copy.size), index,
                            _scalar(copy[index]), _scalar(now[index])))
    return found


def _scalar(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def generators(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[np.random.Generator]:
    """The random generators among the arguments, in a fixed order (the same on both sides of a
    worker's pipe, since the arguments are the same structure)."""
    return [g for _, g in _leaves(args, kwargs) if isinstance(g, np.random.Generator)]


def describe(change: Change, names: tuple[str, ...]) -> str:
    """``x``, ``params['weight_ih_l0']`` or ``grads[1]``: the argument a change is in, by the
    contract's parameter names (``names``, in positional order)."""
    head, *rest = change.path
    text = names[head] if isinstance(head, int) and head < len(names) else (
        f"argument {head + 1}" if isinstance(head, int) else head)
    return text + "".join(f"[{key!r}]" for key in rest)


def message(fn: str, found: list[Change], names: tuple[str, ...]) -> str:
    """One line naming every argument ``fn`` (as it is to be shown: ``mine.lstm_cell()``) wrote
    into and, for the first, where and how."""
    first = found[0]
    where = "its shape or dtype changed" if first.index is None else (
        f"{first.changed} of {first.size} elements changed, first at index {first.index}: "
        f"{first.before!r} → {first.after!r}")
    more = (f"; also into {', '.join(describe(c, names) for c in found[1:])}"
            if len(found) > 1 else "")
    return (f"{fn} wrote into its argument {describe(first, names)} ({where}){more}: a contract "
            f"function must not modify its inputs")
