"""nnspec identify: the layouts and formulas of cells written in other frameworks' layouts are
recovered without being told; a cell no layout explains is reported as not identified with what
was ruled out; a wrong conversion fails the verification. How long each identification takes is
measured in bench/test_identify.py, not asserted here.

The cells below are written here in NumPy from each framework's documented definition (Keras 3's
GRUCell/LSTMCell, ONNX's GRU/LSTM/RNN operators, Flax linen's and NNX's GRUCell, TF1's
BasicLSTMCell); the last section runs the frameworks themselves where they are installed.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.special import expit as sigmoid

from nnspec.checks.harness.loading import ImplementationUnavailable
from nnspec.cli import identify as identify_cli
from nnspec.identify import Identification, IdentifyError, identify
from nnspec.identify.verify import Verification, conversion_module, spec_id, verify


def _split(a: np.ndarray, count: int, axis: int = 1) -> list[np.ndarray]:
    return np.split(a, count, axis=axis)


# ---- cells in other layouts, NumPy ------------------------------------------------------------

def keras_gru(reset_after: bool) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Keras 3 GRUCell: kernel (D, 3H), recurrent_kernel (H, 3H), gates z, r, h as column
    blocks; bias (2, 3H) with reset_after=True (PyTorch's variant), (3H,) without (textbook)."""

    def params(D: int, H: int) -> dict[str, tuple[int, ...]]:
        return {"kernel": (D, 3 * H), "recurrent_kernel": (H, 3 * H),
                "bias": (2, 3 * H) if reset_after else (3 * H,)}

    def cell(x, h, kernel, recurrent_kernel, bias):
        H = h.shape[1]
        b_x, b_h = (bias[0], bias[1]) if reset_after else (bias, 0.0)
        x_z, x_r, x_h = _split(x @ kernel + b_x, 3)
        U_z, U_r, U_h = _split(recurrent_kernel, 3)
        z = sigmoid(x_z + h @ U_z + (b_h[:H] if reset_after else 0))
        r = sigmoid(x_r + h @ U_r + (b_h[H:2 * H] if reset_after else 0))
        hh = np.tanh(x_h + (r * (h @ U_h + b_h[2 * H:]) if reset_after else (r * h) @ U_h))
        return z * h + (1 - z) * hh

    return cell, params


def keras_lstm(x, h, c, kernel, recurrent_kernel, bias):
    """Keras 3 LSTMCell: kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,), gates i, f, c, o."""
    i, f, g, o = _split(x @ kernel + h @ recurrent_kernel + bias, 4)
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def keras_lstm_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"kernel": (D, 4 * H), "recurrent_kernel": (H, 4 * H), "bias": (4 * H,)}


def keras_lstm_no_tanh(x, h, c, kernel, recurrent_kernel, bias):
    """keras_lstm with lstm.bug.no_tanh_on_cell: h' = o ⊙ c'."""
    i, f, g, o = _split(x @ kernel + h @ recurrent_kernel + bias, 4)
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * c_new, c_new


def onnx_gru(linear_before_reset: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """ONNX GRU (one direction): W (1, 3H, D), R (1, 3H, H) row blocks z, r, h; B (1, 6H) =
    [Wb, Rb]; linear_before_reset=1 is PyTorch's variant, 0 (the default) the textbook one."""

    def params(D: int, H: int) -> dict[str, tuple[int, ...]]:
        return {"W": (1, 3 * H, D), "R": (1, 3 * H, H), "B": (1, 6 * H)}

    def cell(x, h, W, R, B):
        (W_z, W_r, W_h), (R_z, R_r, R_h) = _split(W[0], 3, 0), _split(R[0], 3, 0)
        Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h = _split(B[0], 6, 0)
        z = sigmoid(x @ W_z.T + h @ R_z.T + Wb_z + Rb_z)
        r = sigmoid(x @ W_r.T + h @ R_r.T + Wb_r + Rb_r)
        if linear_before_reset:
            hh = np.tanh(x @ W_h.T + r * (h @ R_h.T + Rb_h) + Wb_h)
        else:
            hh = np.tanh(x @ W_h.T + (r * h) @ R_h.T + Rb_h + Wb_h)
        return (1 - z) * hh + z * h

    return cell, params


def onnx_lstm(x, h, c, W, R, B):
    """ONNX LSTM: W (4H, D), R (4H, H) row blocks i, o, f, c; B (8H,) = [Wb, Rb]."""
    Wb, Rb = _split(B, 2, 0)
    i, o, f, g = _split(x @ W.T + h @ R.T + Wb + Rb, 4)
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def onnx_lstm_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"W": (4 * H, D), "R": (4 * H, H), "B": (8 * H,)}


def onnx_rnn_relu(x, h, W, R, B):
    """ONNX RNN with activations=['Relu']: W (H, D), R (H, H), B (2H,) = [Wb, Rb]."""
    Wb, Rb = _split(B, 2, 0)
    return np.maximum(x @ W.T + h @ R.T + Wb + Rb, 0.0)


def onnx_rnn_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"W": (H, D), "R": (H, H), "B": (2 * H,)}


