"""nnspec's float64 reference exposed through the implementation-under-test contract.

It is checked like any other implementation: this exercises the contract's layout conversions and
the not-provided logic. Each contract name is bound to the reference function of its spec id.
"""

import numpy as np

from nnspec.reference.linear import affine as linear
from nnspec.reference.linear import affine_vjp as vjp_linear

DTYPE = np.float64

__all__ = ["DTYPE", "linear", "vjp_linear"]
