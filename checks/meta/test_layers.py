"""The layers of the package, read from the source (like ``nnspec spec --check``, nothing is
imported): who may import whom.

- ``reference/`` is math only: the standard library, NumPy, SciPy and ``nnspec.reference``;
- the checks' machinery (``checks/harness``, ``checks/bounds``, ``checks/oracle``) may import the
  reference, the machinery and the shipped implementations, never the command line, the report or
  a test module;
- the shipped implementations (``nnspec/implementations``) import the reference, the harness
  (the contract and its exceptions) and the adapters (``nnspec.adapters``, which wrap framework
  modules as users do) only;
- no module other than a test module (``test_*.py``, ``conftest.py``) imports a test module.

A module-level ``import`` inside a function counts the same as one at the top.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import nnspec

PACKAGE = Path(next(iter(nnspec.__path__))).resolve()
REPOSITORY = PACKAGE.parent

#: Where each sub-package of nnspec lives in the repository (pyproject's package-dir).
FOLDERS = {"nnspec.reference": "reference", "nnspec.checks": "checks", "nnspec.spec": "spec",
           "nnspec.bench": "bench", "nnspec": "nnspec"}

THIRD_PARTY_MATH = {"numpy", "scipy"}
MACHINERY = ("nnspec.checks.harness", "nnspec.checks.bounds", "nnspec.checks.oracle")


def module_name(path: Path) -> str:
    """The dotted name a source file is imported as."""
    rel = path.resolve().relative_to(REPOSITORY)
    for package, folder in FOLDERS.items():
        if rel.parts[0] == folder:
            parts = [*package.split("."), *rel.with_suffix("").parts[1:]]
            return ".".join(p for p in parts if p != "__init__")
    raise ValueError(f"{path} is not in a package folder")


def imports(path: Path, name: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file of module ``name``, relative
    ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = name.split(".")
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from package import module` imports the module: count both names.
            found += [(node.lineno, module)]
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def sources(folder: str) -> list[tuple[Path, str]]:
    """The source files of a folder with their module names."""
    return [(p, module_name(p)) for p in sorted((REPOSITORY / folder).rglob("*.py"))]


def shown(path: Path) -> str:
    """A file as the repository names it (a file elsewhere by its name)."""
    return str(path.relative_to(REPOSITORY)) if path.is_relative_to(REPOSITORY) else path.name


def violations(files: list[tuple[Path, str]], allowed: Callable[[str, str], bool]) -> list[str]:
    """``file:line imports name`` for every import that ``allowed(importer, name)`` refuses."""
    return [f"{shown(path)}:{line} imports {name}" for path, importer in files
            for line, name in imports(path, importer) if not allowed(importer, name)]


def reference_may_import(_: str, name: str) -> bool:
    top = name.split(".")[0]
    return (top in sys.stdlib_module_names or top in THIRD_PARTY_MATH or top == "__future__"
            or name.startswith("nnspec.reference"))


def machinery_may_import(_: str, name: str) -> bool:
    if not name.startswith("nnspec"):
        return True
    return (name.startswith(("nnspec.reference", *MACHINERY, "nnspec.implementations"))
            and not is_test_module(name))


def implementations_may_import(_: str, name: str) -> bool:
    return not name.startswith("nnspec") or name.startswith(
        ("nnspec.reference", "nnspec.checks.harness", "nnspec.implementations", "nnspec.adapters"))


def no_test_module(importer: str, name: str) -> bool:
    return is_test_module(importer) or not (name.startswith("nnspec") and is_test_module(name))


def test_reference_imports_only_numpy_scipy_and_itself():
    assert violations(sources("reference"), reference_may_import) == []


def test_checks_machinery_imports_reference_and_machinery_only():
    files = [f for d in ("harness", "bounds", "oracle") for f in sources(f"checks/{d}")]
    assert violations(files, machinery_may_import) == []


def test_shipped_implementations_import_reference_harness_and_adapters_only():
    assert violations(sources("nnspec/implementations"), implementations_may_import) == []


def test_no_module_but_a_test_imports_a_test_module():
    files = [f for d in ("nnspec", "reference", "checks", "bench") for f in sources(d)]
    assert violations(files, no_test_module) == []


@pytest.mark.parametrize(("module", "source", "rule"), [
    ("nnspec.reference.probe", "from nnspec.checks.bounds import rules as tol\n", reference_may_import),
    ("nnspec.reference.probe", "import torch\n", reference_may_import),
    ("nnspec.reference.probe", "from ..checks import bounds\n", reference_may_import),
    ("nnspec.checks.bounds.probe", "from nnspec import report\n", machinery_may_import),
    ("nnspec.checks.oracle.probe", "from nnspec.checks import test_gru\n", machinery_may_import),
    ("nnspec.probe", "from nnspec.checks.test_lstm import WRONG_CELLS\n", no_test_module),
    ("nnspec.implementations.probe", "from nnspec.cli import main\n", implementations_may_import),
    ("nnspec.implementations.probe", "from nnspec.oracle import check\n", implementations_may_import),
    ("nnspec.implementations.probe", "from nnspec.checks.oracle import alternatives\n",
     implementations_may_import),
])
def test_a_crossed_layer_is_reported_with_its_line(module, source, rule, tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(f'"""A module of {module}."""\n{source}', encoding="utf-8")
    found = violations([(path, module)], rule)
    assert found and all(f.startswith("probe.py:2 imports ") for f in found), found


def test_the_scan_sees_imports_inside_functions_and_relative_ones(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from . import sibling\n", encoding="utf-8")
    assert (2, "nnspec.checks.bounds.sibling") in imports(path, "nnspec.checks.bounds.probe")