def flax_linen_gru(x, h, **p):
    """flax.linen.GRUCell: Dense layers ir, iz, in (kernel (D, H), bias) and hr, hz (kernel
    (H, H), no bias), hn (kernel, bias), n = tanh(in(x) + r ⊙ hn(h))."""
    r = sigmoid(x @ p["ir.kernel"] + p["ir.bias"] + h @ p["hr.kernel"])
    z = sigmoid(x @ p["iz.kernel"] + p["iz.bias"] + h @ p["hz.kernel"])
    n = np.tanh(x @ p["in.kernel"] + p["in.bias"] + r * (h @ p["hn.kernel"] + p["hn.bias"]))
    return (1 - z) * n + z * h


def flax_linen_gru_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for gate in "rzn":
        shapes |= {f"i{gate}.kernel": (D, H), f"i{gate}.bias": (H,), f"h{gate}.kernel": (H, H)}
    return shapes | {"hn.bias": (H,)}


def flax_nnx_gru(x, h, dense_i_kernel, dense_i_bias, dense_h_kernel):
    """flax.nnx.GRUCell: dense_i (D, 3H) with bias, dense_h (H, 3H) without, blocks r, z, n;
    n = tanh(x_n + r ⊙ h_n) — no b_hn (google/flax#5594)."""
    x_r, x_z, x_n = _split(x @ dense_i_kernel + dense_i_bias, 3)
    h_r, h_z, h_n = _split(h @ dense_h_kernel, 3)
    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def flax_nnx_gru_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"dense_i_kernel": (D, 3 * H), "dense_i_bias": (3 * H,), "dense_h_kernel": (H, 3 * H)}


def torch_gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """nn.GRUCell's own layout and names."""
    r_i, z_i, n_i = _split(x @ weight_ih.T + bias_ih, 3)
    r_h, z_h, n_h = _split(h @ weight_hh.T + bias_hh, 3)
    r, z = sigmoid(r_i + r_h), sigmoid(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    return (1 - z) * n + z * h


def torch_gru_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,),
            "bias_hh": (3 * H,)}


def flipped_gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """torch_gru with the update gate's roles swapped: h' = (1 − z) ⊙ h + z ⊙ n."""
    r_i, z_i, n_i = _split(x @ weight_ih.T + bias_ih, 3)
    r_h, z_h, n_h = _split(h @ weight_hh.T + bias_hh, 3)
    r, z = sigmoid(r_i + r_h), sigmoid(z_i + z_h)
    n = np.tanh(n_i + r * n_h)
    return z * n + (1 - z) * h


def permuted_lstm(x, h, c, W, b):
    """Gates stacked g, o, i, f on a leading axis, each (H, H + D) over [h, x]; bias (4, H)."""
    hx = np.concatenate([h, x], axis=1)
    g, o, i, f = (hx @ W[k].T + b[k] for k in range(4))
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def permuted_lstm_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"W": (4, H, H + D), "b": (4, H)}


def tf1_lstm(x, h, c, kernel, bias):
    """TF1 BasicLSTMCell: kernel (D + H, 4H) over [x, h], gates i, j, f, o, forget_bias = 1."""
    i, j, f, o = _split(np.concatenate([x, h], axis=1) @ kernel + bias, 4)
    c_new = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
    return np.tanh(c_new) * sigmoid(o), c_new


def tf1_lstm_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"kernel": (D + H, 4 * H), "bias": (4 * H,)}


def seed002_rnn(x, h, W, b):
    """Seed 002's Elman cell: one matrix W (H, H + D) over [h, x], bias (H,), tanh."""
    return np.tanh(np.concatenate([h, x], axis=1) @ W.T + b)


def seed002_rnn_params(D: int, H: int) -> dict[str, tuple[int, ...]]:
    return {"W": (H, H + D), "b": (H,)}


# (id, cell, PARAMS, kind, expected formula(s), a note the finding must carry)
LAYOUTS = [
    ("keras_gru_reset_after", *keras_gru(True), "gru", {"gru.cell.pytorch"}, None),
    ("keras_gru_reset_before", *keras_gru(False), "gru", {"gru.cell.textbook"}, None),
    ("keras_lstm", keras_lstm, keras_lstm_params, "lstm", {"lstm.cell"}, None),
    ("onnx_gru_linear_before_reset", *onnx_gru(1), "gru", {"gru.cell.pytorch"}, None),
    ("onnx_gru_default", *onnx_gru(0), "gru", {"gru.cell.textbook"}, None),
    ("onnx_lstm", onnx_lstm, onnx_lstm_params, "lstm", {"lstm.cell"}, None),
    ("onnx_rnn_relu", onnx_rnn_relu, onnx_rnn_params, "rnn", {"rnn.cell"}, None),
    ("flax_linen_gru", flax_linen_gru, flax_linen_gru_params, "gru", {"gru.cell.pytorch"}, None),
    # PyTorch's GRU with b_hn = 0, or b_hn outside the reset gate: the same cells.
    ("flax_nnx_gru", flax_nnx_gru, flax_nnx_gru_params, "gru", {"gru.cell.pytorch"},
     "is gru.bug."),
    ("torch_gru", torch_gru, torch_gru_params, "gru", {"gru.cell.pytorch"}, None),
    ("flipped_gru", flipped_gru, torch_gru_params, "gru", {"gru.cell.pytorch"}, "update gate is flipped"),
    ("permuted_lstm", permuted_lstm, permuted_lstm_params, "lstm", {"lstm.cell"}, None),
    ("tf1_lstm", tf1_lstm, tf1_lstm_params, "lstm", {"lstm.cell"}, "adds +1 to gate f"),
    ("seed002_rnn", seed002_rnn, seed002_rnn_params, "rnn", {"rnn.cell"}, None),
]


