"""nnspec's pytest plugin, registered through the ``pytest11`` entry point so pytest always loads it.

It holds the checks' command-line options (``--impl``, ``--only``, ``--nnspec-examples``,
``--nnspec-seed``, ``--nnspec-impl-only``, ``--nnspec-isolation``, ``--nnspec-timeout``,
``--nnspec-database``, ``--nnspec-size``). pytest parses the command line before it collects
anything, and at that point it only knows the options of plugins and of the ``conftest.py`` files
under the *paths* given on the command line.
``pytest --pyargs nnspec.checks --impl my_module`` names a package, not a path
(pytest-dev/pytest#1596), and ``pytest --impl torch`` inside the repository takes ``torch`` for a
path: options defined in ``checks/conftest.py`` would be unknown
in both. Everything else (fixtures, parametrisation, selection) stays in ``checks/conftest.py``.

It also records, on every report of a check, the spec ids the check is marked with and the
implementation it runs on (``user_properties`` ``("nnspec_spec_ids", ids)`` and
``("nnspec_impl", name)``): the process that reads the reports (nnspec/conformance.py) may not be
the one that collected the checks — under pytest-xdist the controller has no items, only the
reports its workers send back, ``user_properties`` included. For the same reason it holds the run
to the statistical false-alarm budget of checks/harness/stats.py: each report carries the
statistical tests run since the previous one (``("nnspec_statistical", {implementation:
count})``), and the process that receives every report, the checks' own or pytest-xdist's
controller, fails the run when their sum exceeds the budget, however the run was split.

When the checks run from outside the repository (``pytest --pyargs nnspec.checks`` in any
directory), pytest does not read the repository's ``pyproject.toml``; the plugin then applies the
same settings (:data:`INI`, :data:`ADDOPTS`) so such a run behaves like ``./dev test``.
``checks/meta/test_cli.py`` asserts that they equal ``[tool.pytest.ini_options]``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import cast

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
        "--nnspec-size", default=None, metavar="SIZE",
        help="sequence size of the long-sequence layer checks: a profile (default: T=128,B=2,"
             "H=8; medium; production: T=1000,B=8,H=512) or T=…,B=…,H=…[,D=…] "
             "(checks/harness/sizes.py; the environment variable NNSPEC_SIZE where not given)",
    )
    group.addoption(
        "--nnspec-database", default=None, metavar="DIR",
        help="keep Hypothesis' example database in DIR (a DirectoryBasedExampleDatabase) "
             "instead of .hypothesis/: the failing examples any run there finds are replayed "
             "first by the next, on every machine that shares the directory. Only a random "
             "search keeps one (--hypothesis-profile=thorough, without a seed)",
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
    """Load the checks' conftest.py early for a run of the checks; outside the repository, apply
    the repository's pytest settings too."""
    if not _targets_checks(early_config):
        return
    # pytest loads a conftest.py early only below the paths on the command line; a package
    # named by --pyargs is not one, so name its folder too. Early: before Hypothesis' plugin
    # loads --hypothesis-profile, which the conftest registers; and in pytest-xdist's
    # controller, which collects nothing.
    early_config.known_args_namespace.file_or_dir.append(str(_checks_dir()))
    in_effect = any(line.startswith("spec(") for line in early_config.getini("markers"))
    if in_effect:
        return
    for name, lines in INI.items():
        for line in lines:
            early_config.addinivalue_line(name, line)
    args[:] = [*ADDOPTS, *args]  # ahead of the user's own, which therefore take precedence
    early_config.known_args_namespace.importmode = "importlib"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--nnspec-impl-only"):
        return
    keep = [item for item in items if "impl" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Put the check's spec ids and implementation, and the statistical tests run since the last
    report, on each of its reports (see the module's text)."""
    report = yield
    # Not imported: no statistical test ran (and a run of other tests need not import SciPy).
    stats = sys.modules.get("nnspec.checks.harness.stats")
    counted = stats.new_counts() if stats else {}
    if counted:
        report.user_properties = [*report.user_properties, ("nnspec_statistical", counted)]
    ids = [sid for mark in item.iter_markers("spec") for sid in mark.args]
    if ids:
        callspec = getattr(item, "callspec", None)
        impl = callspec.params.get("impl") if callspec else None
        # A new list: pytest hands item.user_properties itself to the reports of every phase.
        report.user_properties = [*report.user_properties, ("nnspec_spec_ids", ids),
                                  ("nnspec_impl", impl)]
    return report


class _StatisticalBudget:
    """The statistical tests of the whole run, per implementation: the sum of what the reports
    carry, whichever process ran them (see the module's text)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == "nnspec_statistical":
                self.counts.update(cast(dict[str, int], value))


_BUDGET = pytest.StashKey[_StatisticalBudget]()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # a pytest-xdist worker's reports go to its controller
        config.stash[_BUDGET] = _StatisticalBudget()
        config.pluginmanager.register(config.stash[_BUDGET])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when its statistical tests exceed the budget behind the stated family-wise
    false-alarm rate."""
    budget = session.config.stash.get(_BUDGET, None)
    if budget is None or not budget.counts:
        return
    from nnspec.checks.harness import stats

    over = stats.over_budget(budget.counts)
    if over:
        line = (f"nnspec: statistical tests per implementation in this run {over} exceed "
                f"MAX_STATISTICAL_TESTS = {stats.MAX_STATISTICAL_TESTS}; the documented "
                f"family-wise false-alarm rate {stats.FAMILY_WISE_ALPHA:g} no longer holds")
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:  # on a line of its own, after the progress dots
            terminal.write_line(line, red=True)
        else:
            session.config.get_terminal_writer().line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
