"""nnspec's float64 reference exposed through the implementation-under-test contract.

It is checked like any other implementation: this exercises the contract's layout conversions and
the not-provided logic. Each contract name is bound to the reference function of its spec id.
"""

import numpy as np

from nnspec.reference.activations import (
    maxout,
    prelu,
    relu,
    sigmoid,
    softplus,
    tanh,
    threshold,
)
from nnspec.reference.activations import maxout_vjp as vjp_maxout
from nnspec.reference.activations import prelu_vjp as vjp_prelu
from nnspec.reference.activations import relu_vjp as vjp_relu
from nnspec.reference.activations import sigmoid_vjp as vjp_sigmoid
from nnspec.reference.activations import softplus_vjp as vjp_softplus
from nnspec.reference.activations import tanh_vjp as vjp_tanh
from nnspec.reference.dropout import dropout
from nnspec.reference.dropout import dropout_vjp as vjp_dropout
from nnspec.reference.gru import gru_cell, gru_cell_textbook, gru_layer
from nnspec.reference.gru import gru_cell_textbook_vjp as vjp_gru_cell_textbook
from nnspec.reference.gru import gru_cell_vjp as vjp_gru_cell
from nnspec.reference.gru import gru_layer_vjp as vjp_gru_layer
from nnspec.reference.initialisation import (
    torch_default_linear,
    torch_default_rnn,
    xavier_normal,
    xavier_uniform,
)
from nnspec.reference.linear import affine as linear
from nnspec.reference.linear import affine_vjp as vjp_linear
from nnspec.reference.losses import log_softmax, softmax
from nnspec.reference.losses import sequence_mean as cross_entropy
from nnspec.reference.losses import sequence_mean_vjp as vjp_cross_entropy
from nnspec.reference.losses import sequence_sum as cross_entropy_sum
from nnspec.reference.lstm import lstm_cell, lstm_cell_projection, lstm_layer
from nnspec.reference.lstm import lstm_cell_projection_vjp as vjp_lstm_cell_projection
from nnspec.reference.lstm import lstm_cell_vjp as vjp_lstm_cell
from nnspec.reference.lstm import lstm_layer_vjp as vjp_lstm_layer
from nnspec.reference.regularisation import adam_step, adamw_step, sgd_step, sgd_step_seed000
from nnspec.reference.rnn import rnn_cell, rnn_layer
from nnspec.reference.rnn import rnn_cell_vjp as vjp_rnn_cell
from nnspec.reference.rnn import rnn_layer_vjp as vjp_rnn_layer
from nnspec.reference.sequence import rnn_module
from nnspec.reference.sequence import rnn_module_vjp as vjp_rnn_module
from nnspec.reference.stability import clip_grad_norm, clip_grad_value

DTYPE = np.float64

__all__ = ["DTYPE", "adam_step", "adamw_step", "clip_grad_norm", "clip_grad_value",
           "cross_entropy", "cross_entropy_sum", "dropout",
           "gru_cell", "gru_cell_textbook", "gru_layer",
           "linear", "log_softmax", "lstm_cell", "lstm_cell_projection", "lstm_layer",
           "maxout", "prelu", "relu", "rnn_cell",
           "rnn_layer", "rnn_module", "sgd_step", "sgd_step_seed000", "sigmoid",
           "softmax", "softplus", "tanh", "threshold",
           "torch_default_linear", "torch_default_rnn", "vjp_cross_entropy", "vjp_dropout",
           "vjp_gru_cell", "vjp_gru_cell_textbook", "vjp_gru_layer",
           "vjp_linear", "vjp_lstm_cell", "vjp_lstm_cell_projection", "vjp_lstm_layer",
           "vjp_maxout", "vjp_prelu", "vjp_relu", "vjp_rnn_cell",
           "vjp_rnn_layer", "vjp_rnn_module", "vjp_sigmoid",
           "vjp_softplus", "vjp_tanh", "xavier_normal", "xavier_uniform"]
