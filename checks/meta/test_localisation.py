"""Checks of the localisation of faults the catalogue does not know (checks/oracle/localisation.py
and its experiments, checks/oracle/localise_*.py).

Each experiment is shown to place a planted fault (checks/oracle/unknown_mutants.py) and to claim
nothing on a correct implementation: the reference, torch and the NumPy entries of the corpus of
correct alternatives. The mutants then go through the whole oracle (:func:`nnspec.selftest.run`,
a nested pytest session of a few seconds each): each must fail, be localised or named as its
entry says, and get no claim that points elsewhere.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nnspec import selftest
from nnspec.checks.harness.failure import Failure
from nnspec.checks.oracle import alternatives, localise_gates, localise_time, unknown_mutants
from nnspec.checks.oracle.diagnosis import Call, diagnose, named_ids
from nnspec.checks.oracle.localisation import (
    Experiment,
    Hypothesis,
    bind,
    claims,
    localise,
    trials,
    zero_block,
)
from nnspec.checks.oracle.localise_findings import Finding
from nnspec.implementations import reference as ref

U64 = float(np.finfo(np.float64).eps) / 2
B, D, H, T = 3, 2, 4, 6


def _arrays(fn: str, seed: int = 0) -> dict[str, Any]:
    """Arguments of a cell or layer, both biases present, pre-activations O(1)."""
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[fn.split("_")[0]]
    layer = fn.endswith("_layer")
    args: dict[str, Any] = {"x": rng.standard_normal((T, B, D) if layer else (B, D))}
    args["h0" if layer else "h"] = rng.standard_normal((B, H))
    if fn.startswith("lstm"):
        args["c0" if layer else "c"] = rng.standard_normal((B, H))
    args.update(w_ih=rng.standard_normal((gates * H, D)) * 0.7,
                w_hh=rng.standard_normal((gates * H, H)) * 0.7,
                b_ih=rng.standard_normal(gates * H), b_hh=rng.standard_normal(gates * H))
    return args


def _findings(fn: str, impl: Callable[..., Any], args: dict[str, Any]) -> list[Finding]:
    """The diagnosis of one call of ``impl`` as ``fn``, re-calling it in-process for the
    designed inputs."""
    lines = diagnose([Call(fn, (), args, impl(**args))], U64,
                     draw=lambda _fn, *a, **k: impl(*a, **k))
    return [line for line in lines if isinstance(line, Finding)]


def _claims(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.claims]


def _one_claim(found: list[Finding], kind: str, where: str) -> Finding:
    claims = _claims(found)
    assert len(claims) == 1, f"one claim expected, got {[str(f) for f in found]}"
    assert claims[0].kind == kind and where in (claims[0].location or ""), str(claims[0])
    return claims[0]


# ---- each experiment places its planted fault -------------------------------------------------

def test_the_argument_experiment_finds_a_cell_that_ignores_b_hh():
    f = _one_claim(_findings("rnn_cell", unknown_mutants._rnn_cell_ignores_b_hh,
                             _arrays("rnn_cell")), "argument", "b_hh")
    assert "behaves as if b_hh were None" in f and f.confidence == "high"


def test_the_argument_experiment_finds_a_gate_block_left_out():
    _one_claim(_findings("gru_cell", unknown_mutants._gru_reset_without_h, _arrays("gru_cell")),
               "gate", "reset gate r: W_hr")
    _one_claim(_findings("lstm_cell", unknown_mutants._lstm_forget_ignores_w_hf,
                         _arrays("lstm_cell")), "gate", "forget gate f: W_hf")


def test_the_argument_experiment_finds_outputs_in_the_wrong_order():
    _one_claim(_findings("lstm_cell", unknown_mutants._lstm_returns_c_h, _arrays("lstm_cell")),
               "output order", "(c', h')")


def test_the_gate_probes_find_a_forget_gate_that_is_not_a_sigmoid():
    f = _one_claim(_findings("lstm_cell", unknown_mutants._lstm_forget_gate_tanh,
                             _arrays("lstm_cell")), "gate", "forget gate f")
    assert "only its probe differs" in f


def test_the_gate_probes_claim_nothing_where_the_fault_does_not_show():
    args = _arrays("lstm_cell")
    assert localise_gates.gates("lstm_cell", "lstm.cell", ref.lstm_cell, args, U64,
                                lambda _fn, *a, **k: ref.lstm_cell(*a, **k)) == []


@pytest.mark.parametrize(("fn", "planted", "where"), [
    ("rnn_layer", unknown_mutants._rnn_layer_one_step_late, "late"),
    ("lstm_layer", unknown_mutants._lstm_layer_outputs_reversed, "reversed"),
])
def test_the_time_experiment_finds_shifted_and_reversed_outputs(fn, planted, where):
    _one_claim(_findings(fn, planted, _arrays(fn)), "time", where)


def test_the_time_experiment_names_the_step_of_a_restart():
    args = _arrays("gru_layer")
    args["x"] = np.random.default_rng(1).standard_normal((50, B, D))
    f = _one_claim(_findings("gru_layer", unknown_mutants._gru_layer_restart, args), "time",
                   f"step {unknown_mutants.RESTART}")
    assert f"restarts its state from the initial state at step {unknown_mutants.RESTART}" in f


def test_the_time_experiment_names_a_periodic_restart():
    args = _arrays("lstm_layer")
    args["x"] = np.random.default_rng(2).standard_normal((20, B, D))

    def chunked(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        ys = [ref.lstm_layer(x[s:s + 7], h0, c0, w_ih, w_hh, b_ih, b_hh)[0]
              for s in range(0, len(x), 7)]
        return np.concatenate(ys), h0, c0

    _one_claim(_findings("lstm_layer", chunked, args), "time", "restart every 7 steps")


def test_the_packed_experiment_finds_a_final_state_taken_after_the_padding():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 2))
    params = {"weight_ih_l0": rng.standard_normal((4, 2)), "weight_hh_l0": rng.standard_normal((4, 4)),
              "bias_ih_l0": rng.standard_normal(4), "bias_hh_l0": rng.standard_normal(4)}
    call = Call("rnn_module", ("rnn", x, None, params), {"lengths": np.array([5, 2, 3])},
                unknown_mutants._packed_final_state_after_padding(
                    "rnn", x, None, params, lengths=np.array([5, 2, 3])))
    found = localise(call.fn, call.args, call.kwargs, call.output, U64, None)
    assert _one_claim(found, "time", "final state after T steps").confidence == "medium"
    found = localise(call.fn, call.args, call.kwargs, call.output, U64,
                     lambda _fn, *a, **k: unknown_mutants._packed_final_state_after_padding(*a, **k))
    assert _one_claim(found, "time", "final state after T steps").confidence == "high"
    right = ref.rnn_module("rnn", x, None, params, lengths=np.array([5, 2, 3]))
    assert localise_time.packed("rnn_module", "sequence.packed", ref.rnn_module,
                                {"mode": "rnn", "x": x, "state": None, "params": params,
                                 "lengths": np.array([5, 2, 3])}, right, U64) == []


def _degenerate_layer(fn: str, steps: int = 2) -> dict[str, Any]:
    """A shrunk layer call: T = ``steps``, zero initial states (what Hypothesis shrinks to)."""
    args = _arrays(fn)
    args["x"] = args["x"][:steps]
    for name in ("h0", "c0"):
        if name in args:
            args[name] = np.zeros_like(args[name])
    return args


def _zero_first_output(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step late with y_0 = 0 whatever h0: on h0 = 0 it is "one step late (y_0 = h0)"."""
    y, h_T = ref.rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return np.concatenate([np.zeros_like(h0)[None], y[:-1]]), h_T


