"""The sizes of the long-sequence checks (checks/harness/sizes.py) and their guard against an
infinite bound (checks/harness/compare.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import sizes
from nnspec.checks.harness.compare import check_outputs
from nnspec.checks.harness.failure import NonConformance
from nnspec.checks.harness.implementation import Implementation


@pytest.mark.parametrize(("text", "want"), [
    ("default", sizes.PROFILES["default"]),
    ("production", sizes.Size(T=1000, B=8, H=512, D=512)),
    ("T=1000,B=8,H=512", sizes.Size(T=1000, B=8, H=512, D=512)),
    ("T=300", sizes.Size(T=300, B=2, H=8, D=4)),
    (" H=16, D=3 ", sizes.Size(T=128, B=2, H=16, D=3)),
])
def test_sizes_parse_profiles_and_keys(text, want):
    assert sizes.parse(text) == want


@pytest.mark.parametrize(("text", "message"), [
    ("huge", "give a profile"),
    ("T=0", "T must be a positive integer, got 0"),
    ("T=ten", "T must be a positive integer, got 'ten'"),
    ("L=3", "unknown key 'L'"),
    ("T=3,T=4", "T given twice"),
    ("T=100000000,B=8,H=512", "exceeds"),
])
def test_a_bad_size_is_one_line_naming_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message) as info:
        sizes.parse(text)
    assert "\n" not in str(info.value)


def test_the_default_size_crosses_two_64_step_chunks():
    assert sizes.PROFILES["default"].T >= 2 * 64


def test_the_environment_sets_the_size_where_no_option_does(monkeypatch):
    monkeypatch.setenv(sizes.ENVIRONMENT, "T=70")
    assert sizes.active(None).T == 70


def test_typical_layer_draws_shapes_and_default_initialisation_scale(rng):
    size = sizes.Size(T=5, B=3, H=16, D=2)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = sizes.typical_layer(size, 4, rng, cell_state=True)
    assert (x.shape, h0.shape, c0.shape) == ((5, 3, 2), (3, 16), (3, 16))
    assert (w_ih.shape, w_hh.shape, b_ih.shape, b_hh.shape) == ((64, 2), (64, 16), (64,), (64,))
    assert np.abs(w_hh).max() <= 1 / 4


def test_an_infinite_bound_fails_as_nnspecs_defect_instead_of_passing(rng):
    impl = Implementation(name="tanh_pair", dtype=np.dtype(np.float64),
                          module=SimpleNamespace(DTYPE=np.float64, pair=lambda x: (np.tanh(x),)))
    x = rng.standard_normal(3)

    def vacuous(x, *, dtype):
        return (tol.Bound(np.array([0.0, np.inf, 0.0]), "a bound that overflowed", 1e-16),)

    def off_where_vacuous(x):
        """The spec's tanh, 1 off at the element whose bound is infinite."""
        return (np.tanh(x) + np.array([0.0, 1.0, 0.0]),)

    # without the guard the disagreement passes unseen ...
    check_outputs(impl, "pair", "activations.tanh", ("y",), (x,), off_where_vacuous, vacuous)
    # ... with it, the check fails as nnspec's own defect
    with pytest.raises(NonConformance, match="setup: the bound of y is infinite at 1 of 3"):
        check_outputs(impl, "pair", "activations.tanh", ("y",), (x,), off_where_vacuous, vacuous,
                      finite=True)


def test_the_size_option_reaches_the_long_checks():
    """The chunked-reset LSTM layer (state restarted every 64 steps) passes below 65 steps and
    fails at the default T = 128: what the option sets is what the long checks run."""
    from nnspec.checks.oracle import catalogue
    from nnspec.oracle import check

    entry = next(e for e in catalogue.ENTRIES if e.name == "lstm_layer_chunked_state_reset")
    short = check(entry.module(), only=["lstm.layer"], implementation_only=True,
                  extra_args=["--nnspec-size", "T=64", "-k", "long_sequence"])
    assert short.verdicts.get("lstm.layer") == "pass", short.failures
    default = check(entry.module(), only=["lstm.layer"], implementation_only=True,
                    extra_args=["-k", "long_sequence"])
    assert default.verdicts.get("lstm.layer") == "fail", default.verdicts