@pytest.mark.parametrize(("cell", "params", "kind", "formulas", "note"),
                         [pytest.param(*case[1:], id=case[0]) for case in LAYOUTS])
def test_identify_recovers_layout_and_formula_of_each_framework_layout(cell, params, kind, formulas,
                                                                        note):
    found = identify(cell, params, kind=kind, run_checks=False)
    assert found.identified, found.ruled_out
    assert found.variant in formulas, (found.variant, found.ruled_out)
    assert found.missing == (["b_hh[n]"] if cell is flax_nnx_gru else [])
    if note:
        assert any(note in n for n in found.notes), found.notes
    # The printed code is the conversion: the cell on its output is the formula, at new sizes.
    from nnspec.implementations import reference

    D, H = 6, 3
    rng = np.random.default_rng(1)
    G = {"gru": 3, "lstm": 4, "rnn": 1}[kind]
    w = dict(w_ih=rng.normal(size=(G * H, D)), w_hh=rng.normal(size=(G * H, H)),
             b_ih=rng.normal(size=G * H), b_hh=rng.normal(size=G * H))
    if found.missing:  # exact where the parameters it has no place for (b_hn) are zero
        w["b_hh"][2 * H:] = 0.0
    x, h, c = rng.normal(size=(2, D)), rng.normal(size=(2, H)), rng.normal(size=(2, H))
    states = (h, c) if kind == "lstm" else (h,)
    namespace: dict[str, Any] = {}
    exec(found.source, namespace)
    got = cell(x, *states, **namespace["from_torch"](**w))
    extra = {"nonlinearity": found.nonlinearity} if kind == "rnn" else {}
    want = getattr(reference, found.function)(x, *states, *w.values(), **extra)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
    # Its docstring says an absent bias is zeros: None converts as zeros would.
    unbiased = namespace["from_torch"](w["w_ih"], w["w_hh"], None, None)
    zeros = namespace["from_torch"](w["w_ih"], w["w_hh"], 0 * w["b_ih"], 0 * w["b_hh"])
    for name, array in zeros.items():
        np.testing.assert_array_equal(unbiased[name], array)
    torch = pytest.importorskip("torch")  # PyTorch's own tensors, as a user converts them
    tensors = namespace["from_torch"](torch.tensor(w["w_ih"]), torch.tensor(w["w_hh"]), None, None)
    for name, array in zeros.items():
        np.testing.assert_array_equal(np.asarray(tensors[name]), array)


def test_identify_names_the_onnx_and_keras_gate_orders_in_the_code():
    found = identify(*onnx_gru(0), kind="gru", run_checks=False)
    assert '"W": np.stack([np.concatenate([w_ih[z], w_ih[r], w_ih[n]])])' in found.source
    assert "b_ih[z], b_ih[r], b_ih[n], b_hh[z], b_hh[r], b_hh[n]" in found.source
    found = identify(*keras_gru(False), kind="gru", run_checks=False)
    assert '"kernel": np.concatenate([w_ih[z], w_ih[r], w_ih[n]]).T' in found.source
    assert "b_ih[n] + b_hh[n]" in found.source  # the textbook cell sees only their sum


def test_identify_with_fixed_shapes_needs_and_uses_the_sizes():
    shapes = {"kernel": (3, 12), "recurrent_kernel": (4, 12), "bias": (2, 12)}
    with pytest.raises(IdentifyError, match="input_size and hidden_size"):
        identify(keras_gru(True)[0], shapes, kind="gru", run_checks=False)
    found = identify(keras_gru(True)[0], shapes, kind="gru", input_size=3, hidden_size=4,
                     run_checks=False)
    assert found.identified and found.variant == "gru.cell.pytorch"


