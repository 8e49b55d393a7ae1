"""The spec loader and the traceability index (spec id → reference functions → checks).

A spec file (``spec/<family>.md``) holds one entry per formula: a heading naming the id in
backticks, the equation and a symbols table for people, and a fenced ``toml`` block for machines::

    id = "dropout.inverted"
    tolerance = "tol.exact"
    sources = [{ file = "000_f5460a313507b249.txt", section = "丢弃法" }]
    variants = ["dropout.inverted_keep_prob"]          # other ids, optional
    functions = ["dropout", "vjp_dropout"]             # contract functions computing it, optional
    [bugs]                                             # optional
    "dropout.bug.no_rescale" = "kept units are not divided by 1 − p"

The links are never written by hand: reference functions are found by their docstring's first
line (which starts with the id), checks by their ``@pytest.mark.spec("id", …)`` decorators.

``functions`` names the contract functions (checks/harness/contract.py) an implementation computes
the id with. A check marked with several ids counts for an id only if it called one of that id's
functions (nnspec/conformance.py): a module that defines only ``gru_cell_textbook`` shows nothing
about ``gru.cell.pytorch``, however its checks are marked.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nnspec.checks
import nnspec.reference
import nnspec.spec
from nnspec.checks.bounds.rules import RULES
from nnspec.checks.harness import contract

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
_DOC_ID = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?=$|[\s:—-])")
_TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)
_MARK = re.compile(r"@pytest\.mark\.spec\(([^)]*)\)")
_STRING = re.compile(r"""["']([^"']+)["']""")

#: The seed documents (../shared/seeds/README.md) a source may cite.
SEED_FILES = (
    "000_f5460a313507b249.txt",
    "001_44793dc91b90289d.txt",
    "002_b78d88ec8f945273.txt",
    "003_9ec889945e9ffb94.txt",
    "004_bcc32c0e7e6b1f49.txt",
)


@dataclass(frozen=True)
class Source:
    file: str
    section: str


@dataclass
class Entry:
    """One formula of the spec."""

    id: str
    family: str
    title: str
    tolerance: str
    sources: list[Source]
    variants: list[str] = field(default_factory=list)
    bugs: dict[str, str] = field(default_factory=dict)
    references: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    #: The contract functions an implementation computes this id with (empty: none, the id is
    #: checked on the reference or the spec only).
    functions: list[str] = field(default_factory=list)


class SpecError(ValueError):
    """A spec file is malformed."""


def selects(wanted: str, spec_id: str) -> bool:
    """Whether an ``--only`` word selects ``spec_id``: the id itself, or a family prefix ending in
    '.' (``gru.`` selects ``gru.cell.pytorch``; ``gru`` alone selects nothing)."""
    return spec_id == wanted or (wanted.endswith(".") and spec_id.startswith(wanted))


def spec_dir() -> Path:
    return Path(next(iter(nnspec.spec.__path__)))


def _package_files(package: object, pattern: str) -> list[Path]:
    return sorted(f for d in package.__path__ for f in Path(d).glob(pattern))  # type: ignore[attr-defined]


def load(directory: Path | None = None) -> dict[str, Entry]:
    """Read every ``spec/*.md`` (or ``directory/*.md``) into entries keyed by id, validated."""
    entries: dict[str, Entry] = {}
    for path in sorted((directory or spec_dir()).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for block in _TOML_BLOCK.finditer(text):
            where = f"{path.name}:{text[:block.start()].count(chr(10)) + 1}"
            try:
                data = tomllib.loads(block.group(1))
            except tomllib.TOMLDecodeError as exc:
                raise SpecError(f"{where}: invalid TOML: {exc}") from exc
            entry = _entry(data, path.stem, text[:block.start()], where)
            if entry.id in entries:
                raise SpecError(f"{where}: id {entry.id!r} is defined twice")
            entries[entry.id] = entry
    return entries


def _entry(data: dict, family: str, before: str, where: str) -> Entry:
    for key in ("id", "tolerance", "sources"):
        if key not in data:
            raise SpecError(f"{where}: the toml block lacks {key!r}")
    sid = data["id"]
    if not ID_PATTERN.match(sid) or not sid.startswith(family + "."):
        raise SpecError(f"{where}: id {sid!r} must look like '{family}.name[.variant]'")
    headings = re.findall(r"^#{2,4} (.*)$", before, re.M)
    if not headings or f"`{sid}`" not in headings[-1]:
        raise SpecError(f"{where}: the heading above the block must name `{sid}`")
    if data["tolerance"] not in RULES:
        raise SpecError(f"{where}: tolerance {data['tolerance']!r} is not one of {sorted(RULES)}")
    sources = []
    for s in data["sources"]:
        if s.get("file") not in SEED_FILES or not s.get("section"):
            raise SpecError(f"{where}: source {s!r} must name a seed file and a section")
        sources.append(Source(s["file"], s["section"]))
    if not sources:
        raise SpecError(f"{where}: {sid} cites no source")
    bugs = dict(data.get("bugs", {}))
    for bug in bugs:
        if not bug.startswith(f"{family}.bug.") or not ID_PATTERN.match(bug):
            raise SpecError(f"{where}: bug name {bug!r} must look like '{family}.bug.name'")
    functions = list(data.get("functions", []))
    unknown = [f for f in functions if f not in contract.ALL]
    if unknown:
        raise SpecError(f"{where}: functions {unknown} are not contract functions "
                        f"(checks/harness/contract.py)")
    title = headings[-1].split("—", 1)[-1].strip() if "—" in headings[-1] else sid
    return Entry(id=sid, family=family, title=title, tolerance=data["tolerance"],
                 sources=sources, variants=list(data.get("variants", [])), bugs=bugs,
                 functions=functions)


def reference_index() -> dict[str, list[str]]:
    """id → reference functions whose docstring's first line starts with that id."""
    index: dict[str, list[str]] = {}
    for path in _package_files(nnspec.reference, "*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                m = _DOC_ID.match(doc.strip().splitlines()[0] if doc.strip() else "")
                if m:
                    index.setdefault(m.group(1), []).append(
                        f"nnspec.reference.{path.stem}.{node.name}")
    return index


def check_index(*, calling: bool = False) -> dict[str, list[str]]:
    """id → checks (``file::function``) carrying ``@pytest.mark.spec`` with that id; with
    ``calling``, only the checks that take the implementation under test (an ``impl`` argument)."""
    index: dict[str, list[str]] = {}
    for path in _package_files(nnspec.checks, "test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                if calling and "impl" not in {a.arg for a in node.args.args}:
                    continue
                for dec in node.decorator_list:
                    src = ast.get_source_segment(path.read_text(encoding="utf-8"), dec) or ""
                    m = _MARK.search("@" + src)
                    for sid in _STRING.findall(m.group(1)) if m else []:
                        index.setdefault(sid, []).append(f"checks/{path.name}::{node.name}")
    return index


def traceability() -> tuple[dict[str, Entry], list[str]]:
    """All entries with their links filled in, and the list of gaps (empty when complete)."""
    entries = load()
    refs, checks, calling = reference_index(), check_index(), check_index(calling=True)
    bug_ids = {b for e in entries.values() for b in e.bugs}
    gaps: list[str] = []
    for e in entries.values():
        e.references = refs.get(e.id, [])
        e.checks = checks.get(e.id, [])
        if calling.get(e.id) and not e.functions:
            # Without them, no verdict of an implementation could be given to the id.
            gaps.append(f"{e.id}: checks an implementation ({calling[e.id][0]}) but names no "
                        f"contract functions (functions = [...] in its toml block)")
        if not e.references:
            gaps.append(f"{e.id}: no reference function (docstring starting with the id)")
        if not e.checks:
            gaps.append(f"{e.id}: no check (@pytest.mark.spec({e.id!r}))")
        gaps += [f"{e.id}: variant {v!r} is not a spec id" for v in e.variants if v not in entries]
        gaps += [f"{e.id}: known bug {b!r} has no reference function (bug model)"
                 for b in e.bugs if b not in refs]
    known = set(entries) | bug_ids
    gaps += [f"reference function {f} names unknown id {sid!r}"
             for sid, fs in refs.items() if sid not in known for f in fs]
    gaps += [f"check {c} names unknown id {sid!r}"
             for sid, cs in checks.items() if sid not in known for c in cs]
    return entries, gaps
