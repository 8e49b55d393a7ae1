"""Checks of the oracle itself, on the catalogue of checks/oracle/catalogue.py.

Every bug id of the spec has an implementation in the catalogue (or a reason why none can exist);
the oracle, run on it through :func:`nnspec.oracle.check`, must fail its spec ids and name the
bug; a variant handed in where another is asked for must fail and be named; a real-world mistake
without an id must fail; a correct implementation in another parametrisation (the concatenated
LSTM, a NumPy GRU in Keras's layout, dropout and Xavier drawing their own random streams) must
pass. Each run costs about a second (a nested pytest session), so the default run takes a
representative subset, at least one bug of every family; ``-m slow`` runs the whole catalogue and
the detection-rate check.
"""

from __future__ import annotations

from functools import cache

import pytest

from nnspec import selftest, speclib
from nnspec.checks.oracle import catalogue
from nnspec.checks.oracle.catalogue import Entry

#: The entries of the default run: a bug of every family (the random families through the
#: statistical diagnosis, the seeds' mistakes), a variant, a mistake, the other parametrisations.
DEFAULT_RUN = frozenset({
    "activations_softplus_naive", "dropout_no_rescale", "gru_keras_layout_torch_order",
    "initialisation_xavier_variance_as_bound", "linear_no_bias", "losses_sum_instead_of_mean",
    "lstm_no_tanh_on_cell", "lstm_concat_order", "regularisation_adam_l2_as_adamw",
    "rnn_softmax_hidden", "sequence_bidirectional_concat_order", "stability_clip_per_tensor",
    "gru_textbook_as_pytorch",
    "lstm_coupled_gates", "lstm_concatenated", "gru_keras_layout", "own_random_streams",
    # right for the drawn T ≤ 4, wrong after 64 steps: only the long-sequence check sees it
    "lstm_layer_chunked_state_reset",
})


def params(entries: tuple[Entry, ...]) -> list[object]:
    return [pytest.param(e, id=e.name, marks=() if e.name in DEFAULT_RUN else pytest.mark.slow)
            for e in entries]


@cache
def outcome(name: str) -> selftest.Outcome:
    """The oracle's findings on one entry, once per session (the rate check reuses them)."""
    return selftest.run(next(e for e in catalogue.ENTRIES if e.name == name))


def report(o: selftest.Outcome) -> str:
    lines = [f"{o.entry.name} ({o.entry.origin}): verdicts {o.verdicts}"]
    lines += [f"  failure: {f.headline}" for f in o.failures[:4]]
    lines += [f"  diagnosis: {line}" for line in o.diagnoses[:6]]
    return "\n".join(lines)


# ---- the catalogue covers the spec --------------------------------------------------------------

def test_every_bug_id_of_the_spec_has_an_entry_or_a_reason_it_cannot_have_one():
    spec_bugs = {bug for entry in speclib.load().values() for bug in entry.bugs}
    exhibited = {e.exhibits for e in catalogue.BUGS}
    unreachable = set(catalogue.UNREACHABLE)
    if missing := spec_bugs - exhibited - unreachable:
        pytest.fail(f"bug ids of spec/*.md without a catalogue entry: {sorted(missing)}; add one "
                    f"to checks/oracle/catalogue.py BUGS (or the reason none can exist to UNREACHABLE)")
    if unknown := (exhibited | unreachable) - spec_bugs:
        pytest.fail(f"catalogue entries for bug ids the spec does not list: {sorted(unknown)}")
    if both := exhibited & unreachable:
        pytest.fail(f"bug ids both exhibited and declared unreachable: {sorted(both)}")


