"""PyTorch behind the implementation-under-test contract (one device and dtype per instance).

Each contract function converts its NumPy inputs to tensors, calls the public PyTorch API that
users call (``torch.nn`` modules through ``torch.func.functional_call``, ``torch.nn.functional``,
``torch.optim``, ``torch.nn.init``, ``torch.nn.utils``) and returns NumPy arrays. Gradients
(``vjp_*``) come from autograd. Random operations draw a seed from the caller's NumPy generator,
so equal generator states give equal masks and draws.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

_TORCH_DTYPES = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}

#: Modules kept for reuse, per backend: building one (its parameters allocated and initialised)
#: cost 4× the GRU cell's own evaluation at the checks' sizes, and every call replaces all its
#: parameters through functional_call anyway. Bounded, as Hypothesis draws many shapes.
MODULE_CACHE_SIZE = 256


def cuda_backend(dtype: type, *, tf32: bool = False) -> TorchBackend:
    """The backend for PyTorch on CUDA, or ImplementationUnavailable without a GPU.

    TF32 is switched off for matmuls and cuDNN (cuDNN's RNNs use it by default for float32), so
    float32 means IEEE float32 and the tolerance model applies; with ``tf32`` both are switched on,
    as PyTorch's cuDNN default has it, for an implementation that declares PRECISION = "tf32".
    """
    from nnspec.checks.harness.implementation import ImplementationUnavailable

    if not torch.cuda.is_available():
        raise ImplementationUnavailable(
            f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda})")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return TorchBackend("cuda", dtype)


class TorchBackend:
    """Contract functions evaluated by PyTorch on ``device`` in ``dtype``."""

    def __init__(self, device: str, dtype: type) -> None:
        self.device = torch.device(device)
        self.DTYPE = np.dtype(dtype)
        self.tdtype = _TORCH_DTYPES[self.DTYPE]
        self._modules: dict[tuple[Any, ...], nn.Module] = {}

    def _built(self, cls: type[nn.Module], *args: Any, **kw: Any) -> nn.Module:
        """``cls(*args, **kw)`` on this device and dtype, built once per arguments: callers
        pass every parameter through functional_call, so its own values never matter."""
        key = (cls, args, tuple(sorted(kw.items())))
        module = self._modules.pop(key, None)
        if module is None:
            with warnings.catch_warnings():
                # nn.RNN warns that dropout with one layer does nothing; the contract allows it.
                warnings.simplefilter("ignore", UserWarning)
                module = cls(*args, **kw, device=self.device, dtype=self.tdtype)
            if len(self._modules) >= MODULE_CACHE_SIZE:
                self._modules.pop(next(iter(self._modules)))  # the least recently used
        self._modules[key] = module
        return module

    # conversions -------------------------------------------------------------------------
    @overload
    def t(self, a: None, grad: bool = False) -> None: ...

    @overload
    def t(self, a: Any, grad: bool = False) -> torch.Tensor: ...

    def t(self, a: Any, grad: bool = False) -> torch.Tensor | None:
        """``a`` as a tensor on this device, floating point in this dtype; None stays None."""
        if a is None:
            return None
        x = torch.as_tensor(np.asarray(a), device=self.device)
        if x.is_floating_point():
            x = x.to(self.tdtype)
        return x.requires_grad_(grad) if grad and x.is_floating_point() else x

    @staticmethod
    def n(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    def _generator(self, rng: np.random.Generator) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(int(rng.integers(0, 2**63 - 1)))
        return g

    # recurrent modules, through the nn.Module a user would build -------------------------
    @staticmethod
    def _bias_pair(b_ih: Any, b_hh: Any) -> tuple[Any, Any]:
        if b_ih is None and b_hh is None:
            return None, None
        if b_ih is None:
            return np.zeros_like(b_hh), b_hh
        if b_hh is None:
            return b_ih, np.zeros_like(b_ih)
        return b_ih, b_hh

    def _recurrent(self, cls: type[nn.Module], x: Any, state: Any, w_ih: Any, w_hh: Any,
                   b_ih: Any, b_hh: Any, *, layer: bool, grad: bool = False,
                   **kw: Any) -> tuple[Callable[..., Any], list[torch.Tensor | None]]:
        b_ih, b_hh = self._bias_pair(b_ih, b_hh)
        hidden = np.shape(w_hh)[1]
        module = self._built(cls, np.shape(w_ih)[1], hidden, bias=b_ih is not None, **kw)
        suffix = "_l0" if layer else ""
        names = [f"weight_ih{suffix}", f"weight_hh{suffix}", f"bias_ih{suffix}", f"bias_hh{suffix}"]
        tensors = [self.t(a, grad) for a in (w_ih, w_hh, b_ih, b_hh)]
        inputs = [self.t(x, grad)] + [self.t(s, grad) for s in state]

        def run(*args: torch.Tensor) -> Any:
            xs, states, params = args[0], args[1:1 + len(state)], args[1 + len(state):]
            named = {k: v for k, v in zip(names, params, strict=True) if v is not None}
            st: Any = states[0] if len(states) == 1 else tuple(states)
            if layer and len(states) == 1:
                st = states[0].unsqueeze(0)
            elif layer:
                st = tuple(s.unsqueeze(0) for s in states)
            return functional_call(module, named, (xs, st))

        return run, inputs + tensors

    def rnn_cell(self, x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        run, args = self._recurrent(nn.RNNCell, x, [h], w_ih, w_hh, b_ih, b_hh, layer=False,
                                    nonlinearity=nonlinearity)
        with torch.no_grad():
            return self.n(run(*args))

    def gru_cell(self, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.GRUCell, x, [h], w_ih, w_hh, b_ih, b_hh, layer=False)
        with torch.no_grad():
            return self.n(run(*args))

    def lstm_cell(self, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.LSTMCell, x, [h, c], w_ih, w_hh, b_ih, b_hh, layer=False)
        with torch.no_grad():
            h1, c1 = run(*args)
        return self.n(h1), self.n(c1)

    def rnn_layer(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        run, args = self._recurrent(nn.RNN, x, [h0], w_ih, w_hh, b_ih, b_hh, layer=True,
                                    nonlinearity=nonlinearity)
        with torch.no_grad():
            y, hT = run(*args)
        return self.n(y), self.n(hT[0])

    def gru_layer(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.GRU, x, [h0], w_ih, w_hh, b_ih, b_hh, layer=True)
        with torch.no_grad():
            y, hT = run(*args)
        return self.n(y), self.n(hT[0])

    def lstm_layer(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.LSTM, x, [h0, c0], w_ih, w_hh, b_ih, b_hh, layer=True)
        with torch.no_grad():
            y, (hT, cT) = run(*args)
        return self.n(y), self.n(hT[0]), self.n(cT[0])

    # whole modules: nn.RNN / nn.GRU / nn.LSTM with every constructor option -----------------
    def _module(self, mode: str, x: Any, state: Any, params: dict[str, Any], *, num_layers: int,
                bidirectional: bool, batch_first: bool, nonlinearity: str, proj_size: int,
                lengths: Any, dropout: float, training: bool, rng: Any,
                grad: bool = False) -> tuple[Callable[..., tuple], list[torch.Tensor]]:
        cls, gates = {"rnn": (nn.RNN, 1), "gru": (nn.GRU, 3), "lstm": (nn.LSTM, 4)}[mode]
        kw: dict[str, Any] = {"nonlinearity": nonlinearity} if mode == "rnn" else {}
        if proj_size:
            kw["proj_size"] = proj_size
        module = self._built(cls, np.shape(params["weight_ih_l0"])[1],
                             np.shape(params["weight_hh_l0"])[0] // gates, num_layers=num_layers,
                             bias="bias_ih_l0" in params, batch_first=batch_first,
                             dropout=dropout, bidirectional=bidirectional, **kw).train(training)
        names = list(params)
        n_states = 0 if state is None else (len(state) if mode == "lstm" else 1)
        states = [] if state is None else (list(state) if mode == "lstm" else [state])
        inputs = [self.t(a, grad) for a in (x, *states, *(params[k] for k in names))]
        steps = np.shape(x)[1 if batch_first else 0]
        seed = None if rng is None else int(rng.integers(0, 2**63 - 1))
        devices = [self.device] if self.device.type == "cuda" else []

        def run(*args: torch.Tensor) -> tuple:
            xs, st, ps = args[0], args[1:1 + n_states], args[1 + n_states:]
            inp: torch.Tensor | PackedSequence = xs
            if lengths is not None:
                inp = pack_padded_sequence(xs, torch.as_tensor(np.asarray(lengths), dtype=torch.int64),
                                           batch_first=batch_first, enforce_sorted=False)
            h: Any = None if not st else (tuple(st) if mode == "lstm" else st[0])
            # Dropout between layers draws from the global generator: seed it from the caller's
            # rng inside a fork, so equal rng states give equal masks and nothing leaks.
            with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
                # CPU builds note that oneDNN has no projection kernel and fall back to the
                # default one: informational, once per call.
                warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
                if seed is not None:
                    torch.manual_seed(seed)
                out = functional_call(module, dict(zip(names, ps, strict=True)), (inp, h),
                                      strict=True)
            y = out[0]
            if lengths is not None:
                y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=steps)
            return (y, *(out[1] if mode == "lstm" else (out[1],)))

        return run, inputs

    def rnn_module(self, mode, x, state, params, *, num_layers=1, bidirectional=False,
                   batch_first=False, nonlinearity="tanh", proj_size=0, lengths=None,
                   dropout=0.0, training=False, rng=None):
        run, args = self._module(mode, x, state, params, num_layers=num_layers,
                                 bidirectional=bidirectional, batch_first=batch_first,
                                 nonlinearity=nonlinearity, proj_size=proj_size, lengths=lengths,
                                 dropout=dropout, training=training, rng=rng)
        with torch.no_grad():
            return tuple(self.n(o) for o in run(*args))

    @staticmethod
    def _projection_params(w_ih, w_hh, w_hr, b_ih, b_hh) -> dict[str, Any]:
        b_ih, b_hh = TorchBackend._bias_pair(b_ih, b_hh)
        named = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "weight_hr_l0": w_hr}
        return named if b_ih is None else {**named, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}

    def lstm_cell_projection(self, x, h, c, w_ih, w_hh, w_hr, b_ih=None, b_hh=None):
        # No cell module projects: one step of nn.LSTM(proj_size=P) is the cell.
        _, h1, c1 = self.rnn_module("lstm", np.asarray(x)[None], (np.asarray(h)[None],
                                                                  np.asarray(c)[None]),
                                    self._projection_params(w_ih, w_hh, w_hr, b_ih, b_hh),
                                    proj_size=np.shape(w_hr)[0])
        return h1[0], c1[0]

    # feed-forward pieces -----------------------------------------------------------------
    def linear(self, x, w, b=None):
        with torch.no_grad():
            return self.n(F.linear(self.t(x), self.t(w), self.t(b)))

    def dropout(self, x, p, training, rng):
        # F.dropout takes no generator: seed the global one inside a fork so nothing leaks.
        seed = int(rng.integers(0, 2**63 - 1))
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            return self.n(F.dropout(self.t(x), p=p, training=training))

    def vjp_dropout(self, g, x, p, training, rng):
        seed = int(rng.integers(0, 2**63 - 1))
        devices = [self.device] if self.device.type == "cuda" else []
        xt = self.t(x, grad=True)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            y = F.dropout(xt, p=p, training=training)
        (dx,) = torch.autograd.grad(y, xt, self.t(g))
        return (self.n(dx),)

    def xavier_uniform(self, shape, gain, rng):
        w = torch.empty(tuple(shape), dtype=self.tdtype, device=self.device)
        return self.n(nn.init.xavier_uniform_(w, gain=gain, generator=self._generator(rng)))

    def xavier_normal(self, shape, gain, rng):
        w = torch.empty(tuple(shape), dtype=self.tdtype, device=self.device)
        return self.n(nn.init.xavier_normal_(w, gain=gain, generator=self._generator(rng)))

    def _constructed(self, build: Callable[[], nn.Module], rng: np.random.Generator) -> nn.Module:
        # Module constructors take no generator: seed the global one inside a fork.
        seed = int(rng.integers(0, 2**63 - 1))
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return build()

    def torch_default_linear(self, out_features, in_features, rng):
        layer = self._constructed(lambda: nn.Linear(in_features, out_features, device=self.device,
                                                    dtype=self.tdtype), rng)
        return self.n(layer.weight), self.n(layer.bias)

    def torch_default_rnn(self, kind, input_size, hidden_size, rng):
        cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
        module = self._constructed(lambda: cls(input_size, hidden_size, device=self.device,
                                               dtype=self.tdtype), rng)
        return tuple(self.n(getattr(module, name))
                     for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))

    # optimisers and clipping -------------------------------------------------------------
    # The optimisers update their parameters in place, and self.t shares the caller's memory on
    # the CPU: each parameter is a copy, or the step would write into the argument w.
    def sgd_step(self, w, grad, lr, weight_decay):
        p = nn.Parameter(self.t(w).clone())
        p.grad = self.t(grad)
        torch.optim.SGD([p], lr=lr, weight_decay=weight_decay).step()
        return self.n(p)

    def sgd_step_seed000(self, X_B, y_B, w, b, eta, lam):
        # What a torch user writes for seed 000's step: the batch-mean loss, and optimiser
        # parameter groups that decay w by λ/|B| and leave the bias alone (spec/regularisation.md).
        X, y = self.t(X_B), self.t(y_B)
        wp, bp = nn.Parameter(self.t(w).clone()), nn.Parameter(self.t(np.asarray(b)).clone())
        (0.5 * ((X @ wp + bp - y) ** 2).mean()).backward()
        torch.optim.SGD([{"params": [wp], "weight_decay": lam / X.shape[0]},
                         {"params": [bp], "weight_decay": 0.0}], lr=eta).step()
        return self.n(wp), self.n(bp)

    def _adam(self, cls, w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        p = nn.Parameter(self.t(w).clone())
        p.grad = self.t(grad)
        opt = cls([p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
        # Resume from step t − 1 with the given moments, so this call performs step t.
        opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": self.t(m).clone(),
                        "exp_avg_sq": self.t(v).clone()}
        opt.step()
        st = opt.state[p]
        return self.n(p), self.n(st["exp_avg"]), self.n(st["exp_avg_sq"])

    def adam_step(self, w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        return self._adam(torch.optim.Adam, w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)

    def adamw_step(self, w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        return self._adam(torch.optim.AdamW, w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)

    def _params_with_grads(self, grads: Sequence[Any]) -> list[nn.Parameter]:
        params = []
        for g in grads:
            p = nn.Parameter(torch.zeros(np.shape(g), dtype=self.tdtype, device=self.device))
            p.grad = self.t(g).clone()
            params.append(p)
        return params

    def clip_grad_norm(self, grads, max_norm, norm_type=2.0):
        params = self._params_with_grads(grads)
        total = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        return [self.n(p.grad) for p in params], float(total)

    def clip_grad_value(self, grads, clip_value):
        params = self._params_with_grads(grads)
        nn.utils.clip_grad_value_(params, clip_value)
        return [self.n(p.grad) for p in params]

    # losses and activations --------------------------------------------------------------
    def _ce(self, logits: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                               reduction=reduction)

    def cross_entropy(self, logits, target):
        with torch.no_grad():
            return self.n(self._ce(self.t(logits), self.t(target), "mean"))

    def cross_entropy_sum(self, logits, target):
        with torch.no_grad():
            return self.n(self._ce(self.t(logits), self.t(target), "sum"))

    def threshold(self, x):
        xt = self.t(x)
        return self.n(torch.heaviside(xt, torch.zeros((), dtype=xt.dtype, device=xt.device)))

    def sigmoid(self, x, alpha=1.0):
        with torch.no_grad():
            return self.n(torch.sigmoid(alpha * self.t(x)))

    def tanh(self, x):
        with torch.no_grad():
            return self.n(torch.tanh(self.t(x)))

    def relu(self, x):
        with torch.no_grad():
            return self.n(F.relu(self.t(x)))

    def softplus(self, x):
        with torch.no_grad():
            return self.n(F.softplus(self.t(x)))

    def prelu(self, x, a):
        with torch.no_grad():
            return self.n(F.prelu(self.t(x), self.t(np.atleast_1d(a))))

    def maxout(self, x, k):
        xt = self.t(x)
        with torch.no_grad():
            return self.n(xt.unflatten(-1, (xt.shape[-1] // k, k)).amax(-1))

    def softmax(self, x):
        with torch.no_grad():
            return self.n(F.softmax(self.t(x), dim=-1))

    def log_softmax(self, x):
        with torch.no_grad():
            return self.n(F.log_softmax(self.t(x), dim=-1))

    # vector-Jacobian products by autograd ------------------------------------------------
    def _vjp(self, fn: Callable[..., Any], cotangent: Any, args: Sequence[Any]) -> tuple:
        tensors = [self.t(a, grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                   else (self.t(a) if isinstance(a, np.ndarray) else a) for a in args]
        out = fn(*tensors)
        outs = out if isinstance(out, tuple) else (out,)
        cots = cotangent if isinstance(cotangent, tuple | list) else (cotangent,)
        wrt = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
        grads = iter(torch.autograd.grad(outs, wrt, [self.t(c) for c in cots], allow_unused=True))
        result: list[np.ndarray | None] = []
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.requires_grad:
                gt = next(grads)
                result.append(self.n(gt) if gt is not None else np.zeros(tuple(t.shape)))
            else:
                result.append(None)
        return tuple(result)

    def vjp_linear(self, g, x, w, b=None):
        return self._vjp(F.linear, g, (x, w, b))

    def vjp_cross_entropy(self, g, logits, target):
        # The integer targets get no gradient; the contract returns (dlogits,) alone.
        return self._vjp(lambda z, y: self._ce(z, y, "mean"), g, (logits, target))[:1]

    def vjp_sigmoid(self, g, x, alpha=1.0):
        return self._vjp(lambda z: torch.sigmoid(alpha * z), g, (x,))

    def vjp_tanh(self, g, x):
        return self._vjp(torch.tanh, g, (x,))

    def vjp_relu(self, g, x):
        return self._vjp(F.relu, g, (x,))

    def vjp_softplus(self, g, x):
        return self._vjp(F.softplus, g, (x,))

    def vjp_prelu(self, g, x, a):
        dx, da = self._vjp(F.prelu, g, (x, np.atleast_1d(a)))
        return dx, da.reshape(np.shape(a))

    def vjp_maxout(self, g, x, k):
        return self._vjp(lambda z: z.unflatten(-1, (z.shape[-1] // k, k)).amax(-1), g, (x,))

    def vjp_lstm_cell(self, g, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.LSTMCell, x, [h, c], w_ih, w_hh, b_ih, b_hh,
                                    layer=False, grad=True)
        outs = run(*args)
        wrt = [a for a in args if a is not None]
        grads = iter(torch.autograd.grad(outs, wrt, [self.t(c_) for c_ in g]))
        return tuple(self.n(next(grads)) if a is not None else None for a in args)

    def _rnn_grads(self, outs: Sequence[torch.Tensor], cotangents: Sequence[Any],
                   args: list[torch.Tensor | None], b_ih: Any, b_hh: Any) -> tuple:
        wrt = [a for a in args if a is not None]
        grads = iter(torch.autograd.grad(outs, wrt, [self.t(c) for c in cotangents]))
        out = [self.n(next(grads)) if a is not None else None for a in args]
        # _bias_pair stands a zero in for the missing bias of a pair; the caller passed none.
        return (*out[:-2], None if b_ih is None else out[-2], None if b_hh is None else out[-1])

    def vjp_rnn_cell(self, gh, x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        run, args = self._recurrent(nn.RNNCell, x, [h], w_ih, w_hh, b_ih, b_hh, layer=False,
                                    grad=True, nonlinearity=nonlinearity)
        return self._rnn_grads([run(*args)], [gh], args, b_ih, b_hh)

    def vjp_rnn_layer(self, g, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        run, args = self._recurrent(nn.RNN, x, [h0], w_ih, w_hh, b_ih, b_hh, layer=True,
                                    grad=True, nonlinearity=nonlinearity)
        y, hT = run(*args)
        return self._rnn_grads([y, hT[0]], list(g), args, b_ih, b_hh)

    def vjp_lstm_layer(self, g, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.LSTM, x, [h0, c0], w_ih, w_hh, b_ih, b_hh, layer=True,
                                    grad=True)
        y, (hT, cT) = run(*args)
        return self._rnn_grads([y, hT[0], cT[0]], list(g), args, b_ih, b_hh)

    def vjp_rnn_module(self, cotangents, mode, x, state, params, *, num_layers=1,
                       bidirectional=False, batch_first=False, nonlinearity="tanh", proj_size=0,
                       lengths=None, dropout=0.0, training=False, rng=None):
        run, args = self._module(mode, x, state, params, num_layers=num_layers,
                                 bidirectional=bidirectional, batch_first=batch_first,
                                 nonlinearity=nonlinearity, proj_size=proj_size, lengths=lengths,
                                 dropout=dropout, training=training, rng=rng, grad=True)
        outs = run(*args)
        grads = torch.autograd.grad(outs, args, [self.t(c) for c in cotangents], allow_unused=True)
        grads = [np.zeros(tuple(a.shape)) if gr is None else self.n(gr)
                 for a, gr in zip(args, grads, strict=True)]
        n_states = len(args) - 1 - len(params)
        d_states = grads[1:1 + n_states]
        d_state = None if state is None else (tuple(d_states) if mode == "lstm" else d_states[0])
        return grads[0], d_state, dict(zip(params, grads[1 + n_states:], strict=True))

    def vjp_lstm_cell_projection(self, g, x, h, c, w_ih, w_hh, w_hr, b_ih=None, b_hh=None):
        gh, gc = g
        dx, (dh, dc), dp = self.vjp_rnn_module(
            (np.zeros((1, *np.shape(gh))), np.asarray(gh)[None], np.asarray(gc)[None]), "lstm",
            np.asarray(x)[None], (np.asarray(h)[None], np.asarray(c)[None]),
            self._projection_params(w_ih, w_hh, w_hr, b_ih, b_hh), proj_size=np.shape(w_hr)[0])
        return (dx[0], dh[0], dc[0], dp["weight_ih_l0"], dp["weight_hh_l0"], dp["weight_hr_l0"],
                None if b_ih is None else dp["bias_ih_l0"], None if b_hh is None else dp["bias_hh_l0"])

    # GRU: gradients, and the seeds' reset-before-matmul variant ----------------------------
    def vjp_gru_cell(self, gh, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.GRUCell, x, [h], w_ih, w_hh, b_ih, b_hh, layer=False,
                                    grad=True)
        return self._rnn_grads([run(*args)], [gh], args, b_ih, b_hh)

    def vjp_gru_layer(self, g, x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        run, args = self._recurrent(nn.GRU, x, [h0], w_ih, w_hh, b_ih, b_hh, layer=True,
                                    grad=True)
        y, hT = run(*args)
        return self._rnn_grads([y, hT[0]], list(g), args, b_ih, b_hh)

    @staticmethod
    def _gru_textbook(x, h, w_ih, w_hh, b_ih, b_hh):
        # No torch module computes this variant (nn.GRU and nn.GRUCell reset after the matmul),
        # so it is composed from torch ops: its checks test torch's arithmetic, not a torch API.
        w_ir, w_iz, w_in = w_ih.chunk(3)
        w_hr, w_hz, w_hn = w_hh.chunk(3)
        b_ir, b_iz, b_in = (None,) * 3 if b_ih is None else b_ih.chunk(3)
        b_hr, b_hz, b_hn = (None,) * 3 if b_hh is None else b_hh.chunk(3)
        r = torch.sigmoid(F.linear(x, w_ir, b_ir) + F.linear(h, w_hr, b_hr))
        z = torch.sigmoid(F.linear(x, w_iz, b_iz) + F.linear(h, w_hz, b_hz))
        n = torch.tanh(F.linear(x, w_in, b_in) + F.linear(r * h, w_hn, b_hn))
        return (1 - z) * n + z * h

    def gru_cell_textbook(self, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        with torch.no_grad():
            return self.n(self._gru_textbook(*(self.t(a) for a in (x, h, w_ih, w_hh, b_ih, b_hh))))

    def vjp_gru_cell_textbook(self, gh, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return self._vjp(self._gru_textbook, gh, (x, h, w_ih, w_hh, b_ih, b_hh))

    def functions(self) -> dict[str, Callable[..., Any]]:
        """The contract functions, for ``globals().update`` in the per-device modules."""
        from nnspec.checks.harness.contract import ALL

        return {name: getattr(self, name) for name in ALL if hasattr(self, name)}
