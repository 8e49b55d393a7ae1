"""The variants real frameworks ship (issue 12), named by the oracle.

Each is a formula a framework computes where the contract asks for PyTorch's: Flax NNX's GRU
without b_hn, CoreML's b_hn outside the reset, PaddlePaddle's reset-before GRU with the update
flipped, TF 1's forget bias added at every step, the LSTM gate orders of ONNX, TensorFlow 1 and
OpenVINO, Keras's two hard sigmoids (alone and as the gates of LSTM and GRU cells), TensorFlow
Addons' AdamW, tf.keras's per-tensor clipnorm — and scikit-learn's L2 divided by the sample count,
which is the seed's convention and must pass. The catalogue (checks/oracle/catalogue.py,
``FRAMEWORK_BUGS``) holds an implementation of each, built from its reference function or, where
the framework's step is short, written in the framework's own layout.

Four kinds of claim:

- the oracle, run on each catalogue entry as the self-test runs it (a nested pytest session,
  about 2 s), fails the entry's spec id and its diagnosis names the variant; a representative
  entry of each family runs by default, all of them with ``-m slow``;
- the diagnosis alone, handed one call on inputs that separate the formulas (every entry
  ±U(¼, 1), as spec/gru.md's separating inputs), names exactly that variant, and names nothing
  for the spec's own output of the same call: no sibling variant is taken for another;
- the identities the spec states between the variants and the contract's formulas hold, within
  the sum of the two evaluations' float64 bounds (each side is a float64 evaluation of the same
  function, so each is within its bound of the exact value);
- each cell variant lies at least spec/gru.md's SEPARATION times the float32 bounds away from the
  cell it replaces on separating inputs, so a float32 implementation of it cannot pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nnspec import selftest
from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.bounds import regularisation as regularisation_bounds
from nnspec.checks.harness.failure import assert_close
from nnspec.checks.oracle import catalogue, diagnosis
from nnspec.checks.oracle.catalogue import Entry
from nnspec.reference import activations, gru, lstm, regularisation, stability

#: float64's unit roundoff: the reference functions and the catalogue entries compute in float64.
U64 = float(np.finfo(np.float64).eps) / 2

#: Entries the issue names that existed before it (CoreML's and tf.keras's formulas were already
#: bugs of the spec), and the correct entry for scikit-learn's convention.
EARLIER = ("gru_bias_hn_outside_reset", "stability_clip_per_tensor")
CORRECT = ("sklearn_mlp_l2",)

#: One entry per family in the default run; the rest run with ``-m slow``.
DEFAULT_RUN = frozenset({
    "activations_hard_sigmoid_keras3", "gru_flax_nnx_layout", "gru_reset_before_update_flipped",
    "lstm_onnx_layout_torch_order", "lstm_tf1_basic_cell",
    "regularisation_adamw_decay_not_scaled_by_lr", "stability_clip_per_tensor", "sklearn_mlp_l2",
})


def _entry(name: str) -> Entry:
    return next(e for e in catalogue.ENTRIES if e.name == name)


def _params(entries: list[Entry]) -> list[Any]:
    return [pytest.param(e, id=e.name, marks=() if e.name in DEFAULT_RUN else pytest.mark.slow)
            for e in entries]


def _report(o: selftest.Outcome) -> str:
    lines = [f"{o.entry.name} ({o.entry.origin}): verdicts {o.verdicts}"]
    lines += [f"  failure: {f.headline}" for f in o.failures[:3]]
    lines += [f"  diagnosis: {line}" for line in o.diagnoses[:5]]
    return "\n".join(lines)


# ---- the oracle on each framework's formula ----------------------------------------------------

VARIANT_ENTRIES = [*catalogue.FRAMEWORK_BUGS, *(_entry(n) for n in EARLIER)]


@pytest.mark.parametrize("entry", _params(VARIANT_ENTRIES))
def test_the_oracle_fails_a_framework_variant_and_names_it(entry: Entry):
    o = selftest.run(entry)
    if not o.detected:
        pytest.fail(f"the oracle did not fail every id of {entry.only}:\n{_report(o)}")
    if not o.diagnosed:
        pytest.fail(f"the diagnosis named {o.named or 'nothing'}, but should name one of "
                    f"{entry.expected_names}:\n{_report(o)}")


@pytest.mark.parametrize("entry", _params([_entry(n) for n in CORRECT]))
def test_scikit_learns_l2_divided_by_the_sample_count_is_the_seeds_step_and_passes(entry: Entry):
    o = selftest.run(entry)
    if not o.passed:
        pytest.fail(f"a correct implementation does not pass {entry.only}:\n{_report(o)}")


# ---- the diagnosis on one separating call --------------------------------------------------------

def _apart(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Entries ±U(¼, 1): no zero, no repeated block, no saturated gate (spec/gru.md)."""
    return rng.choice((-1.0, 1.0), size=shape) * rng.uniform(0.25, 1.0, shape)


