"""Statistical claims of the random contract functions (dropout, the initialisers).

Their output is a sample, so no value vector can hold them; an export states instead the
parameters, what holds always and which hypothesis test checks the rest, from the designs the
checks use (nnspec.checks.harness.designs) and the reference's laws.
"""

from __future__ import annotations

import numpy as np

from nnspec.checks.harness import designs
from nnspec.checks.harness.stats import ALPHA
from nnspec.reference import initialisation as ref_initialisation


def dropout_claims() -> dict:
    """dropout.inverted: the drop count, the mean, the pairs and the exact cases (spec/dropout.md)."""
    return {
        "parameters": {"p": list(designs.P_VALUES), "p_pairs": designs.P_PAIRS,
                       "shape": list(designs.SHAPE), "alpha": ALPHA},
        "claims": [
            {"holds": "always", "statement": "every element of dropout(x, p, True, rng) is exactly "
             "0 or x/(1 − p), up to tol.elementwise with 4 ulps (x/(1 − p) versus x·(1/(1 − p)))"},
            {"holds": "test", "test": "exact two-sided binomial", "statement": "the number of zeros "
             "among n non-zero inputs is Binomial(n, p)", "n": int(np.prod(designs.SHAPE))},
            {"holds": "test", "test": "two-sided z-test", "statement": "E[h' − h] = 0 over positive "
             "inputs, with the exact variance mean(h²)·p/(1 − p)/n"},
            {"holds": "test", "test": "exact two-sided binomial", "statement": "units dropped by two "
             "successive calls, by two seeds, and neighbours along each axis coincide with "
             "probability p² (p = p_pairs); the smaller half of |x| is dropped with probability p"},
            {"holds": "always", "statement": "evaluation mode is the identity for every p, p = 0 the "
             "identity and p = 1 zeros in training, bit for bit (value vectors of this id)"},
            {"holds": "always", "statement": "vjp_dropout(g, x, p, True, rng) is 0 exactly where "
             "dropout(x, p, True, rng) dropped and g/(1 − p) where it kept, from an equal "
             "generator state"}]}


def xavier_claims(*, normal: bool) -> dict:
    """initialisation.xavier_uniform or _normal: each design case's law, and the tests that check it."""
    cases = []
    for shape, gain, _ in designs.XAVIER_CASES:
        fan_in, fan_out = ref_initialisation.fans(shape)
        if normal:
            sigma = ref_initialisation.xavier_normal_std(fan_in, fan_out, gain)
            law = {"law": "N(0, sigma^2)", "sigma": sigma, "variance": sigma**2}
        else:
            bound = ref_initialisation.xavier_uniform_bound(fan_in, fan_out, gain)
            law = {"law": "U(-bound, bound)", "bound": bound, "variance": bound**2 / 3}
        cases.append({"shape": list(shape), "gain": gain, "fan_in": fan_in, "fan_out": fan_out,
                      **law})
    claims = [{"holds": "always", "statement": "the result has the requested shape"},
              {"holds": "test", "test": "Kolmogorov–Smirnov", "statement": "the elements follow "
               "the stated law"},
              {"holds": "test", "test": "two-sided z-test", "statement": "mean(W²) equals the "
               "variance, with Var[W²] = 2σ⁴ (normal) or 4·bound⁴/45 (uniform)"}]
    if not normal:
        claims.insert(1, {"holds": "always", "statement": "every |W| ≤ bound + tol.elementwise(bound)"})
    return {"parameters": {"alpha": ALPHA, "cases": cases,
                           "fans": "fan_in = shape[1]·∏shape[2:], fan_out = shape[0]·∏shape[2:]"},
            "claims": claims}


def torch_default_claims(*, recurrent_kinds: bool) -> dict:
    """initialisation.torch_default_linear or _rnn: the shapes, the bound and the uniform law."""
    if recurrent_kinds:
        H, D = designs.RNN_HIDDEN, designs.RNN_INPUT
        parameters = {"input_size": D, "hidden_size": H,
                      "bound": ref_initialisation.torch_default_rnn_bound(H),
                      "shapes": {kind: {"w_ih": [k * H, D], "w_hh": [k * H, H], "b_ih": [k * H],
                                        "b_hh": [k * H]}
                                 for kind, k in sorted(ref_initialisation.GATES.items())}}
        law = "w_ih, w_hh, b_ih, b_hh ~ U(−1/√H, 1/√H); weights and biases tested apart"
    else:
        out, inp = designs.LINEAR_OUT, designs.LINEAR_IN
        parameters = {"out_features": out, "in_features": inp,
                      "bound": ref_initialisation.torch_default_linear_bound(inp),
                      "shapes": {"w": [out, inp], "b": [out]}}
        law = "w, b ~ U(−1/√in_features, 1/√in_features)"
    return {"parameters": {"alpha": ALPHA, **parameters},
            "claims": [{"holds": "always", "statement": "shapes as stated; every |element| ≤ "
                        "bound + tol.elementwise(bound)"},
                       {"holds": "test", "test": "Kolmogorov–Smirnov", "statement": law}]}
