"""Probing an unknown cell: which of PyTorch's parameters does each of its parameter entries act as?

PyTorch's parameters (``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``, gate blocks of :data:`BLOCKS`) are
cut into *slots*: the smallest sums of their entries that a formula can observe. Every weight
entry is a slot; a bias row is one slot ``b_ih[k] + b_hh[k]`` when only the sum reaches the
output (a gate outside the GRU's reset, every LSTM gate) and two when the two act differently
(PyTorch's b_in and b_hn, the second inside r ⊙ (·)). The slots of a variant are found by
perturbing its reference function, never listed by hand, so a new variant of spec/ brings its own.

A layout is then one slot and one sign per cell entry: every layout in use (a gate order, a
transpose, per-gate matrices, a concatenated ``[x, h]`` kernel, split or folded biases, a
flipped update gate, which negates a block since 1 − σ(a) = σ(−a)) is of that form, plus a
constant per bias slot (a forget-bias offset the cell adds itself). An entry's slot is read from
its *signature*: the change of the cell's output on a fixed batch of random inputs when that one
entry moves by :data:`DELTA` from a base point, compared with the change of the variant's output
when one slot moves. At the all-zero base some slots are invisible (the GRU's reset gate while
W_hn h + b_hn = 0, the LSTM's input gate while g = 0), so the search runs in stages: each stage
puts random values on the entries already placed and probes the rest again.

The thresholds below decide what is *proposed*, never what passes: a proposal is checked on
random weights (:func:`nnspec.identify.solve.attempt`) and then by the full checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnspec.adapters import BLOCKS

#: How far one entry or slot moves when probed: large enough that a signature stands far above
#: float32 rounding (≈ 1e-7 of the outputs), small enough that gates do not saturate.
DELTA = 1.0

#: Rows of the probe batch: each row is another random (x, h, c), so signatures of different
#: slots differ in many coordinates.
BATCH = 6

#: An entry has an effect when its signature exceeds this fraction of the outputs' scale:
#: float32 rounding of the outputs is ≈ 1e-7 of it, a real effect ≈ 1e-2 or more.
EFFECT = 1e-4

#: An entry matches a slot when their signatures differ by at most MATCH of the entry's signature
#: (rounding differences are ≈ 1e-6 of it in float32), and the match is taken only when every
#: other slot is at least UNIQUE of it away (otherwise the base point cannot tell them apart yet).
MATCH = 1e-2
UNIQUE = 1e-1

#: Stages of probing (see the module docstring); two suffice for every layout of the tests.
MAX_STAGES = 4


Theta = dict[str, np.ndarray]
Cell = Callable[..., Any]


class IdentifyError(ValueError):
    """The cell, its parameters or the kind cannot be probed (one line, for the command)."""


@dataclass(frozen=True)
class Term:
    """One entry of PyTorch's parameters: ``tensor[row]`` or ``tensor[row, col]``."""

    tensor: str
    row: int
    col: int | None = None


@dataclass(frozen=True)
class Slot:
    """The sum of ``terms`` (PyTorch entries) that the variant observes as one quantity."""

    terms: tuple[Term, ...]

    @property
    def row(self) -> int:
        return self.terms[0].row

    @property
    def is_bias(self) -> bool:
        return self.terms[0].col is None



@dataclass(frozen=True)
class Sizes:
    """The probe's input size D and hidden size H."""

    input: int
    hidden: int


def zeros(kind: str, sizes: Sizes) -> Theta:
    """PyTorch's parameters of ``kind`` at ``sizes``, all zero."""
    G, D, H = len(BLOCKS[kind]), sizes.input, sizes.hidden
    return {"w_ih": np.zeros((G * H, D)), "w_hh": np.zeros((G * H, H)),
            "b_ih": np.zeros(G * H), "b_hh": np.zeros(G * H)}


def moved(theta: Theta, term: Term, by: float) -> Theta:
    """A copy of ``theta`` with one entry moved by ``by``."""
    out = {k: v.copy() for k, v in theta.items()}
    index = (term.row,) if term.col is None else (term.row, term.col)
    out[term.tensor][index] += by
    return out


