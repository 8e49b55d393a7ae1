"""Statistical conformance for random operations (dropout masks, initialisers).

A random operation is not compared value by value: its output is a sample, and a check is a
hypothesis test of "the implementation samples the distribution the spec states". Every such test
rejects a correct implementation with probability at most :data:`ALPHA` (its false-alarm rate).
The suite runs at most :data:`MAX_STATISTICAL_TESTS` of them per implementation, so the
family-wise false-alarm rate per implementation is at most their product (Bonferroni), 1e-4 with
the values below; the run fails if the budget is exceeded (nnspec/pytest_plugin.py). The budget
holds for a whole run, however many processes share it: each check's report carries the
statistical tests it ran (:func:`new_counts`), and the process that receives every report (the
checks' own, or pytest-xdist's controller) checks their sum (:func:`over_budget`). Seeds are
fixed in CI, so a run is also reproducible; ALPHA bounds what happens for any other seed
(``--nnspec-seed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
from scipy import stats

from nnspec.checks.harness.failure import fail
from nnspec.checks.harness.implementation import Implementation

#: False-alarm probability of one statistical test.
ALPHA = 1e-6

#: Upper bound on the number of statistical tests in one run per implementation; the session
#: fails when the sum the checks' reports carry exceeds it, so the stated family-wise rate stays
#: true.
MAX_STATISTICAL_TESTS = 100

FAMILY_WISE_ALPHA = ALPHA * MAX_STATISTICAL_TESTS

#: Statistical tests run so far in this process, per implementation.
RUN_COUNTS: Counter[str] = Counter()

#: The part of RUN_COUNTS that :func:`new_counts` has handed out.
_HANDED_OUT: Counter[str] = Counter()


def new_counts() -> dict[str, int]:
    """The statistical tests run in this process since the last call, per implementation (the
    pytest plugin, nnspec/pytest_plugin.py, puts them on the report of the check that ran them)."""
    new = RUN_COUNTS - _HANDED_OUT
    _HANDED_OUT.update(new)
    return dict(new)


def over_budget(counts: Mapping[str, int]) -> dict[str, int]:
    """The implementations whose statistical tests in one run, ``counts``, exceed
    MAX_STATISTICAL_TESTS: for them the stated family-wise false-alarm rate does not hold."""
    return {name: n for name, n in counts.items() if n > MAX_STATISTICAL_TESTS}


def require(pvalue: float, *, spec_id: str, impl: Implementation | str, claim: str,
            detail: str) -> None:
    """Fail when a test of ``claim`` rejects at level ALPHA, explaining the evidence."""
    __tracebackhide__ = True
    RUN_COUNTS[impl.name if isinstance(impl, Implementation) else impl] += 1
    if not np.isfinite(pvalue) or pvalue < ALPHA:
        fail(spec_id, impl, f"{claim} is rejected: p = {pvalue:.3g} < α = {ALPHA:g} "
                            f"(false-alarm rate of this test). {detail}")


def binomial(k: int, n: int, p: float, *, spec_id: str, impl: Implementation | str,
             claim: str) -> None:
    """Two-sided exact binomial test that ``k`` successes in ``n`` trials have probability ``p``."""
    __tracebackhide__ = True
    pvalue = stats.binomtest(int(k), int(n), float(p)).pvalue
    require(pvalue, spec_id=spec_id, impl=impl, claim=claim,
            detail=f"Observed {k}/{n} = {k / n:.6f}, expected {p:.6f}.")


def mean_equals(samples: np.ndarray, mean: float, variance: float, *, spec_id: str,
                impl: Implementation | str, claim: str) -> None:
    """Two-sided z-test of a sample mean against a known mean and per-sample variance."""
    __tracebackhide__ = True
    x = np.asarray(samples, dtype=np.float64).ravel()
    se = np.sqrt(variance / x.size)
    z = (x.mean() - mean) / se if se > 0 else (0.0 if x.mean() == mean else np.inf)
    pvalue = 2 * stats.norm.sf(abs(z))
    require(pvalue, spec_id=spec_id, impl=impl, claim=claim,
            detail=f"Sample mean {x.mean():.6g} over {x.size} samples, expected {mean:.6g} "
                   f"(standard error {se:.3g}, z = {z:.3g}).")


def distributed_as(samples: np.ndarray, cdf: object, *, spec_id: str,
                   impl: Implementation | str, claim: str) -> None:
    """Kolmogorov–Smirnov goodness-of-fit test of samples against a continuous CDF."""
    __tracebackhide__ = True
    x = np.asarray(samples, dtype=np.float64).ravel()
    res = stats.kstest(x, cdf)
    require(res.pvalue, spec_id=spec_id, impl=impl, claim=claim,
            detail=f"KS statistic {res.statistic:.4g} over {x.size} samples.")
