"""ONNX's reference evaluator (onnx.reference.ReferenceEvaluator) running the ONNX graphs of
nnspec.implementations.onnx_graphs in float64: the GRU (linear_before_reset=1 as gru_cell and
gru_layer, 0 as gru_cell_textbook), LSTM and RNN operators, and Sigmoid, Tanh and Softmax (not its
LogSoftmax, see below). Forward only.

A correct alternative of the corpus (checks/oracle/alternatives.py). The evaluator's RNN operator
has no Relu activation, so the ReLU cell is the operator with the identity activation followed by
the Relu operator, one step at a time. Unavailable (its checks skip) without the onnx package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnspec.checks.harness.loading import ImplementationUnavailable
from nnspec.implementations.onnx_graphs import contract_functions

try:
    from onnx.reference import ReferenceEvaluator
except ImportError as exc:
    raise ImplementationUnavailable(f"the onnx package is not installed ({exc}); "
                                    f"pip install 'nnspec[onnx]'") from exc

DTYPE = np.float64

_evaluators: dict[int, Any] = {}


def _run(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` with one evaluator per graph, built on first use."""
    if id(model) not in _evaluators:
        _evaluators[id(model)] = ReferenceEvaluator(model)
    return _evaluators[id(model)].run(None, feeds)


_functions = contract_functions(_run, DTYPE, relu_in_rnn=False)
# The evaluator's LogSoftmax is np.log(Softmax(X)): losses.bug.log_of_softmax (−inf once a
# probability underflows), which the oracle rightly fails and names. Not a correct alternative,
# so not provided.
del _functions["log_softmax"]
globals().update(_functions)
