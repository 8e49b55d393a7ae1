"""Checks of the spec itself: traceability and the loader's validation (the reference's purity
is checks/meta/test_layers.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnspec import speclib

GOOD_ENTRY = """# Demo

## `demo.formula` — a formula

```toml
id = "demo.formula"
tolerance = "tol.exact"
sources = [{ file = "000_f5460a313507b249.txt", section = "丢弃法" }]
[bugs]
"demo.bug.wrong" = "a mistake"
```
"""


def test_every_spec_id_is_traced_to_reference_and_checks():
    entries, gaps = speclib.traceability()
    assert entries, "spec/ holds no entries"
    assert not gaps, "nnspec spec --check gaps:\n" + "\n".join(gaps)


def test_loader_reads_a_well_formed_entry(tmp_path: Path):
    (tmp_path / "demo.md").write_text(GOOD_ENTRY, encoding="utf-8")
    entry = speclib.load(tmp_path)["demo.formula"]
    assert entry.title == "a formula"
    assert entry.sources == [speclib.Source("000_f5460a313507b249.txt", "丢弃法")]
    assert entry.bugs == {"demo.bug.wrong": "a mistake"}


@pytest.mark.parametrize(("old", "new", "complaint"), [
    ('id = "demo.formula"\n', 'id = "other.formula"\n', "must look like"),
    ('tolerance = "tol.exact"\n', 'tolerance = "tol.guess"\n', "is not one of"),
    ('tolerance = "tol.exact"\n', "", "lacks 'tolerance'"),
    ('file = "000_f5460a313507b249.txt"', 'file = "999.txt"', "must name a seed file"),
    ("## `demo.formula`", "## `demo.other`", "heading above the block"),
    ('"demo.bug.wrong"', '"wrong"', "bug name"),
])
def test_loader_rejects_malformed_entries_naming_the_problem(tmp_path: Path, old, new, complaint):
    (tmp_path / "demo.md").write_text(GOOD_ENTRY.replace(old, new), encoding="utf-8")
    with pytest.raises(speclib.SpecError, match=complaint):
        speclib.load(tmp_path)
