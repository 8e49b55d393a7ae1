"""The red cells of the 20-seed soak (reports/soak.md), replayed with their seeds: each was a
false alarm on a correct implementation, and each run here must stay green.

A cell replays as the soak ran it — the same test, implementation, example count and seeds — in
a pytest of its own, because Hypothesis' search depends on the whole sequence of draws. A replay
holds only while the strategies draw as they did, so each fix also has a direct test (named in
its docstring); the replays run with ``-m slow``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: The conformance checks' folder, whatever directory pytest runs in.
CHECKS = Path(__file__).resolve().parents[1]

#: (test node, implementation, seed, what went wrong): the soak's command per seed is
#: ``--nnspec-examples 40 --hypothesis-seed k --nnspec-seed k``.
RED_CELLS = [
    pytest.param("test_sequence.py::test_rnn_module_gradients_match_reference",
                 "torch_float32", 16,
                 id="seed16-float32-gradient-below-the-subnormal-range"),
    # The soak of 9c7ba0a: a batch row flagged as long-memory by the random tangents' inflated,
    # noisy mean square, its gradient bounds left infinite ("setup: … infinite"); the direct
    # tests are test_error_model.py's long-memory gradient test and coherence.NOISE's rule.
    *(pytest.param("test_gru.py::test_gru_layer_gradients_over_a_long_sequence_match_the_reference",
                   "torch", seed, id=f"seed{seed}-gru-gradient-row-flagged-by-noise")
      for seed in (6, 9, 14)),
    pytest.param("test_rnn.py::test_rnn_layer_gradients_over_a_long_sequence_match_the_reference",
                 "torch", 4, id="seed4-relu-rnn-gradient-row-flagged-by-noise"),
    # The soak of 3780c9a: a float64 GRU module whose (1 − z) and (1 − n²) vanish together, the
    # first-order V of their product 0; the direct test is test_error_model.py's
    # test_two_factors_that_vanish_together_keep_their_second_order_error.
    pytest.param("test_sequence.py::test_rnn_module_gradients_match_reference", "torch", 16,
                 id="seed16-float64-gradient-two-vanishing-factors"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("node", "module", "seed"), RED_CELLS)
def test_a_red_soak_cell_is_green_when_replayed(node, module, seed):
    """Seed 16: a float32 GRU module's ∂w_ih of 1.5e-53 — below float32's smallest subnormal —
    computed as 0, against a probabilistic bound of 0 (no underflow floor: propagation.py,
    ``underflow``; the direct test is test_error_model.py's
    test_a_result_below_the_dtypes_range_is_within_the_underflow_floor). Seeds 4, 6, 9, 14: a
    long-sequence gradient check whose bound was infinite (coherence.NOISE)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CHECKS / node),
         "--impl", module,
         "--nnspec-examples", "40", "--hypothesis-seed", str(seed), "--nnspec-seed", str(seed)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