@dataclass
class Inputs:
    """The probe batch: x (B, D), h (B, H) and, for the LSTM, c (B, H)."""

    x: np.ndarray
    h: np.ndarray
    c: np.ndarray | None

    @classmethod
    def draw(cls, kind: str, sizes: Sizes, rng: np.random.Generator, batch: int = BATCH) -> Inputs:
        return cls(x=rng.normal(size=(batch, sizes.input)),
                   h=rng.uniform(-0.9, 0.9, size=(batch, sizes.hidden)),
                   c=rng.normal(size=(batch, sizes.hidden)) if kind == "lstm" else None)

    @property
    def states(self) -> tuple[np.ndarray, ...]:
        return (self.h,) if self.c is None else (self.h, self.c)


def flat(out: Any, kind: str, batch: int, hidden: int, who: str) -> np.ndarray:
    """A cell's output as one float64 vector: h', or h' then c' for the LSTM; ``ValueError``
    naming ``who`` when it is not shaped so."""
    parts = list(out) if kind == "lstm" and isinstance(out, tuple | list) else [out]
    want = 2 if kind == "lstm" else 1
    arrays = [np.asarray(p, dtype=np.float64) for p in parts]
    if len(arrays) != want or any(a.shape != (batch, hidden) for a in arrays):
        got = ", ".join(str(a.shape) for a in arrays)
        need = "(h', c'), each" if kind == "lstm" else "h'"
        raise IdentifyError(f"{who} must return {need} of shape {(batch, hidden)}; it returned "
                            f"{got}")
    return np.concatenate([a.ravel() for a in arrays])


def call(cell: Cell, inputs: Inputs, params: Mapping[str, np.ndarray]) -> Any:
    """``cell(x, h[, c], **params)``; an exception it raises becomes one :class:`IdentifyError`
    line saying how it was called."""
    try:
        return cell(inputs.x, *inputs.states, **params)
    except Exception as exc:
        state = "h, c" if inputs.c is not None else "h"
        shapes = ", ".join(f"{k}={np.shape(v)}" for k, v in params.items())
        raise IdentifyError(f"CELL(x, {state}, **params) raised {type(exc).__name__}: {exc} "
                            f"(x {inputs.x.shape}, h {inputs.h.shape}; params {shapes})") from exc


@dataclass
class Variant:
    """A formula the cell may compute: its id (spec id, or bug id of spec/*.md), the contract
    function it is checked as, and its reference function in PyTorch's layout."""

    id: str
    function: str
    formula: Callable[..., Any]
    nonlinearity: str | None = None
    in_spec: bool = True

    def __call__(self, kind: str, inputs: Inputs, theta: Theta) -> np.ndarray:
        extra = {} if self.nonlinearity is None else {"nonlinearity": self.nonlinearity}
        out = self.formula(inputs.x, *inputs.states, theta["w_ih"], theta["w_hh"],
                           theta["b_ih"], theta["b_hh"], **extra)
        return flat(out, kind, inputs.x.shape[0], inputs.h.shape[1], self.id)


#: Random points at which a variant's slots are looked for: an entry that does not reach the
#: output at one of them (a ReLU unit dead on the whole batch) reaches it at another.
SLOT_POINTS = 3


def slots(variant: Variant, kind: str, sizes: Sizes, rng: np.random.Generator) -> list[Slot]:
    """The variant's slots at ``sizes``: each weight entry, and each bias row once (its two
    biases observed only as a sum) or twice. Entries that reach the output at none of
    :data:`SLOT_POINTS` random points (a formula that ignores a bias) are no slot."""
    points = []
    for _ in range(SLOT_POINTS):
        theta = {k: 0.5 * rng.normal(size=v.shape) for k, v in zeros(kind, sizes).items()}
        inputs = Inputs.draw(kind, sizes, rng)
        points.append((theta, inputs, variant(kind, inputs, theta)))

    def effect(term: Term) -> list[np.ndarray]:
        return [variant(kind, inputs, moved(theta, term, DELTA)) - base
                for theta, inputs, base in points]

    floor = EFFECT * (1.0 + max(float(np.max(np.abs(base))) for _, _, base in points))

    def reaches(changes: list[np.ndarray]) -> bool:
        return any(np.max(np.abs(d)) > floor for d in changes)

    found: list[Slot] = []
    for tensor in ("w_ih", "w_hh"):
        rows, cols = points[0][0][tensor].shape
        found += [Slot((Term(tensor, r, c),)) for r in range(rows) for c in range(cols)
                  if reaches(effect(Term(tensor, r, c)))]
    for row in range(points[0][0]["b_ih"].size):
        a, b = Term("b_ih", row), Term("b_hh", row)
        ea, eb = effect(a), effect(b)
        if reaches(ea) and reaches(eb) and all(np.max(np.abs(da - db)) <= MATCH * np.max(np.abs(da))
                                               for da, db in zip(ea, eb, strict=True)):
            found.append(Slot((a, b)))
        else:
            found += [Slot((t,)) for t, e in ((a, ea), (b, eb)) if reaches(e)]
    return found


