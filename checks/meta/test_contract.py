"""The contract's stubs (checks/harness/contract.py) against the modules that implement them.

Every shipped implementation, and every module the adapters build, defines only contract
functions whose parameters match the stub's: the same names, in the same order, of the same kind
(positional or keyword-only), with the same defaults. A module calling a parameter by another
name cannot be called by keyword, and one with another default computes something else when the
argument is left out.
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

import pytest

from nnspec.checks.harness import contract
from nnspec.checks.harness.implementation import ImplementationUnavailable

SHIPPED = ("reference", "torch_cpu", "torch_cpu_float32", "torch_cuda", "torch_cuda_float32",
           "torch_cuda_tf32",
           "onnx_reference", "onnx_runtime", "flax_cells", "torch_modules", "openvino_runtime",
           "openvino_default_precision")

#: Mismatches a shipped implementation has today, to be fixed in the implementation (the stub is
#: the contract): nnspec.implementations.reference binds the reference's own functions, whose
#: parameters keep the seeds' names (W, y for logits, k for targets, z for maxout's input).
KNOWN_MISMATCHES: dict[str, set[str]] = {
    "reference": {"linear", "vjp_linear", "cross_entropy", "cross_entropy_sum", "vjp_cross_entropy",
                  "maxout", "vjp_maxout", "softmax", "log_softmax"},
}

#: The published contract (the foundation issue): its names and parameters never change.
PUBLISHED = {
    "linear": ("x", "w", "b"),
    "rnn_cell": ("x", "h", "w_ih", "w_hh", "b_ih", "b_hh", "nonlinearity"),
    "gru_cell": ("x", "h", "w_ih", "w_hh", "b_ih", "b_hh"),
    "lstm_cell": ("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"),
    "rnn_layer": ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh", "nonlinearity"),
    "gru_layer": ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"),
    "lstm_layer": ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"),
    "dropout": ("x", "p", "training", "rng"),
    "xavier_uniform": ("shape", "gain", "rng"),
    "xavier_normal": ("shape", "gain", "rng"),
    "sgd_step": ("w", "grad", "lr", "weight_decay"),
    "clip_grad_norm": ("grads", "max_norm", "norm_type"),
    "cross_entropy": ("logits", "target"),
}


def _shape(parameters: Any) -> list[tuple[str, str, Any]]:
    return [(p.name, p.kind.description, p.default) for p in parameters.values()]


def _text(shape: list[tuple[str, str, Any]]) -> str:
    return ", ".join(name + ("" if default is inspect.Parameter.empty else f"={default!r}")
                     + (" (keyword-only)" if kind == "keyword-only" else "")
                     for name, kind, default in shape)


def mismatches(module: Any) -> dict[str, str]:
    """Each contract function ``module`` defines whose parameters differ from the stub's → how."""
    found = {}
    for name in contract.ALL:
        f = getattr(module, name, None)
        if not callable(f):
            continue
        got, want = (_shape(inspect.signature(f).parameters),
                     _shape(contract.signature(name).parameters))
        if got != want:
            found[name] = f"{name}({_text(got)}) where the contract has {name}({_text(want)})"
    return found


def shipped(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(f"nnspec.implementations.{name}")
    except ImplementationUnavailable as exc:
        pytest.skip(f"nnspec.implementations.{name} cannot be imported here: {exc}")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_implementation_defines_contract_functions_with_the_stub_signatures(name):
    found = mismatches(shipped(name))
    known = KNOWN_MISMATCHES.get(name, set())
    new = "\n".join(why for fn, why in found.items() if fn not in known)
    assert not new, f"nnspec.implementations.{name} differs from the contract:\n{new}"
    fixed = known - set(found)
    assert not fixed, f"{sorted(fixed)} now match the contract: remove them from KNOWN_MISMATCHES"


def test_a_wrong_name_default_order_or_kind_is_a_mismatch():
    module = types.SimpleNamespace(
        linear=lambda x, W, b=None: None,                   # another name
        sigmoid=lambda x, alpha=2.0: None,                  # another default
        sgd_step=lambda w, lr, grad, weight_decay: None,    # another order
        prelu=lambda x, *, a: None,                         # keyword-only
        relu=lambda x: None,                                # as the contract
        not_in_the_contract=lambda y: None)
    found = mismatches(module)
    assert set(found) == {"linear", "sigmoid", "sgd_step", "prelu"}
    assert found["linear"] == "linear(x, W, b=None) where the contract has linear(x, w, b=None)"
    assert "(keyword-only)" in found["prelu"]


def test_adapter_modules_take_the_stub_signatures():
    nn = pytest.importorskip("torch").nn
    from nnspec import adapters

    for kind, cell in (("rnn", nn.RNNCell), ("gru", nn.GRUCell), ("lstm", nn.LSTMCell)):
        module = adapters.from_torch_cell(cell, kind=kind)
        assert {fn for fn in contract.ALL if hasattr(module, fn)} == {f"{kind}_cell", f"vjp_{kind}_cell"}
        assert not mismatches(module)


def test_core_is_the_published_contract_and_all_adds_the_extensions():
    assert {name: contract.parameters(name) for name in contract.CORE} == PUBLISHED
    assert list(contract.ALL) == [*contract.CORE, *contract.EXTENSIONS] == list(contract.STUBS)
    assert not set(contract.CORE) & set(contract.EXTENSIONS)


@pytest.mark.parametrize("name", list(contract.ALL))
def test_every_stub_is_typed_named_and_described(name):
    sig = contract.signature(name)
    assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
    assert contract.outputs(name) and all(contract.outputs(name))
    assert len(contract.arguments(name)) == len(contract.parameters(name))
    text = contract.ALL[name]
    assert text.startswith(f"{name}(") and "\n" not in text
    assert text.split(" -> ", 1)[1].split(": ", 1)[1], f"{name} has no description"