def test_a_time_claim_on_a_degenerate_call_alone_is_at_most_medium():
    args = _degenerate_layer("rnn_layer")
    out = unknown_mutants._rnn_layer_one_step_late(**args)
    found = localise_time.layer("rnn_layer", "rnn.layer", ref.rnn_layer, args, out, U64)
    assert [(f.kind, f.location, f.confidence) for f in found] == [
        ("time", "shifted one step late", "medium")], [str(f) for f in found]
    confirmed = _one_claim(_findings("rnn_layer", unknown_mutants._rnn_layer_one_step_late, args),
                           "time", "late")
    assert confirmed.confidence == "high" and "2 designed inputs" in confirmed, str(confirmed)


def test_designed_inputs_refute_a_time_hypothesis_a_degenerate_call_fits():
    args = _degenerate_layer("rnn_layer")
    assert localise_time.layer("rnn_layer", "rnn.layer", ref.rnn_layer, args,
                               _zero_first_output(**args), U64)  # h0 = 0: it fits "late"
    found = _findings("rnn_layer", _zero_first_output, args)
    assert not _claims(found), [str(f) for f in found]


def test_claims_keep_the_most_confident_hypotheses_of_one_kind():
    args = _arrays("rnn_cell")
    impl = unknown_mutants._rnn_cell_ignores_b_hh
    failing = bind(ref.rnn_cell, (), args)
    tried = trials(ref.rnn_cell, "rnn_cell", failing, impl(**args), U64,
                   lambda _fn, *a, **k: impl(*a, **k))

    def b_hh_times(scale: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda a: {**a, "b_hh": scale * np.asarray(a["b_hh"])}

    near = Hypothesis("b_hh were 1e-9 b_hh", "argument", "b_hh scaled", b_hh_times(1e-9))
    exact = Hypothesis("b_hh were None", "argument", "b_hh", b_hh_times(0.0))
    other_kind = Hypothesis("the gates ignored b_hh", "gate", "every gate: b_h", b_hh_times(0.0))
    found = claims("rnn_cell", "rnn.cell", [near, other_kind, exact], ref.rnn_cell, tried, U64)
    assert [(f.kind, f.location, f.confidence) for f in found] == [
        ("gate", "every gate: b_h", "high")], [str(f) for f in found]
    found = claims("rnn_cell", "rnn.cell", [near, exact, other_kind], ref.rnn_cell, tried, U64)
    assert [(f.kind, f.location, f.confidence) for f in found] == [
        ("argument", "b_hh", "high")], [str(f) for f in found]
    assert "indistinguishably" not in found[0]


def test_a_cross_entropy_through_an_unshifted_softmax_is_named_though_it_returns_nan():
    y = np.array([[1000.0, 999.0, 990.0, -1000.0], [3.0, 2.0, 1.0, 0.0]])
    k = np.array([0, 1])
    impl = unknown_mutants._cross_entropy_unshifted
    assert np.isnan(impl(y, k))
    lines = diagnose([Call("cross_entropy", (y, k), {}, impl(y, k))], U64,
                     draw=lambda _fn, *a, **kw: impl(*a, **kw))
    assert [sid for line in lines for sid in named_ids(line)] == ["losses.bug.softmax_no_shift"]


def test_a_cross_entropy_through_the_log_of_a_softmax_is_named_as_that_not_the_unshifted_one():
    def impl(logits, target):
        with np.errstate(divide="ignore"):
            log_p = np.log(ref.softmax(logits))
        return -np.take_along_axis(log_p, target[..., None], axis=-1).mean()

    y, k = np.array([[1000.0, 999.0, 990.0, -1000.0]]), np.array([3])
    lines = diagnose([Call("cross_entropy", (y, k), {}, impl(y, k))], U64,
                     draw=lambda _fn, *a, **kw: impl(*a, **kw))
    assert [sid for line in lines for sid in named_ids(line)] == ["losses.bug.log_of_softmax"]


def test_designed_inputs_overrule_a_catalogue_match_of_a_degenerate_call():
    args = _arrays("rnn_cell")
    call = Call("rnn_cell", (), args, ref.rnn_cell(**args))
    experiment = Experiment(call, U64, lambda _fn, *a, **k: ref.rnn_cell(*a, **k))
    assert experiment.contradicts(unknown_mutants._rnn_cell_ignores_b_hh)
    assert not experiment.contradicts(ref.rnn_cell)


def test_an_unexplained_fault_is_said_to_be_unlocalised():
    def impl(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return ref.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity) ** 3

    found = _findings("rnn_cell", impl, _arrays("rnn_cell"))
    assert not _claims(found)
    assert [f.kind for f in found if f.kind != "note"] == ["unlocalised"], [str(f) for f in found]


# ---- nothing is claimed on a correct implementation --------------------------------------------

def _correct_modules() -> list[tuple[str, Any]]:
    from nnspec.implementations import torch_cpu

    found: list[tuple[str, Any]] = [("reference", ref), ("torch", torch_cpu)]
    for entry in alternatives.CORPUS:
        if entry.functions:
            found.append((entry.name, entry.module()))
    return found


def _in_dtype(impl: Callable[..., Any], dtype: np.dtype) -> Callable[..., Any]:
    """``impl`` called on arrays in its DTYPE, its outputs returned as float64."""

    def call(*a: Any, **k: Any) -> Any:
        out = impl(*(np.asarray(v, dtype) for v in a),
                   **{n: np.asarray(v, dtype) for n, v in k.items()})
        if isinstance(out, tuple):
            return tuple(np.asarray(o, np.float64) for o in out)
        return np.asarray(out, np.float64)

    return call


@pytest.mark.parametrize("fn", ["rnn_cell", "gru_cell", "lstm_cell", "rnn_layer", "gru_layer",
                                "lstm_layer"])
def test_no_experiment_claims_anything_on_a_correct_implementation(fn):
    checked = 0
    for name, module in _correct_modules():
        impl = getattr(module, fn, None)
        if impl is None:
            continue
        dtype = np.dtype(getattr(module, "DTYPE", np.float64))
        args = {k: v.astype(dtype).astype(np.float64) for k, v in _arrays(fn, seed=7).items()}

        call = _in_dtype(impl, dtype)
        unit = float(np.finfo(dtype).eps) / 2
        found = localise(fn, (), args, call(**args), unit, call)
        assert not [str(f) for f in found if f.claims or f.kind != "unlocalised"], name
        checked += 1
    assert checked >= 2, f"{fn}: too few correct implementations to show anything"


def _just_off(fn: str) -> tuple[dict[str, Any], Any]:
    """A shrunk call (zero states and biases) of a correct implementation, and an output just off
    its own (a few ROUNDING_LEVEL·u relative) that a fault reproduces exactly there: for a cell,
    a gate block of w_ih so small that ignoring it moves the output by that little (for the RNN,
    one gate, x so small, b_ih kept so that the output is not 0 without x), and so for a GRU or
    LSTM layer of T = 1; for an RNN layer of T = 2 with w_hh = 0 and x_1 = x_0 (1 + δ), y
    reversed in time. The diagnosis must
    run its experiments, and the designed inputs, where the implementation is the spec, must
    refute the fault."""
    from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL

    delta = 8 * ROUNDING_LEVEL * U64
    args = _arrays(fn, seed=11)
    for name in ("h", "c", "h0", "c0", "b_ih", "b_hh"):
        if name in args:
            args[name] = np.zeros_like(args[name])
    spec = getattr(ref, fn)
    if fn == "rnn_layer":
        args["w_hh"] = np.zeros_like(args["w_hh"])
        args["x"] = np.stack([args["x"][0], args["x"][0] * (1 + delta)])
        y, *states = spec(**args)
        return args, (y[::-1], *states)
    if fn == "rnn_cell":  # one gate: a bias keeps the output off 0 when x is left out
        args.update(x=args["x"] * delta, b_ih=_arrays(fn, seed=11)["b_ih"])
        return args, spec(**{**args, "x": np.zeros_like(args["x"])})
    if fn.endswith("_layer"):
        args["x"] = args["x"][:1]
    # The update gate z of a GRU, the input gate i of an LSTM: σ(tiny) moves h' by as little.
    gates, k = (3, 1) if fn.startswith("gru") else (4, 0)
    size = args["w_ih"].shape[0] // gates
    args["w_ih"][k * size:(k + 1) * size] *= delta
    return args, spec(**{**args, "w_ih": zero_block(args["w_ih"], k, gates)})


@pytest.mark.parametrize("fn", ["rnn_cell", "gru_cell", "lstm_cell", "rnn_layer", "gru_layer",
                                "lstm_layer"])
def test_a_correct_implementation_just_off_on_a_shrunk_call_gets_no_claim(fn):
    from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL, distance

    args, off = _just_off(fn)
    impl = getattr(ref, fn)
    d_spec = distance(off, impl(**args))
    assert ROUNDING_LEVEL * U64 < d_spec < 100 * ROUNDING_LEVEL * U64, d_spec
    lines = diagnose([Call(fn, (), args, off)], U64, draw=lambda _fn, *a, **k: impl(*a, **k))
    assert any("matches no known variant" in line for line in lines), lines
    sure = [str(f) for f in lines if isinstance(f, Finding)
            and f.kind not in ("note", "unlocalised") and f.confidence not in ("low", "none")]
    assert not sure, sure
    # Without designed inputs the fault fits the call, and nothing says otherwise: medium at most.
    alone = localise(fn, (), args, off, U64, None)
    assert _claims(alone) and all(f.confidence == "medium" for f in _claims(alone)), alone


# ---- findings as data --------------------------------------------------------------------------

def test_a_finding_survives_json_and_pickle_with_its_fields():
    f = Finding("rnn_cell() localised: behaves as if b_hh were None", kind="argument",
                location="b_hh", evidence="distance 0", confidence="high")
    failure = Failure(spec_id="rnn.cell", diagnosis=[f, "a note"], message="m")
    back = Failure.from_dict(failure.to_dict())
    assert back.diagnosis == failure.diagnosis
    assert isinstance(back.diagnosis[0], Finding) and back.diagnosis[0].location == "b_hh"
    assert not isinstance(back.diagnosis[1], Finding)
    assert failure.to_dict()["findings"][0]["kind"] == "argument"
    again = pickle.loads(pickle.dumps(f))
    assert (again.kind, again.location, again.confidence) == ("argument", "b_hh", "high")


# ---- the mutants through the whole oracle ------------------------------------------------------

@pytest.mark.parametrize("mutant", unknown_mutants.MUTANTS, ids=lambda m: m.name)
def test_a_mutant_outside_the_catalogue_is_localised_or_named_correctly(mutant):
    o = selftest.run(mutant)
    assert o.detected, f"{mutant.name}: not detected, verdicts {o.verdicts}"
    found = [line for line in o.diagnoses if isinstance(line, Finding)]
    shown = "\n".join(str(line) for line in dict.fromkeys(o.diagnoses))
    if mutant.named_as:
        assert o.named and set(o.named) <= set(mutant.named_as), shown
        return
    assert not o.named, f"{mutant.name} named as {o.named}:\n{shown}"
    claims = _claims(found)
    assert claims, f"{mutant.name}: nothing localised:\n{shown}"
    wrong = [str(f) for f in claims
             if f.kind != mutant.expect_kind or mutant.expect_where not in (f.location or "")]
    assert not wrong, f"{mutant.name}: claims pointing elsewhere: {wrong}"


def test_the_table_and_the_json_carry_the_finding_of_a_localised_failure():
    from nnspec import oracle, speclib, verdicts

    mutant = next(m for m in unknown_mutants.MUTANTS if m.name == "rnn_cell_ignores_b_hh")
    result = oracle.check(mutant.module(), only=["rnn.cell"], examples=5,
                          implementation_only=True)
    order = list(speclib.load())
    row = next(r for r in verdicts.table(result, order) if r.startswith("rnn.cell "))
    assert "see below (argument: b_hh)" in row, row
    data = verdicts.as_data(result, order, lambda only: "reproduce")
    findings = next(r for r in data if r["spec_id"] == "rnn.cell")["findings"]
    assert {"kind": "argument", "location": "b_hh", "confidence": "high"}.items() <= next(
        f for f in findings if f["kind"] == "argument").items(), findings
    block = verdicts.failure_block(result, "rnn.cell", "reproduce")
    assert any(line.startswith("  where: argument: b_hh (confidence high") for line in block), block
