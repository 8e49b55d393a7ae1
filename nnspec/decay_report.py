"""The gradient-norm decay stage of ``nnspec report``: sweeps, rate table, plots, raw JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nnspec import decay_sweeps


def section(out_dir: Path, size: str, command: str) -> list[str]:
    """Run the decay sweeps of ``size``, write decay.json and the plots, return the Markdown."""
    started = time.perf_counter()
    data = decay_sweeps.sweeps(size)
    seconds = time.perf_counter() - started
    (out_dir / "decay.json").write_text(
        json.dumps({"generated_by": command, "seconds": seconds, **data}, indent=2,
                   ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    plots = decay_sweeps.plot(data, out_dir)
    lines = ["## Gradient-norm decay over sequence length", "",
             f"Sweeps of size {size!r}, measured in {seconds:.0f} s (`nnspec decay` measures one "
             "configuration; spec/decay.md defines every quantity). g(k) = ‖∂L/∂h_(T−k)‖ in one "
             "backward sweep in log space; the rate is the slope of log g against k, with its "
             "uncertainty over random draws, cross-checked against the top Lyapunov exponent "
             "from QR re-orthonormalisation.", "",
             decay_sweeps.rate_table(data), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return lines
