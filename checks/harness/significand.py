"""float32 values rounded to a shorter significand: how TF32 and bfloat16 operands are emulated.

Tensor cores convert each float32 operand of a matrix product to TF32 (11 significant bits, 10
stored) or bfloat16 (8, 7 stored) by rounding to nearest, then multiply and accumulate in float32.
Ties go to even here; hardware may break them away from zero, which moves a tie by one unit of
the short format and matters to none of the checks, whose errors are sums over many roundings.
The tests of the reduced-precision diagnosis (checks/meta/test_precision.py, test_error_model.py)
and the bound evidence (bench/bound_evidence.py, bench/gradient_bound_evidence.py) build such
layers on the CPU from this one rounding.
"""

from __future__ import annotations

import numpy as np

#: Significant bits (the implicit one included) of each operand format; float32 has 24.
BITS = {"TF32": 11, "bfloat16": 8}


def rounded(a: np.ndarray, bits: int) -> np.ndarray:
    """float32 ``a`` rounded to ``bits`` significant bits, to nearest, ties to even, on the bit
    pattern (a carry out of the significand raises the exponent, as it should); float32. NaNs
    stay NaN (their payload could otherwise round into an infinity's bit pattern)."""
    if not 1 <= bits <= 24:
        raise ValueError(f"bits = {bits} must be between 1 and 24 (float32's significand)")
    a32 = np.asarray(a, dtype=np.float32)
    drop = 24 - bits
    if drop == 0:
        return a32
    raw = a32.view(np.uint32).astype(np.uint64)
    lsb = (raw >> np.uint64(drop)) & np.uint64(1)
    raw = (raw + np.uint64((1 << (drop - 1)) - 1) + lsb) & ~np.uint64((1 << drop) - 1)
    return np.where(np.isnan(a32), a32, raw.astype(np.uint32).view(np.float32))
