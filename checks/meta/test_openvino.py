"""The OpenVINO adapter of the atlas (nnspec.implementations.openvino_runtime).

On a fixed small case its GRU (both values of linear_before_reset), LSTM and GRU layer equal the
reference within the float32 bounds of checks/bounds, held as the checks hold them
(checks/harness/compare.py); the same case compiled with the CPU plugin's default inference
precision (nnspec.implementations.openvino_default_precision) fails those bounds where that default
is not f32 (bf16 on CPUs with bf16 arithmetic), which is why the adapter sets the hint. Without
openvino the tests skip with the reason (checks/meta/test_atlas.py tests that message); without
onnx the module is unavailable naming its own extra. Importing it sends no telemetry.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.harness.compare import check_outputs
from nnspec.checks.harness.failure import NonConformance, assert_close
from nnspec.checks.harness.implementation import Implementation, describe_args
from nnspec.checks.harness.loading import ImplementationUnavailable
from nnspec.reference import gru as gru_ref
from nnspec.reference import lstm as lstm_ref

MODULE = "nnspec.implementations.openvino_runtime"
B, D, H, T = 3, 5, 4, 3


#: fn → (spec id, output names, reference, bounds, gate blocks).
CASES: dict[str, tuple[str, Sequence[str], Callable[..., Any], Callable[..., Any], int]] = {
    "gru_cell": ("gru.cell.pytorch", ("h'",), gru_ref.gru_cell, gru_bounds.gru_cell, 3),
    "gru_cell_textbook": ("gru.cell.textbook", ("h'",), gru_ref.gru_cell_textbook,
                          gru_bounds.gru_cell_textbook, 3),
    "lstm_cell": ("lstm.cell", ("h'", "c'"), lstm_ref.lstm_cell, lstm_bounds.lstm_cell, 4),
    "gru_layer": ("gru.layer", ("y", "h_T"), gru_ref.gru_layer, gru_bounds.gru_layer, 3),
}


@pytest.fixture
def openvino_runtime() -> ModuleType:
    try:
        return importlib.import_module(MODULE)
    except ImplementationUnavailable as exc:
        pytest.skip(f"the OpenVINO adapter cannot run here: {exc}")


def _case(fn: str, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The fixed arguments of ``fn``: unit normal inputs and state, weights and biases of the
    size of PyTorch's default initialisation (±1/√H) scaled by 3, so the gates are not all near
    0.5; cast to ``dtype``, the values the implementation sees."""
    rng = np.random.default_rng(12)
    G = CASES[fn][4]
    x = rng.standard_normal((T, B, D) if fn.endswith("layer") else (B, D))
    states = [rng.standard_normal((B, H)) for _ in range(2 if fn == "lstm_cell" else 1)]
    params = [rng.uniform(-3, 3, s) / np.sqrt(H) for s in ((G * H, D), (G * H, H), (G * H,),
                                                            (G * H,))]
    return tuple(np.asarray(a, dtype) for a in (x, *states, *params))


def _check(module: ModuleType, fn: str) -> None:
    """``module.fn`` on the fixed case against the reference, within the bounds, as the
    conformance checks hold a one-output function (checks/test_gru.py) or several."""
    __tracebackhide__ = True
    spec_id, names, reference, bounds, _ = CASES[fn]
    impl = Implementation(name=MODULE, module=module, dtype=np.dtype(module.DTYPE))
    args = _case(fn, impl.dtype)
    if len(names) > 1:
        check_outputs(impl, fn, spec_id, names, args, reference, bounds, finite=True)
        return
    got = impl.array(impl.call(fn, *args), fn=fn, what=names[0], shape=args[1].shape)
    assert_close(got, reference(*args), bounds(*args, dtype=impl.dtype), spec_id=spec_id,
                 impl=impl, call=f"{fn}{describe_args(args)}", what=names[0])


@pytest.mark.parametrize("fn", list(CASES))
def test_openvino_computes_the_onnx_graphs_within_the_float32_bounds(openvino_runtime, fn):
    assert np.dtype(openvino_runtime.DTYPE) == np.float32
    _check(openvino_runtime, fn)


@pytest.mark.parametrize("fn", ["gru_cell", "lstm_cell"])
def test_the_plugins_default_precision_fails_the_float32_bounds_where_it_is_not_f32(
        openvino_runtime, fn):
    default = openvino_runtime._core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    if default == "f32":
        pytest.skip("this CPU's default inference precision is f32: nothing to tell apart")
    with pytest.raises(NonConformance):
        _check(importlib.import_module("nnspec.implementations.openvino_default_precision"), fn)


def test_the_adapter_without_onnx_is_unavailable_naming_its_own_extra(openvino_runtime,
                                                                       monkeypatch):
    # openvino_runtime builds its graphs with onnx: `pip install 'nnspec[onnx]'` alone would not
    # install openvino, so the message names the openvino extra (which has both).
    monkeypatch.setitem(sys.modules, "onnx", None)
    for name in (MODULE, "nnspec.implementations.onnx_graphs"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImplementationUnavailable, match=r"onnx.*nnspec\[openvino\]"):
        importlib.import_module(MODULE)


def test_loading_the_adapter_sends_no_telemetry_and_leaves_the_environment_as_it_was(
        openvino_runtime):
    # A fresh process without CI set (openvino decides on its telemetry once, at its first
    # import): importing openvino alone would consent to sending (no opt-out file here).
    probe = (f"import os\nimport {MODULE}\nimport openvino.tools.ovc as ovc\n"
             "print(ovc.telemetry.consent, os.environ.get('CI'))")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "None"], done.stdout
