"""Seed 004's hand-written LSTM cell, checked as the contract's ``lstm_cell`` (spec lstm.cell).

``MyLSTM`` is the code of seed 004 §4 (004_bcc32c0e7e6b1f49.txt, 自己实现LSTM) as written there,
with one fix: its forward reads ``self.w_C``, but ``__init__`` defines ``self.w_c`` (Python names
are case-sensitive, so the seed's cell raises AttributeError on its first step). The seed prints
``forward`` and ``initHidden`` outside the class; they are its methods.

The lines after the class adapt it to the contract (README, "Checking your own implementation"):

    .venv/bin/nnspec check examples.seed004_lstm --only lstm.cell
"""

import torch
from torch import nn

from nnspec.adapters import from_torch_cell, linear_per_gate

# ---- seed 004 §4, as written (w_C → w_c) -----------------------------------------------------

class MyLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(MyLSTM, self).__init__()  # noqa: UP008 (the seed's code, as written)
        self.hidden_size = hidden_size

        # LSTM parameters
        self.w_f = nn.Linear(input_size + hidden_size, hidden_size)
        self.w_i = nn.Linear(input_size + hidden_size, hidden_size)
        self.w_c = nn.Linear(input_size + hidden_size, hidden_size)
        self.w_o = nn.Linear(input_size + hidden_size, hidden_size)

        # Output layer
        self.out = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=-1)

    def forward(self, input, h, C):
        combined = torch.cat((input, h), dim=2)

        f_t = torch.sigmoid(self.w_f(combined))
        i_t = torch.sigmoid(self.w_i(combined))
        C_tilde = torch.tanh(self.w_c(combined))
        C = f_t * C + i_t * C_tilde
        o_t = torch.sigmoid(self.w_o(combined))
        h = o_t * torch.tanh(C)

        output = self.out(h)
        output = self.softmax(output)
        return output, h, C

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size), torch.zeros(1, 1, self.hidden_size)


# ---- the adapter -----------------------------------------------------------------------------

def step(cell, x, h, c):
    """One contract step: x (B, D), h, c (B, H) become the seed's one-step sequences (1, B, ·),
    which its forward concatenates along dim 2; the new (h, c), without the output layer."""
    _, h_new, c_new = cell(x[None], h[None], c[None])
    return h_new[0], c_new[0]


# PyTorch's blocks i, f, g, o are the seed's layers w_i, w_f, w_c, w_o, and torch.cat((input, h))
# puts the input's columns first: each layer's weight is [w_ih block | w_hh block] ("xh"), its
# bias b_ih + b_hh. The output layer is not part of the cell; any output size will do.
_cell = from_torch_cell(
    lambda input_size, hidden_size: MyLSTM(input_size, hidden_size, output_size=1),
    kind="lstm",
    mapping=linear_per_gate({"i": "w_i", "f": "w_f", "g": "w_c", "o": "w_o"}, order="xh"),
    call=step,
)
DTYPE, lstm_cell, vjp_lstm_cell = _cell.DTYPE, _cell.lstm_cell, _cell.vjp_lstm_cell
