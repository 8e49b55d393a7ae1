"""pytest wiring: the implementation(s) under test, seeds, Hypothesis profiles, the spec marker.

The command-line options (--impl, --only, --nnspec-examples, --nnspec-seed) are defined by the
plugin nnspec/pytest_plugin.py, which pytest loads before it parses the command line.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import FailedHealthCheck, Unsatisfiable

from nnspec.checks.bounds.rules import declared_precision
from nnspec.checks.harness.failure import failures_in
from nnspec.checks.harness.implementation import (
    Implementation,
    ImplementationLoadError,
    ImplementationUnavailable,
    load,
)
from nnspec.checks.harness.isolation import DEFAULT_TIMEOUT
from nnspec.checks.harness.loading import PRECISIONS
from nnspec.speclib import selects

# "ci" is the default: deterministic (derandomized, no example database) and small enough for
# a few minutes on two cores. "thorough" is opt-in: --hypothesis-profile=thorough.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile(
    "ci", phases=_PHASES, derandomize=True, database=None, max_examples=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True,
)
# Random by definition: stated, since under CI=true Hypothesis' own defaults, which a profile
# inherits, are derandomized and keep no database.
settings.register_profile(
    "thorough", phases=_PHASES, max_examples=500, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True,
)
settings.load_profile("ci")


_PREVIOUS_PROFILE = pytest.StashKey[str]()
_PREVIOUS_SEED = pytest.StashKey[Any]()  # hypothesis.core.global_force_seed: an int or None
#: The Hypothesis settings (their repr) the checks' modules were last imported with in this
#: process; see pytest_configure.
_IMPORTED_WITH: dict[str, str] = {}


@pytest.hookimpl(trylast=True)  # after Hypothesis' own plugin has loaded --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    """Apply --nnspec-examples and the seeds to the Hypothesis profile of this run.

    The "ci" profile is derandomized: each check draws from a seed of its own source, whatever the
    command line says, and Hypothesis ignores --hypothesis-seed then. So a run with
    ``--hypothesis-seed k`` drops derandomize and draws from k, and ``--nnspec-seed k`` with
    k ≠ 0 seeds Hypothesis with k too (unless --hypothesis-seed says otherwise): a seed changes
    the search, and the same seed repeats it (every check starts from Random(k), whatever else
    runs). ``--nnspec-seed 0``, the default, keeps the profile as it is. ``--nnspec-database DIR``
    keeps the example database in DIR, which every process of the run (pytest-xdist's workers)
    and anyone else pointing there share (README.md, "Parallel runs and a shared example
    database").
    """
    import sys

    from hypothesis import core

    changes: dict[str, Any] = {}
    examples = config.getoption("--nnspec-examples")
    if examples is not None:
        if examples < 1:
            raise pytest.UsageError(f"--nnspec-examples must be at least 1, got {examples}")
        changes["max_examples"] = examples
    hypothesis_seed = config.getoption("hypothesis_seed", None)
    nnspec_seed = config.getoption("--nnspec-seed")
    if nnspec_seed < 0:  # numpy.random.default_rng takes non-negative seeds only
        raise pytest.UsageError(f"--nnspec-seed must be at least 0, got {nnspec_seed}")
    if hypothesis_seed is not None or nnspec_seed != 0:
        changes["derandomize"] = False
    if hypothesis_seed is None and nnspec_seed != 0:  # else Hypothesis' plugin has set it
        config.stash[_PREVIOUS_SEED] = core.global_force_seed
        core.global_force_seed = nnspec_seed
    database = config.getoption("--nnspec-database")
    if database is not None:
        # Hypothesis keeps no database for a derandomized search, nor for a seeded one
        # (core.global_force_seed): their examples are fixed anyway.
        if changes.get("derandomize", settings().derandomize) or core.global_force_seed is not None:
            raise pytest.UsageError(
                "--nnspec-database needs a random search, which only it can replay: "
                "--hypothesis-profile=thorough, without --nnspec-seed or --hypothesis-seed")
        changes["database"] = DirectoryBasedExampleDatabase(database)
    if changes:
        config.stash[_PREVIOUS_PROFILE] = settings.get_current_profile_name()
        settings.register_profile("nnspec-run", settings.default, **changes)
        settings.load_profile("nnspec-run")
    # @given takes the profile's settings when a check's module is imported, and pytest imports
    # a module once per process: a run inside another (nnspec.oracle.check, nnspec check in the
    # tests) would keep the settings of the first. Where they differ, forget the modules, so
    # they load again with these.
    if _IMPORTED_WITH.get("settings", repr(settings.default)) != repr(settings.default):
        here = Path(__file__).resolve().parent
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if file and Path(file).name.startswith("test_") and Path(file).resolve().parent == here:
                del sys.modules[name]
    _IMPORTED_WITH["settings"] = repr(settings.default)


def pytest_unconfigure(config: pytest.Config) -> None:
    # The profile and the seed are global: a run started inside another one (nnspec.oracle.check
    # called from a check) must not leave the outer run with its examples or its seed.
    from hypothesis import core

    if _PREVIOUS_PROFILE in config.stash:
        settings.load_profile(config.stash[_PREVIOUS_PROFILE])
    if _PREVIOUS_SEED in config.stash:
        core.global_force_seed = config.stash[_PREVIOUS_SEED]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        names = [n.strip() for n in metafunc.config.getoption("--impl").split(",") if n.strip()]
        metafunc.parametrize("impl", names, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("--only")
    if not wanted:
        return

    def selected(item: pytest.Item) -> bool:
        ids = [sid for m in item.iter_markers("spec") for sid in m.args]
        return any(selects(w, sid) for sid in ids for w in wanted)

    keep = [item for item in items if selected(item)]
    config.hook.pytest_deselected(items=[item for item in items if not selected(item)])
    items[:] = keep


_loaded: dict[str, Implementation | str] = {}


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Implementation:
    """The implementation under test (skips its checks when it cannot run here), in a worker
    process of its own unless --nnspec-isolation=none (checks/harness/isolation.py)."""
    name = request.param
    if name not in _loaded:
        timeout = request.config.getoption("--nnspec-timeout")
        try:
            _loaded[name] = load(name, isolation=request.config.getoption("--nnspec-isolation"),
                                 timeout=DEFAULT_TIMEOUT if timeout is None else timeout)
        except ImplementationUnavailable as exc:
            _loaded[name] = str(exc)
        except ImplementationLoadError as exc:
            raise pytest.UsageError(str(exc)) from None
    got = _loaded[name]
    if isinstance(got, str):
        pytest.skip(f"{name} unavailable: {got}")
    return got


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Start each check with an empty record of the contract functions it called (and, for an
    implementation declaring a PRECISION, with float32's bounds at that precision), and skip as
    *not provided* a Hypothesis check whose examples the implementation refused (raised
    NotImplementedError for) until Hypothesis gave up: Unsatisfiable, or its filter_too_much
    health check (checks/harness/implementation.py), never an error."""
    impl = getattr(item, "funcargs", {}).get("impl")
    declared: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if isinstance(impl, Implementation):
        impl.called.clear()
        impl.missing.clear()
        impl.provision.clear()
        # Its bounds at the precision it declares (rules.declared_precision), else at its
        # dtype's own, also inside a run nested in another's declaration.
        declared = declared_precision(PRECISIONS[impl.precision] if impl.precision else None)
    try:
        with declared:
            return (yield)
    except (Unsatisfiable, FailedHealthCheck) as exc:
        reason = impl.every_example_refused(exc) if isinstance(impl, Implementation) else None
        if reason is None:
            raise
        pytest.skip(reason)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from --nnspec-seed and the check's id, so each check is reproducible."""
    seed = request.config.getoption("--nnspec-seed")
    # The id as seen from the package's parent (checks/test_x.py::name) whatever the directory
    # pytest runs in, so `pytest --pyargs nnspec.checks` elsewhere draws the same stream.
    path = Path(request.node.path).resolve().relative_to(Path(__file__).resolve().parents[1])
    key = zlib.crc32(f"{path.as_posix()}::{request.node.nodeid.split('::', 1)[1].split('[')[0]}".encode())
    return np.random.default_rng([seed, key])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record the failures a check raised on its report, as data: one ``("nnspec_failure",
    Failure.to_dict())`` entry of ``user_properties`` each (pytest-xdist carries those back from
    its workers), and the contract functions the check called, and those it found missing, as
    ``("nnspec_called", names)`` and ``("nnspec_missing", names)``, and those that refused some
    of its examples as ``("nnspec_partly", [[function, note], ...])``; for a check parametrized
    by ``spec_id`` (a test vector), that id as ``("nnspec_case_id", id)``, the only one of its
    marks it counts for. nnspec.conformance reads them instead of the traceback's text."""
    report = yield
    callspec = getattr(item, "callspec", None)
    if callspec is not None and isinstance(case := callspec.params.get("spec_id"), str):
        # A check parametrized by spec id checks that id alone, whatever its other marks.
        report.user_properties = [*report.user_properties, ("nnspec_case_id", case)]
    impl = getattr(item, "funcargs", {}).get("impl")
    if call.when == "call" and isinstance(impl, Implementation):
        # Which contract functions the check called: the verdict goes to their spec ids only.
        # And which refused some of its examples: a pass then says "partly provided".
        report.user_properties = [*report.user_properties, ("nnspec_called", sorted(impl.called)),
                                  ("nnspec_missing", sorted(impl.missing)),
                                  ("nnspec_partly", [list(p) for p in impl.partly()])]
    failures = failures_in(call.excinfo.value) if call.excinfo else []
    if failures:
        # A new list: pytest hands item.user_properties itself to the reports of every phase.
        report.user_properties = [*report.user_properties,
                                  *(("nnspec_failure", f.to_dict()) for f in failures)]
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the implementations' worker processes. (The statistical budget of the run is held
    by nnspec/pytest_plugin.py, which the process that receives every report loads: under
    pytest-xdist its controller, which may never load this file.)"""
    for got in _loaded.values():
        if isinstance(got, Implementation):
            got.close()
    # The next run in this process (nnspec.oracle.check called again) loads afresh: its options,
    # and the functions stopped in this run, are its own.
    _loaded.clear()
