"""The GPU run of issue 11 (item 6), prepared to run in one go where a CUDA device is lent.

    python -m nnspec.bench.gpu_report --out reports/gpu.md [--size production] [--device cuda]

For each of nn.LSTM and nn.GRU at the given size (x ~ N(0, 1), weights U(±1/√H), zero initial
state) and each way PyTorch can run them — float64; float32 with TF32 off; float32 with TF32 on,
cuDNN's default — it compares the layer's output with the float64 reference on the same inputs
under the layer's bound (checks/bounds: the smaller of the worst case and the first-order
probabilistic bound, at the precision each run declares), and says whether the oracle's
lower-precision finding names what the run computes in (TF32 behind a float32 claim). Then it runs
``nnspec check`` on torch_cuda, torch_cuda_float32 and torch_cuda_tf32 at the same size and times
the layers' forward on the device against the reference's on the CPU. Everything lands in one
markdown report.

Without a GPU it writes that, and why, and exits 0; ``--device cpu`` runs the same pipeline on
PyTorch's CPU backend (float32 there has no TF32: the TF32 row then shows the float32 result),
which is how it is tested here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnspec.checks.bounds import gru as gru_bounds
from nnspec.checks.bounds import lstm as lstm_bounds
from nnspec.checks.harness import sizes
from nnspec.checks.harness.loading import PRECISIONS
from nnspec.checks.oracle.diagnosis import Call, lower_precision_behind
from nnspec.reference import gru as gru_ref
from nnspec.reference import lstm as lstm_ref

#: (name, torch dtype name, TF32 on, the precision the run declares) of each way to run a layer.
MODES = (("float64", "float64", False, "float64"),
         ("float32, TF32 off", "float32", False, "float32"),
         ("float32, TF32 on (cuDNN default)", "float32", True, "float32"))

LAYERS: dict[str, tuple[int, Callable[..., Any], Callable[..., Any]]] = {
    "lstm": (4, lstm_ref.lstm_layer, lstm_bounds.lstm_layer),
    "gru": (3, gru_ref.gru_layer, gru_bounds.gru_layer)}


def _problem(kind: str, size: sizes.Size, dtype: type, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The layer's arguments as float64 arrays holding values exact in ``dtype``."""
    gates = LAYERS[kind][0]
    args = sizes.typical_layer(size, gates, np.random.default_rng(seed), cell_state=kind == "lstm")
    zeros = tuple(np.zeros_like(a) for a in args[1:3 if kind == "lstm" else 2])
    x, w = args[0], args[3 if kind == "lstm" else 2:]
    return tuple(a.astype(dtype).astype(np.float64) for a in (x, *zeros, *w))