def test_every_entry_names_spec_ids_that_exist():
    entries = speclib.load()
    known = set(entries) | {bug for entry in entries.values() for bug in entry.bugs}
    names = [e.name for e in catalogue.ENTRIES]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        pytest.fail(f"catalogue entry names must be unique: {repeated}")
    for e in catalogue.ENTRIES:
        if bad := [sid for sid in (*e.only, *e.expected_names) if sid not in known]:
            pytest.fail(f"catalogue entry {e.name} names ids the spec does not define: {bad}")
        if e.exhibits in e.only:
            pytest.fail(f"catalogue entry {e.name} exhibits {e.exhibits}, which its checks accept")


# ---- the oracle on every entry ------------------------------------------------------------------

@pytest.mark.parametrize("entry", params(catalogue.BUGS + catalogue.VARIANTS))
def test_a_known_bug_or_variant_fails_its_spec_ids_and_is_named(entry):
    o = outcome(entry.name)
    if not o.detected:
        pytest.fail(f"the oracle did not fail every id of {entry.only}:\n{report(o)}")
    if not o.diagnosed:
        pytest.fail(f"the diagnosis named {o.named or 'nothing'}, but should name one of "
                    f"{entry.expected_names}:\n{report(o)}")


@pytest.mark.parametrize("entry", params(catalogue.MISTAKES))
def test_a_mistake_without_a_bug_id_fails_its_spec_ids(entry):
    o = outcome(entry.name)
    if not o.detected:
        pytest.fail(f"the oracle did not fail every id of {entry.only}:\n{report(o)}")


@pytest.mark.parametrize("entry", params(catalogue.CORRECT))
def test_a_correct_implementation_in_another_parametrisation_passes(entry):
    o = outcome(entry.name)
    if not o.passed:
        pytest.fail(f"a correct implementation does not pass every id of {entry.only}:\n{report(o)}")


@pytest.mark.slow
def test_detection_and_diagnosis_rates_are_100_percent():
    table = selftest.rates([outcome(e.name) for e in catalogue.ENTRIES])
    short = {kind: {k: v for k, v in row.items() if k != "entries" and v != row["entries"]}
             for kind, row in table.items()}
    if any(short.values()):
        pytest.fail(f"rates below 100 %: {short} (of {table})")


@pytest.mark.parametrize("isolation", [(), ("--nnspec-isolation=none",)], ids=["process", "none"])
def test_the_python_api_raises_for_a_module_it_cannot_import(isolation):
    """A new user's check("nonexistent_mod") got every verdict 'fail' and ok=False, as if the
    module had been checked: it raises, in one line, before any check runs."""
    from nnspec.checks.harness.implementation import ImplementationLoadError
    from nnspec.oracle import check

    with pytest.raises(ImplementationLoadError, match="no module named 'no_such_module_xyz'"):
        check("no_such_module_xyz", only=["lstm.cell"], extra_args=isolation)


def test_only_restricts_the_verdicts_to_the_ids_asked_for():
    """lstm.layer's step-by-step check also carries lstm.cell, so --only lstm.cell runs it: a new
    user read 'lstm.layer pass' on one check. It gives no verdict on an id not asked for."""
    from types import ModuleType

    import numpy as np

    from nnspec.oracle import check
    from nnspec.reference import lstm

    module = ModuleType("nnspec_only_lstm")
    module.DTYPE, module.lstm_cell, module.lstm_layer = np.float64, lstm.lstm_cell, lstm.lstm_layer
    result = check(module, only=["lstm.cell"], examples=3, implementation_only=True)
    assert set(result.verdicts) == {"lstm.cell"}, result.verdicts
    family = check(module, only=["lstm."], examples=3, implementation_only=True)
    assert {"lstm.cell", "lstm.layer"} <= set(family.verdicts), family.verdicts
    # A failure of a shared check is evidence, and may be what fails the id asked for: kept.
    module.lstm_layer = lambda *args: tuple(1.5 * a for a in lstm.lstm_layer(*args))
    broken = check(module, only=["lstm.cell"], examples=3, implementation_only=True)
    assert broken.verdicts.get("lstm.layer") == "fail", broken.verdicts
