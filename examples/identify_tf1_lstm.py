"""TensorFlow 1's BasicLSTMCell, written in NumPy, for ``nnspec identify`` (README, "Identifying a
cell's layout").

tf.compat.v1.nn.rnn_cell.BasicLSTMCell has one ``kernel`` (D + H, 4H) applied to the
concatenation [x, h] and one ``bias`` (4H,); its column blocks are the gates i, j (the candidate
cell), f, o, and it adds ``forget_bias`` = 1.0 to the forget gate's pre-activation at every step:

    i, j, f, o = split([x, h] @ kernel + bias)
    c' = c ⊙ σ(f + forget_bias) + σ(i) ⊙ tanh(j),  h' = tanh(c') ⊙ σ(o)

(tensorflow/python/ops/rnn_cell_impl.py, BasicLSTMCell.call). ``.venv/bin/nnspec identify
examples/identify_tf1_lstm.py`` finds the concatenation, the gate order and the offset, which a
conversion from PyTorch must subtract from the forget gate's bias.
"""

import numpy as np
from scipy.special import expit as _sigmoid  # σ without overflow for large |a|

KIND = "lstm"
INPUT_SIZE, HIDDEN_SIZE = 3, 4
PARAMS = {"kernel": (INPUT_SIZE + HIDDEN_SIZE, 4 * HIDDEN_SIZE), "bias": (4 * HIDDEN_SIZE,)}
FORGET_BIAS = 1.0


def CELL(x, h, c, kernel, bias):
    """One step of BasicLSTMCell: (h', c') from x (B, D), h and c (B, H)."""
    i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ kernel + bias, 4, axis=1)
    c_new = c * _sigmoid(f + FORGET_BIAS) + _sigmoid(i) * np.tanh(j)
    return np.tanh(c_new) * _sigmoid(o), c_new
