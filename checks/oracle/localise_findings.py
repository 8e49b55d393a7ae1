"""A diagnosis line as data: what kind of fault, where, on what evidence, how sure.

A :class:`Finding` *is* its line (a ``str``), so every place that carries diagnosis lines (a
failure's ``diagnosis``, a spec id's ``diagnoses``) carries findings unchanged; its fields are
what the CLI table, ``nnspec check --json`` and the report read. A line that is not a finding
(one built by hand) reads as kind ``note`` (:func:`fields`).
"""

from __future__ import annotations

from typing import Any

#: The kinds of finding. ``variant or bug``: a catalogued id matched; ``lower precision`` and
#: ``approximation``: the spec's formula at another precision or with an approximate activation;
#: ``argument``, ``gate``, ``output order``, ``time``: a fault localised by the experiments of
#: checks/oracle/localisation.py; ``law``: a random operation whose pooled values match no
#: candidate's law; ``unlocalised``: a failure no experiment explains; ``note``: context only.
KINDS = ("variant or bug", "lower precision", "approximation", "argument", "gate", "output order",
         "time", "law", "unlocalised", "note")

#: How sure a finding is. ``high``: the hypothesis reproduces the implementation at rounding level
#: on the failing call and on every designed input; ``medium``: it is SEPARATION times closer
#: than the spec everywhere, not at rounding level; ``low``: an observation (where outputs first
#: differ) with no formula behind it; ``none``: no claim.
CONFIDENCE = ("high", "medium", "low", "none")


class Finding(str):
    """One diagnosis line with its fields: ``kind`` (:data:`KINDS`), ``location`` (the argument,
    gate, term, step or output it points at; None where it points at none), ``evidence`` (the
    measurements it rests on) and ``confidence`` (:data:`CONFIDENCE`)."""

    kind: str
    location: str | None
    evidence: str
    confidence: str

    def __new__(cls, text: str, *, kind: str, location: str | None = None, evidence: str = "",
                confidence: str = "high") -> Finding:
        if kind not in KINDS:
            raise ValueError(f"finding kind {kind!r} is not one of {KINDS}")
        if confidence not in CONFIDENCE:
            raise ValueError(f"finding confidence {confidence!r} is not one of {CONFIDENCE}")
        self = super().__new__(cls, text)
        self.kind, self.location, self.evidence, self.confidence = (kind, location, evidence,
                                                                    confidence)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (str(self), self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The fields and the line, JSON-safe."""
        return {"kind": str(self.kind), "location": None if self.location is None
                else str(self.location), "evidence": str(self.evidence),
                "confidence": str(self.confidence), "line": str(self)}

    @property
    def claims(self) -> bool:
        """Whether the finding places the fault (a localised kind, with some confidence)."""
        return self.kind in ("argument", "gate", "output order", "time") and (
            self.confidence in ("high", "medium"))

    @property
    def short(self) -> str:
        """The finding in a few words, for a table cell: kind and location."""
        if self.kind == "unlocalised":
            return "could not localise"
        return f"{self.kind}: {self.location}" if self.location else self.kind


def _rebuild(text: str, data: dict[str, Any]) -> Finding:
    return Finding(text, kind=data["kind"], location=data["location"], evidence=data["evidence"],
                   confidence=data["confidence"])


def fields(line: str) -> dict[str, Any]:
    """A line's fields: a finding's own, or kind ``note`` for a line built by hand."""
    if isinstance(line, Finding):
        return line.to_dict()
    return {"kind": "note", "location": None, "evidence": "", "confidence": "none",
            "line": str(line)}


def from_fields(data: dict[str, Any]) -> str:
    """The inverse of :func:`fields`: a finding, or the plain line of a note."""
    if data.get("kind", "note") == "note":
        return str(data.get("line", ""))
    return _rebuild(str(data["line"]), data)


def short(lines: list[str]) -> str:
    """The findings of a failure in a few words (the CLI table's note): the localised ones first,
    '' when there are none."""
    found = [line for line in lines if isinstance(line, Finding) and line.kind != "note"]
    if not found:
        return ""
    rank = {k: i for i, k in enumerate(KINDS)}
    best = sorted(found, key=lambda f: (f.kind == "unlocalised", rank[f.kind]))
    return "; ".join(dict.fromkeys(f.short for f in best[:2]))
