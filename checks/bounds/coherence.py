"""rnn.layer, gru.layer, lstm.layer, lstm.cell.projection, sequence.module — the error covariance
of a recurrent layer along the directions its tangent map carries furthest (spec/tolerances.md,
"Long memory").

The diagonal model of checks/bounds/propagation.py carries each state component's variance
proxy V through the squares of the step Jacobian's entries, J∘J, dropping covariances. Over a
long memory that is not enough: an error injected at step s reaches step t along every path of
the products J_t ⋯ J_{s+1}, and the paths through the recurrent weights add *coherently* — in
amplitude, not in power — so the exact variance of the linear model, diag(Σ_s Φ(t,s) D_s Φ(t,s)ᵀ),
outgrows the diagonal one wherever the tangent map contracts slowly (an LSTM whose forget gates
sit near 1: 22–25× in √V at T = 1000).

Here r coordinates c_t of the error are followed exactly along the least contracting directions
(the QR iteration of Lyapunov-exponent estimation, Benettin et al. 1980):

    J_t Q_{t−1} = Q_t R_t  (QR),   c_t = R_t c_{t−1} + Q_tᵀ δ_t,   e_t = J_t e_{t−1} + δ_t,

Q_t the directions (orthonormal), δ_t the step's own roundings (their covariance is the diagonal
model's local V, with the one correlation inside a step an LSTM has: h' = o·tanh(c') reads the
rounded c'), e_t the whole error. Carried are M_t = Cov(c_t) = R_t M_{t−1} R_tᵀ + Q_tᵀ Cov(δ_t) Q_t
and X_t = Cov(c_t, e_t) = R_t X_{t−1} J_tᵀ + Q_tᵀ Cov(δ_t) — the tangent map applied to 2r
vectors per step. Each element's variance is read as the part of it that c explains,

    V_i = X_iᵀ M⁻¹ X_i ≤ Var(e_i)        (the Schur complement of Cov(e_i, c) is ≥ 0),

a lower bound on the exact variance of the linear model (for any directions Q and any R: an
inexact QR costs tightness, not validity) that equals it once r is the state's dimension. The layer's V is the
larger of this and the diagonal model's: where the diagonal model is accurate it decides, as
tight as before.

The subspace is narrow — :data:`WIDTH` = 4 directions — and serves as the test of the diagonal
model. Where its variance stays within :data:`GAIN` of the diagonal
model's everywhere, the call's V is the larger of the two. Where it exceeds it somewhere, the
diagonal model is short there (the subspace's V is a lower bound on the exact variance), and the
covariance may be spread over more directions than a narrow subspace follows (an LSTM of
H = 512 with forget gates near 1 needs hundreds). The call is then run again with
:class:`Probes`: K random tangents of the same linear model, whose mean square estimates the
exact variance at any width, and whose bound is a tail bound of its own, (x_K/λ) looser
(propagation.probe_inflation).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import chi2

#: The subspace's width: the directions followed per batch row (two tangents each: Q's and X's).
#: One direction missed a long memory that two and four caught (an LSTM at T = 150, H = 64,
#: forget bias +5: the subspace's V at most 0.68, 2.3 and 4.9 times the diagonal model's), and
#: at forget bias +3 (T = 300, H = 128) two found 1.7 and four 12: four leaves the test margin.
WIDTH = 4

#: The subspace decides — V = max(V_diag, V_subspace) — where V_subspace ≤ GAIN·V_diag everywhere:
#: along the least contracting directions the diagonal model is then short by at most a quarter
#: in V; elsewhere the call goes to :class:`Probes`. Contracting layers stay below 0.6 (forget
#: bias 0 and +2, T = 300, H = 128). Not a bound on the shortfall elsewhere: a moderate memory
#: spread over hundreds of directions passes (spec/tolerances.md, "Long memory", known limits).
GAIN = 1.25

#: Where the subspace's (or the probes') variance exceeds the diagonal model's by more than this
#: factor, a batch row's diagonal gradient model (checks/bounds/backpropagation.py) is not trusted:
#: it has no subspace of its own, and its measured margin — torch's gradient errors at ≤ 0.122 of
#: the bound in every row of the evidence (spec/tolerances.md, "Gradients") — covers an
#: under-estimate of √V by 2 = √4 with room to spare, not the 20× of a long memory. The probes'
#: mean square is compared without its inflation and above its χ² noise (:data:`NOISE`).
DIAGONAL_LIMIT = 4.0

#: The probes' mean square V̂ is χ²_K/K times V_exact: a row is flagged (DIAGONAL_LIMIT) only where
#: V̂ exceeds the limit by the χ² quantile at this probability, so that a row whose V_exact is
#: within the limit is flagged with probability ≤ NOISE per element — a flag makes a long-sequence
#: check's gradient bound infinite, a "setup" failure (the soak of this revision met it in 4 of 20
#: seeds when V̂'s noise and inflation were compared as they are).
NOISE = 1e-9

#: Random tangents of :class:`Probes`: the bound from their mean square is (x_K/λ) looser than
#: one from the exact V — 1.45× at K = 64 (propagation.probe_inflation).
PROBES = 64

#: effect(v): state increments (rows, k, dim) of k draws v (rows, k, n) of independent errors.
Effect = Callable[[np.ndarray], np.ndarray]


def identity(v: np.ndarray) -> np.ndarray:
    """The :data:`Effect` of errors of the state's own components, and its transpose."""
    return v


