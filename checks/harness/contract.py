"""The implementation-under-test contract: the functions a module may define.

An implementation under test is an importable module of plain functions on NumPy arrays in
PyTorch's layout (weights ``(gates·H, in)``, gate blocks r, z, n for the GRU and i, f, g, o for
the LSTM, biases ``b_ih``/``b_hh`` with ``None`` meaning no bias, sequences ``(T, B, features)``,
states ``(B, H)``). It defines ``DTYPE`` and any subset of the functions below; a function it
does not define, or one that raises ``NotImplementedError``, is reported as *not provided*.

``CORE`` is the published contract of the foundation issue and never changes. ``EXTENSIONS`` are
added beside it (activations, gradients as vector-Jacobian products, optimiser variants).
"""

from __future__ import annotations

CORE: dict[str, str] = {
    "linear": "linear(x, w, b=None) -> y = x wᵀ + b",
    "rnn_cell": 'rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh") -> h\'',
    "gru_cell": "gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None) -> h'  (PyTorch's reset-gate variant)",
    "lstm_cell": "lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None) -> (h', c')",
    "rnn_layer": 'rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh") -> (y, h_T)',
    "gru_layer": "gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None) -> (y, h_T)",
    "lstm_layer": "lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None) -> (y, h_T, c_T)",
    "dropout": "dropout(x, p, training, rng) -> y   (rng: numpy.random.Generator)",
    "xavier_uniform": "xavier_uniform(shape, gain, rng) -> array of that shape",
    "xavier_normal": "xavier_normal(shape, gain, rng) -> array of that shape",
    "sgd_step": "sgd_step(w, grad, lr, weight_decay) -> w - lr·(grad + weight_decay·w)",
    "clip_grad_norm": "clip_grad_norm(grads, max_norm, norm_type=2.0) -> (clipped list, total norm)",
    "cross_entropy": "cross_entropy(logits, target) -> mean cross-entropy over all leading positions",
}