def _torch_layer(kind: str, args: Sequence[np.ndarray], device: str, dtype_name: str,
                 tf32: bool) -> tuple[np.ndarray, float]:
    """PyTorch's nn.LSTM / nn.GRU on ``args`` → (y as float64, seconds of the timed forward)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dtype = getattr(torch, dtype_name)
    x, *states = args[:3 if kind == "lstm" else 2]
    w = args[3 if kind == "lstm" else 2:]
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(x.shape[2], states[0].shape[1])
    module = module.to(device=device, dtype=dtype)
    with torch.no_grad():
        for name, a in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), w,
                           strict=True):
            getattr(module, name).copy_(torch.as_tensor(a))
        xt = torch.as_tensor(x, device=device, dtype=dtype)
        st = tuple(torch.as_tensor(s[None], device=device, dtype=dtype) for s in states)
        module(xt, st if kind == "lstm" else st[0])  # warm-up: cuDNN plans, allocations
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        y, _ = module(xt, st if kind == "lstm" else st[0])
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return y.double().cpu().numpy(), seconds


def layer_rows(size: sizes.Size, device: str) -> list[dict[str, Any]]:
    """One row per layer and mode: error against the reference, the bound, the finding."""
    rows = []
    for kind, (_, reference, bound) in LAYERS.items():
        for name, dtype_name, tf32, declared in MODES:
            args = _problem(kind, size, np.float64 if dtype_name == "float64" else np.float32)
            got, seconds = _torch_layer(kind, args, device, dtype_name, tf32)
            start = time.perf_counter()
            want = reference(*args)[0]
            reference_seconds = time.perf_counter() - start
            limit = bound(*args, dtype=np.dtype(declared))[0]
            err = np.abs(got - want)
            over = err > limit.atol
            finding = None
            if over.any():
                finding = lower_precision_behind(
                    declared, err, limit.atol, limit.unit,
                    [Call(f"{kind}_layer", tuple(args), {}, (got,))], f"{kind}_layer", want)
            rows.append({"layer": kind, "mode": name, "finite": bool(np.all(np.isfinite(limit.atol))),
                         "median_error": float(np.median(err)),
                         "median_bound": float(np.median(limit.atol)),
                         "over": float(over.mean()), "finding": finding,
                         "torch_seconds": seconds, "reference_seconds": reference_seconds})
    return rows


def check_rows(size: sizes.Size, timeout: float) -> list[dict[str, Any]]:
    """``nnspec check --json`` on the CUDA implementations at ``size``: the verdict counts."""
    rows = []
    env = {**os.environ, sizes.ENVIRONMENT: str(size)}
    for impl in ("torch_cuda", "torch_cuda_float32", "torch_cuda_tf32"):
        done = subprocess.run([sys.executable, "-m", "nnspec", "check", impl, "--json", "--quiet"],
                              capture_output=True, text=True, env=env, timeout=timeout, check=False)
        try:
            conclusion = str(json.loads(done.stdout)["conclusion"])
        except (json.JSONDecodeError, KeyError):
            conclusion = " ".join(done.stderr.strip().splitlines()[-1:])
        rows.append({"implementation": impl, "exit": done.returncode, "conclusion": conclusion})
    return rows


def render(size: sizes.Size, device: str, layers: list[dict[str, Any]],
           checks: list[dict[str, Any]], seconds: float) -> str:
    lines = [f"# GPU run: layers at {size}, device {device}", "",
             f"Command: `python -m nnspec.bench.gpu_report --size {size} --device {device}` "
             f"({seconds:.0f} s). TF32's unit roundoff is {PRECISIONS['tf32']:.3g}.", "",
             "| layer | mode | bound finite | median bound | median error | over bound | "
             "finding | torch s | reference s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in layers:
        lines.append(f"| {r['layer']} | {r['mode']} | {'yes' if r['finite'] else 'NO'} | "
                     f"{r['median_bound']:.2g} | {r['median_error']:.2g} | {100 * r['over']:.1f} % | "
                     f"{r['finding'] or '—'} | {r['torch_seconds']:.3g} | "
                     f"{r['reference_seconds']:.3g} |")
    if checks:
        lines += ["", "`nnspec check` at the same size:", "",
                  "| implementation | exit | conclusion |", "|---|---|---|"]
        lines += [f"| {r['implementation']} | {r['exit']} | {r['conclusion']} |" for r in checks]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnspec.bench.gpu_report", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("reports/gpu.md"))
    parser.add_argument("--size", default="production", help="a profile or T=…,B=…,H=…")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--no-check", action="store_true", help="skip the nnspec check runs")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one nnspec check run may take")
    args = parser.parse_args(argv)
    try:
        size = sizes.parse(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        reason = (f"no CUDA device (torch {torch.__version__}, built with CUDA "
                  f"{torch.version.cuda}): the GPU run was not made")
        args.out.write_text(f"# GPU run\n\n{reason}.\n")
        print(reason)
        return 0
    start = time.perf_counter()
    layers = layer_rows(size, args.device)
    checks = [] if args.no_check or args.device == "cpu" else check_rows(size, args.timeout)
    text = render(size, args.device, layers, checks, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
