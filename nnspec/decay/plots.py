"""The PNG plots of the report's decay sweeps (nnspec.decay.sweeps): the curves with torch's range
exits, the rate against spectral radius, forget-gate bias, hidden size and nonlinearity, the
mean-field comparison and the Lyapunov spectra."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.decay import summary
from nnspec.decay.sweeps import KINDS
from nnspec.reference import decay_theory

COLOURS = {"rnn": "tab:blue", "gru": "tab:green", "lstm": "tab:purple",
           "pytorch": "tab:blue", "xavier": "tab:orange", "orthogonal": "tab:green",
           "orthogonal, σ_x = 0.1": "tab:olive",
           "tanh": "tab:blue", "relu": "tab:orange", "sigmoid": "tab:green", "linear": "tab:gray"}


def _plot_curves(plt: Any, rows: list[dict[str, Any]], title: str, path: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    floors = {"float64": math.log10(np.nextafter(0.0, 1.0)),
              "float32": math.log10(float(np.nextafter(np.float32(0), np.float32(1))))}
    for col, row in enumerate(rows):
        curve = row["curve"]
        mean = np.array(curve["mean"])
        k = np.arange(mean.size) * curve["stride"]
        exits = {d: row["torch"][d]["exit"] for d in ("float32", "float64")}
        stop = max([e["zero"] or e["overflow"] or 0 for e in exits.values()]
                   + [row["float64_exit"][0]["zero"] or 0])
        zoom = min(int(k[-1]), max(50, int(1.3 * stop)))
        for r, ax in enumerate(axes[:, col]):
            end = k.size if r == 0 else int(np.searchsorted(k, zoom)) + 1
            ax.fill_between(k[:end], curve["low"][:end], curve["high"][:end], color="0.85",
                            label=f"log-space sweep, range over {row['draws']} draws")
            ax.plot(k[:end], mean[:end], color=COLOURS[row["kind"]], lw=2,
                    label="log-space sweep, mean over the draws")
            ax.plot(k[:end], curve["draw0"][:end], color="k", lw=0.8,
                    label="log-space sweep, draw 0 (the draw torch runs)")
            for dtype, style in (("float64", "--"), ("float32", ":")):
                t = summary.curve(row["torch"][dtype]["log10_g"])
                kt = np.arange(t.size)
                last = t.size if r == 0 else min(t.size, zoom + 1)
                ax.plot(kt[:last], t[:last], style, color="tab:red" if dtype == "float32"
                        else "tab:orange", lw=1.6, label=f"torch autograd {dtype} (draw 0)")
                z = exits[dtype]["zero"]
                if z is not None and z <= k[end - 1]:
                    ax.axvline(z, color="tab:red" if dtype == "float32" else "tab:orange",
                               lw=0.8, alpha=0.6)
                ax.axhline(floors[dtype], color="0.4", lw=0.6, ls=style)
            ax.set_xlabel("distance k = T − t")
            ax.set_ylabel("log₁₀ ‖∂L/∂h_(T−k)‖ / ‖∂L/∂h_T‖")
            ax.grid(alpha=0.3)
            if r == 0:
                ax.set_title(f"{row['cell']}: rate {row['rate']['mean']:+.4f} ± "
                             f"{row['rate']['standard_error']:.4f} per step\n"
                             f"(ln units; λ₁ by QR {row['lyapunov']['top_mean']:+.4f})")
            else:
                ax.set_title(f"zoom: torch reaches 0 at k = {exits['float64']['zero']} (float64), "
                             f"{exits['float32']['zero']} (float32)", fontsize=10)
        axes[1, col].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{title}\n{rows[0]['inputs']}; dotted/dashed grey: smallest float32/float64 "
                 f"subnormal", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _errorbar_lines(ax: Any, rows: list[dict[str, Any]], key: str, x: str, label_of: str,
                    **kw: Any) -> None:
    for name in dict.fromkeys(r[key] for r in rows):
        sel = [r for r in rows if r[key] == name and "rate" in r]
        ax.errorbar([r[x] for r in sel], [r["rate"]["mean"] for r in sel],
                    yerr=[r["rate"]["standard_error"] for r in sel], marker="o", ms=4, capsize=3,
                    color=COLOURS.get(name), label=f"{label_of}{name}", **kw)


def plot(data: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the sweeps' PNG plots into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    for label, rows in data["curves"].items():
        path = out / f"decay_curves_{label}.png"
        init = "PyTorch default init" if label == "pytorch" else "orthogonal w_hh, scale 1"
        _plot_curves(plt, rows, f"Gradient-norm decay, {init}, H = {rows[0]['hidden']}, "
                                f"T = {rows[0]['length']}", path)
        paths.append(path)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True, sharey=True)
    for ax, kind in zip(axes, KINDS, strict=True):
        rows = [r for r in data["scale"] if r["cell"].startswith(kind)]
        _errorbar_lines(ax, rows, "init", "spectral_radius", "init = ")
        weak = [dict(r, init="orthogonal, σ_x = 0.1") for r in data["drive"]
                if r["cell"].startswith(kind)]
        _errorbar_lines(ax, weak, "init", "spectral_radius", "init = ", ls="--")
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.5, ls=":")
        ax.set(title=f"{kind}: rate against the recurrent blocks' spectral radius",
               xlabel="mean spectral radius ρ of the H × H blocks of scale·w_hh",
               ylabel="rate per step (slope of ln g)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Weight scale, initialisation and input drive (H = {data['settings']['hidden']}, "
                 f"T = {data['settings']['length']}); {data['scale'][0]['inputs']} (dashed: "
                 f"σ_x = 0.1)", fontsize=10)
    paths.append(out / "rate_vs_spectral_radius.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    _errorbar_lines(ax, data["forget_bias"], "init", "forget_bias", "init = ")
    b = np.linspace(min(data["settings"]["forget_biases"]), max(data["settings"]["forget_biases"]),
                    200)
    ax.plot(b, np.log(1 / (1 + np.exp(-b))), "k--", lw=1,
            label="ln σ(b_f): the c-path alone (h cut from the gates)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(title="LSTM: rate against the forget-gate bias b_f", xlabel="b_f",
           ylabel="rate per step (slope of ln ‖∂L/∂h‖)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(out / "rate_vs_forget_bias.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True, sharey=True)
    for ax, init in zip(axes, ("pytorch", "orthogonal"), strict=True):
        rows = [dict(r, kind=r["cell"].split("(")[0]) for r in data["hidden"] if r["init"] == init]
        _errorbar_lines(ax, rows, "kind", "hidden", "")
        ax.set_xscale("log", base=2)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(title=f"rate against hidden size, init = {init}", xlabel="hidden size H",
               ylabel="rate per step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    paths.append(out / "rate_vs_hidden.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    rows = [dict(r, nl=r["cell"][4:-1]) for r in data["nonlinearity"]]
    _errorbar_lines(ax, rows, "nl", "scale", "φ = ")
    overflowed = sorted({f"{r['nl']} at scale {r['scale']:g}" for r in rows if "overflow" in r})
    ax.text(0.02, 0.97, "inputs x_t ~ N(0, I); the linear RNN with x = 0 (its Jacobians do not "
            "depend on x)" + (f"\nforward run overflowed (no rate): {', '.join(overflowed)}"
                              if overflowed else ""),
            transform=ax.transAxes, fontsize=8, va="top")
    s = np.linspace(min(data["settings"]["scales"]), max(data["settings"]["scales"]), 100)
    for nl, gamma, which in (("tanh", 1.0, "tanh, ReLU, linear"), ("sigmoid", 0.25, "sigmoid")):
        ax.plot(s, np.log(gamma * s), ls="--", lw=1, color=COLOURS[nl],
                label=f"Pascanu bound ln(γ·σ_max), γ = {gamma:g} ({which})")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(title="Elman RNN, orthogonal w_hh·scale (σ_max = ρ = scale): rate by nonlinearity",
           xlabel="scale", ylabel="rate per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(out / "rnn_nonlinearity.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, (ax, res) = plt.subplots(1, 2, figsize=(14, 5), constrained_layout=True)
    mf = data["mean_field"]
    sigmas = sorted({r["sigma_w"] for r in mf})
    fine = np.linspace(min(sigmas), max(sigmas), 100)
    ax.plot(fine, [decay_theory.mean_field_tanh(x, mf[0]["sigma_x"]).rate for x in fine], "k-", lw=1.2,
            label="mean field ½ ln χ (H → ∞)")
    for i, H in enumerate(sorted({r["hidden"] for r in mf})):
        sel = [r for r in mf if r["hidden"] == H]
        x = np.array([r["sigma_w"] for r in sel]) + 0.015 * i
        y = np.array([r["rate"] for r in sel])
        se = np.array([r["standard_error"] for r in sel])
        line = ax.errorbar(x, y, yerr=se, marker="o", ms=4, capsize=3, ls="",
                           label=f"measured, H = {H}")
        colour = line[0].get_color()
        res.errorbar(x, y - np.array([r["mean_field"] for r in sel]), yerr=se, marker="o", ms=4,
                     capsize=3, ls=":", color=colour, alpha=0.5,
                     label=f"H = {H}: measured − ½ ln χ")
        res.errorbar(x, y - np.array([r["mean_field"] + r["finite_size"] for r in sel]), yerr=se,
                     marker="s", ms=4, capsize=3, ls="-", color=colour,
                     label=f"H = {H}: measured − (½ ln χ + 1/H term)")
    ax.axhline(0, color="k", lw=0.8)
    res.axhline(0, color="k", lw=0.8)
    where = (f"w_hh ~ N(0, σ_w²/H), w_ih = I, x_t ~ N(0, {mf[0]['sigma_x']:g}²·I), "
             f"T = {data['settings']['mean_field_length']}")
    ax.set(title=f"tanh RNN against mean field\n{where}", xlabel="σ_w", ylabel="rate per step")
    res.set(title="residuals (measured − prediction), ± standard error over draws",
            xlabel="σ_w", ylabel="rate difference per step")
    for a in (ax, res):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    paths.append(out / "mean_field.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.8), constrained_layout=True)
    for row in data["lyapunov"]:
        spectrum = row["spectrum"]
        ax.plot(np.arange(1, len(spectrum) + 1), spectrum, "o-", ms=3, color=COLOURS[row["cell"]],
                label=f"{row['cell']}: λ₁ = {row['top']:+.4f}, rate of g = {row['rate']:+.4f}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(title=f"Lyapunov spectra by QR (PyTorch default init, H = "
                 f"{data['lyapunov'][0]['hidden']}, T = {data['lyapunov'][0]['length']})",
           xlabel="index i (LSTM: 2H exponents of (h, c))", ylabel="λ_i per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(out / "lyapunov_spectra.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
