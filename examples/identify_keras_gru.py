"""A GRU cell in Keras 3's layout, written in NumPy, for ``nnspec identify`` (README, "Identifying
a cell's layout").

keras.layers.GRUCell with its defaults (reset_after=True): ``kernel`` (D, 3H) and
``recurrent_kernel`` (H, 3H) hold the gates z, r, h as column blocks, ``bias`` (2, 3H) the input's
bias and the recurrent one, and the candidate resets the recurrent term after its matmul:

    x_z, x_r, x_h = split(x @ kernel + bias[0]);  r_z, r_r, r_h = split(h @ recurrent_kernel + bias[1])
    z = σ(x_z + r_z),  r = σ(x_r + r_r),  hh = tanh(x_h + r ⊙ r_h),  h' = z ⊙ h + (1 − z) ⊙ hh

(keras/src/layers/rnn/gru.py, GRUCell.call). Nothing here says how PyTorch's weights map onto it:
that is what ``.venv/bin/nnspec identify examples/identify_keras_gru.py`` finds.
"""

import numpy as np
from scipy.special import expit as _sigmoid  # σ without overflow for large |a|

KIND = "gru"


def PARAMS(input_size, hidden_size):
    """Keras' parameter shapes at any sizes."""
    return {"kernel": (input_size, 3 * hidden_size),
            "recurrent_kernel": (hidden_size, 3 * hidden_size),
            "bias": (2, 3 * hidden_size)}


def CELL(x, h, kernel, recurrent_kernel, bias):
    """One step of Keras 3's GRUCell (reset_after=True): h' from x (B, D) and h (B, H)."""
    H = h.shape[1]
    x_z, x_r, x_h = np.split(x @ kernel + bias[0], [H, 2 * H], axis=1)
    r_z, r_r, r_h = np.split(h @ recurrent_kernel + bias[1], [H, 2 * H], axis=1)
    z = _sigmoid(x_z + r_z)
    r = _sigmoid(x_r + r_r)
    hh = np.tanh(x_h + r * r_h)
    return z * h + (1 - z) * hh
