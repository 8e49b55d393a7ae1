"""The framework adapters and the conformance atlas (nnspec.atlas, nnspec atlas).

The adapters' weight mappings are checked both ways on marked blocks (no framework needed); a
deliberately mis-mapped adapter — Keras' GRU handed PyTorch's blocks r, z, n unswapped
(keras-team/keras#15915), and an ONNX GRU whose linear_before_reset is dropped
(microsoft/onnxscript#2852) — must fail with the variant named; adapters whose framework is absent
skip with the reason. Checks run on one spec id with few examples, so the file stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
import types
from dataclasses import replace

import numpy as np
import pytest

from nnspec import atlas, oracle
from nnspec.checks.harness.loading import ImplementationUnavailable
from nnspec.cli import atlas as atlas_cli
from nnspec.implementations import keras_cells

KINDS = {"gru": 3, "lstm": 4, "rnn": 1}


def _marked(kind: str, D: int = 2, H: int = 3) -> tuple[np.ndarray, ...]:
    """Contract weights whose every entry tells its block k and position: 100k + index."""
    G = KINDS[kind]
    blocks = [100.0 * k + np.arange(H * (D + H + 2), dtype=float) for k in range(G)]
    w_ih = np.concatenate([b[:H * D].reshape(H, D) for b in blocks])
    w_hh = np.concatenate([b[H * D:H * (D + H)].reshape(H, H) for b in blocks])
    b_ih = np.concatenate([b[H * (D + H):H * (D + H + 1)] for b in blocks])
    b_hh = np.concatenate([b[H * (D + H + 1):] for b in blocks])
    return w_ih, w_hh, b_ih, b_hh


# ---- the Keras mapping, both ways -----------------------------------------------------------------

@pytest.mark.parametrize(("kind", "reset_after"),
                         [("gru", True), ("gru", False), ("lstm", True), ("rnn", True)])
def test_the_keras_mapping_puts_each_pytorch_block_where_keras_reads_it_and_back(kind, reset_after):
    w_ih, w_hh, b_ih, b_hh = _marked(kind)
    H = w_hh.shape[1]
    kernel, recurrent, bias = keras_cells.to_keras(kind, w_ih, w_hh, b_ih, b_hh,
                                                   reset_after=reset_after)
    keras_blocks = {"gru": ("z", "r", "h"), "lstm": ("i", "f", "c", "o"), "rnn": ("h",)}[kind]
    torch_blocks = {"gru": ("r", "z", "h"), "lstm": ("i", "f", "c", "o"), "rnn": ("h",)}[kind]
    for k, gate in enumerate(keras_blocks):
        t = torch_blocks.index(gate)
        np.testing.assert_array_equal(kernel[:, k * H:(k + 1) * H], w_ih[t * H:(t + 1) * H].T,
                                      err_msg=f"{kind} kernel block {gate}")
        np.testing.assert_array_equal(recurrent[:, k * H:(k + 1) * H], w_hh[t * H:(t + 1) * H].T,
                                      err_msg=f"{kind} recurrent kernel block {gate}")
    if kind == "gru" and reset_after:
        assert bias.shape == (2, 3 * H)  # Keras' input and recurrent bias rows
    back = keras_cells.from_keras(kind, kernel, recurrent, bias, reset_after=reset_after)
    np.testing.assert_array_equal(back[0], w_ih)
    np.testing.assert_array_equal(back[1], w_hh)
    if kind == "gru" and reset_after:
        np.testing.assert_array_equal(back[2], b_ih)
        np.testing.assert_array_equal(back[3], b_hh)
    else:  # one Keras bias: the cell only ever sees the sum
        np.testing.assert_array_equal(back[2] + back[3], b_ih + b_hh)


def test_a_keras_block_order_other_than_the_mapping_does_not_round_trip():
    """The mis-mapping the atlas must reject is a real change of layout, not a no-op."""
    w_ih, w_hh, b_ih, b_hh = _marked("gru")
    wrong = keras_cells.to_keras("gru", w_ih, w_hh, b_ih, b_hh, order=(0, 1, 2))
    back = keras_cells.from_keras("gru", *wrong)
    assert not np.array_equal(back[0], w_ih)


# ---- a mis-mapped adapter is rejected and named ---------------------------------------------------

def test_a_keras_gru_loaded_in_pytorchs_block_order_fails_and_is_named_while_the_mapped_one_passes():
    # Not imported here: Keras picks its backend on first import, in the adapters' workers.
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (pip install 'nnspec[keras]')")
    ids = ("gru.cell.pytorch",)
    adapters = {a.key: replace(a, ids=ids) for a in atlas.ADAPTERS}
    wrong = atlas.check_adapter(adapters["keras_misordered"], examples=3, seed=0)
    right = atlas.check_adapter(adapters["keras_torch"], examples=3, seed=0)
    assert wrong.status == right.status == "ran", (wrong.reason, right.reason)
    (w,), (r,) = wrong.rows, right.rows
    assert w.verdict == "fail" and w.variant == "gru.bug.gate_order_zrn", w
    assert r.verdict == "pass", r
    assert w.reproduce.startswith(".venv/bin/nnspec check nnspec.implementations.keras_misordered "
                                  "--only gru.cell.pytorch")


def test_an_onnx_gru_without_linear_before_reset_handed_as_pytorchs_is_named_the_textbook_cell():
    """What an exporter that drops linear_before_reset=1 produces (microsoft/onnxscript#2852)."""
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'nnspec[onnx]')")
    reference = importlib.import_module("nnspec.implementations.onnx_reference")
    dropped = types.ModuleType("onnx_gru_linear_before_reset_0")
    dropped.DTYPE = np.float64  # type: ignore[attr-defined]
    dropped.gru_cell = reference.gru_cell_textbook  # type: ignore[attr-defined]
    result = oracle.check(dropped, only=["gru.cell.pytorch"], examples=3, implementation_only=True)
    assert result.verdicts["gru.cell.pytorch"] == "fail"
    assert any("matches gru.cell.textbook" in line for line in result.diagnoses["gru.cell.pytorch"]), \
        result.diagnoses


