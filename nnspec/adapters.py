"""Adapters: build a contract module (checks/harness/contract.py) from the recurrent cell you already have.

The contract wants plain functions on NumPy arrays with the weights in PyTorch's layout. Few
cells are written that way; these helpers wrap one in a few lines:

- :func:`from_torch_cell` — a ``torch.nn`` module (or a factory of one) whose parameters have
  their own names and layout, given a *mapping* from the contract's weights to them. Forward,
  and gradients through autograd.
- :func:`from_concatenated` — a function over one weight matrix per gate applied to the
  concatenation ``[h, x]`` or ``[x, h]`` (seeds 002 and 004). Forward only.
- :func:`from_jax` — a JAX function with the contract's signature. Forward, and gradients through
  ``jax.vjp``. JAX is imported only when this is called; nnspec does not depend on it.
- :func:`contract_module` — what the three build on: a module from any ``forward`` (and
  ``backward``) on the contract's arguments (nnspec.identify wraps a cell of unknown layout so).

Each returns a :class:`types.ModuleType` with ``DTYPE``, the contract functions and ``__all__``,
which :func:`nnspec.oracle.check` takes as it is. For ``nnspec check`` or ``pytest --impl``, build
it in an importable file and bind its names at module level::

    # my_check.py
    from torch import nn
    from nnspec.adapters import from_torch_cell

    _gru = from_torch_cell(nn.GRUCell, kind="gru")
    DTYPE, gru_cell, vjp_gru_cell = _gru.DTYPE, _gru.gru_cell, _gru.vjp_gru_cell

The weights arrive in the contract's layout: ``w_ih`` (G·H, D), ``w_hh`` (G·H, H), ``b_ih``,
``b_hh`` (G·H,) or ``None`` (no bias), stacking G blocks of H rows in PyTorch's order
(:data:`BLOCKS`). A cell with one bias per block receives ``b_ih + b_hh`` (the cell cannot tell
them apart); an absent bias is zero.
"""

from __future__ import annotations

import copy
import importlib
import types
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import numpy as np

from nnspec.checks.harness import contract
from nnspec.checks.harness.loading import ImplementationUnavailable

if TYPE_CHECKING:
    import torch

Kind = Literal["rnn", "gru", "lstm"]

#: The blocks of w_ih, w_hh, b_ih and b_hh, top to bottom, as PyTorch stacks them. ``g`` is the
#: LSTM's candidate cell (the seeds' c̃), ``n`` the GRU's candidate state, ``h`` the Elman RNN's
#: only block.
BLOCKS: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"),
                                      "rnn": ("h",)}

#: GRU variants (spec/gru.md) and the contract function each is checked as.
GRU_VARIANTS = {"pytorch": "gru_cell", "textbook": "gru_cell_textbook"}

NONLINEARITIES = ("tanh", "relu")

Forward = Callable[[np.ndarray, tuple[np.ndarray, ...], tuple[Any, ...], str],
                   tuple[np.ndarray, ...]]
Backward = Callable[[tuple[np.ndarray, ...], np.ndarray, tuple[np.ndarray, ...], tuple[Any, ...],
                     str], tuple[Any, ...]]


# ---- argument validation ---------------------------------------------------------------------

def _kind(kind: str) -> Kind:
    if kind not in BLOCKS:
        raise ValueError(f"kind must be one of {sorted(BLOCKS)}, got {kind!r}")
    return cast(Kind, kind)


def _dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be a NumPy floating-point dtype, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _function_name(kind: str, variant: str) -> str:
    if kind == "gru":
        if variant not in GRU_VARIANTS:
            raise ValueError(f"variant must be one of {sorted(GRU_VARIANTS)}, got {variant!r}")
        return GRU_VARIANTS[variant]
    if variant != "pytorch":
        raise ValueError(f"variant applies to kind='gru' only, got variant={variant!r} for "
                         f"kind={kind!r}")
    return f"{kind}_cell"


def _order(order: str) -> str:
    if order not in ("hx", "xh"):
        raise ValueError(f"order must be 'hx' ([h, x], seed 002) or 'xh' ([x, h], seed 004's "
                         f"torch.cat((input, h))), got {order!r}")
    return order


