"""Numerics: a loss computed through a catalogued softmax bug, named even where it overflows.

The catalogue's softmax bugs (``losses.bug.softmax_no_shift``: exp(y)/Σ exp(y) without the max
shift, NaN once a logit passes 709 in float64; ``losses.bug.log_of_softmax``: log(softmax(y)),
−inf once a logit trails the largest by 745) are written for ``softmax`` and ``log_softmax``. A
cross-entropy built on one of them shows the same overflow, but no reference function with
cross_entropy's arguments models it, so the diagnosis could not name it. :func:`composites` gives
those models — the contract's loss (and its gradient) with the buggy softmax inside — for the
diagnosis to try beside the catalogue's own candidates. The diagnosis' distance counts the same
NaN or inf on both sides as agreement, so a loss that returns NaN at large logits is named
``losses.bug.softmax_no_shift``.

At a single position both bugs can give the same inf (a target 2000 below the largest logit), so
a match is confirmed on :func:`designed`, logits on which the two differ from each other and from
the spec: an unshifted softmax gives NaN where a logit is 800, the log of a shifted one gives inf
where the target's logit trails by 800, and the mean of both rows keeps each one's mark.

A linear layer's shrunk call can be as degenerate: a float32 x wᵀ + b whose b is small beside
x wᵀ rounds it away and matches ``linear.bug.no_bias`` to the last bit, so that match is confirmed
on fresh x, w and b of the call's shapes (:func:`_linear_arguments`), where a dropped bias is off
by O(1) and float32 rounding is not.

An elementwise activation's failing call can be as degenerate: a σ saturated to exactly 1 beyond
x = 20 gives 1.0 at x = 21, as both hard sigmoids do, so a catalogued bug is confirmed on a
:data:`SPREAD` of x as well (the call's other arguments kept), where a hard sigmoid is 0.08 off σ
and the saturated σ is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnspec.reference import losses


def _picked(log_p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """−log p_k per position."""
    return -np.take_along_axis(log_p, np.asarray(k)[..., None], axis=-1)[..., 0]


def _log_unshifted(y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(losses.softmax_no_shift(y))


def _log_of_softmax(y: np.ndarray) -> np.ndarray:
    return losses.log_of_softmax(y)


#: The catalogued bug inside, and log p as that bug computes it.
_LOG_SOFTMAX_BUGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "losses.bug.softmax_no_shift": _log_unshifted,
    "losses.bug.log_of_softmax": _log_of_softmax,
}


def _loss(log_p: Callable[[np.ndarray], np.ndarray], reduce: str) -> Callable[..., Any]:
    def loss(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            per = _picked(log_p(np.asarray(logits, dtype=np.float64)), target)
            return np.asarray(per.mean() if reduce == "mean" else per.sum())
    return loss


def _loss_vjp(bug: str) -> Callable[..., Any]:
    """∂L/∂y = (p − o)/N with p from the unshifted softmax (NaN where it overflows)."""
    def vjp(g: Any, logits: np.ndarray, target: np.ndarray) -> tuple[np.ndarray]:
        y = np.asarray(logits, dtype=np.float64)
        with np.errstate(all="ignore"):
            p = losses.softmax_no_shift(y) if bug == "losses.bug.softmax_no_shift" else np.exp(
                losses.log_of_softmax(y))
            o = losses.one_hot(np.asarray(target), y.shape[-1])
            return (np.asarray(g) * (p - o) / max(np.asarray(target).size, 1),)
    return vjp


def composites(fn: str) -> dict[str, Callable[..., Any]]:
    """Models of ``fn`` with a catalogued softmax bug inside, by that bug's id; {} for a
    function no such bug can sit in."""
    if fn == "cross_entropy":
        return {bug: _loss(log_p, "mean") for bug, log_p in _LOG_SOFTMAX_BUGS.items()}
    if fn == "cross_entropy_sum":
        return {bug: _loss(log_p, "sum") for bug, log_p in _LOG_SOFTMAX_BUGS.items()}
    if fn == "vjp_cross_entropy":
        return {bug: _loss_vjp(bug) for bug in _LOG_SOFTMAX_BUGS}
    return {}


#: Logits that tell the softmax bugs apart (module docstring), and their targets.
_LOGITS = np.array([[800.0, 0.0, -3.0], [0.5, -800.0, 1.0]])
_TARGETS = np.array([0, 1])


#: Elementwise activations (x first), and their vector–Jacobian products ((g, x) first).
ELEMENTWISE = ("sigmoid", "tanh", "relu", "softplus", "threshold", "prelu")
ELEMENTWISE_VJP = ("vjp_sigmoid", "vjp_tanh", "vjp_relu", "vjp_softplus")

#: x from −1000 to 1000, eight values a decade from 10⁻³ up and 0: the middle where a
#: hard sigmoid or a naive softplus is off, and saturation and overflow beyond, at any slope α.
SPREAD = np.concatenate([-np.geomspace(1e3, 1e-3, 49), [0.0], np.geomspace(1e-3, 1e3, 49)])


def designed(fn: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
             ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Arguments (positional, keyword) of ``fn`` on which its catalogued models differ: the
    logits of the module docstring for the losses; for an elementwise activation or its
    vector–Jacobian product, the failing call's ``args`` and ``kwargs`` with x the
    :data:`SPREAD` (and g from ½ to 3/2, so no element is weighted 0); for ``linear``, fresh
    arguments of the call's shapes (:func:`_linear_arguments`); [] for others."""
    kwargs = kwargs or {}
    if fn in ("cross_entropy", "cross_entropy_sum"):
        return [((_LOGITS, _TARGETS), {})]
    if fn == "vjp_cross_entropy":
        return [((np.array(1.0), _LOGITS, _TARGETS), {})]
    if fn == "prelu" and len(args) > 1 and np.size(args[1]) != 1:
        return []  # a slope per channel fixes the shape of x
    if fn == "linear" and len(args) >= 2:
        return [(_linear_arguments(args[0], args[1], args[2] if len(args) > 2 else kwargs.get("b")), {})]
    if fn in ELEMENTWISE and args:
        return [((SPREAD.copy(), *args[1:]), kwargs)]
    if fn in ELEMENTWISE_VJP and len(args) > 1:
        g = np.linspace(0.5, 1.5, SPREAD.size)
        return [((g, SPREAD.copy(), *args[2:]), kwargs)]
    return []


def _linear_arguments(x: Any, w: Any, b: Any = None) -> tuple[Any, ...]:
    """x ~ N(0, 1), w ~ N(0, 1/in) and, where the call has one, b ~ N(0, 1), of the call's
    shapes (a fixed draw): every output is x wᵀ + b with both parts O(1)."""
    rng = np.random.default_rng(20261207)
    x_new = rng.standard_normal(np.shape(x))
    w_new = rng.standard_normal(np.shape(w)) / np.sqrt(max(1, np.shape(w)[-1]))
    return (x_new, w_new) if b is None else (x_new, w_new, rng.standard_normal(np.shape(b)))
