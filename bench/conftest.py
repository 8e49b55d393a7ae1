"""Benchmarks compare implementations through the same contract the checks use."""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.checks.implementation import Implementation, load

#: One generator seed for every benchmark input, so runs are comparable.
SEED = 20261122


@pytest.fixture(scope="session")
def implementations() -> dict[str, Implementation]:
    return {name: load(name) for name in ("reference", "torch")}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)
