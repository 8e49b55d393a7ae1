"""nnspec's pytest plugin, registered through the ``pytest11`` entry point so pytest always loads it.

It holds the checks' command-line options (``--impl``, ``--only``, ``--nnspec-examples``,
``--nnspec-seed``, ``--nnspec-impl-only``, ``--nnspec-isolation``, ``--nnspec-timeout``). pytest
parses the command line before it collects anything, and at that point it only knows the options
of plugins and of the ``conftest.py`` files under the *paths* given on the command line.
``pytest --pyargs nnspec.checks --impl my_module`` names a package, not a path
(pytest-dev/pytest#1596), and ``pytest --impl torch`` inside the repository takes ``torch`` for a
path: options defined in ``checks/conftest.py`` would be unknown
in both. Everything else (fixtures, parametrisation, selection) stays in ``checks/conftest.py``.

When the checks run from outside the repository (``pytest --pyargs nnspec.checks`` in any
directory), pytest does not read the repository's ``pyproject.toml``; the plugin then applies the
same settings (:data:`INI`, :data:`ADDOPTS`) so such a run behaves like ``./dev test``.
``checks/meta/test_cli.py`` asserts that they equal ``[tool.pytest.ini_options]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``[tool.pytest.ini_options]`` entries of pyproject.toml that change what the checks do.
INI: dict[str, list[str]] = {
    "markers": [
        "spec(id): the spec id (spec/*.md) this check exercises",
        "slow: long-running check, excluded from the default run (select with -m slow)",
    ],
    "filterwarnings": ["error::RuntimeWarning:nnspec.*"],
}

#: The ``addopts`` of pyproject.toml that matter outside the repository.
ADDOPTS = ["--import-mode=importlib", "-m", "not slow"]


def pytest_addoption(parser: pytest.Parser) -> None:
    from nnspec.checks.harness.implementation import DEFAULT, ISOLATION, SHIPPED

    group = parser.getgroup("nnspec")
    group.addoption(
        "--impl", default=",".join(DEFAULT),
        help=f"comma-separated implementations under test: short names ({', '.join(SHIPPED)}) "
             f"or module paths (default: {','.join(DEFAULT)})",
    )
    group.addoption(
        "--only", action="append", default=[], metavar="SPEC_ID",
        help="run only the checks of these spec ids (repeatable; a family prefix such as "
             "'gru.' selects all its ids)",
    )
    group.addoption(
        "--nnspec-examples", type=int, default=None, metavar="N",
        help="Hypothesis examples per check (overrides the profile's max_examples)",
    )
    group.addoption(
        "--nnspec-seed", type=int, default=0,
        help="seed of the NumPy generators the checks draw from (default 0); a run is "
             "reproduced by giving the same seed",
    )
    group.addoption(
        "--nnspec-isolation", choices=ISOLATION, default=ISOLATION[0],
        help="where the implementation under test runs: 'process' (default), a worker process "
             "of its own, so a hang, crash or exit becomes a failure naming the function; "
             "'none', in the checks' own process (faster, but nothing is contained)",
    )
    group.addoption(
        "--nnspec-timeout", type=float, default=None, metavar="SECONDS",
        help="with process isolation, the time one call of the implementation may take before "
             "it is stopped and fails (default: DEFAULT_TIMEOUT of checks/harness/isolation.py)",
    )
    group.addoption(
        "--nnspec-impl-only", action="store_true",
        help="run only the checks that call the implementation under test; skip the checks of "
             "the reference and of the spec themselves",
    )


def _checks_dir() -> Path:
    import nnspec.checks

    return Path(next(iter(nnspec.checks.__path__))).resolve()


def _targets_checks(early_config: pytest.Config) -> bool:
    """Whether the command line names the nnspec checks, as a package or as a path."""
    ns = early_config.known_args_namespace
    for arg in ns.file_or_dir:
        target = str(arg).split("::", 1)[0]
        if ns.pyargs and (target == "nnspec.checks" or target.startswith("nnspec.checks.")):
            return True
        path = (early_config.invocation_params.dir / target).resolve()
        if path == _checks_dir() or _checks_dir() in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Outside the repository, apply the repository's pytest settings to a run of the checks."""
    in_effect = any(line.startswith("spec(") for line in early_config.getini("markers"))
    if in_effect or not _targets_checks(early_config):
        return
    for name, lines in INI.items():
        for line in lines:
            early_config.addinivalue_line(name, line)
    args[:] = [*ADDOPTS, *args]  # ahead of the user's own, which therefore take precedence
    early_config.known_args_namespace.importmode = "importlib"
    # pytest loads a conftest.py early only below the paths on the command line; a package
    # named by --pyargs is not one, so name its folder too.
    early_config.known_args_namespace.file_or_dir.append(str(_checks_dir()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--nnspec-impl-only"):
        return
    keep = [item for item in items if "impl" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