EXTENSIONS: dict[str, str] = {
    # activations (seed 003), elementwise unless stated
    "threshold": "threshold(x) -> 1 where x > 0 else 0",
    "sigmoid": "sigmoid(x, alpha=1.0) -> 1 / (1 + exp(-alpha·x))",
    "tanh": "tanh(x)",
    "relu": "relu(x)",
    "softplus": "softplus(x) -> log(1 + exp(x))",
    "prelu": "prelu(x, a) -> x if x > 0 else a·x   (a: scalar or per-channel, channel axis 1)",
    "maxout": "maxout(x, k) -> max over k consecutive features of the last axis",
    "softmax": "softmax(x) over the last axis",
    "log_softmax": "log_softmax(x) over the last axis",
    # losses
    "cross_entropy_sum": "cross_entropy_sum(logits, target) -> sum of per-position cross-entropies",
    # optimisers
    "sgd_step_seed000": "sgd_step_seed000(X_B, y_B, w, b, eta, lam) -> (w', b'): one minibatch "
                        "step of seed 000's linear regression with weight decay λ in the seed's "
                        "convention (bias not decayed); the implementation maps it to its optimiser",
    "adam_step": "adam_step(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay) -> (w', m', v')",
    "adamw_step": "adamw_step(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay) -> (w', m', v')",
    "clip_grad_value": "clip_grad_value(grads, clip_value) -> clipped list",
    # initialisers: the parameters a freshly constructed torch.nn module starts from
    "torch_default_linear": "torch_default_linear(out_features, in_features, rng) -> (w, b)  "
                            "(nn.Linear's initial weight (out, in) and bias (out,))",
    "torch_default_rnn": 'torch_default_rnn(kind, input_size, hidden_size, rng) -> (w_ih, w_hh, '
                         'b_ih, b_hh)  (kind "rnn", "gru" or "lstm": a one-layer nn.RNN/GRU/LSTM)',
    # vector-Jacobian products: vjp_NAME(cotangent, *args) -> tuple of gradients, one per array arg
    "vjp_linear": "vjp_linear(g, x, w, b=None) -> (dx, dw, db)",
    "vjp_cross_entropy": "vjp_cross_entropy(g, logits, target) -> (dlogits,)",
    "vjp_sigmoid": "vjp_sigmoid(g, x, alpha=1.0) -> (dx,)",
    "vjp_tanh": "vjp_tanh(g, x) -> (dx,)",
    "vjp_relu": "vjp_relu(g, x) -> (dx,)  (0 at x = 0)",
    "vjp_softplus": "vjp_softplus(g, x) -> (dx,)",
    "vjp_prelu": "vjp_prelu(g, x, a) -> (dx, da)  (da has a's shape; a·g at x = 0)",
    "vjp_maxout": "vjp_maxout(g, x, k) -> (dx,)  (g of shape (…, m) for x of shape (…, m·k))",
    "vjp_dropout": "vjp_dropout(g, x, p, training, rng) -> (dx,)  (same rng state as the forward)",
    "vjp_lstm_cell": "vjp_lstm_cell((gh, gc), x, h, c, w_ih, w_hh, b_ih, b_hh) -> 7 gradients",
    "vjp_rnn_cell": 'vjp_rnn_cell(gh, x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh") '
                    "-> (dx, dh, dw_ih, dw_hh, db_ih, db_hh)  (None for an absent bias)",
    "vjp_rnn_layer": 'vjp_rnn_layer((gy, ghT), x, h0, w_ih, w_hh, b_ih=None, b_hh=None, '
                     'nonlinearity="tanh") -> (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)  (BPTT)',
    # GRU: the seeds' variant (reset before the matmul), which no torch module computes
    "gru_cell_textbook": "gru_cell_textbook(x, h, w_ih, w_hh, b_ih=None, b_hh=None) -> h'  "
                         "(n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn); r, z, h' as gru_cell)",
    "vjp_gru_cell": "vjp_gru_cell(gh, x, h, w_ih, w_hh, b_ih=None, b_hh=None) -> (dx, dh, dw_ih, "
                    "dw_hh, db_ih, db_hh)  (None for an absent bias)",
    "vjp_gru_cell_textbook": "vjp_gru_cell_textbook(gh, x, h, w_ih, w_hh, b_ih=None, b_hh=None) "
                             "-> (dx, dh, dw_ih, dw_hh, db_ih, db_hh)",
    "vjp_gru_layer": "vjp_gru_layer((gy, ghT), x, h0, w_ih, w_hh, b_ih=None, b_hh=None) -> (dx, "
                     "dh0, dw_ih, dw_hh, db_ih, db_hh)  (backpropagation through time)",
    # LSTM: the layer's gradients and nn.LSTM's projection (proj_size)
    "vjp_lstm_layer": "vjp_lstm_layer((gy, ghT, gcT), x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None) "
                      "-> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)  (backpropagation through time)",
    "lstm_cell_projection": "lstm_cell_projection(x, h, c, w_ih, w_hh, w_hr, b_ih=None, b_hh=None) "
                            "-> (h', c')  (h' = w_hr (o ⊙ tanh c'): (B, P); w_hh (4H, P), w_hr (P, H))",
    "vjp_lstm_cell_projection": "vjp_lstm_cell_projection((gh, gc), x, h, c, w_ih, w_hh, w_hr, "
                                "b_ih=None, b_hh=None) -> (dx, dh, dc, dw_ih, dw_hh, dw_hr, db_ih, "
                                "db_hh)",
    # whole recurrent modules (spec/sequence.md): nn.RNN / nn.GRU / nn.LSTM with their options
    "rnn_module": 'rnn_module(mode, x, state, params, *, num_layers=1, bidirectional=False, '
                  'batch_first=False, nonlinearity="tanh", proj_size=0, lengths=None, dropout=0.0, '
                  'training=False, rng=None) -> (y, h_n) for mode "rnn"/"gru", (y, h_n, c_n) for '
                  '"lstm"  (params: dict by PyTorch\'s names weight_ih_l0, …, *_reverse, weight_hr_l0; '
                  "state None, h0 or (h0, c0), each (num_layers·directions, B, ·); lengths (B,) "
                  "ints: a packed batch, outputs 0 beyond each length)",
    "vjp_rnn_module": "vjp_rnn_module(cotangents, mode, x, state, params, **same options) -> (dx, "
                      "dstate, dparams)  (cotangents (gy, gh_n[, gc_n]); dstate None when state "
                      "is None, else shaped like it; dparams a dict with params' keys)",
}

ALL: dict[str, str] = {**CORE, **EXTENSIONS}