def _gru_args(rng: np.random.Generator) -> tuple[Any, ...]:
    B, D, H = 3, 3, 4
    return (_apart(rng, B, D), _apart(rng, B, H), _apart(rng, 3 * H, D), _apart(rng, 3 * H, H),
            _apart(rng, 3 * H), _apart(rng, 3 * H))


def _lstm_args(rng: np.random.Generator) -> tuple[Any, ...]:
    B, D, H = 3, 3, 4
    return (_apart(rng, B, D), _apart(rng, B, H), _apart(rng, B, H), _apart(rng, 4 * H, D),
            _apart(rng, 4 * H, H), _apart(rng, 4 * H), _apart(rng, 4 * H))


def _sigmoid_args(rng: np.random.Generator) -> tuple[Any, ...]:
    return (np.linspace(-4.0, 4.0, 33), 1.3)


def _adamw_args(rng: np.random.Generator) -> tuple[Any, ...]:
    w, grad, m = _apart(rng, 5), _apart(rng, 5), _apart(rng, 5)
    return (w, grad, m, _apart(rng, 5) ** 2, 3, 0.1, 0.9, 0.999, 1e-8, 0.05)


def _clip_args(rng: np.random.Generator) -> tuple[Any, ...]:
    # Two tensors of different norms, both above max_norm.
    return ([4.0 * _apart(rng, 3), 9.0 * _apart(rng, 2, 2)], 1.0, 2.0)


#: variant's reference function → (contract function it is a candidate for, separating arguments).
_SEPARATING: dict[Callable[..., Any], tuple[str, Callable[[np.random.Generator], tuple]]] = {
    activations.hard_sigmoid_keras2: ("sigmoid", _sigmoid_args),
    activations.hard_sigmoid_keras3: ("sigmoid", _sigmoid_args),
    gru.no_bias_hn: ("gru_cell", _gru_args),
    gru.bias_hn_outside_reset: ("gru_cell", _gru_args),
    gru.hard_sigmoid_gates_keras3: ("gru_cell", _gru_args),
    gru.reset_before_update_flipped: ("gru_cell_textbook", _gru_args),
    gru.hard_sigmoid_gates_keras2: ("gru_cell_textbook", _gru_args),
    lstm.gate_order_onnx: ("lstm_cell", _lstm_args),
    lstm.gate_order_tensorflow: ("lstm_cell", _lstm_args),
    lstm.gate_order_openvino: ("lstm_cell", _lstm_args),
    lstm.gate_order_ifog: ("lstm_cell", _lstm_args),
    lstm.forget_bias_every_step: ("lstm_cell", _lstm_args),
    lstm.hard_sigmoid_gates_keras2: ("lstm_cell", _lstm_args),
    lstm.hard_sigmoid_gates_keras3: ("lstm_cell", _lstm_args),
    regularisation.adamw_decay_not_scaled_by_lr: ("adamw_step", _adamw_args),
    stability.clip_per_tensor: ("clip_grad_norm", _clip_args),
}


def test_every_framework_variant_of_the_catalogue_has_a_separating_call_here():
    """Keeps the fast diagnosis test below in step with catalogue.FRAMEWORK_BUGS."""
    if missing := {e.exhibits for e in catalogue.FRAMEWORK_BUGS} - set(map(diagnosis.doc_id, _SEPARATING)):
        pytest.fail(f"framework variants of catalogue.FRAMEWORK_BUGS without a separating call in "
                    f"_SEPARATING: {sorted(str(m) for m in missing)}")


def _named(fn: str, args: tuple[Any, ...], output: Any) -> tuple[list[str], list[str]]:
    lines = diagnosis.diagnose([diagnosis.Call(fn, args, {}, output)], U64)
    return [sid for line in lines for sid in diagnosis.named_ids(line)], lines


