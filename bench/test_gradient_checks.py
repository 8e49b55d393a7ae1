"""Cost of nnspec's directional finite-difference check against torch.autograd.gradcheck.

The same function, an LSTM cell with batch 4, input 32, hidden 64 in float64 (25,728 gradient
entries), is checked by check_gradient (complex step and Richardson, on the reference and its
analytic VJP) and by gradcheck in fast and slow mode (on torch.nn.LSTMCell). The issue's target:
ours within 10× of fast mode's time, flat in the parameter count. Slow gradcheck takes seconds
per call, so it runs only with ``--run-slow-gradcheck``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnspec.checks.harness.gradients import check_gradient
from nnspec.checks.harness.strategies import typical_lstm_cell
from nnspec.reference import lstm as ref

B, D, H = 4, 32, 64


@pytest.mark.parametrize("method", ["complex", "richardson"])
def test_check_gradient_on_lstm_cell(benchmark, rng, method):
    args = typical_lstm_cell(rng, B, D, H)
    benchmark.group = "gradient check, LSTM cell B=4 D=32 H=64"
    benchmark.extra_info.update(tool=f"nnspec check_gradient ({method})")
    benchmark(check_gradient, ref.lstm_cell, ref.lstm_cell_vjp, args, wrt=range(7), rng=rng,
              method=method, spec_id="lstm.cell", name="reference", call="bench")


def _torch_cell(args: tuple[np.ndarray, ...]):
    cell = torch.nn.LSTMCell(D, H, dtype=torch.float64)
    x, h, c, w_ih, w_hh, b_ih, b_hh = (torch.tensor(a, requires_grad=True) for a in args)

    def f(x, h, c, w_ih, w_hh, b_ih, b_hh):
        params = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}
        return torch.func.functional_call(cell, params, (x, (h, c)))

    return f, (x, h, c, w_ih, w_hh, b_ih, b_hh)


def test_gradcheck_fast_mode_on_lstm_cell(benchmark, rng):
    f, inputs = _torch_cell(typical_lstm_cell(rng, B, D, H))
    benchmark.group = "gradient check, LSTM cell B=4 D=32 H=64"
    benchmark.extra_info.update(tool="torch.autograd.gradcheck(fast_mode=True)")
    assert benchmark(torch.autograd.gradcheck, f, inputs, fast_mode=True)


def test_gradcheck_slow_mode_on_lstm_cell(benchmark, rng, request):
    if not request.config.getoption("--run-slow-gradcheck"):
        pytest.skip("slow gradcheck takes ~10 s a call: pass --run-slow-gradcheck")
    f, inputs = _torch_cell(typical_lstm_cell(rng, B, D, H))
    benchmark.group = "gradient check, LSTM cell B=4 D=32 H=64"
    benchmark.extra_info.update(tool="torch.autograd.gradcheck(fast_mode=False)")
    assert benchmark.pedantic(torch.autograd.gradcheck, (f, inputs), rounds=1, iterations=1)