def test_identify_finds_no_layout_for_a_cell_no_formula_explains_and_says_what_it_ruled_out():
    def relu_candidate_gru(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        r_i, z_i, n_i = _split(x @ weight_ih.T + bias_ih, 3)
        r_h, z_h, n_h = _split(h @ weight_hh.T + bias_hh, 3)
        r, z = sigmoid(r_i + r_h), sigmoid(z_i + z_h)
        return (1 - z) * np.maximum(n_i + r * n_h, 0.0) + z * h

    found = identify(relu_candidate_gru, torch_gru_params, kind="gru")
    assert not found.identified and not found.ok and found.source is None
    assert found.verification is None
    tried = [line.split(":")[0] for line in found.ruled_out]
    assert "gru.cell.pytorch" in tried and "gru.cell.textbook" in tried
    assert all(len(line.split(": ", 1)[1]) > 20 for line in found.ruled_out)


def test_identify_reports_a_cell_without_biases_as_missing_them():
    def no_bias_gru(x, h, weight_ih, weight_hh):
        return torch_gru(x, h, weight_ih, weight_hh, 0.0, 0.0)

    found = identify(no_bias_gru, lambda D, H: {"weight_ih": (3 * H, D), "weight_hh": (3 * H, H)},
                     kind="gru", run_checks=False)
    assert found.identified and found.variant == "gru.cell.pytorch"
    assert found.missing == ["b_hh[n]", "b_hh[r]", "b_hh[z]", "b_ih[n]", "b_ih[r]", "b_ih[z]"]


def test_identify_rejects_bad_input_with_one_line():
    with pytest.raises(IdentifyError, match="kind must be one of"):
        identify(torch_gru, torch_gru_params, kind="lstmm")
    with pytest.raises(IdentifyError, match="must return h'"):
        identify(lambda x, h, **p: (h, h), torch_gru_params, kind="gru")
    with pytest.raises(IdentifyError, match="raised TypeError"):
        identify(torch_gru, lambda D, H: {"w": (3 * H, D)}, kind="gru")


def test_the_code_is_held_to_the_entrywise_mapping_exactly(monkeypatch):
    """The written code must give the probe's entries bit for bit: an offset one unit in the last
    place off (1 + 2⁻⁵², which a 1e-12 tolerance would let through) is not reported."""
    import nnspec.identify as identify_module

    written = identify_module.source

    def off_by_one_ulp(*args: Any) -> str:
        code = written(*args)
        assert "- 1.0" in code
        return code.replace("- 1.0", f"- {np.nextafter(1.0, 2.0)!r}")

    assert identify(tf1_lstm, tf1_lstm_params, kind="lstm", run_checks=False).identified
    monkeypatch.setattr(identify_module, "source", off_by_one_ulp)
    found = identify(tf1_lstm, tf1_lstm_params, kind="lstm", run_checks=False)
    assert not found.identified and found.source is None
    assert any("block structure written as code" in line for line in found.ruled_out)


def test_an_entrys_value_is_rounded_as_the_code_computes_it():
    """Formula.value sums a folded bias, then adds the offset, as ``b_ih[f] + b_hh[f] - 1.0``
    does; summing in another order would differ in the last place for these values."""
    from nnspec.identify.layout import Formula
    from nnspec.identify.probe import Term

    theta = {"b_ih": np.array([0.6]), "b_hh": np.array([0.8])}
    f = Formula(1, (Term("b_ih", 0), Term("b_hh", 0)), -1.0, 0, None)
    assert f.value(theta) == 0.6 + 0.8 - 1.0
    assert (-1.0 + 0.6) + 0.8 != 0.6 + 0.8 - 1.0  # the order matters for these values


# ---- verification: the full checks decide ---------------------------------------------------------

def test_a_wrong_conversion_fails_the_full_checks():
    cell, params = keras_gru(True)
    found = identify(cell, params, kind="gru", run_checks=False)
    assert not found.ok  # not verified, so not reported as a pass
    wrong = found.source.replace("w_ih[z], w_ih[r]", "w_ih[r], w_ih[z]")
    assert wrong != found.source
    namespace: dict[str, Any] = {}
    exec(wrong, namespace)
    module = conversion_module(cell, namespace["from_torch"], kind="gru", function="gru_cell",
                               dtype=np.float64)
    # Swapped gate blocks are wrong on every input: two examples per check show it cheaply.
    verdict = verify(module, spec_id("gru_cell"), examples=2)
    assert verdict.verdict == "fail" and not verdict.ok, verdict
    assert verdict.failed > 0 and verdict.first_failure


# The diagnosis runs on every failed check: tens of seconds under a full run's load.
@pytest.mark.slow
def test_identified_bug_is_verified_as_failing_and_named_by_the_diagnosis():
    found = identify(keras_lstm_no_tanh, keras_lstm_params, kind="lstm", examples=5)
    assert found.identified and found.variant == "lstm.bug.no_tanh_on_cell"
    assert found.verification is not None and found.verification.verdict == "fail"
    assert not found.ok
    assert any("lstm.bug.no_tanh_on_cell" in line for line in found.verification.diagnoses)


def test_cli_identifies_verifies_and_prints_the_conversion(capsys, tmp_path):
    source = tmp_path / "tf1_cell.py"
    source.write_text(
        "import numpy as np\nfrom scipy.special import expit\nKIND = 'lstm'\n"
        "INPUT_SIZE, HIDDEN_SIZE = 3, 4\n"
        "PARAMS = {'kernel': (7, 16), 'bias': (16,)}\n"
        "def CELL(x, h, c, kernel, bias):\n"
        "    i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ kernel + bias, 4, axis=1)\n"
        "    c_new = c * expit(f + 1.0) + expit(i) * np.tanh(j)\n"
        "    return np.tanh(c_new) * expit(o), c_new\n")
    args = _parse(["identify", str(source), "--json", "--examples", "2"])
    assert identify_cli.run(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["variant"] == "lstm.cell"
    assert data["verification"]["verdict"] == "pass"
    assert "b_ih[f] + b_hh[f] - 1.0" in data["source"]
    # The counts and reasons are lstm.cell's own row: its gradient checks are not provided,
    # and the checks of lstm.layer, which the run skips too, are not counted in it.
    verification = data["verification"]
    assert verification["passed"] > 0 and verification["not_provided"] > 0
    reasons = " ".join(verification["not_provided_reasons"])
    assert "vjp_lstm_cell" in reasons and "lstm_layer" not in reasons


def _found(verdict: str, **verification: Any) -> Identification:
    """An identified GRU whose verification gave ``verdict``, for the text output alone."""
    counts = {"passed": 0, "failed": 0, "not_provided": 0} | verification
    return Identification(kind="gru", identified=True, variant="gru.cell.pytorch",
                          function="gru_cell", source="def from_torch(w_ih, w_hh, b_ih, b_hh): ...\n",
                          verification=Verification(spec_id="gru.cell.pytorch", verdict=verdict,
                                                    seconds=1.0, **counts))


def test_cli_text_says_what_the_verification_found():
    out = io.StringIO()
    identify_cli._text("cell.py", _found("not provided", not_provided=3,
                                         not_provided_reasons=["cell does not define gru_cell()"],
                                         problem="the checks of gru.cell.pytorch gave no verdict"),
                       out)
    text = out.getvalue()
    assert "FAIL" not in text and "verified)" not in text
    assert "not verified: the checks of gru.cell.pytorch gave no verdict on it" in text
    assert "3 not provided: cell does not define gru_cell()" in text
    assert "gradients and layers" not in text  # said only where that is what was skipped
    out = io.StringIO()
    same = "gru_cell() matches gru.bug.no_bias_hn (relative distance 0); the spec is at 0.3"
    identify_cli._text("cell.py", _found("fail", passed=2, failed=3, first_failure="gru_cell: wrong",
                                         diagnoses=[same, same, same]), out)
    assert "the checks of gru.cell.pytorch FAIL with it" in out.getvalue()
    # One diagnosis line per failing call repeated itself: the first, then what the rest name.
    assert out.getvalue().count("diagnosis: ") == 1
    assert "(2 more failing calls diagnosed, naming gru.bug.no_bias_hn)" in out.getvalue()
    out = io.StringIO()
    identify_cli._text("cell.py", _found("pass", passed=7, not_provided=5, reasons_complete=False,
                                         not_provided_reasons=["cell does not define vjp_gru_cell()"]),
                       out)
    text = out.getvalue()
    assert "(verified)" in text and "FAIL" not in text
    assert "5 not provided; the reasons recorded: cell does not define vjp_gru_cell()" in text


def test_cli_says_in_one_line_why_a_cell_cannot_be_used(capsys, tmp_path):
    source = tmp_path / "empty_cell.py"
    source.write_text("KIND = 'gru'\n")
    assert identify_cli.run(_parse(["identify", str(source)])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "defines no CELL and no PARAMS" in err
    assert identify_cli.run(_parse(["identify", str(tmp_path / "absent.py")])) == 2
    assert "no such file" in capsys.readouterr().err


_ENDING_CELL = ("KIND = 'gru'\n"
                "def PARAMS(D, H):\n    return {'W': (3 * H, D)}\n"
                "def CELL(x, h, W):\n{body}")


def _command(*argv: str) -> Any:
    """Run ``nnspec`` as a command: a check that the cell cannot end must not run in pytest's
    own process, where a regression would end the test run with status 0."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "nnspec", *argv], capture_output=True, text=True,
                          timeout=60)


def test_cli_fails_in_one_line_when_the_cell_ends_the_process(capsys, tmp_path):
    """A cell that calls os._exit(0) ended `nnspec identify` with status 0 and no output, read as
    success: the identification runs in a child, and a child that ends without handing over its
    result is status 2."""
    source = tmp_path / "exit_cell.py"
    source.write_text(_ENDING_CELL.replace("{body}", "    import os\n    os._exit(0)\n"))
    done = _command("identify", str(source))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("nnspec identify: the cell ended the process (exit status 0) before "
                           "identification finished\n")
    # sys.exit(0) too, here through run() (SystemExit cannot end pytest); with --json, stdout is
    # one object with the error, and what the cell printed went to stderr.
    source.write_text(_ENDING_CELL.replace("{body}", "    print('from the cell')\n    raise SystemExit(0)\n"))
    assert identify_cli.run(_parse(["identify", str(source), "--json"])) == 2
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["exit_status"] == 2 and "ended the process (exit status 0)" in data["error"]
    assert "from the cell" in captured.err


def test_cli_stops_a_cell_that_hangs_at_the_timeout(tmp_path):
    """The child and its process group are killed at --timeout."""
    import time

    source = tmp_path / "hang_cell.py"
    source.write_text(_ENDING_CELL.replace("{body}", "    while True:\n        pass\n"))
    start = time.monotonic()
    done = _command("identify", str(source), "--timeout", "3")
    assert time.monotonic() - start < 10
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "nnspec identify: did not finish within 3 s (--timeout)\n"


def test_cli_prints_the_verified_conversion_of_the_readme_example_as_a_command():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "identify_keras_gru.py"
    if not path.is_file():
        pytest.skip("examples/ exists in a repository checkout only")
    done = _command("identify", str(path), "--examples", "2")
    assert done.returncode == 0, done.stderr
    assert "# The conversion (verified):\n" in done.stdout and "def from_torch(" in done.stdout


def test_cli_rejects_a_timeout_that_is_not_positive(capsys):
    assert identify_cli.run(_parse(["identify", "cell.py", "--timeout", "0"])) == 2
    assert capsys.readouterr().err == ("nnspec identify: --timeout must be a positive number of "
                                       "seconds, got 0\n")


def _parse(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser(prog="nnspec")
    identify_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


# ---- the frameworks themselves, where installed ------------------------------------------------
# Each factory returns (CELL, PARAMS) for a framework's own cell, or skips with the reason the
# framework cannot be used here; bench/test_identify.py times the identification of each.

def torch_module_cell(kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """nn.GRUCell or nn.LSTMCell under its own parameter names (weight_ih, …), in float64."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    from torch.func import functional_call

    module = torch.nn.GRUCell if kind == "gru" else torch.nn.LSTMCell

    def params(D: int, H: int) -> dict[str, tuple[int, ...]]:
        return {k: tuple(p.shape) for k, p in module(D, H).named_parameters()}

    def cell(x, h, *c, **p):
        t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in p.items()}
        m = module(x.shape[1], h.shape[1]).double()
        state = torch.as_tensor(h) if not c else (torch.as_tensor(h), torch.as_tensor(c[0]))
        with torch.no_grad():
            out = functional_call(m, t, (torch.as_tensor(x), state))
        return tuple(o.numpy() for o in out) if c else out.numpy()

    return cell, params


def flax_linen_cell(kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """flax.linen's GRUCell or LSTMCell (carry (c, h)), its nested parameters flattened to
    "layer.kernel" names, jitted per size. PARAMS reads the shapes from ``jax.eval_shape`` of
    ``init``: running the initialisers would compile them, for values never used."""
    jax = pytest.importorskip("jax", reason="jax is not installed")
    linen = pytest.importorskip("flax.linen", reason="flax is not installed")
    module = linen.GRUCell if kind == "gru" else linen.LSTMCell
    steps: dict[tuple[int, int], Any] = {}

    def shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
        carry = jax.ShapeDtypeStruct((1, H), jax.numpy.float32)
        variables = jax.eval_shape(module(features=H).init, jax.random.key(0),
                                   (carry, carry) if kind == "lstm" else carry,
                                   jax.ShapeDtypeStruct((1, D), jax.numpy.float32))
        return {f"{layer}.{name}": tuple(v.shape)
                for layer, leaves in variables["params"].items() for name, v in leaves.items()}

    def cell(x, h, *c, **p):
        D, H = x.shape[1], h.shape[1]
        if (D, H) not in steps:
            steps[(D, H)] = jax.jit(lambda params, carry, x, H=H: module(features=H).apply(
                {"params": params}, carry, x)[0])
        nested: dict[str, dict[str, Any]] = {}
        for key, value in p.items():
            layer, name = key.split(".")
            nested.setdefault(layer, {})[name] = value
        carry = steps[(D, H)](nested, (c[0], h) if c else h, x)
        return (np.asarray(carry[1]), np.asarray(carry[0])) if c else np.asarray(carry)

    return cell, shapes


def flax_nnx_gru_cell() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """flax.nnx.GRUCell (float32) as NNX code runs, under ``jax.jit``: one step per size that
    merges the cell's graph with the given parameters. The module is built abstractly
    (``nnx.eval_shape``): its own initial values would be replaced at every call, and building
    them compiles its random initialisers anew at each size, seconds a size."""
    jax = pytest.importorskip("jax", reason="jax is not installed")
    nnx = pytest.importorskip("flax.nnx", reason="flax is not installed")
    f32 = jax.numpy.float32
    steps: dict[tuple[int, int], Any] = {}

    def shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
        return {"dense_i.kernel": (D, 3 * H), "dense_i.bias": (3 * H,),
                "dense_h.kernel": (H, 3 * H)}

    def step(D: int, H: int) -> Any:
        if (D, H) not in steps:
            graphdef, abstract = nnx.split(nnx.eval_shape(
                lambda: nnx.GRUCell(D, H, rngs=nnx.Rngs(0))))

            def apply(params, h, x):
                state = jax.tree.map(lambda leaf: leaf, abstract)  # a copy, filled below
                nnx.replace_by_pure_dict(state, {
                    layer: {name: params[f"{layer}.{name}"] for name in leaves}
                    for layer, leaves in nnx.to_pure_dict(abstract).items()})
                return nnx.merge(graphdef, state)(h, x)[0]

            steps[(D, H)] = jax.jit(apply)
        return steps[(D, H)]

    def cell(x, h, **p):
        params = {k: jax.numpy.asarray(v, dtype=f32) for k, v in p.items()}
        return np.asarray(step(x.shape[1], h.shape[1])(params, jax.numpy.asarray(h, dtype=f32),
                                                      jax.numpy.asarray(x, dtype=f32)))

    return cell, shapes


def onnx_operator_cell(kind: str, linear_before_reset: int = 1, runtime: str = "onnx_runtime"
                       ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """ONNX's GRU, LSTM or RNN (tanh) operator over one step, W, R, B as graph inputs (float32),
    with the operator's own shapes: the graph nnspec.implementations.onnx_graphs builds for its
    adapters, run by ``runtime``'s adapter (onnx_runtime: ONNX Runtime's CPU kernels;
    openvino_runtime: OpenVINO's CPU plugin at f32). Skips with the reason where it is absent."""
    try:
        from nnspec.implementations import onnx_graphs
        adapter = importlib.import_module(f"nnspec.implementations.{runtime}")
    except ImplementationUnavailable as exc:
        pytest.skip(f"{runtime} cannot run here: {exc}")
    run = adapter.runner(adapter.CONFIG) if runtime == "openvino_runtime" else adapter._run
    G = {"gru": 3, "lstm": 4, "rnn": 1}[kind]
    models: dict[int, Any] = {}

    def shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
        return {"W": (1, G * H, D), "R": (1, G * H, H), "B": (1, 2 * G * H)}

    def cell(x, h, *c, W, R, B):
        H = h.shape[1]
        if H not in models:
            models[H] = onnx_graphs.recurrent_model(kind, H, np.dtype(np.float32),
                                                    linear_before_reset=linear_before_reset)
        feeds = {"X": x[None], "W": W, "R": R, "B": B, "initial_h": h[None]}
        if c:
            feeds["initial_c"] = c[0][None]
        out = run(models[H], {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})
        return (out[1][0], out[2][0]) if c else out[1][0]

    return cell, shapes


def keras_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Keras 3, on the torch backend unless Keras is imported already; skips with the reason
    when it cannot be imported."""
    import sys

    if "keras" not in sys.modules:
        monkeypatch.setenv("KERAS_BACKEND", "torch")
    try:
        import keras
    except Exception as exc:  # keras absent, or its default backend (TensorFlow) absent
        pytest.skip(f"keras cannot be imported here: {exc}")
    return keras


def keras_cell(keras: Any, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """keras.layers.GRUCell (reset_after=True, bias (2, 3H)) or LSTMCell, float32, one layer
    per size, its weights set with set_weights."""
    G = 3 if kind == "gru" else 4
    layers: dict[tuple[int, int], Any] = {}

    def shapes(D: int, H: int) -> dict[str, tuple[int, ...]]:
        return {"kernel": (D, G * H), "recurrent_kernel": (H, G * H),
                "bias": (2, 3 * H) if kind == "gru" else (4 * H,)}

    def layer(D: int, H: int) -> Any:
        if (D, H) not in layers:
            layers[(D, H)] = (keras.layers.GRUCell if kind == "gru" else keras.layers.LSTMCell)(H)
            layers[(D, H)].build((None, D))
        return layers[(D, H)]

    def cell(x, h, *c, kernel, recurrent_kernel, bias):
        found = layer(x.shape[1], h.shape[1])
        found.set_weights([np.asarray(w, dtype=np.float32) for w in (kernel, recurrent_kernel, bias)])
        states = [np.asarray(s, dtype=np.float32) for s in (h, *c)]
        out, new = found(np.asarray(x, dtype=np.float32), states)
        if c:
            return tuple(keras.ops.convert_to_numpy(s) for s in new)
        return keras.ops.convert_to_numpy(out)

    return cell, shapes


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_identify_torch_modules_by_their_own_parameter_names(kind):
    cell, params = torch_module_cell(kind)
    found = identify(cell, params, kind=kind, run_checks=False)
    assert found.identified and found.variant == {"gru": "gru.cell.pytorch",
                                                  "lstm": "lstm.cell"}[kind]
    assert '"weight_ih": w_ih,' in found.source and '"bias_hh": b_hh,' in found.source


# JAX's import and first-call compiling take seconds (bench/test_identify.py measures them).
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_identify_flax_linen_cells(kind):
    cell, shapes = flax_linen_cell(kind)
    found = identify(cell, shapes, kind=kind, run_checks=False)
    assert found.identified, found.ruled_out
    assert found.variant == {"gru": "gru.cell.pytorch", "lstm": "lstm.cell"}[kind]
    assert not found.missing
    if kind == "gru":  # linen keeps b_hn inside r ⊙ (·): the hn layer has a bias
        assert '"hn.bias": b_hh[n],' in found.source


@pytest.mark.slow
def test_identify_flax_nnx_gru_has_no_place_for_b_hn():
    cell, shapes = flax_nnx_gru_cell()
    found = identify(cell, shapes, kind="gru", run_checks=False)
    assert found.identified and found.variant == "gru.cell.pytorch", found.ruled_out
    assert found.missing == ["b_hh[n]"] and found.dtype == "float32"
    assert any("gru.bug." in note for note in found.notes), found.notes


@pytest.mark.parametrize("runtime", ["onnx_runtime", "openvino_runtime"])
@pytest.mark.parametrize(("kind", "linear_before_reset", "formula"),
                         [("gru", 1, "gru.cell.pytorch"), ("gru", 0, "gru.cell.textbook"),
                          ("lstm", 1, "lstm.cell"), ("rnn", 1, "rnn.cell")])
def test_identify_onnx_operators_in_each_runtime(kind, linear_before_reset, formula, runtime):
    cell, shapes = onnx_operator_cell(kind, linear_before_reset, runtime)
    # The textbook GRU is verified too: ONNX's default, in float32, judged at float32's bounds.
    # Two examples per check keep it in the default run; the full verification's power is the
    # checks' own, measured in their tests.
    verified = (kind, linear_before_reset) == ("gru", 0)
    found = identify(cell, shapes, kind=kind, run_checks=verified, examples=2)
    assert found.identified and found.variant == formula, found.ruled_out
    assert found.dtype == "float32"
    if verified:
        assert found.ok, found.verification
    order = {"gru": "w_ih[z], w_ih[r], w_ih[n]", "lstm": "w_ih[i], w_ih[o], w_ih[f], w_ih[g]",
             "rnn": '"W": np.stack([w_ih])'}[kind]
    assert order in found.source


# Importing Keras takes seconds; identification only, the verification's path is the one the
# ONNX Runtime test and the tests above run.
@pytest.mark.slow
def test_identify_keras_gru_and_lstm_cells(monkeypatch):
    keras = keras_module(monkeypatch)
    found = identify(*keras_cell(keras, "gru"), kind="gru", run_checks=False)
    assert found.identified and found.variant == "gru.cell.pytorch", found.ruled_out
    assert '"kernel": np.concatenate([w_ih[z], w_ih[r], w_ih[n]]).T' in found.source
    assert found.dtype == "float32"
    found = identify(*keras_cell(keras, "lstm"), kind="lstm", run_checks=False)
    assert found.identified and found.variant == "lstm.cell", found.ruled_out
    # Keras' order i, f, c, o is PyTorch's i, f, g, o: its kernel is w_ihᵀ as it stands.
    assert '"kernel": w_ih.T' in found.source


def test_cli_reports_what_it_ruled_out_when_nothing_fits(capsys, tmp_path):
    source = tmp_path / "relu_gru.py"
    source.write_text(
        "import numpy as np\nfrom scipy.special import expit\n"
        "def PARAMS(D, H):\n    return {'w': (3 * H, D), 'u': (3 * H, H), 'b': (3 * H,)}\n"
        "def CELL(x, h, w, u, b):\n"
        "    r_x, z_x, n_x = np.split(x @ w.T + b, 3, axis=1)\n"
        "    r_h, z_h, n_h = np.split(h @ u.T, 3, axis=1)\n"
        "    r, z = expit(r_x + r_h), expit(z_x + z_h)\n"
        "    return (1 - z) * np.maximum(n_x + r * n_h, 0.0) + z * h\n")
    assert identify_cli.run(_parse(["identify", str(source), "--kind", "gru"])) == 1
    out = capsys.readouterr().out
    assert "not identified" in out and "ruled out:" in out and "from_torch" not in out
    assert "  - gru.cell.pytorch: " in out and "  - gru.cell.textbook: " in out


@pytest.mark.parametrize(("example", "formula", "line"), [
    ("identify_keras_gru.py", "gru.cell.pytorch", '"kernel": np.concatenate([w_ih[z], w_ih[r], w_ih[n]]).T'),
    ("identify_tf1_lstm.py", "lstm.cell", "b_ih[f] + b_hh[f] - 1.0"),
])
def test_readme_examples_are_identified(example, formula, line):
    from pathlib import Path

    from nnspec.identify import load

    path = Path(__file__).resolve().parents[2] / "examples" / example
    if not path.is_file():
        pytest.skip("examples/ exists in a repository checkout only")
    cell, params, settings = load(str(path))
    found = identify(cell, params, kind=settings["kind"], input_size=settings.get("input_size"),
                     hidden_size=settings.get("hidden_size"), run_checks=False)
    assert found.identified and found.variant == formula and line in found.source


def test_a_cell_declared_float32_that_returns_float64_is_probed_at_float32():
    """The declared DTYPE reaches the probes: a cell rounding its output to float32 but returning
    float64 was ruled out everywhere at a relative distance of 2e-8 (float64's threshold)."""
    from nnspec.reference import gru as ref_gru

    def cell(x, h, w_ih, w_hh, b_ih, b_hh):
        return ref_gru.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh).astype(np.float32).astype(np.float64)

    def params(d: int, h: int) -> dict[str, tuple[int, ...]]:
        return {"w_ih": (3 * h, d), "w_hh": (3 * h, h), "b_ih": (3 * h,), "b_hh": (3 * h,)}

    found = identify(cell, params, kind="gru", input_size=3, hidden_size=4, dtype=np.float32,
                     run_checks=False)
    assert found.identified and found.variant == "gru.cell.pytorch", found.ruled_out
