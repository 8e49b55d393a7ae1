"""The report's sweeps of the decay measurement (spec/decay.md) and their plots.

:func:`sweeps` runs the measurements — decay curves up to T = 10 000, the rate against the weight
scale, the initialisation, the LSTM forget-gate bias, the hidden size and the RNN's
nonlinearity, the mean-field comparison, the Lyapunov spectra, and the timings of the single
sweep against the naive method — and returns plain data (nnspec.decay.plots draws it, and
nnspec.decay.report writes it up). Every measurement carries its input distribution.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from nnspec.decay.summary import curve, summarise, weight_summary
from nnspec.reference import decay, decay_measure, decay_theory

KINDS = ("rnn", "gru", "lstm")
LOG10 = math.log(10.0)

#: "default" runs in a few minutes on two cores; "large" is the report's full size.
SIZES: dict[str, dict[str, Any]] = {
    "default": {"curve_length": 10_000, "hidden": 32, "draws": 8, "length": 500,
                "scales": [0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0],
                "forget_biases": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 8.0],
                "hiddens": [8, 16, 32, 64, 128], "mean_field_hiddens": [64, 256],
                "sigma_ws": [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0], "mean_field_length": 400,
                "lyapunov_length": 1000, "lyapunov_hidden": 16, "naive_length": 300},
    "large": {"curve_length": 10_000, "hidden": 32, "draws": 16, "length": 2000,
              "scales": [0.5, 0.75, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0],
              "forget_biases": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0],
              "hiddens": [8, 16, 32, 64, 128, 256], "mean_field_hiddens": [64, 256, 1024],
              "sigma_ws": [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0], "mean_field_length": 600,
              "lyapunov_length": 4000, "lyapunov_hidden": 32, "naive_length": 1000},
}


def _measured(cell: decay.Cell, **kw: Any) -> dict[str, Any]:
    """A summarised measurement without curves or torch; an overflowing forward run (a linear or
    ReLU RNN scaled above 1) is recorded as such instead of a rate."""
    try:
        m = decay_measure.measure(cell, **kw)
    except FloatingPointError as exc:
        return {"cell": str(cell), **{k: v for k, v in kw.items()}, "overflow": str(exc)}
    return summarise(m, lyapunov=0, torch=False, curves=False)


def _timed(f: Callable[[], Any], repeats: int = 1) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best


def timings(*, curve_length: int, hidden: int, draws: int, naive_length: int) -> dict[str, Any]:
    """Seconds for the decay curves of all three cells at T = curve_length (forward run and
    sweep, ``draws`` draws, H = hidden), and for the single sweep against the naive method at
    T = naive_length (one backward pass per k), per cell."""
    out: dict[str, Any] = {"curve_length": curve_length, "hidden": hidden, "draws": draws,
                           "curves_s": {}, "naive_length": naive_length, "sweep_s": {},
                           "naive_s": {}}
    for kind in KINDS:
        cell = decay.Cell(kind)
        out["curves_s"][kind] = _timed(partial(decay_measure.measure, cell, hidden=hidden,
                                               length=curve_length, draws=draws))
        m = decay_measure.measure(cell, hidden=hidden, length=naive_length, draws=draws)
        traj, v = m.trajectory, m.v
        out["sweep_s"][kind] = _timed(partial(decay.gradient_norms, traj, v), 3)
        out["naive_s"][kind] = _timed(partial(decay.naive_gradient_norms, traj, v))
    out["curves_total_s"] = sum(out["curves_s"].values())
    out["speedup"] = {k: out["naive_s"][k] / out["sweep_s"][k] for k in KINDS}
    return out


def mean_field(*, hiddens: list[int], sigma_ws: list[float], length: int, draws: int,
               sigma_x: float = 1.0) -> list[dict[str, Any]]:
    """Measured tanh-RNN rates (w_hh ~ N(0, σ_w²/H), w_ih = I, x ~ N(0, σ_x²)) against ½ ln χ."""
    rows = []
    rng = np.random.default_rng(2024)
    for H in hiddens:
        for sw in sigma_ws:
            params = decay_theory.gaussian_tanh_params(H, sw, draws, rng)
            traj = decay.run(decay.Cell("rnn", "tanh"), params,
                             sigma_x * rng.standard_normal((draws, length, H)))
            norms = decay.gradient_norms(traj, rng.standard_normal((draws, H)))
            r = decay.rate(norms.log_g, k_min=50, k_max=length - 50)
            mf = decay_theory.mean_field_tanh(sw, sigma_x, hidden=H)
            rows.append({"hidden": H, "sigma_w": sw, "sigma_x": sigma_x, "rate": r.mean,
                         "standard_error": r.standard_error, "mean_field": mf.rate,
                         "finite_size": mf.finite_size, "q_star": mf.q_star, "chi": mf.chi,
                         "inputs": f"w_ih = I, x_t ~ N(0, {sigma_x:g}²·I_{H}), no bias"})
    return rows


#: Points kept per stored sweep curve (the full-resolution curves of 16 draws at T = 10 000 would
#: make the report's JSON tens of megabytes; the plots need no more).
CURVE_POINTS = 2000


def compact_curves(row: dict[str, Any]) -> dict[str, Any]:
    """Replace a summary's per-draw log g curves by log₁₀ g(k)/g(0) at every ``stride``-th k
    (mean, lowest and highest over the draws, and draw 0, the draw torch runs), and cut torch's
    curves after their first range exit; values rounded to 10⁻³ decades."""
    curves = np.array([curve(c) for c in row.pop("log_g")]) / LOG10
    curves -= curves[:, :1]
    stride = max(1, (curves.shape[1] - 1) // CURVE_POINTS)
    kept = curves[:, ::stride]

    def rounded(a: np.ndarray) -> list[float]:
        return np.round(a, 3).tolist()

    row["curve"] = {"stride": stride, "mean": rounded(np.mean(kept, axis=0)),
                    "low": rounded(np.min(kept, axis=0)), "high": rounded(np.max(kept, axis=0)),
                    "draw0": rounded(kept[0])}
    for t in row["torch"].values():
        log10 = curve(t.pop("log_g")) / LOG10
        end = int(np.argmin(np.isfinite(log10))) + 1 if not np.all(np.isfinite(log10)) else None
        t["log10_g"] = [None if not np.isfinite(x) else round(float(x - log10[0]), 3)
                        for x in log10[:end]]
    return row


def sweeps(size: str = "default") -> dict[str, Any]:
    """Run the report's sweeps at ``size`` ("default" or "large") and return their data."""
    if size not in SIZES:
        raise ValueError(f"size = {size!r} must be one of {sorted(SIZES)}")
    c = SIZES[size]
    H, S, T = c["hidden"], c["draws"], c["length"]
    data: dict[str, Any] = {"size": size, "settings": c}

    data["curves"] = {}
    for label, kw in (("pytorch", {"init": "pytorch"}),
                      ("orthogonal", {"init": "orthogonal", "input_std": 0.5})):
        data["curves"][label] = [
            compact_curves(summarise(decay_measure.measure(decay.Cell(kind), hidden=H,
                                                   length=c["curve_length"], draws=S, **kw),
                                     lyapunov=1, torch=True, curves=True))
            for kind in KINDS]

    data["scale"] = [_measured(decay.Cell(kind), hidden=H, length=T, draws=S, init=init,
                               scale=s)
                     for kind in KINDS for init in decay.INITS for s in c["scales"]]
    data["drive"] = [_measured(decay.Cell(kind), hidden=H, length=T, draws=S, init="orthogonal",
                               scale=s, input_std=0.1)
                     for kind in KINDS for s in c["scales"]]
    data["forget_bias"] = [_measured(decay.Cell("lstm"), hidden=H, length=T, draws=S, init=init,
                                     forget_bias=b)
                           for init in ("pytorch", "orthogonal") for b in c["forget_biases"]]
    data["hidden"] = [_measured(decay.Cell(kind), hidden=h, length=T, draws=S, init=init)
                      for kind in KINDS for init in ("pytorch", "orthogonal") for h in c["hiddens"]]
    data["nonlinearity"] = [
        _measured(decay.Cell("rnn", nl), hidden=H, length=T, draws=S, init="orthogonal", scale=s,
                  input_std=0.0 if nl == "linear" else 1.0)
        for nl in decay.NONLINEARITIES for s in c["scales"]]
    data["mean_field"] = mean_field(hiddens=c["mean_field_hiddens"], sigma_ws=c["sigma_ws"],
                                    length=c["mean_field_length"], draws=S)

    data["lyapunov"] = []
    for kind in KINDS:
        m = decay_measure.measure(decay.Cell(kind), hidden=c["lyapunov_hidden"],
                          length=c["lyapunov_length"], draws=S)
        ly = decay.lyapunov_exponents(m.trajectory)
        top = ly.exponents[:, 0]
        data["lyapunov"].append({
            "cell": kind, "hidden": c["lyapunov_hidden"], "length": c["lyapunov_length"],
            "inputs": m.inputs, "rate": m.rate.mean, "rate_standard_error": m.rate.standard_error,
            "top": float(np.mean(top)),
            "top_standard_error": float(np.std(top, ddof=1) / math.sqrt(top.size)),
            "spectrum": np.mean(ly.exponents, axis=0).tolist(),
            "spectrum_sum": float(np.mean(np.sum(ly.exponents, axis=1))),
            **weight_summary(m.trajectory.params)})

    data["timings"] = timings(curve_length=c["curve_length"], hidden=H, draws=8,
                              naive_length=c["naive_length"])
    return data
