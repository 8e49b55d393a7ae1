"""pytest wiring: the implementation(s) under test, seeds, Hypothesis profiles, the spec marker.

The command-line options (--impl, --only, --nnspec-examples, --nnspec-seed) are defined by the
plugin nnspec/pytest_plugin.py, which pytest loads before it parses the command line.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

from nnspec.checks.harness import stats
from nnspec.checks.harness.failure import failures_in
from nnspec.checks.harness.implementation import (
    Implementation,
    ImplementationUnavailable,
    load,
)

# "ci" is the default: deterministic (derandomized, no example database) and small enough for
# a few minutes on two cores. "thorough" is opt-in: --hypothesis-profile=thorough.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile(
    "ci", phases=_PHASES, derandomize=True, database=None, max_examples=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True,
)
settings.register_profile(
    "thorough", phases=_PHASES, max_examples=500, deadline=None,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True,
)
settings.load_profile("ci")


_PREVIOUS_PROFILE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    examples = config.getoption("--nnspec-examples")
    if examples is not None:
        if examples < 1:
            raise pytest.UsageError(f"--nnspec-examples must be at least 1, got {examples}")
        config.stash[_PREVIOUS_PROFILE] = settings.get_current_profile_name()
        settings.register_profile("nnspec-examples", settings.default, max_examples=examples)
        settings.load_profile("nnspec-examples")


def pytest_unconfigure(config: pytest.Config) -> None:
    # The profile is global: a run started inside another one (nnspec.oracle.check called from
    # a check) must not leave the outer run with its number of examples.
    if _PREVIOUS_PROFILE in config.stash:
        settings.load_profile(config.stash[_PREVIOUS_PROFILE])


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
        return any(sid == w or (w.endswith(".") and sid.startswith(w)) for sid in ids for w in wanted)

    keep = [item for item in items if selected(item)]
    config.hook.pytest_deselected(items=[item for item in items if not selected(item)])
    items[:] = keep


_loaded: dict[str, Implementation | str] = {}


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Implementation:
    """The implementation under test (skips its checks when it cannot run here)."""
    name = request.param
    if name not in _loaded:
        try:
            _loaded[name] = load(name)
        except ImplementationUnavailable as exc:
            _loaded[name] = str(exc)
    got = _loaded[name]
    if isinstance(got, str):
        pytest.skip(f"{name} unavailable: {got}")
    return got


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
    its workers). nnspec.conformance reads them instead of the traceback's text."""
    report = yield
    failures = failures_in(call.excinfo.value) if call.excinfo else []
    if failures:
        # A new list: pytest hands item.user_properties itself to the reports of every phase.
        report.user_properties = [*report.user_properties,
                                  *(("nnspec_failure", f.to_dict()) for f in failures)]
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the statistical budget behind the stated family-wise rate was exceeded."""
    over = {k: n for k, n in stats.RUN_COUNTS.items() if n > stats.MAX_STATISTICAL_TESTS}
    if over:
        session.config.get_terminal_writer().line(
            f"nnspec: statistical tests per implementation {over} exceed "
            f"MAX_STATISTICAL_TESTS = {stats.MAX_STATISTICAL_TESTS}; the documented family-wise "
            f"false-alarm rate {stats.FAMILY_WISE_ALPHA:g} no longer holds", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