def test_flax_nnx_gru_is_pytorchs_only_without_b_hn():
    """google/flax#5594: the NNX cell has nowhere to put b_hn."""
    pytest.importorskip("flax", reason="flax is not installed (pip install 'nnspec[jax]')")
    nnx_cells = importlib.import_module("nnspec.implementations.flax_nnx")
    reference = importlib.import_module("nnspec.implementations.reference")
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    w_ih, w_hh, b_ih, b_hh = (rng.normal(size=s) for s in ((12, 3), (12, 4), (12,), (12,)))
    no_b_hn = np.concatenate([b_hh[:8], np.zeros(4)])
    np.testing.assert_allclose(nnx_cells.gru_cell(x, h, w_ih, w_hh, b_ih, no_b_hn),
                               reference.gru_cell(x, h, w_ih, w_hh, b_ih, no_b_hn), rtol=0, atol=1e-14)
    assert np.abs(nnx_cells.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
                  - reference.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)).max() > 1e-3


# ---- absent frameworks skip with the reason -------------------------------------------------------

def test_an_adapter_whose_packages_are_absent_is_skipped_naming_the_extra():
    absent = atlas.Adapter("absent", "a framework not installed", "nnspec.implementations.nowhere",
                           ("nnspec_no_such_framework",), ("nnspec_no_such_framework",),
                           "nowhere", "")
    result = atlas.check_adapter(absent, examples=1, seed=0)
    assert result.status == "skipped" and not result.rows
    assert result.reason == "nnspec_no_such_framework not installed (pip install 'nnspec[nowhere]')"


@pytest.mark.parametrize(("module", "package", "extra"),
                         [("keras_torch", "keras", "keras"), ("keras_jax", "keras", "keras"),
                          ("keras_tensorflow", "tensorflow", "tensorflow"),
                          ("flax_nnx", "flax", "jax"), ("openvino_runtime", "openvino", "openvino")])
def test_an_adapter_module_without_its_framework_is_unavailable_with_the_reason(
        monkeypatch, module, package, extra):
    # A None entry in sys.modules makes `import package` raise ImportError, as if it were absent;
    # KERAS_BACKEND, which the Keras modules set, is restored afterwards.
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"nnspec.implementations.{module}", raising=False)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    with pytest.raises(ImplementationUnavailable, match=rf"{package} .*not installed.*nnspec\[{extra}"):
        importlib.import_module(f"nnspec.implementations.{module}")


def test_a_keras_backend_other_than_the_one_already_imported_is_unavailable(monkeypatch):
    running = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "jax"))
    monkeypatch.setitem(sys.modules, "keras", running)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    with pytest.raises(ImplementationUnavailable, match="already imported with the jax backend"):
        keras_cells.import_keras("torch")


def test_every_adapter_with_a_module_has_one_and_names_an_extra_or_none():
    """A runnable adapter's module is found by its path (not imported: its framework may be
    absent) and its skip names the extra that installs the framework; the OpenVINO row runs the
    shipped adapter."""
    for a in atlas.ADAPTERS:
        if a.module is None:
            assert a.reason, f"{a.key}: no module and no reason"
            continue
        assert importlib.util.find_spec(a.module) is not None, a.module
        assert a.extra or set(a.imports) <= {"torch"}, f"{a.key}: no extra to name"
    openvino = next(a for a in atlas.ADAPTERS if a.key == "openvino")
    assert openvino.module == "nnspec.implementations.openvino_runtime" and not openvino.reason


