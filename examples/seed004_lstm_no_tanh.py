"""A deliberately broken seed 004 cell: h = o ⊙ C, the tanh on the cell forgotten.

The oracle should fail it on lstm.cell and name the bug it matches, lstm.bug.no_tanh_on_cell:

    .venv/bin/nnspec check examples.seed004_lstm_no_tanh --only lstm.cell
"""

import torch

from examples.seed004_lstm import MyLSTM, step
from nnspec.adapters import from_torch_cell, linear_per_gate


class NoTanhLSTM(MyLSTM):
    def forward(self, input, h, C):
        combined = torch.cat((input, h), dim=2)

        f_t = torch.sigmoid(self.w_f(combined))
        i_t = torch.sigmoid(self.w_i(combined))
        C_tilde = torch.tanh(self.w_c(combined))
        C = f_t * C + i_t * C_tilde
        o_t = torch.sigmoid(self.w_o(combined))
        h = o_t * C  # the bug: o_t * torch.tanh(C)

        output = self.out(h)
        output = self.softmax(output)
        return output, h, C


_cell = from_torch_cell(
    lambda input_size, hidden_size: NoTanhLSTM(input_size, hidden_size, output_size=1),
    kind="lstm",
    mapping=linear_per_gate({"i": "w_i", "f": "w_f", "g": "w_c", "o": "w_o"}, order="xh"),
    call=step,
)
DTYPE, lstm_cell, vjp_lstm_cell = _cell.DTYPE, _cell.lstm_cell, _cell.vjp_lstm_cell