# ---- the contract functions, for any way of computing the cell -------------------------------

def contract_module(name: str, function: str, dtype: np.dtype, forward: Forward,
                    backward: Backward | None, doc: str) -> types.ModuleType:
    """A module defining DTYPE, ``function`` and, given ``backward``, ``vjp_<function>``, each
    with the contract's signature (checks/harness/contract.py).

    ``forward(x, states, params, nonlinearity)`` returns the new states, ``backward(cotangents,
    x, states, params, nonlinearity)`` the gradients (dx, *dstates, dw_ih, dw_hh, db_ih, db_hh).
    """
    states = tuple(p for p in contract.parameters(function) if p in ("h", "c"))

    def bound(fn: str, args: tuple, kwargs: dict[str, Any]) -> tuple[dict[str, Any], tuple, tuple, str]:
        """The arguments of a call by the contract's names: all of them, states, weights, σ."""
        call = contract.signature(fn).bind(*args, **kwargs)
        call.apply_defaults()
        v = call.arguments
        return (v, tuple(v[s] for s in states), (v["w_ih"], v["w_hh"], v["b_ih"], v["b_hh"]),
                v.get("nonlinearity", "tanh"))

    def cell(*args: Any, **kwargs: Any) -> Any:
        v, state, params, nonlinearity = bound(function, args, kwargs)
        new = forward(v["x"], state, params, nonlinearity)
        return new if len(states) > 1 else new[0]

    functions: dict[str, Callable[..., Any]] = {function: cell}
    if backward is not None:
        gradients = backward

        def vjp(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            v, state, params, nonlinearity = bound(f"vjp_{function}", args, kwargs)
            g = v[contract.parameters(f"vjp_{function}")[0]]
            return gradients(tuple(g) if len(states) > 1 else (g,), v["x"], state, params, nonlinearity)

        functions[f"vjp_{function}"] = vjp

    module = types.ModuleType(name, doc)
    module.DTYPE = dtype.type  # type: ignore[attr-defined]
    for fn_name, fn in functions.items():
        fn.__name__ = fn.__qualname__ = fn_name
        fn.__module__ = name
        fn.__signature__ = contract.signature(fn_name)  # type: ignore[attr-defined]
        setattr(module, fn_name, fn)
    module.__all__ = ["DTYPE", *functions]  # type: ignore[attr-defined]
    return module


def _rows(a: Any, k: int, hidden: int) -> Any:
    return a[k * hidden:(k + 1) * hidden]


# ---- torch -----------------------------------------------------------------------------------

class ContractParams(NamedTuple):
    """The contract's weights as torch tensors (an absent bias is zeros), for a mapping."""

    kind: str
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor
    b_hh: torch.Tensor

    def block(self, gate: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows of ``gate`` (one of :data:`BLOCKS` [kind]): (w_ih (H, D), w_hh (H, H), b_ih (H,),
        b_hh (H,))."""
        if gate not in BLOCKS[self.kind]:
            raise ValueError(f"{self.kind} has the blocks {BLOCKS[self.kind]}, not {gate!r}")
        k, hidden = BLOCKS[self.kind].index(gate), self.w_hh.shape[1]
        return tuple(_rows(a, k, hidden) for a in (self.w_ih, self.w_hh, self.b_ih, self.b_hh))


ParameterMapping = Mapping[str, str] | Callable[[ContractParams], Mapping[str, "torch.Tensor"]]

#: The parameter names of torch.nn.RNNCell, GRUCell and LSTMCell.
TORCH_NAMES = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}


def linear_per_gate(linears: Mapping[str, str], *, order: str = "hx"
                    ) -> Callable[[ContractParams], dict[str, torch.Tensor]]:
    """A mapping for cells with one ``nn.Linear`` per block over a concatenation of h and x.

    - ``linears``: block name (:data:`BLOCKS`) → the attribute name of its ``nn.Linear``, e.g.
      ``{"i": "w_i", "f": "w_f", "g": "w_c", "o": "w_o"}``.
    - ``order``: ``"hx"`` when the module concatenates ``[h, x]``, ``"xh"`` for ``[x, h]``
      (``torch.cat((input, h))``): the weight's columns must follow the same order.

    Each ``<linear>.weight`` becomes the block's ``[w_hh | w_ih]`` (or ``[w_ih | w_hh]``) and
    ``<linear>.bias`` the block's ``b_ih + b_hh``.
    """
    order = _order(order)

    def mapping(p: ContractParams) -> dict[str, torch.Tensor]:
        import torch

        if set(linears) != set(BLOCKS[p.kind]):
            raise ValueError(f"linear_per_gate names the blocks {sorted(linears)}, but {p.kind} "
                             f"has {sorted(BLOCKS[p.kind])}")
        out: dict[str, torch.Tensor] = {}
        for gate, linear in linears.items():
            w_x, w_h, b_x, b_h = p.block(gate)
            out[f"{linear}.weight"] = torch.cat([w_h, w_x] if order == "hx" else [w_x, w_h], dim=1)
            out[f"{linear}.bias"] = b_x + b_h
        return out

    return mapping


def _default_call(kind: str) -> Callable[..., Any]:
    if kind == "lstm":
        return lambda module, x, h, c: module(x, (h, c))
    return lambda module, x, h: module(x, h)


def from_torch_cell(cell: Any, *, kind: Kind, mapping: ParameterMapping | None = None,
                    call: Callable[..., Any] | None = None, variant: str = "pytorch",
                    nonlinearity: str | None = None, dtype: Any = np.float64,
                    device: str = "cpu", gradients: bool = True,
                    name: str | None = None) -> types.ModuleType:
    """A contract module computing ``kind``'s cell with a ``torch.nn`` module.

    - ``cell``: a factory ``(input_size, hidden_size) -> nn.Module`` (a class such as
      ``nn.LSTMCell``, or a lambda; for ``kind="rnn"`` it is called with ``nonlinearity=`` too,
      as ``nn.RNNCell`` takes it), or an ``nn.Module`` instance, used for every size with the
      contract's weights substituted — give a factory when the module's forward depends on its
      sizes. The module is put in eval mode and converted to ``dtype`` on ``device``.
    - ``kind``: ``"lstm"``, ``"gru"`` or ``"rnn"``.
    - ``mapping``: where the contract's weights go. ``None``: PyTorch's own names
      (:data:`TORCH_NAMES`). A dict renames, e.g. ``{"w_ih": "W_x", "w_hh": "W_h", "b_ih": "b_x",
      "b_hh": "b_h"}``. A function of :class:`ContractParams` returns ``{parameter name: tensor}``
      for any other layout (:func:`linear_per_gate` builds one); it is evaluated with autograd,
      so gradients flow back to the contract's weights.
    - ``call``: ``call(module, x, h)`` (``call(module, x, h, c)`` for the LSTM) returns the new
      state, ``(h', c')`` for the LSTM, as tensors of shape (B, H). Default: ``module(x, h)``,
      and ``module(x, (h, c))`` for the LSTM, as ``nn.GRUCell`` and ``nn.LSTMCell`` take them.
    - ``variant``: for ``kind="gru"``, ``"pytorch"`` (checked as ``gru_cell``, spec
      gru.cell.pytorch) or ``"textbook"`` (``gru_cell_textbook``, spec gru.cell.textbook).
    - ``nonlinearity``: for ``kind="rnn"`` with a module *instance*, the one it computes; the
      contract's other one then raises ``NotImplementedError`` (reported as not provided).
    - ``dtype``: ``numpy.float64`` (default) or ``numpy.float32``, the module's DTYPE.
    - ``gradients``: also provide ``vjp_<function>`` through autograd (default True).
    - ``name``: the module's name in reports (default: from ``cell`` and ``kind``).

    The mapping is tried at once on a small module (input 3, hidden 2): a parameter name the
    module does not have, or a tensor of the wrong shape, raises ``ValueError`` here.

        >>> from torch import nn
        >>> gru = from_torch_cell(nn.GRUCell, kind="gru")
        >>> sorted(gru.__all__)
        ['DTYPE', 'gru_cell', 'vjp_gru_cell']
    """
    import torch
    from torch import nn
    from torch.func import functional_call

    kind = _kind(kind)
    function = _function_name(kind, variant)
    dt = _dtype(dtype)
    tdtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[dt]
    instance = isinstance(cell, nn.Module)
    if not instance and not callable(cell):
        raise ValueError(f"cell must be an nn.Module or a factory (input_size, hidden_size) -> "
                         f"nn.Module, got {type(cell).__name__}")
    if nonlinearity is not None and (kind != "rnn" or not instance):
        raise ValueError("nonlinearity names what an RNN module *instance* computes; a factory "
                         "receives the nonlinearity for each call")
    if kind == "rnn" and instance and nonlinearity not in NONLINEARITIES:
        raise ValueError(f"an RNN module instance needs nonlinearity= one of {NONLINEARITIES}, "
                         f"the one it computes; got {nonlinearity!r}")
    step_call = call or _default_call(kind)
    label = getattr(cell, "__qualname__", type(cell).__qualname__)
    name = name or f"{label} as {function} (from_torch_cell)"

    class Step(nn.Module):
        """The user's module and its call convention as one module, for functional_call."""

        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.cell = module

        def forward(self, x: torch.Tensor, *states: torch.Tensor) -> Any:
            return step_call(self.cell, x, *states)

    steps: dict[tuple[int, int, str], Step] = {}

    def step_for(D: int, H: int, phi: str) -> Step:
        if kind == "rnn" and instance and phi != nonlinearity:
            raise NotImplementedError(f"{name} computes nonlinearity={nonlinearity!r} only")
        if (D, H, phi) not in steps:
            if instance:
                module = copy.deepcopy(cell)
            else:
                module = cell(D, H, nonlinearity=phi) if kind == "rnn" else cell(D, H)
            if not isinstance(module, nn.Module):
                raise TypeError(f"the factory returned {type(module).__name__}, not an nn.Module")
            steps[(D, H, phi)] = Step(module).to(device=device, dtype=tdtype).eval()
        return steps[(D, H, phi)]

    def tensor(a: Any, grad: bool = False) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(a), dtype=tdtype, device=device)
        return t.requires_grad_(grad)

    def parameters(step: Step, p: ContractParams) -> dict[str, torch.Tensor]:
        if mapping is None or isinstance(mapping, Mapping):
            names = {**TORCH_NAMES, **(mapping or {})}
            unknown = set(names) - set(TORCH_NAMES)
            if unknown:
                raise ValueError(f"mapping keys must be among {sorted(TORCH_NAMES)}, got "
                                 f"{sorted(unknown)}")
            mapped = {names[k]: getattr(p, k) for k in TORCH_NAMES}
        else:
            mapped = dict(mapping(p))
        own = dict(step.cell.named_parameters()) | dict(step.cell.named_buffers())
        for key, value in mapped.items():
            if key not in own:
                raise ValueError(f"the mapping names {key!r}, which {type(step.cell).__name__} "
                                 f"does not have (it has {', '.join(own)})")
            if tuple(value.shape) != tuple(own[key].shape):
                raise ValueError(f"the mapping gives {key!r} shape {tuple(value.shape)}, but "
                                 f"{type(step.cell).__name__} has {tuple(own[key].shape)}")
        return {f"cell.{k}": v for k, v in mapped.items()}

    def run(x: np.ndarray, states: tuple[np.ndarray, ...], params: tuple[Any, ...], phi: str,
            grad: bool) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        hidden = np.shape(states[0])[1]
        step = step_for(np.shape(x)[1], hidden, phi)
        zeros = np.zeros(len(BLOCKS[kind]) * hidden)
        inputs = [tensor(x, grad), *(tensor(s, grad) for s in states)]
        weights = [tensor(w, grad and w is not None) if w is not None else tensor(zeros)
                   for w in params]
        out = functional_call(step, parameters(step, ContractParams(kind, *weights)),
                              tuple(inputs))
        out = tuple(out) if isinstance(out, tuple | list) else (out,)
        if len(out) != len(states):
            raise TypeError(f"call returned {len(out)} tensor(s); {function} needs "
                            f"{len(states)} ({'h, c' if len(states) == 2 else 'h'})")
        return inputs + weights, out

    def forward(x, states, params, phi):
        with torch.no_grad():
            _, out = run(x, states, params, phi, grad=False)
        return tuple(t.detach().cpu().numpy() for t in out)

    def backward(cotangents, x, states, params, phi):
        with torch.enable_grad():
            inputs, out = run(x, states, params, phi, grad=True)
            wrt = [t for t in inputs if t.requires_grad]
            grads = iter(torch.autograd.grad(out, wrt, [tensor(g) for g in cotangents],
                                             allow_unused=True))
        result = []
        for t in inputs:
            g = next(grads) if t.requires_grad else None
            result.append(None if not t.requires_grad else
                          (torch.zeros_like(t) if g is None else g).detach().cpu().numpy())
        return tuple(result)

    G = len(BLOCKS[kind])
    parameters(step_for(3, 2, nonlinearity or "tanh"),
               ContractParams(kind, *(tensor(np.zeros(s)) for s in
                                      ((G * 2, 3), (G * 2, 2), (G * 2,), (G * 2,)))))
    doc = f"{label} through from_torch_cell(kind={kind!r}): {function} in {dt}"
    return contract_module(name, function, dt, forward, backward if gradients else None, doc)


# ---- one matrix per gate over a concatenation ------------------------------------------------

def from_concatenated(fn: Callable[..., Any], *, kind: Kind, order: str = "hx",
                      dtype: Any = np.float64, name: str | None = None) -> types.ModuleType:
    """A contract module from a cell written with one matrix per gate over [h, x] or [x, h].

    - ``fn``: ``fn(x, h, c, weights) -> (h', c')`` for the LSTM, ``fn(x, h, weights) -> h'`` for
      the GRU, ``fn(x, h, weights, nonlinearity) -> h'`` for the RNN, on NumPy arrays, where
      ``weights[block] = (W, b)`` for each block of :data:`BLOCKS` [kind]: ``W`` of shape
      (H, H + D) with columns for h then x (``order="hx"``, seed 002's W_f[h_{t−1}, x_t]) or x
      then h (``order="xh"``, seed 004's ``torch.cat((input, h))``), and ``b = b_ih + b_hh``.
    - ``kind``: ``"lstm"`` (checked as ``lstm_cell``), ``"gru"`` or ``"rnn"``. A GRU written this
      way is checked as ``gru_cell_textbook`` (spec gru.cell.textbook): with one bias per block it
      cannot keep PyTorch's b_hn inside r ⊙ (W_hn h + b_hn), so it cannot be PyTorch's variant.
    - ``order``: ``"hx"`` or ``"xh"``, the column order ``fn`` expects.
    - ``dtype``: the DTYPE ``fn`` computes in (float64 default, or float32).
    - ``name``: the module's name in reports.

    Forward only: the gradient checks of the cell report *not provided*.

        >>> import numpy as np
        >>> def rnn(x, h, weights, nonlinearity):
        ...     W, b = weights["h"]
        ...     return np.tanh(np.concatenate([h, x], axis=1) @ W.T + b)
        >>> from_concatenated(rnn, kind="rnn").__all__
        ['DTYPE', 'rnn_cell']
    """
    kind = _kind(kind)
    order = _order(order)
    dt = _dtype(dtype)
    function = _function_name(kind, "textbook" if kind == "gru" else "pytorch")
    name = name or f"{getattr(fn, '__qualname__', 'fn')} as {function} (from_concatenated)"

    def weights(params: tuple[Any, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        w_ih, w_hh, b_ih, b_hh = params
        hidden = np.shape(w_hh)[1]
        zeros = np.zeros(np.shape(w_hh)[0], dtype=dt)
        b = (zeros if b_ih is None else b_ih) + (zeros if b_hh is None else b_hh)
        blocks = {}
        for k, gate in enumerate(BLOCKS[kind]):
            w_x, w_h = _rows(w_ih, k, hidden), _rows(w_hh, k, hidden)
            W = np.concatenate([w_h, w_x] if order == "hx" else [w_x, w_h], axis=1)
            blocks[gate] = (W, _rows(b, k, hidden))
        return blocks

    def forward(x, states, params, phi):
        if kind == "lstm":
            return tuple(fn(x, *states, weights(params)))
        if kind == "rnn":
            return (fn(x, *states, weights(params), phi),)
        return (fn(x, *states, weights(params)),)

    doc = f"{name}: {function} in {dt}, weights per block over [{order[0]}, {order[1]}]"
    return contract_module(name, function, dt, forward, None, doc)


# ---- JAX -------------------------------------------------------------------------------------

def _import_jax() -> Any:
    try:
        import jax
    except ImportError as exc:
        raise ImportError("from_jax needs JAX, which is not installed (pip install jax); nnspec "
                          "itself does not depend on it") from exc
    return jax


def import_flax(api: str) -> tuple[Any, Any]:
    """``jax`` and ``flax.<api>`` (``linen`` or ``nnx``) with float64 enabled (jax_enable_x64:
    the Flax adapters compute in float64), or ImplementationUnavailable naming the extra."""
    try:
        import jax
        # The package before its module: flax.nnx imported earlier stays in sys.modules even
        # where flax itself can no longer be imported.
        flax = importlib.import_module("flax")
        module = getattr(flax, api, None) or importlib.import_module(f"flax.{api}")
    except ImportError as exc:
        raise ImplementationUnavailable(f"the jax and flax packages are not installed ({exc}); "
                                        f"pip install 'nnspec[jax]'") from exc
    jax.config.update("jax_enable_x64", True)
    return jax, module


def from_jax(fn: Callable[..., Any], *, kind: Kind, variant: str = "pytorch",
             dtype: Any = np.float32, gradients: bool = True,
             name: str | None = None) -> types.ModuleType:
    """A contract module from a JAX function with the contract's signature.

    - ``fn``: ``fn(x, h, c, w_ih, w_hh, b_ih, b_hh) -> (h', c')`` for the LSTM, ``fn(x, h, w_ih,
      w_hh, b_ih, b_hh) -> h'`` for the GRU, the same with ``nonlinearity=`` for the RNN, on
      ``jax.numpy`` arrays in PyTorch's layout; absent biases arrive as zeros.
    - ``kind``, ``variant``: as for :func:`from_torch_cell`.
    - ``dtype``: ``numpy.float32`` (default, JAX's own) or ``numpy.float64``, which needs
      ``jax.config.update("jax_enable_x64", True)`` first; otherwise ``ValueError``.
    - ``gradients``: also provide ``vjp_<function>`` through ``jax.vjp`` (default True).
    - ``name``: the module's name in reports.
    """
    kind = _kind(kind)
    function = _function_name(kind, variant)
    dt = _dtype(dtype)
    jax = _import_jax()
    jnp = jax.numpy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JAX warns when it truncates float64 to float32
        probe = np.asarray(jnp.asarray(np.zeros(1, dtype=dt))).dtype
    if probe != dt:
        raise ValueError(f"JAX computes in {probe}, not {dt}: call "
                         f"jax.config.update('jax_enable_x64', True) before from_jax")
    name = name or f"{getattr(fn, '__qualname__', 'fn')} as {function} (from_jax)"

    def arguments(x, states, params) -> list[Any]:
        hidden = np.shape(states[0])[1]
        zeros = np.zeros(len(BLOCKS[kind]) * hidden, dtype=dt)
        return [jnp.asarray(a if a is not None else zeros, dtype=dt)
                for a in (x, *states, *params)]

    def call(phi: str) -> Callable[..., Any]:
        return (lambda *a: fn(*a, nonlinearity=phi)) if kind == "rnn" else fn

    def forward(x, states, params, phi):
        out = call(phi)(*arguments(x, states, params))
        return tuple(np.asarray(o) for o in out) if kind == "lstm" else (np.asarray(out),)

    def backward(cotangents, x, states, params, phi):
        out, pullback = jax.vjp(call(phi), *arguments(x, states, params))
        ct = [jnp.asarray(g, dtype=dt) for g in cotangents]
        grads = pullback(type(out)(ct) if isinstance(out, tuple | list) else ct[0])
        present = [True] * (1 + len(states) + 2) + [b is not None for b in params[2:]]
        return tuple(np.asarray(g) if keep else None
                     for g, keep in zip(grads, present, strict=True))

    doc = f"{name}: {function} in {dt} through JAX"
    return contract_module(name, function, dt, forward, backward if gradients else None, doc)


__all__ = ["BLOCKS", "ContractParams", "contract_module", "from_concatenated", "from_jax",
           "from_torch_cell", "linear_per_gate"]