@pytest.mark.parametrize("variant", list(_SEPARATING), ids=list(map(diagnosis.doc_id, _SEPARATING)))
def test_the_diagnosis_names_exactly_the_variant_on_a_separating_call(variant, rng):
    fn, draw = _SEPARATING[variant]
    args = draw(rng)
    bug_id = diagnosis.doc_id(variant)
    named, lines = _named(fn, args, variant(*args))
    if named != [bug_id]:
        pytest.fail(f"{fn}() computing {bug_id} on a separating call: the diagnosis named "
                    f"{named or 'nothing'}, but should name {bug_id} alone: {lines}")


@pytest.mark.parametrize("fn", sorted({fn for fn, _ in _SEPARATING.values()}))
def test_the_spec_formula_itself_is_named_as_no_framework_variant(fn, rng):
    from nnspec.implementations import reference

    draw = next(d for f, d in _SEPARATING.values() if f == fn)
    args = draw(rng)
    named, lines = _named(fn, args, getattr(reference, fn)(*args))
    assert named == [], f"the spec's own {fn}() output was named {named}: {lines}"


# ---- identities the spec states ------------------------------------------------------------------

def _block(k: int, H: int) -> slice:
    """Rows of gate block k in PyTorch's stacked layout."""
    return slice(k * H, (k + 1) * H)


def test_paddles_flipped_gru_is_the_textbook_cell_with_the_z_blocks_negated(rng):
    """spec/gru.md: 1 − σ(a) = σ(−a), so reset_before_update_flipped(θ) = textbook(θ′), θ′ the z
    blocks (block 1) of w_ih, w_hh, b_ih, b_hh negated. The textbook bound at θ′ bounds both
    evaluations (it is symmetric in z ↔ 1 − z)."""
    x, h, w_ih, w_hh, b_ih, b_hh = _gru_args(rng)
    z = _block(1, h.shape[1])
    negated = [a.copy() for a in (w_ih, w_hh, b_ih, b_hh)]
    for a in negated:
        a[z] *= -1.0
    bound = gru_bounds.gru_cell_textbook(x, h, *negated, dtype=np.float64)
    assert_close(gru.reset_before_update_flipped(x, h, w_ih, w_hh, b_ih, b_hh),
                 gru.gru_cell_textbook(x, h, *negated), bound + bound,
                 spec_id="gru.bug.reset_before_update_flipped", impl="reference",
                 call="reset_before_update_flipped(θ) against gru_cell_textbook(θ, z negated)")


