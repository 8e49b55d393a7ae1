"""One decay measurement (spec/decay.md) as JSON-ready data, and the text ``nnspec decay`` and the
report print from it: the rate, the Lyapunov exponents, the weights' spectral radius and largest
singular value, and where a plain float64 pass and torch autograd leave the floating-point range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnspec.reference import decay, decay_measure

LOG10 = math.log(10.0)


def recurrent_blocks(params: decay.Params) -> np.ndarray:
    """The H × H gate blocks of w_hh, (S, G, H, H)."""
    S, rows, H = params.w_hh.shape
    return params.w_hh.reshape(S, rows // H, H, H)


def weight_summary(params: decay.Params) -> dict[str, float]:
    """Mean spectral radius and largest singular value of the recurrent gate blocks."""
    blocks = recurrent_blocks(params)
    radius = np.max(np.abs(np.linalg.eigvals(blocks)), axis=-1)
    sigma = np.linalg.norm(blocks, ord=2, axis=(-2, -1))
    return {"spectral_radius": float(np.mean(radius)), "sigma_max": float(np.mean(sigma))}


def _exit_dict(exit_: Any) -> dict[str, int | None]:
    return {"subnormal": exit_.subnormal, "zero": exit_.zero, "overflow": exit_.overflow}


def float64_range_exit(log_g: np.ndarray) -> dict[str, int | None]:
    """Where a plain float64 pass (the naive method) must leave the range, predicted from the
    exact log curve: g below the smallest normal, below half the smallest subnormal (rounds to
    0), above the largest finite number."""
    info = np.finfo(np.float64)
    smallest = float(np.nextafter(0.0, 1.0))

    def first(mask: np.ndarray) -> int | None:
        return int(np.argmax(mask)) if np.any(mask) else None

    return {"subnormal": first(log_g < math.log(info.tiny)),
            "zero": first(log_g < math.log(smallest) - math.log(2.0)),
            "overflow": first(log_g > math.log(info.max))}


def summarise(m: decay_measure.Measurement, *, lyapunov: int = 1, torch: bool = True,
              curves: bool = True) -> dict[str, Any]:
    """One measurement as a JSON-ready dict: its settings and input distribution, the rate, the
    Lyapunov exponents, the float64 and torch range exits, and (``curves``) log g per draw."""
    log_g = m.norms.log_g
    out: dict[str, Any] = {
        "cell": str(m.cell), "kind": m.cell.kind, "nonlinearity": m.cell.nonlinearity,
        "hidden": m.hidden, "input_size": m.input_size, "length": m.length, "init": m.init,
        "scale": m.scale, "forget_bias": m.forget_bias, "input_std": m.input_std,
        "draws": int(log_g.shape[0]), "seed": m.seed, "inputs": m.inputs,
        **weight_summary(m.trajectory.params),
        "rate": {"mean": m.rate.mean, "standard_error": m.rate.standard_error,
                 "per_draw": m.rate.per_draw.tolist(), "k_min": m.rate.k_min,
                 "k_max": m.rate.k_max},
        "log10_g_T": float(np.mean(log_g[:, -1] - log_g[:, 0]) / LOG10),
        "float64_exit": [float64_range_exit(row - row[0]) for row in log_g],
    }
    if lyapunov:
        ly = decay.lyapunov_exponents(m.trajectory, count=lyapunov)
        top = ly.exponents[:, 0]
        out["lyapunov"] = {"exponents_mean": np.mean(ly.exponents, axis=0).tolist(),
                           "top_mean": float(np.mean(top)),
                           "top_standard_error": float(np.std(top, ddof=1) / math.sqrt(top.size))
                           if top.size > 1 else math.nan}
    if torch:
        from nnspec.decay import torch_cells

        traj = m.trajectory
        out["torch"] = {}
        for dtype in ("float32", "float64"):
            t_log_g = torch_cells.gradient_log_norms(m.cell, traj.params.draw(0), traj.x[0], m.v[0],
                                                     dtype)
            inside = np.isfinite(t_log_g) & (t_log_g > math.log(np.finfo(dtype).tiny))
            out["torch"][dtype] = {
                "exit": _exit_dict(torch_cells.range_exit(t_log_g, dtype)),
                "max_abs_log_error_in_range": float(np.max(np.abs(t_log_g - log_g[0])[inside])),
                **({"log_g": _finite_list(t_log_g)} if curves else {}),
            }
    if curves:
        out["log_g"] = [_finite_list(row) for row in log_g]
    return out


def _finite_list(a: np.ndarray) -> list[float | None]:
    """JSON has no ±inf: they become None (a range exit of torch's float curve)."""
    return [float(x) if np.isfinite(x) else None for x in a]


def curve(values: list[float | None]) -> np.ndarray:
    """A stored curve back as an array, None (a range exit) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def exit_text(e: dict[str, int | None]) -> str:
    """'0 at k=…', 'inf at k=…' or 'in range' for a range exit."""
    parts = []
    if e["zero"] is not None:
        parts.append(f"0 at k={e['zero']}")
    if e["overflow"] is not None:
        parts.append(f"inf at k={e['overflow']}")
    if not parts:
        return "in range"
    return ", ".join(parts)


def table(rows: list[dict[str, Any]]) -> str:
    """The rate table, Markdown."""
    lines = ["| cell | init | scale | b_f | H | T | draws | ρ(w_hh) | rate/step ± SE | "
             "λ₁ (QR) ± SE | log₁₀ g(T)/g(0) | plain float64 | torch float64 | torch float32 |",
             "| --- " * 14 + "|"]
    for r in rows:
        ly = r.get("lyapunov")
        lam = f"{ly['top_mean']:+.5f} ± {ly['top_standard_error']:.5f}" if ly else "—"
        tor = r.get("torch", {})
        lines.append(
            f"| {r['cell']} | {r['init']} | {r['scale']:g} | "
            f"{'—' if r['forget_bias'] is None else format(r['forget_bias'], 'g')} | {r['hidden']} | "
            f"{r['length']} | {r['draws']} | {r['spectral_radius']:.3f} | "
            f"{r['rate']['mean']:+.5f} ± {r['rate']['standard_error']:.5f} | {lam} | "
            f"{r['log10_g_T']:.1f} | {exit_text(r['float64_exit'][0])} | "
            f"{exit_text(tor['float64']['exit']) if tor else '—'} | "
            f"{exit_text(tor['float32']['exit']) if tor else '—'} |")
    return "\n".join(lines)