def test_every_reproduction_that_imports_openvino_turns_its_telemetry_off_first():
    # `import openvino` reports a usage event unless CI=true (nnspec.implementations.
    # openvino_runtime); a reproduction runs in a fresh interpreter of its own.
    probes = [f for f in atlas.FINDINGS if f.probe and "openvino" in f.probe]
    assert probes, "no reproduction imports openvino: the test has nothing to hold"
    for f in probes:
        first_import = re.search(r"^(import|from) [^#\n]*\bopenvino\b", f.probe, re.MULTILINE)
        assert first_import, f.key
        assert 'os.environ["CI"] = "true"' in f.probe[:first_import.start()], f.key


def test_every_findings_rows_name_adapters_and_spec_ids_the_atlas_runs():
    keys = {a.key: a for a in atlas.ADAPTERS}
    for f in atlas.FINDINGS:
        for e in f.expect:
            assert e.adapter in keys, f"{f.key}: unknown adapter {e.adapter}"
            assert e.spec_id in keys[e.adapter].ids, f"{f.key}: {e.adapter} runs no {e.spec_id}"


# ---- the atlas as data and as Markdown ------------------------------------------------------------

def _results() -> dict[str, atlas.FrameworkResult]:
    row = atlas.Row("gru.cell.pytorch", "fail", "gru.bug.no_bias_hn", "float64", "h' was 1",
                    [], "nnspec check m --only gru.cell.pytorch")
    ran = atlas.FrameworkResult("flax_nnx", "Flax NNX", "m", {"flax": "0.12"}, "jax", "dense_i",
                                "ran", dtype="float64", rows=[row])
    skipped = atlas.FrameworkResult("openvino", "OpenVINO", None, {}, "", "", "skipped",
                                    reason="not installed here")
    return {"flax_nnx": ran, "openvino": skipped}


def test_a_row_reads_the_lower_precision_the_diagnosis_found_unless_it_named_a_variant():
    float32 = ("the error scales like float32 rounding: max 2.9e-07 …: the implementation computes "
               "in float32 while declaring DTYPE float64")
    variant = "gru_cell() matches gru.bug.no_bias_hn (relative distance 1.9e-16); the spec …"
    lower = atlas.row("gru.cell.pytorch", "fail", [float32], ["h' was 1"], "float64", "cmd")
    assert (lower.computes_in, lower.variant, lower.message) == ("float32", None, "h' was 1")
    named = atlas.row("gru.cell.pytorch", "fail", [float32, variant], [], "float64", "cmd")
    assert (named.computes_in, named.variant) == ("float64", "gru.bug.no_bias_hn")
    absent = atlas.row("gru.layer", "not provided", [], ["does not define gru_layer()"], "float64",
                       "cmd")
    assert absent.computes_in is None and absent.message == "does not define gru_layer()"
    # Behind float32 (OpenVINO's default bf16 mode): the precision the error scales like.
    tf32 = ("the error scales like TF32 rounding: max 0.00041 …: the implementation multiplies "
            "with operands of TF32's precision (…) while declaring DTYPE float32")
    assert atlas.row("gru.cell.pytorch", "fail", [tf32], [], "float32", "cmd").computes_in == "TF32"


def test_a_finding_is_confirmed_only_by_the_verdict_and_the_variant_it_predicts():
    finding = next(f for f in atlas.FINDINGS if f.key == "flax_nnx_no_b_hn")
    results = _results()
    seen = {(r["adapter"], r["spec_id"]): r["seen"] for r in atlas.judge(finding, results)["rows"]}
    assert seen[("flax_nnx", "gru.cell.pytorch")] == "confirmed"
    assert seen[("flax_linen", "gru.cell.pytorch")] == "not run here"
    results["flax_nnx"].rows[0].variant = "gru.bug.gate_order_zrn"
    judged = atlas.judge(finding, results)["rows"][0]["seen"]
    assert judged == "not confirmed: fail, gru.bug.gate_order_zrn"


def test_the_markdown_lists_every_row_with_its_command_and_every_skip_with_its_reason():
    from dataclasses import asdict

    data = {"command": "nnspec atlas", "nnspec": "0", "python": "3.11",
            "frameworks": [asdict(r) for r in _results().values()],
            "findings": [atlas.judge(f, _results()) | {"probe": None} for f in atlas.FINDINGS[-2:]]}
    text = atlas.markdown(data)
    assert "| flax_nnx | `gru.cell.pytorch` | **FAIL** | gru.bug.no_bias_hn | float64 |" in text
    assert "`nnspec check m --only gru.cell.pytorch`" in text
    assert "| OpenVINO | not installed here |" in text
    assert "[apple/coremltools#1124](https://github.com/apple/coremltools/issues/1124)" in text


def test_the_atlas_command_refuses_an_unknown_adapter_in_one_line(capsys):
    parser = argparse.ArgumentParser()
    atlas_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["atlas", "--only", "keras_tensorflw"])
    assert args.run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nnspec atlas: unknown adapter keras_tensorflw;") and "\n" not in err
