"""What an export holds: one row per (spec id, contract function), its cases and its bound.

A :class:`Values` row names the input recipes and the function of ``nnspec.checks.bounds`` that
bounds each output, the one the checks themselves call, taking the contract function's arguments
and a keyword-only ``dtype`` (no row writes a bound of its own). The output names come from the
contract (checks/harness/contract.py). A :class:`Claims` row states a random operation's
statistical claims instead.
"""

from __future__ import annotations

import functools
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnspec.checks.bounds import activations, gru, linear, losses, lstm, regularisation, rnn, stability
from nnspec.checks.bounds import rules as tol
from nnspec.checks.harness import contract
from nnspec.vectors import claims
from nnspec.vectors.files import leaves
from nnspec.vectors.recipes import (
    Case,
    adam_cases,
    cell_cases,
    clip_norm_cases,
    clip_value_cases,
    dropout_cases,
    elementwise_cases,
    gru_layer_cases,
    linear_cases,
    logit_cases,
    maxout_cases,
    position_cases,
    prelu_cases,
    rnn_cell_cases,
    rnn_layer_cases,
    sequence_cases,
    sgd_cases,
    with_cotangent,
)


@dataclass(frozen=True)
class Values:
    """Value vectors of one contract function under one spec id."""

    spec_id: str
    function: str
    cases: tuple[Case, ...]
    #: ``bound(*args, dtype=dtype)``: one Bound per output in the contract's order (a list of them
    #: for a list output, None for an absent output); None: every output is exact (tol.exact).
    bound: Callable[..., Any] | None
    #: "module:function" of the reference; default the contract's reference implementation.
    reference: str = ""
    #: Other spec ids whose cases of the same name an implementation may match instead.
    accepts_instead: tuple[str, ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        """The contract's names of the outputs in the order returned; "name[]" is a list."""
        return tuple(f"{name}[]" if typing.get_origin(kind) is list else name
                     for name, kind in contract.returns(self.function).items())

    @property
    def bound_source(self) -> str:
        """The function the bounds come from."""
        return "tol.exact" if self.bound is None else f"{self.bound.__module__}.{self.bound.__name__}"

    def bounds(self, args: tuple, want: dict[str, Any], dtype: np.dtype) -> dict[str, tol.Bound | None]:
        """The bound of each output (named as :func:`nnspec.vectors.files.leaves` names them) for
        an implementation computing in ``dtype``; ``want`` holds the expected values."""
        if self.bound is None:
            return {k: None if w is None else tol.exact(w) for k, w in want.items()}
        return {name: b for name, _, b in leaves(self.bound(*args, dtype=dtype), self.outputs)}


@dataclass(frozen=True)
class Claims:
    """Statistical claims of a random contract function (no value vectors are possible)."""

    spec_id: str
    function: str
    claims: Callable[[], dict]


# The bound is stability.clip_grad_norm's (wraps names it as the source); only its outputs' order
# changes, to the contract's (clipped list, total).
@functools.wraps(stability.clip_grad_norm)
def clip_grad_norm(grads: list[np.ndarray], max_norm: float, norm_type: float, *,
                   dtype: np.dtype) -> tuple[list[tol.Bound], tol.Bound]:
    total, clipped = stability.clip_grad_norm(grads, max_norm, norm_type, dtype=dtype)
    return clipped, total


SPLUS, SPLUS_T = "activations.softplus", "activations.softplus.torch_threshold"
TORCH_SOFTPLUS = "nnspec.reference.activations:softplus_torch_threshold"
GRU_CELLS, LSTM_CELLS = cell_cases(3), cell_cases(4, cell_state=True)

VECTORS: tuple[Values | Claims, ...] = (
    Values("linear.affine", "linear", linear_cases(), linear.linear),
    Values("linear.affine", "vjp_linear", with_cotangent("linear", linear_cases()),
           linear.vjp_linear),
    Values("activations.threshold", "threshold", elementwise_cases(), None),
    Values("activations.sigmoid", "sigmoid", elementwise_cases(alpha=0.5), activations.sigmoid),
    Values("activations.sigmoid", "vjp_sigmoid",
           with_cotangent("sigmoid", elementwise_cases(alpha=0.5)), activations.vjp_sigmoid),
    Values("activations.tanh", "tanh", elementwise_cases(), activations.tanh),
    Values("activations.tanh", "vjp_tanh", with_cotangent("tanh", elementwise_cases()), activations.vjp_tanh),
    Values("activations.relu", "relu", elementwise_cases(), None),
    Values("activations.relu", "vjp_relu", with_cotangent("relu", elementwise_cases()), None),
    Values(SPLUS, "softplus", elementwise_cases(), activations.softplus, accepts_instead=(SPLUS_T,)),
    Values(SPLUS, "vjp_softplus", with_cotangent("softplus", elementwise_cases()), activations.vjp_softplus,
           accepts_instead=(SPLUS_T,)),
    Values(SPLUS_T, "softplus", elementwise_cases(), activations.softplus_torch_threshold,
           reference=TORCH_SOFTPLUS, accepts_instead=(SPLUS,)),
    Values(SPLUS_T, "vjp_softplus", with_cotangent("softplus", elementwise_cases()),
           activations.vjp_softplus_torch_threshold, reference=TORCH_SOFTPLUS + "_vjp",
           accepts_instead=(SPLUS,)),
    Values("activations.prelu", "prelu", prelu_cases(), activations.prelu),
    Values("activations.prelu", "vjp_prelu", with_cotangent("prelu", prelu_cases()), activations.vjp_prelu),
    # Every case has one maximum per unit: with ties the gradient is any split (the check's
    # vjp_maxout_split), which a value cannot state.
    Values("activations.maxout", "maxout", maxout_cases(), None),
    Values("activations.maxout", "vjp_maxout", with_cotangent("maxout", maxout_cases()), None),
    Values("losses.softmax", "softmax", logit_cases(), losses.softmax),
    Values("losses.log_softmax", "log_softmax", logit_cases(), losses.log_softmax),
    Values("losses.cross_entropy", "cross_entropy", position_cases(), losses.cross_entropy),
    Values("losses.sequence_mean", "cross_entropy", sequence_cases(), losses.cross_entropy),
    Values("losses.sequence_mean", "vjp_cross_entropy",
           with_cotangent("cross_entropy", sequence_cases(), scalar=True), losses.vjp_cross_entropy),
    Values("losses.sequence_sum", "cross_entropy_sum", sequence_cases(), losses.cross_entropy_sum),
    Values("gru.cell.pytorch", "gru_cell", GRU_CELLS, gru.gru_cell),
    Values("gru.cell.pytorch", "vjp_gru_cell", with_cotangent("gru_cell", GRU_CELLS), gru.vjp_gru_cell),
    Values("gru.cell.textbook", "gru_cell_textbook", GRU_CELLS, gru.gru_cell_textbook),
    Values("gru.cell.textbook", "vjp_gru_cell_textbook",
           with_cotangent("gru_cell_textbook", GRU_CELLS), gru.vjp_gru_cell_textbook),
    Values("gru.layer", "gru_layer", gru_layer_cases(), gru.gru_layer),
    Values("gru.layer", "vjp_gru_layer", with_cotangent("gru_layer", gru_layer_cases()),
           gru.vjp_gru_layer),
    Values("lstm.cell", "lstm_cell", LSTM_CELLS, lstm.lstm_cell),
    Values("lstm.cell", "vjp_lstm_cell", with_cotangent("lstm_cell", LSTM_CELLS),
           lstm.vjp_lstm_cell),
    Values("rnn.cell", "rnn_cell", rnn_cell_cases(), rnn.rnn_cell),
    Values("rnn.cell", "vjp_rnn_cell", with_cotangent("rnn_cell", rnn_cell_cases()),
           rnn.vjp_rnn_cell),
    Values("rnn.layer", "rnn_layer", rnn_layer_cases(), rnn.rnn_layer),
    Values("rnn.layer", "vjp_rnn_layer", with_cotangent("rnn_layer", rnn_layer_cases()),
           rnn.vjp_rnn_layer),
    Values("regularisation.sgd_step.torch", "sgd_step", sgd_cases(), regularisation.sgd_step),
    Values("regularisation.adam_l2", "adam_step", adam_cases(), regularisation.adam_step),
    Values("regularisation.adamw", "adamw_step", adam_cases(), regularisation.adamw_step),
    Values("stability.clip_grad_norm", "clip_grad_norm", clip_norm_cases(), clip_grad_norm),
    Values("stability.clip_grad_value", "clip_grad_value", clip_value_cases(), None),
    # spec/dropout.md, claim 5 (and 6 for the gradient): exact, whatever the generator.
    Values("dropout.inverted", "dropout", dropout_cases(), None),
    Values("dropout.inverted", "vjp_dropout", with_cotangent("dropout", dropout_cases()), None),
    Claims("dropout.inverted", "dropout", claims.dropout_claims),
    Claims("initialisation.xavier_uniform", "xavier_uniform",
           lambda: claims.xavier_claims(normal=False)),
    Claims("initialisation.xavier_normal", "xavier_normal", lambda: claims.xavier_claims(normal=True)),
    Claims("initialisation.torch_default_linear", "torch_default_linear",
           lambda: claims.torch_default_claims(recurrent_kinds=False)),
    Claims("initialisation.torch_default_rnn", "torch_default_rnn",
           lambda: claims.torch_default_claims(recurrent_kinds=True)),
)

#: Why a spec id with a contract function has no vectors of its own. Other ids without vectors
#: are listed by :func:`nnspec.vectors.export.export` as having no contract function or no recipe yet.
NOT_EXPORTED = {
    "rnn.cell.linear": "checked through the contract's linear on [x, h]: linear.affine's vectors "
                       "cover that function",
    "regularisation.sgd_step.seed000": "reached through sgd_step with weight_decay = λ/|B|: "
                                       "regularisation.sgd_step.torch's vectors cover it",
    "regularisation.sgd_step.textbook": "reached through sgd_step with weight_decay = λ: "
                                        "regularisation.sgd_step.torch's vectors cover it",
    "stability.deep_linear_product": "checked through the contract's linear, chained: "
                                     "linear.affine's vectors cover that function",
    "dropout.inverted_keep_prob": "a parametrisation (q = 1 − p) with no contract function of its own",
}


def planned() -> list[tuple[str, str, str]]:
    """(spec id, function, case) of every value vector, without computing anything."""
    return [(row.spec_id, row.function, case.name) for row in VECTORS if isinstance(row, Values)
            for case in row.cases]


def resolve(path: str) -> Callable:
    """The function a "module:function" path names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def reference_of(row: Values) -> str:
    """The "module:function" path of the reference that computes ``row``'s expected outputs."""
    return row.reference or f"nnspec.implementations.reference:{row.function}"