@dataclass(frozen=True)
class Entry:
    """One entry of the cell's parameters: ``params[name][index]``."""

    name: str
    index: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.name}[{', '.join(map(str, self.index))}]"


@dataclass
class Probe:
    """The cell under identification, called on the probe batch with parameter arrays of the
    declared shapes (float64; the cell may cast them)."""

    cell: Cell
    kind: str
    shapes: Mapping[str, tuple[int, ...]]
    inputs: Inputs
    calls: int = 0
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float64))

    @property
    def entries(self) -> list[Entry]:
        return [Entry(name, tuple(int(i) for i in index))
                for name, shape in self.shapes.items() for index in np.ndindex(*shape)]

    def zeros(self) -> dict[str, np.ndarray]:
        return {name: np.zeros(shape) for name, shape in self.shapes.items()}

    def __call__(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        self.calls += 1
        out = call(self.cell, self.inputs, params)
        first = out[0] if self.kind == "lstm" and isinstance(out, tuple | list) else out
        dtype = np.asarray(first).dtype
        if dtype == np.float32:
            self.dtype = np.dtype(np.float32)
        return flat(out, self.kind, self.inputs.x.shape[0], self.inputs.h.shape[1], "CELL")

    def signatures(self, base: Mapping[str, np.ndarray], entries: list[Entry]) -> np.ndarray:
        """One row per entry: the output's change when that entry moves by DELTA from ``base``."""
        at_base = self(base)
        rows = []
        for e in entries:
            params = {k: v.copy() for k, v in base.items()}
            params[e.name][e.index] += DELTA
            rows.append(self(params) - at_base)
        return np.array(rows).reshape(len(entries), at_base.size)


def slot_signatures(variant: Variant, kind: str, inputs: Inputs, theta: Theta,
                    found: list[Slot]) -> tuple[np.ndarray, np.ndarray]:
    """The variant's output change when each slot moves by +DELTA and by −DELTA from ``theta``
    (a slot moves through its first term: only the sum of its terms is observed)."""
    base = variant(kind, inputs, theta)
    plus = np.array([variant(kind, inputs, moved(theta, s.terms[0], DELTA)) - base for s in found])
    minus = np.array([variant(kind, inputs, moved(theta, s.terms[0], -DELTA)) - base
                      for s in found])
    return plus.reshape(len(found), base.size), minus.reshape(len(found), base.size)


@dataclass
class Match:
    """What the signatures say about one entry: its slot and sign, or why there is none."""

    slot: int | None
    sign: int = 1
    reason: str = ""


def match(cell_sigs: np.ndarray, plus: np.ndarray, minus: np.ndarray, scale: float,
          chunk: int = 32) -> list[Match]:
    """The slot (index into the slot list) and sign of each entry whose signature matches one
    slot's alone; ``slot=None`` with the reason otherwise ("no effect", "ambiguous", "no match")."""
    found: list[Match] = []
    for start in range(0, len(cell_sigs), chunk):
        block = cell_sigs[start:start + chunk]
        d_plus = np.max(np.abs(block[:, None, :] - plus[None]), axis=2, initial=0.0)
        d_minus = np.max(np.abs(block[:, None, :] - minus[None]), axis=2, initial=0.0)
        for sig, dp, dm in zip(block, d_plus, d_minus, strict=True):
            norm = float(np.max(np.abs(sig), initial=0.0))
            if norm <= EFFECT * scale:
                found.append(Match(None, reason="no effect"))
                continue
            d = np.minimum(dp, dm)
            order = np.argsort(d)
            best = int(order[0])
            second = float(d[order[1]]) if len(order) > 1 else np.inf
            if d[best] > MATCH * norm:
                found.append(Match(None, reason="no match"))
            elif second < UNIQUE * norm:
                found.append(Match(None, reason="ambiguous"))
            else:
                found.append(Match(best, 1 if dp[best] <= dm[best] else -1))
    return found