def _gru_with_candidate_biases(b_ih: np.ndarray, b_hh: np.ndarray, H: int, *, b_in: np.ndarray,
                               b_hn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = _block(2, H)
    b_ih, b_hh = b_ih.copy(), b_hh.copy()
    b_ih[n], b_hh[n] = b_in, b_hn
    return b_ih, b_hh


@pytest.mark.parametrize(("what", "cell", "moved"), [
    ("gru.bug.no_bias_hn", gru.no_bias_hn, False),
    ("catalogue: flax.nnx.GRUCell's layout", catalogue._flax_nnx_gru_cell, False),
    ("gru.bug.bias_hn_outside_reset", gru.bias_hn_outside_reset, True),
    ("catalogue: CoreML's GRU", catalogue._coreml_gru_cell, True),
])
def test_flax_nnx_and_coreml_grus_are_pytorchs_with_b_hn_dropped_or_moved(what, cell, moved, rng):
    """spec/gru.md: Flax NNX's cell is gru_cell with b_hn = 0; CoreML's is gru_cell with b_hn
    moved into b_in (b_in + b_hn, 0), so a conversion is exact only when b_hn = 0."""
    x, h, w_ih, w_hh, b_ih, b_hh = _gru_args(rng)
    H = h.shape[1]
    n = _block(2, H)
    zero = np.zeros(H)
    b_in = b_ih[n] + b_hh[n] if moved else b_ih[n]
    mapped = _gru_with_candidate_biases(b_ih, b_hh, H, b_in=b_in, b_hn=zero)
    bound = gru_bounds.gru_cell(x, h, w_ih, w_hh, *mapped, dtype=np.float64)
    assert_close(cell(x, h, w_ih, w_hh, b_ih, b_hh), gru.gru_cell(x, h, w_ih, w_hh, *mapped),
                 bound + bound, spec_id="gru.cell.pytorch", impl=what,
                 call=f"{what}(θ) against gru_cell(θ with b_hn {'moved' if moved else 'dropped'})")


@pytest.mark.parametrize(("what", "cell"), [
    ("lstm.bug.forget_bias_every_step", lstm.forget_bias_every_step),
    ("catalogue: tf.compat.v1 BasicLSTMCell", catalogue._tf1_basic_lstm_cell),
])
def test_tf1s_forget_bias_is_one_added_to_the_forget_bias_at_every_step(what, cell, rng):
    """spec/lstm.md: the cell is lstm_cell with b_f + 1; the +1 is one more term of the forget
    gate's pre-activation sum, which the bound at the shifted bias counts."""
    x, h, c, w_ih, w_hh, b_ih, b_hh = _lstm_args(rng)
    shifted = b_ih.copy()
    shifted[_block(1, h.shape[1])] += lstm.TF1_FORGET_BIAS
    bounds = lstm_bounds.lstm_cell(x, h, c, w_ih, w_hh, shifted, b_hh, dtype=np.float64)
    for name, got, want, bound in zip(("h'", "c'"), cell(x, h, c, w_ih, w_hh, b_ih, b_hh),
                                      lstm.lstm_cell(x, h, c, w_ih, w_hh, shifted, b_hh), bounds,
                                      strict=True):
        assert_close(got, want, bound + bound, spec_id="lstm.bug.forget_bias_every_step",
                     impl=what, what=name, call=f"{what}(θ) against lstm_cell(θ with b_f + 1)")


def test_onnxs_lstm_step_handed_pytorchs_weights_is_the_onnx_gate_order_bug(rng):
    """spec/lstm.md: an LSTM written in ONNX's layout (i, o, f, c) and handed PyTorch's blocks
    unconverted computes lstm.bug.gate_order_onnx; both are the cell at the permuted blocks."""
    x, h, c, w_ih, w_hh, b_ih, b_hh = _lstm_args(rng)
    H = h.shape[1]
    rows = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 2, 3, 1)])
    permuted = (w_ih[rows], w_hh[rows], b_ih[rows], b_hh[rows])
    bounds = lstm_bounds.lstm_cell(x, h, c, *permuted, dtype=np.float64)
    for name, got, want, bound in zip(("h'", "c'"),
                                      catalogue._onnx_lstm_unconverted(x, h, c, w_ih, w_hh, b_ih,
                                                                       b_hh),
                                      lstm.gate_order_onnx(x, h, c, w_ih, w_hh, b_ih, b_hh),
                                      bounds, strict=True):
        assert_close(got, want, bound + bound, spec_id="lstm.bug.gate_order_onnx",
                     impl="catalogue: ONNX's LSTM step", what=name,
                     call="_onnx_lstm_unconverted(θ) against gate_order_onnx(θ)")


def test_tf_addons_adamw_conforms_when_handed_lr_times_weight_decay(rng):
    """spec/regularisation.md: decaying by λ unscaled, it is torch's AdamW when handed lr·λ."""
    w, grad, m, v, t, lr, beta1, beta2, eps, wd = _adamw_args(rng)
    args = (w, grad, m, v, t, lr, beta1, beta2, eps, wd)
    got = regularisation.adamw_decay_not_scaled_by_lr(w, grad, m, v, t, lr, beta1, beta2, eps,
                                                      lr * wd)
    for name, g, want, bound in zip(("w'", "m'", "v'"), got, regularisation.adamw_step(*args),
                                    regularisation_bounds.adamw_step(*args, dtype=np.float64),
                                    strict=True):
        assert_close(g, want, bound + bound, spec_id="regularisation.adamw",
                     impl="regularisation.bug.adamw_decay_not_scaled_by_lr", what=name,
                     call="adamw_decay_not_scaled_by_lr(…, lr·λ) against adamw_step(…, λ)")


def test_the_hard_sigmoids_reach_0_and_1_where_their_slopes_say():
    """clip(s·z + ½, 0, 1) is exactly ½ at 0 and exactly 0 and 1 at z = ∓1/(2s): ∓2.5 for Keras
    2's slope 0.2, ∓3 for Keras 3's 1/6 (tensorflow/tensorflow#65381); strictly inside before."""
    for hard, edge in ((activations.hard_sigmoid_keras2, 2.5),
                       (activations.hard_sigmoid_keras3, 3.0)):
        at = hard(np.array([-edge - 1.0, -edge, 0.0, edge, edge + 1.0]))
        assert at.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0], (hard.__name__, at)
        inside = hard(np.array([-0.99 * edge, 0.99 * edge]))
        assert inside[0] > 0.0 and inside[1] < 1.0, (hard.__name__, inside)