class Subspace:
    """Q (rows, r, dim): the r directions of each batch row, as rows; M (rows, r, r) and
    X (rows, r, dim): the covariance of the coordinates c, and of c with the whole error e. See
    the module's docstring."""

    def __init__(self, rows: int, dim: int, width: int, V0: np.ndarray | None = None) -> None:
        r = min(width, dim)
        # A fixed start: the bound of a call must not depend on a random draw.
        start = np.random.default_rng(0).standard_normal((rows, r, dim))
        self.Q = _orthonormal(start)[0]
        self.M = np.zeros((rows, r, r))
        self.X = np.zeros((rows, r, dim))
        self.whole = r == dim
        self.excess = 1.0  # its V is a lower bound: any excess over the diagonal one is real
        if V0 is not None:
            self.add(V0, identity, identity)

    @property
    def width(self) -> int:
        return int(self.Q.shape[1])

    def tangents(self) -> np.ndarray:
        """The vectors (rows, 2r, dim) the step's tangent map is to be applied to: Q's and X's."""
        return np.concatenate([self.Q, self.X], axis=1)

    def rotate(self, images: np.ndarray) -> None:
        """One step, from the tangent map's images of :meth:`tangents`: Q_t, and M and X carried;
        the step's own roundings follow by :meth:`add`."""
        r = self.width
        self.Q, R = _orthonormal(images[:, :r])
        self.M = R @ self.M @ R.transpose(0, 2, 1)
        self.X = R @ images[:, r:]

    def add(self, D: np.ndarray, effect: Effect, transpose: Effect) -> None:
        """Independent errors of variance D (rows, n) reaching the state through the linear map E
        (``effect``, with ``transpose`` applying Eᵀ): their coordinates U = Q E, M += U D Uᵀ,
        X += E(U D)."""
        U = transpose(self.Q)
        UD = U * D[:, None, :]
        self.M += U @ UD.transpose(0, 2, 1)
        self.X += effect(UD)

    def variance(self, part: slice) -> np.ndarray:
        """X_iᵀ M⁻¹ X_i over ``part`` of the state (rows, |part|): with M = L Lᵀ, Σ over the
        coordinates of (L⁻¹X)². A ridge of 10⁻¹² of M's mean diagonal keeps a singular M
        (directions no rounding has reached yet) factorable; it only lowers the explained part."""
        r = self.width
        ridge = 1e-12 * np.trace(self.M, axis1=1, axis2=2) / r + np.finfo(np.float64).tiny
        try:
            L = np.linalg.cholesky(self.M + ridge[:, None, None] * np.eye(r))
        except np.linalg.LinAlgError:  # M not finite: no bound from here (propagation._guarded)
            return np.full((self.M.shape[0], self.X[:, :, part].shape[2]), np.nan)
        Y = np.linalg.inv(L) @ self.X[:, :, part]
        return np.sum(Y * Y, axis=1)


class Probes:
    """K random tangents of the linear error model (rows, K, dim): every step's own errors drawn
    as Gaussians of their variance and carried through the step's signed Jacobian, so that each
    tangent's element i is N(0, V_exact,i) and their mean square estimates V_exact — whatever the
    correlations within the layer, at any width (a layer below's error enters as a V of fresh
    errors per step: spec/tolerances.md, "Long memory", known limits). Its bound is a tail bound
    of its own (propagation.probe_inflation), and ``inflation`` scales the mean square to the V
    that λ turns into it."""

    def __init__(self, rows: int, dim: int, K: int, inflation: float,
                 V0: np.ndarray | None = None) -> None:
        self.rng = np.random.default_rng(0)  # a fixed draw: the same call, the same bound
        self.Z = np.zeros((rows, K, dim))
        self.inflation = inflation
        self.excess = inflation * float(chi2.isf(NOISE, K)) / K
        if V0 is not None:
            self.add(V0, identity, identity)

    def tangents(self) -> np.ndarray:
        return self.Z

    def rotate(self, images: np.ndarray) -> None:
        self.Z = images

    def add(self, D: np.ndarray, effect: Effect, transpose: Effect) -> None:
        draws = self.rng.standard_normal((D.shape[0], self.Z.shape[1], D.shape[1]))
        self.Z += effect(draws * np.sqrt(D)[:, None, :])

    def variance(self, part: slice) -> np.ndarray:
        return self.inflation * np.mean(self.Z[:, :, part] ** 2, axis=1)


#: CholeskyQR2's Q is accepted when ‖QQᵀ − I‖_max is below this; LAPACK's QR decides otherwise.
ORTHONORMAL = 1e-10


def _orthonormal(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Y = Rᵀ Q for a batch of wide matrices (rows, r, dim), Q's rows orthonormal, R upper
    triangular — the QR factorisation of Yᵀ. Cholesky QR (Fukaya et al., 2014): Q = L⁻¹Y with
    L Lᵀ = Y Yᵀ — GEMMs, where LAPACK's batched Householder QR is ≈ 30× slower at these shapes;
    repeated once (CholeskyQR2) where one pass leaves Q further than :data:`ORTHONORMAL` from
    orthonormal, which it does for Y's condition numbers up to ≈ u^(−1/2). A Y nearer
    rank-deficient (a saturated or dead unit's direction) fails Cholesky or orthonormality and
    goes to Householder QR."""
    eye = np.eye(Y.shape[1])
    try:
        L = np.linalg.cholesky(Y @ Y.transpose(0, 2, 1))
        Q = np.linalg.inv(L) @ Y
        for passes in (1, 2):
            G = Q @ Q.transpose(0, 2, 1)
            if np.all(np.abs(G - eye) <= ORTHONORMAL):  # NaN fails
                return Q, L.transpose(0, 2, 1)
            if passes == 2:
                break
            L2 = np.linalg.cholesky(G)
            Q, L = np.linalg.inv(L2) @ Q, L @ L2
    except np.linalg.LinAlgError:
        pass
    Qc, R = np.linalg.qr(Y.transpose(0, 2, 1))
    return np.ascontiguousarray(Qc.transpose(0, 2, 1)), R
