"""One attempt: does the cell compute one variant, under which layout?

:func:`attempt` reads the cell's forget-bias-like offsets at the all-zero point, places every
entry of its parameters in a slot of the variant by staged probing (nnspec.identify.probe), and
checks the whole proposal on random PyTorch weights: the cell with the converted parameters must
reproduce the variant's reference function to within the oracle's rounding level
(:data:`nnspec.checks.oracle.diagnosis.ROUNDING_LEVEL` units of the cell's unit roundoff, its
threshold for "the same formula"). A wrong layout misses by tens of percent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from nnspec.checks.bounds.rules import unit_roundoff
from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL, distance
from nnspec.identify.layout import Formula, convert
from nnspec.identify.probe import (
    MAX_STAGES,
    Cell,
    Entry,
    Inputs,
    Probe,
    Sizes,
    Slot,
    Theta,
    Variant,
    call,
    flat,
    match,
    moved,
    slot_signatures,
    slots,
    zeros,
)

#: Random PyTorch weights on which a proposal is checked.
DRAWS = 3

#: Offsets are printed rounded to this many decimals when the rounded value still fits.
OFFSET_DECIMALS = 4


#: What an unresolved entry's reason (nnspec.identify.probe.match) says, most telling first.
REASONS = {"no match": "change the output as no PyTorch parameter does",
           "ambiguous": "change it as several PyTorch parameters do alike",
           "no effect": "do not change it at the points probed"}


@dataclass
class Attempt:
    """What probing found for one variant."""

    variant: Variant
    slots: list[Slot] = field(default_factory=list)
    offsets: dict[int, float] = field(default_factory=dict)
    matches: dict[Entry, tuple[int, int]] = field(default_factory=dict)
    unresolved: dict[Entry, str] = field(default_factory=dict)
    distance: float | None = None
    limit: float = 0.0
    note: str = ""

    @property
    def unfilled(self) -> list[Slot]:
        """Slots no entry of the cell holds: PyTorch parameters the cell has no place for."""
        held = {s for s, _ in self.matches.values()}
        return [slot for k, slot in enumerate(self.slots) if k not in held]

    @property
    def fits(self) -> bool:
        return not self.unresolved and self.distance is not None and self.distance <= self.limit

    def formulas(self, probe: Probe) -> dict[str, np.ndarray]:
        """Per parameter, a table of :class:`Formula` of its shape: each entry's share of its
        slot. A slot's terms go one per entry in parameter order (Keras' bias[0] takes b_ih,
        bias[1] b_hh), the last entry taking those left; its offset goes to the first entry."""
        by_slot: dict[int, list[Entry]] = {}
        for e in probe.entries:
            by_slot.setdefault(self.matches[e][0], []).append(e)
        tables = {name: np.empty(shape, dtype=object) for name, shape in probe.shapes.items()}
        for k, entries in by_slot.items():
            slot = self.slots[k]
            for n, e in enumerate(entries):
                terms = slot.terms[n:n + 1] if n < len(entries) - 1 else slot.terms[n:]
                const = -self.offsets.get(k, 0.0) if n == 0 else 0.0
                sign = self.matches[e][1]
                tables[e.name][e.index] = Formula(sign, terms, const, slot.row, slot.terms[0].col)
        return tables


def _theta(kind: str, sizes: Sizes, found: list[Slot], values: dict[int, float]) -> Theta:
    theta = zeros(kind, sizes)
    for k, v in values.items():
        theta = moved(theta, found[k].terms[0], v)
    return theta


def _offsets(a: Attempt, probe: Probe, kind: str, sizes: Sizes) -> bool:
    """The constants the cell adds to bias slots itself, read at the all-zero point: zero when
    the variant's output at zero weights is the cell's, else fitted (least squares over the bias
    slots, from zero, so slots the zero point cannot see stay zero). False when none fit."""
    want = probe(probe.zeros())
    biases = [k for k, s in enumerate(a.slots) if s.is_bias]

    def gap(values: np.ndarray) -> np.ndarray:
        theta = _theta(kind, sizes, a.slots, dict(zip(biases, values, strict=True)))
        return a.variant(kind, probe.inputs, theta) - want

    def off(values: np.ndarray) -> float:
        return distance(want, want + gap(values))

    if off(np.zeros(len(biases))) <= a.limit:
        return True

    def sparse(values: np.ndarray) -> np.ndarray:
        """The zero point cannot see some offsets (the LSTM's input gate while g = 0), and the
        fit may leave them anywhere: each one the fit does not need goes back to zero, until
        none can."""
        changed = True
        while changed:
            changed = False
            for n in np.flatnonzero(values):
                trial = values.copy()
                trial[n] = 0.0
                if off(trial) <= max(a.limit, off(values)):
                    values, changed = trial, True
        return values

    fit = least_squares(gap, np.zeros(len(biases)), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    for values in (sparse(np.round(fit.x, OFFSET_DECIMALS)), sparse(fit.x)):
        if off(values) <= a.limit:
            a.offsets = {k: float(v) for k, v in zip(biases, values, strict=True) if v != 0}
            return True
    a.note = (f"at all-zero parameters the cell's output is not {a.variant.id}'s, whatever "
              f"constants it adds to its biases (closest at relative distance "
              f"{off(fit.x):.2g})")
    return False


def attempt(variant: Variant, probe: Probe, kind: str, sizes: Sizes, rng: np.random.Generator,
            zero_signatures: np.ndarray) -> Attempt:
    """Identify the cell's layout under ``variant``; ``zero_signatures`` are the cell's entry
    signatures at the all-zero point (the same for every variant, so computed once)."""
    a = Attempt(variant, slots(variant, kind, sizes, rng),
                limit=ROUNDING_LEVEL * unit_roundoff(probe.dtype))
    if not _offsets(a, probe, kind, sizes):
        return a
    entries = probe.entries
    scale = 1.0 + float(np.max(np.abs(probe(probe.zeros()))))
    weight_scale = 1.0 / np.sqrt(sizes.input + sizes.hidden)
    reasons: dict[Entry, str] = {}
    for stage in range(MAX_STAGES):
        todo = [e for e in entries if e not in a.matches]
        if not todo:
            break
        values = dict(a.offsets)
        base = probe.zeros()
        if stage == 0:
            cell_sigs = zero_signatures[[entries.index(e) for e in todo]]
        else:
            for e, (k, sign) in a.matches.items():
                v = weight_scale * rng.normal()
                base[e.name][e.index] = v
                values[k] = values.get(k, 0.0) + sign * v
            cell_sigs = probe.signatures(base, todo)
        plus, minus = slot_signatures(variant, kind, probe.inputs,
                                      _theta(kind, sizes, a.slots, values), a.slots)
        new = 0
        for e, m in zip(todo, match(cell_sigs, plus, minus, scale), strict=True):
            if m.slot is None:
                reasons[e] = m.reason
            else:
                a.matches[e] = (m.slot, m.sign)
                reasons.pop(e, None)
                new += 1
        # At a base point the variant and the cell agree on (the zero point, or the entries
        # already placed), an entry of the right layout always matches some slot: a mismatch
        # rules the variant out at once, without probing further.
        if "no match" in reasons.values() or (stage > 0 and new == 0):
            break
    a.unresolved = {e: reasons.get(e, "no match") for e in entries if e not in a.matches}
    if a.unresolved:
        parts = []
        for why, says in REASONS.items():
            which = [str(e) for e, w in a.unresolved.items() if w == why]
            if which:
                more = ", …" if len(which) > 2 else ""
                parts.append(f"{len(which)} {says} ({', '.join(which[:2])}{more})")
        a.note = (f"{len(a.unresolved)} of {len(entries)} parameter entries act as no single "
                  f"PyTorch parameter of {variant.id}: {'; '.join(parts)}")
        return a
    a.distance = check(a, probe, kind, sizes, rng)
    if a.distance > a.limit:
        a.note = (f"every entry has a place, but on random weights the cell is at relative "
                  f"distance {a.distance:.2g} from {variant.id} (the same formula is within "
                  f"{a.limit:.2g})")
    return a


def check(a: Attempt, probe: Probe, kind: str, sizes: Sizes, rng: np.random.Generator) -> float:
    """The largest relative distance, over :data:`DRAWS` random PyTorch weights and inputs,
    between the cell on the entry-wise converted parameters and the variant; PyTorch entries the
    cell has no place for are zero."""
    formulas = a.formulas(probe)
    zero = {k: np.zeros(v.shape, dtype=bool) for k, v in zeros(kind, sizes).items()}
    for s in a.unfilled:
        for t in s.terms:
            zero[t.tensor][(t.row,) if t.col is None else (t.row, t.col)] = True
    return random_distance(probe.cell, a.variant, kind, sizes, lambda theta: convert(formulas, theta),
                           rng, zero=zero, draws=DRAWS)


def random_distance(cell: Cell, variant: Variant, kind: str, sizes: Sizes,
                    to_cell: Callable[[Theta], Mapping[str, Any]], rng: np.random.Generator, *,
                    zero: Mapping[str, np.ndarray] | None = None, draws: int = 1) -> float:
    """The largest relative distance, over ``draws`` random PyTorch weights θ (uniform in
    ±1/√H, the entries where ``zero`` [tensor] is True set to 0) and inputs at ``sizes``, between
    ``cell`` on ``to_cell(θ)`` and ``variant`` on θ."""
    worst = 0.0
    for _ in range(draws):
        theta = {k: rng.uniform(-1, 1, size=v.shape) / np.sqrt(sizes.hidden)
                 for k, v in zeros(kind, sizes).items()}
        for tensor, mask in (zero or {}).items():
            theta[tensor][mask] = 0.0
        inputs = Inputs.draw(kind, sizes, rng)
        got = flat(call(cell, inputs, to_cell(theta)), kind, inputs.x.shape[0], sizes.hidden,
                   "CELL")
        worst = max(worst, distance(got, variant(kind, inputs, theta)))
    return worst
