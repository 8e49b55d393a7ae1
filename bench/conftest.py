"""Benchmarks compare implementations through the same contract the checks use."""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.checks.harness.implementation import Implementation, load

#: One generator seed for every benchmark input, so runs are comparable.
SEED = 20261122


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow-gradcheck", action="store_true",
                     help="also time torch.autograd.gradcheck in slow mode (seconds a call)")


@pytest.fixture(scope="session")
def implementations() -> dict[str, Implementation]:
    return {name: load(name) for name in ("reference", "torch")}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)
