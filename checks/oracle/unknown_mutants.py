"""Mutants the catalogue does not know: one mistake each, for the localisation to find.

The catalogue (checks/oracle/catalogue.py) holds bugs with an id, which the diagnosis names by
matching. These are mistakes *without* a model in the reference — an ignored bias, a gate without
its recurrent term, outputs in the wrong order, a layer one step late or restarted mid-sequence, a
packed batch's final state taken after the padding — so the diagnosis can only say where they
are, by the experiments of checks/oracle/localisation.py. One exception proves the numerics:
a cross-entropy through an unshifted softmax, whose NaN at large logits must be named
``losses.bug.softmax_no_shift`` although that id is catalogued for ``softmax`` only.

Each :class:`Mutant` is a catalogue :class:`~nnspec.checks.oracle.catalogue.Entry` of kind
*mistake* (so :func:`nnspec.selftest.run` runs it) with what the diagnosis must say: a finding of
``kind`` whose location contains ``where``, or, with ``named_as``, a line naming that id.
checks/meta/test_localisation.py holds each to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnspec.checks.oracle.catalogue import Entry
from nnspec.checks.oracle.localisation import zero_block
from nnspec.reference import gru, losses, lstm, rnn, sequence
from nnspec.reference.activations import sigmoid


@dataclass(frozen=True)
class Mutant(Entry):
    """A mistake outside the catalogue and the finding it must get: ``expect_kind`` with
    ``expect_where`` in its location, or a line naming ``named_as``."""

    expect_kind: str = ""
    expect_where: str = ""


def _rnn_cell_ignores_b_hh(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """h' = φ(x w_ihᵀ + b_ih + h w_hhᵀ): the recurrent bias never added."""
    return rnn.rnn_cell(x, h, w_ih, w_hh, b_ih, None, nonlinearity)


def _gru_reset_without_h(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """r = σ(W_ir x + b_ir + b_hr): the reset gate's recurrent term W_hr h left out."""
    return gru.gru_cell(x, h, w_ih, zero_block(w_hh, 0, 3), b_ih, b_hh)


def _lstm_forget_ignores_w_hf(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """f = σ(W_if x + b_if + b_hf): the forget gate's W_hf h left out."""
    return lstm.lstm_cell(x, h, c, w_ih, zero_block(w_hh, 1, 4), b_ih, b_hh)


def _lstm_returns_c_h(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The new state returned as (c', h'), Keras's [h, c] order read backwards."""
    h_new, c_new = lstm.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    return c_new, h_new


def _lstm_forget_gate_tanh(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The forget gate squashed by tanh instead of σ (f ∈ (−1, 1)); no argument alteration
    models it, so only the gate probes can place it."""
    a_i, a_f, a_g, a_o = np.split(lstm.pre_activations_stacked(x, h, w_ih, w_hh, b_ih, b_hh), 4,
                                  axis=-1)
    i, f, g, o = sigmoid(a_i), np.tanh(a_f), np.tanh(a_g), sigmoid(a_o)
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


def _rnn_layer_one_step_late(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """y_t recorded before the step instead of after: (h0, h_1, …, h_{T−1}), h_T right."""
    y, h_T = rnn.rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return np.concatenate([h0[None], y[:-1]]), h_T


#: The step at which :func:`_gru_layer_restart` restarts its state.
RESTART = 40


def _gru_layer_restart(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """The state restarted from h0 at step RESTART (a stale reset flag): right below it."""
    if len(x) <= RESTART:
        return gru.gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh)
    y1, _ = gru.gru_layer(x[:RESTART], h0, w_ih, w_hh, b_ih, b_hh)
    y2, h_T = gru.gru_layer(x[RESTART:], h0, w_ih, w_hh, b_ih, b_hh)
    return np.concatenate([y1, y2]), h_T


def _lstm_layer_outputs_reversed(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """y returned last step first (a stack popped instead of a list read)."""
    y, h_T, c_T = lstm.lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return y[::-1], h_T, c_T


def _packed_final_state_after_padding(mode, x, state, params, **options: Any):
    """A packed batch whose outputs are zeroed beyond each length but whose h_n (and c_n) is
    the state after all T steps: the lengths used for the outputs only."""
    right = sequence.rnn_module(mode, x, state, params, **options)
    if options.get("lengths") is None:
        return right
    unpacked = sequence.rnn_module(mode, x, state, params, **{**options, "lengths": None})
    return (right[0], *unpacked[1:])


def _cross_entropy_unshifted(logits, target):
    """−log softmax(y)_k with softmax = exp(y)/Σ exp(y) unshifted: NaN once a logit passes 709."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        p = losses.softmax_no_shift(np.asarray(logits))
        return -np.log(np.take_along_axis(p, np.asarray(target)[..., None], axis=-1)).mean()


def _mutant(name: str, fn: str, f: Callable[..., Any], only: str, origin: str, *,
            kind: str = "", where: str = "", named_as: tuple[str, ...] = ()) -> Mutant:
    return Mutant(name=name, kind="mistake", functions={fn: f}, only=(only,), origin=origin,
                  named_as=named_as, expect_kind=kind, expect_where=where)


MUTANTS: tuple[Mutant, ...] = (
    _mutant("rnn_cell_ignores_b_hh", "rnn_cell", _rnn_cell_ignores_b_hh, "rnn.cell",
            "the recurrent bias b_hh accepted and never added", kind="argument", where="b_hh"),
    _mutant("gru_reset_without_h", "gru_cell", _gru_reset_without_h, "gru.cell.pytorch",
            "the reset gate computed from x alone", kind="gate", where="W_hr"),
    _mutant("lstm_forget_ignores_w_hf", "lstm_cell", _lstm_forget_ignores_w_hf, "lstm.cell",
            "the forget gate's recurrent weights dropped", kind="gate", where="W_hf"),
    _mutant("lstm_returns_c_h", "lstm_cell", _lstm_returns_c_h, "lstm.cell",
            "the new state returned as (c', h')", kind="output order", where="(c', h')"),
    _mutant("lstm_forget_gate_tanh", "lstm_cell", _lstm_forget_gate_tanh, "lstm.cell",
            "tanh where the forget gate's σ belongs", kind="gate", where="forget gate"),
    _mutant("rnn_layer_one_step_late", "rnn_layer", _rnn_layer_one_step_late, "rnn.layer",
            "each output recorded before its step", kind="time", where="late"),
    _mutant("gru_layer_restart_at_40", "gru_layer", _gru_layer_restart, "gru.layer",
            f"the state restarted from h0 at step {RESTART}", kind="time",
            where=f"step {RESTART}"),
    _mutant("lstm_layer_outputs_reversed", "lstm_layer", _lstm_layer_outputs_reversed,
            "lstm.layer", "the outputs returned last step first", kind="time", where="reversed"),
    _mutant("packed_final_state_after_padding", "rnn_module", _packed_final_state_after_padding,
            "sequence.packed", "lengths used to zero the outputs, not for the final state",
            kind="time", where="final state"),
    _mutant("cross_entropy_unshifted_softmax", "cross_entropy", _cross_entropy_unshifted,
            "losses.sequence_mean", "cross-entropy as −log of an unshifted softmax",
            named_as=("losses.bug.softmax_no_shift",)),
)
