"""Gate localisation: which gate of a GRU or LSTM cell differs from the spec.

Each probe saturates the other gates through their biases (±:data:`SATURATE` in both b_ih and
b_hh: σ(±2S) is 0 or 1 and tanh(2S) is 1 in float64), so that the cell's output depends on one
gate alone, and compares the implementation's output with the spec's on the same arguments. The
weights and inputs are a designed input's (checks/oracle/localisation.py), so pre-activations are
O(1) and the probed gate is far from saturation.

- LSTM (blocks i, f, g, o; c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh c'): probe f with i → 0, o → 1
  (c' = f ⊙ c); probe i with c = 0, g → 1, o → 1 (c' = i); probe g with c = 0, i → 1, o → 1
  (c' = g); probe o with c = 0, i → 1, g → 1 (h' = o tanh 1). The forget gate is taken out by
  c = 0 rather than driven to 0, so a forget gate that is not σ cannot spoil the other probes.
- GRU (blocks r, z, n; h' = (1 − z) ⊙ n + z ⊙ h): probe z with n → 1 (h' = 1 − z + z ⊙ h);
  probe n with z → 0, r → 1 (h' = n with r out of the way); probe r with z → 0 (h' = n, r free),
  read only when the n probe agrees.

A gate is named when its probe differs beyond rounding and every other probe agrees; when every
probe agrees the fault lies in how the gates are combined, and that is said instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnspec.checks.oracle.diagnosis import ROUNDING_LEVEL, distance
from nnspec.checks.oracle.localisation import GATES, Draw, designed_inputs
from nnspec.checks.oracle.localise_findings import Finding

#: The saturating bias: σ(2·40) = 1 − 2e-35 and tanh(80) = 1 exactly in float64 and float32.
SATURATE = 40.0

#: Per probe: the gate it reads, and the value every saturated gate is driven to (+1 or −1
#: for σ → 1 or 0, tanh → 1).
PROBES: dict[str, tuple[tuple[str, dict[str, int]], ...]] = {
    "lstm_cell": (("f", {"i": -1, "o": 1}), ("i", {"g": 1, "o": 1}), ("g", {"i": 1, "o": 1}),
                  ("o", {"i": 1, "g": 1})),
    "gru_cell": (("z", {"n": 1}), ("n", {"z": -1, "r": 1}), ("r", {"z": -1})),
}


def _probe_args(fn: str, args: dict[str, Any], gate: str, drive: dict[str, int]) -> dict[str, Any]:
    gates = [sym for sym, _ in GATES["lstm" if fn == "lstm_cell" else "gru"]]
    size = np.shape(args["w_ih"])[0] // len(gates)
    out = dict(args)
    for name in ("b_ih", "b_hh"):
        b = np.array(args[name], dtype=np.float64, copy=True)
        for sym, sign in drive.items():
            k = gates.index(sym)
            b[k * size:(k + 1) * size] = sign * SATURATE
        out[name] = b
    if fn == "lstm_cell" and gate != "f":  # every probe but f's: f ⊙ c = 0
        out["c"] = np.zeros_like(args["c"])
    return out


def gates(fn: str, spec_id: str, spec: Callable[..., Any], failing: dict[str, Any], unit: float,
          draw: Draw) -> list[Finding]:
    """The gate finding for a failing GRU or LSTM cell (module docstring); [] when the probes
    cannot run or name nothing."""
    family = "lstm" if fn == "lstm_cell" else "gru"
    names = dict(GATES[family])
    args = designed_inputs(fn, failing, unit, 0)
    try:
        with np.errstate(all="ignore"):
            shows = distance(draw(fn, **args), spec(**args)) > ROUNDING_LEVEL * unit
    except Exception:
        return []
    if not shows:  # the fault does not show on the designed input: the probes could not see it
        return []
    off: dict[str, float] = {}
    for gate, drive in PROBES[fn]:
        probe = _probe_args(fn, args, gate, drive)
        try:
            got = draw(fn, **probe)
            with np.errstate(all="ignore"):
                want = spec(**probe)
        except Exception:
            return []
        off[gate] = distance(got, want)
    differ = [g for g, d in off.items() if not d <= ROUNDING_LEVEL * unit]
    if fn == "gru_cell" and "n" in differ:  # r is read through n: a wrong n says nothing of r
        differ = [g for g in differ if g != "r"]
    shown = ", ".join(f"{g} {d:.2g}" for g, d in off.items())
    evidence = f"relative distance to the spec per probe: {shown} (the others saturated)"
    if len(differ) == 1:
        gate = names[differ[0]]
        return [Finding(f"{fn}() localised to the {gate}: with the other gates saturated, only "
                        f"its probe differs from the spec {spec_id}; {evidence}", kind="gate",
                        location=gate, evidence=evidence, confidence="medium")]
    if not differ:
        return [Finding(f"{fn}() computes every gate as the spec {spec_id} does, one at a time, "
                        f"so the fault is in how the gates are combined; {evidence}",
                        kind="gate", location="gate combination", evidence=evidence,
                        confidence="low")]
    return []