def test_keras3s_hard_sigmoid_reproduces_the_values_tensorflow_65381_prints():
    """The float32 values the issue prints for tf.keras.activations.hard_sigmoid (TF 2.16.1) are
    relu6(x + 3)/6: each within float32's rounding of x (propagated by the slope 1/6), of the
    three operations and of the result, u₃₂·(|x|/6 + 4|y|)."""
    printed = {-2.9: 0.01666665, -2.5: 0.083333336, -2.0: 0.16666667, -1.0: 0.33333334,
               -0.5: 0.41666666, 0.5: 0.5833333}
    x = np.array(list(printed))
    want = np.array(list(printed.values()))
    u32 = float(np.finfo(np.float32).eps) / 2
    got = activations.hard_sigmoid_keras3(x)
    bound = u32 * (np.abs(x) / 6 + 4 * np.abs(want))
    assert np.all(np.abs(got - want) <= bound), (got, want, bound)
    assert np.all(np.abs(activations.hard_sigmoid_keras2(x) - want) > 100 * bound), \
        "Keras 2's slope 0.2 would reproduce the printed values too: the test cannot tell them apart"


#: spec/gru.md's SEPARATION: on separating inputs a named formula lies at least this many times
#: the sum of the float32 bounds away from another, so no float32 implementation of one passes as
#: the other.
SEPARATION = 100.0

#: Cell variants → the contract's formula they stand in for, its reference and float32 bound, and
#: the separating draw.
_CELLS: dict[Callable[..., Any], tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
    gru.no_bias_hn: (gru.gru_cell, gru_bounds.gru_cell, _gru_args),
    gru.hard_sigmoid_gates_keras3: (gru.gru_cell, gru_bounds.gru_cell, _gru_args),
    gru.reset_before_update_flipped: (gru.gru_cell_textbook, gru_bounds.gru_cell_textbook,
                                      _gru_args),
    gru.hard_sigmoid_gates_keras2: (gru.gru_cell_textbook, gru_bounds.gru_cell_textbook,
                                    _gru_args),
    lstm.gate_order_onnx: (lstm.lstm_cell, lstm_bounds.lstm_cell, _lstm_args),
    lstm.gate_order_tensorflow: (lstm.lstm_cell, lstm_bounds.lstm_cell, _lstm_args),
    lstm.gate_order_openvino: (lstm.lstm_cell, lstm_bounds.lstm_cell, _lstm_args),
    lstm.forget_bias_every_step: (lstm.lstm_cell, lstm_bounds.lstm_cell, _lstm_args),
    lstm.hard_sigmoid_gates_keras2: (lstm.lstm_cell, lstm_bounds.lstm_cell, _lstm_args),
    lstm.hard_sigmoid_gates_keras3: (lstm.lstm_cell, lstm_bounds.lstm_cell, _lstm_args),
}


def _first(output: Any) -> np.ndarray:
    """h' of a cell's output (GRU: h'; LSTM: (h', c'))."""
    return np.asarray(output[0] if isinstance(output, tuple) else output)


@pytest.mark.parametrize("variant", list(_CELLS), ids=list(map(diagnosis.doc_id, _CELLS)))
def test_a_cell_variant_lies_far_outside_the_float32_bound_of_the_cell_it_replaces(variant, rng):
    """On 20 separating draws, h' of the variant and of the contract's cell differ somewhere by
    ≥ SEPARATION × twice the contract cell's float32 bound (the variant's own rounding is of the
    same size): a float32 implementation of the variant fails the check, and is not rounding."""
    spec_fn, bound_fn, draw = _CELLS[variant]
    for _ in range(20):
        args = draw(rng)
        bounds = bound_fn(*args, dtype=np.float32)
        bound = (bounds[0] if isinstance(bounds, tuple) else bounds).atol
        ratio = float(np.max(np.abs(_first(variant(*args)) - _first(spec_fn(*args))) / (2 * bound)))
        if ratio < SEPARATION:
            pytest.fail(f"{diagnosis.doc_id(variant)} is only {ratio:.3g}× the float32 bounds away from "
                        f"{spec_fn.__name__} on a separating input (want ≥ {SEPARATION:g}×)")
