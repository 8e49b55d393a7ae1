"""The conformance atlas: every installed framework adapter run through the checks, as one table.

Each :class:`Adapter` names an implementation module of ``nnspec/implementations`` (a framework's
cells and layers mapped onto the contract, its mapping documented there) and the spec ids to
check. :func:`run` checks each one with :func:`nnspec.oracle.check`, exactly as ``nnspec check
MODULE --only IDS --examples N --seed S`` does (the command each row carries), in a worker process
of its own (the Keras backends must not share one). A framework whose packages are not installed,
or whose module raises ``ImplementationUnavailable``, is listed as skipped with the reason. A row
is framework × spec id: the verdict, the variant or bug the oracle's diagnosis named, the dtype
the framework really computes in (the declared DTYPE, unless the diagnosis found it computing in
a lower precision and named no variant) and the command that reproduces it.

:data:`FINDINGS` are what the atlas exists to show, each tied to the rows that show it (confirmed
or not by this run) or to a small reproduction of its own (run here, its output kept), with the
upstream reports. :func:`write` writes reports/atlas.md and the same data as reports/atlas.json.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nnspec
from nnspec.checks.oracle.diagnosis import named_ids

#: The schema of reports/atlas.json.
SCHEMA = "nnspec-atlas/1"

#: The recurrent spec ids every framework is checked on (those it does not compute read *not
#: provided*).
RECURRENT_IDS = ("rnn.cell", "rnn.layer", "gru.cell.pytorch", "gru.cell.textbook", "gru.layer",
                 "lstm.cell", "lstm.layer")


@dataclass(frozen=True)
class Adapter:
    """One framework (or backend) as the atlas runs it.

    - ``key``: its short name in the atlas; ``framework``: what it is, in words.
    - ``module``: the implementation module; ``None`` when no adapter can run here (``reason``).
    - ``imports``: the top-level packages it needs (absent: skipped, naming ``extra``);
      ``distributions``: those whose versions identify it.
    - ``ids``: the spec ids to check; ``mapping``: the native names, in one line.
    """

    key: str
    framework: str
    module: str | None
    imports: tuple[str, ...]
    distributions: tuple[str, ...]
    extra: str
    mapping: str
    ids: tuple[str, ...] = RECURRENT_IDS
    reason: str = ""


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("torch_modules", "PyTorch torch.nn cells (through nnspec.adapters.from_torch_cell)",
            "nnspec.implementations.torch_modules", ("torch",), ("torch",), "",
            "RNNCell, GRUCell, LSTMCell: the contract's own layout",
            ("rnn.cell", "gru.cell.pytorch", "lstm.cell")),
    Adapter("torch", "PyTorch torch.nn.functional and nn.RNN/GRU/LSTM (the shipped default)",
            "nnspec.implementations.torch_cpu", ("torch",), ("torch",), "",
            "the contract's own layout"),
    Adapter("keras_torch", "Keras 3, torch backend, float32", "nnspec.implementations.keras_torch",
            ("keras", "torch"), ("keras", "torch"), "keras",
            "GRU blocks z, r, h; bias (2, 3H) with reset_after=True; LSTM i, f, c, o; kernels "
            "transposed (nnspec.implementations.keras_cells)"),
    Adapter("keras_torch_float64", "Keras 3, torch backend, layers built with dtype='float64'",
            "nnspec.implementations.keras_torch_float64", ("keras", "torch"), ("keras", "torch"),
            "keras", "as keras_torch"),
    Adapter("keras_jax", "Keras 3, JAX backend, float32", "nnspec.implementations.keras_jax",
            ("keras", "jax"), ("keras", "jax"), "keras,jax", "as keras_torch"),
    Adapter("keras_tensorflow", "Keras 3, TensorFlow backend (tf.keras), float32",
            "nnspec.implementations.keras_tensorflow", ("keras", "tensorflow"),
            ("keras", "tensorflow", "tensorflow-cpu"), "tensorflow", "as keras_torch"),
    Adapter("keras_misordered", "Keras 3, torch backend, GRU loaded in PyTorch's block order "
            "(keras-team/keras#15915; a deliberate mis-mapping)",
            "nnspec.implementations.keras_misordered", ("keras", "torch"), ("keras", "torch"),
            "keras", "GRU blocks r, z, n read by Keras as z, r, h",
            ("gru.cell.pytorch", "gru.layer", "lstm.cell")),
    Adapter("flax_linen", "Flax linen cells, float64", "nnspec.implementations.flax_cells",
            ("jax", "flax"), ("flax", "jax"), "jax",
            "SimpleCell i/h, GRUCell ir/iz/in/hr/hz/hn, LSTMCell ii…/hi… Dense kernels",
            ("rnn.cell", "gru.cell.pytorch", "lstm.cell")),
    Adapter("flax_nnx", "Flax NNX cells, float64", "nnspec.implementations.flax_nnx",
            ("jax", "flax"), ("flax", "jax"), "jax",
            "SimpleCell dense_i/dense_h, GRUCell dense_i (r, z, n; bias) and dense_h (no bias), "
            "LSTMCell ii…/hi…", ("rnn.cell", "gru.cell.pytorch", "lstm.cell")),
    Adapter("onnx_reference", "ONNX reference evaluator (onnx.reference), float64",
            "nnspec.implementations.onnx_reference", ("onnx",), ("onnx",), "onnx",
            "GRU z, r, h (linear_before_reset 1 and 0), LSTM i, o, f, c, B = [Wb, Rb]"),
    Adapter("onnx_runtime", "ONNX Runtime CPU kernels, float32",
            "nnspec.implementations.onnx_runtime", ("onnx", "onnxruntime"),
            ("onnxruntime", "onnx"), "onnx",
            "GRU z, r, h (linear_before_reset 1 and 0), LSTM i, o, f, c, B = [Wb, Rb]"),
    Adapter("openvino", "OpenVINO CPU plugin through its ONNX frontend, float32 (inference "
            "precision hint f32)", "nnspec.implementations.openvino_runtime", ("onnx", "openvino"),
            ("openvino", "onnx"), "openvino",
            "the ONNX graphs of onnx_runtime: GRU z, r, h (linear_before_reset 1 and 0), LSTM i, o, "
            "f, c, B = [Wb, Rb]"),
    Adapter("openvino_default_precision", "OpenVINO CPU plugin, float32 model compiled with the "
            "plugin's default inference precision (bf16 on CPUs with bf16 arithmetic; kept to "
            "show it rejected)", "nnspec.implementations.openvino_default_precision",
            ("onnx", "openvino"), ("openvino", "onnx"), "openvino", "as openvino"),
    Adapter("coremltools", "Core ML (coremltools)", None, ("coremltools",), ("coremltools",), "",
            "", reason="Core ML runs a converted model only on macOS; its GRU adds b_hn outside "
                       "the reset gate (apple/coremltools#1124), not run here"),
)


@dataclass(frozen=True)
class Expectation:
    """A row a finding predicts: ``adapter`` × ``spec_id`` has ``verdict`` and, when given, the
    diagnosis names ``variant``."""

    adapter: str
    spec_id: str
    verdict: str
    variant: str | None = None


@dataclass(frozen=True)
class Finding:
    """Something the atlas shows about a framework, with the upstream reports and how to see it:
    the rows that show it (``expect``) or a small reproduction (``probe``: Python source run in a
    fresh interpreter, its output kept)."""

    key: str
    title: str
    upstream: tuple[str, ...]
    detail: str
    expect: tuple[Expectation, ...] = ()
    probe: str = ""
    probe_imports: tuple[str, ...] = ()


_KERAS_JAX_FLOAT64 = """\
import os; os.environ["KERAS_BACKEND"] = "jax"
import warnings; warnings.simplefilter("ignore")
import numpy as np, keras
cell = keras.layers.GRUCell(2, dtype="float64"); cell.build((None, 3))
h, _ = cell(np.ones((1, 3)), [np.zeros((1, 2))])
print("variables", cell.kernel.dtype, "output", h.dtype)"""

_KERAS_TORCH_MATMUL = """\
import os; os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, keras
a = keras.ops.convert_to_tensor(np.full((2, 2), 1 / 3), dtype="float64")
print("float64 @ float64 ->", keras.ops.matmul(a, a).dtype)"""

_OPENVINO_BF16 = """\
import os; os.environ["CI"] = "true"  # keeps openvino's telemetry from sending a usage event
import numpy as np, openvino as ov
from nnspec.implementations import onnx_graphs, reference
rng = np.random.default_rng(0)
x, h = rng.normal(size=(3, 5)), rng.normal(size=(3, 4))
w = [rng.normal(size=s) for s in ((12, 5), (12, 4), (12,), (12,))]
feeds = {"X": x[None], "initial_h": h[None], **onnx_graphs.onnx_weights("gru", *w, np.float32)}
feeds = {k: np.asarray(v, np.float32) for k, v in feeds.items()}
core = ov.Core()
gru = onnx_graphs.recurrent_model("gru", 4, np.dtype(np.float32))
model = core.read_model(gru.SerializeToString(), b"")
model.reshape({k: list(v.shape) for k, v in feeds.items()})
ran = []
for config in ({}, {"INFERENCE_PRECISION_HINT": "f32"}):
    compiled = core.compile_model(model, "CPU", config)
    error = np.abs(compiled(feeds)[compiled.outputs[1]][0] - reference.gru_cell(x, h, *w)).max()
    hint = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    ran.append(f"{'default' if not config else 'hint f32'}: ran in {hint}, max error {error:.1e}")
print("; ".join(ran))"""

FINDINGS: tuple[Finding, ...] = (
    Finding("keras_gru_layout", "Keras' GRU stacks its gates z, r, h and keeps two bias rows: "
            "PyTorch weights loaded without the z, r swap compute another cell",
            ("keras-team/keras#15915",),
            "With the mapping of nnspec.implementations.keras_cells (blocks z, r, h; bias "
            "[b_ih; b_hh]) Keras' GRU(reset_after=True) computes PyTorch's gru.cell.pytorch; with "
            "the blocks in PyTorch's order the oracle names the swap gru.bug.gate_order_zrn.",
            (Expectation("keras_torch", "gru.cell.pytorch", "pass"),
             Expectation("keras_misordered", "gru.cell.pytorch", "fail", "gru.bug.gate_order_zrn"))),
    Finding("keras_reset_after_false", "Keras' GRU(reset_after=False) is the textbook GRU, "
            "gru.cell.textbook: no PyTorch weights reproduce it", ("keras-team/keras#15915",),
            "The reset gate scales h before the recurrent matmul and the two biases are one; "
            "it passes as gru_cell_textbook (keras_torch, keras_jax rows).",
            (Expectation("keras_torch", "gru.cell.textbook", "pass"),
             Expectation("keras_jax", "gru.cell.textbook", "pass"))),
    Finding("keras_torch_float64", "Keras 3 on torch computes float64 matrix products in "
            "float32", ("keras-team/keras#23704",),
            "keras.ops.matmul of two float64 tensors returns float32 (result_type maps float64 to "
            "float32), so a float64 Keras cell computes in float32 and fails its float64 bounds; "
            "the oracle's diagnosis says so (computes in float32 while declaring float64). The "
            "GRU and LSTM layers, which run torch's own kernels, keep float64.",
            (Expectation("keras_torch_float64", "gru.cell.pytorch", "fail"),),
            _KERAS_TORCH_MATMUL, ("keras", "torch")),
    Finding("keras_jax_float64", "Keras 3 on JAX: a layer built with dtype='float64' computes in "
            "float32 unless jax_enable_x64 is set, without a warning from Keras",
            ("keras-team/keras#23704",),
            "The variables report float64 while the outputs are float32 (JAX's own warning "
            "aside); with jax_enable_x64 the GRU and LSTM cells still round to float32 and "
            "SimpleRNN's lax.scan fails on a float64 carry turned float32.",
            (), _KERAS_JAX_FLOAT64, ("keras", "jax")),
    Finding("flax_nnx_no_b_hn", "Flax NNX's GRUCell has no b_hn: the reset-after GRU without the "
            "recurrent candidate bias", ("google/flax#5594", "google/flax#5595"),
            "nnx.GRUCell's dense_h has no bias, so r ⊙ (W_hn h + b_hn) loses b_hn; PyTorch (and "
            "flax.linen) weights with b_hn ≠ 0 give other outputs. The oracle names "
            "gru.bug.no_bias_hn; flax.linen's GRUCell conforms.",
            (Expectation("flax_nnx", "gru.cell.pytorch", "fail", "gru.bug.no_bias_hn"),
             Expectation("flax_linen", "gru.cell.pytorch", "pass"))),
    Finding("onnx_linear_before_reset", "ONNX's GRU is PyTorch's only with linear_before_reset=1; "
            "the default 0 is the textbook cell", ("microsoft/onnxscript#2852",),
            "An exporter that drops the attribute (torch.onnx.export(dynamo=True) through "
            "onnxscript's aten_gru) turns nn.GRU into gru.cell.textbook. Both runtimes compute "
            "each value of the attribute as the spec defines it, and so does OpenVINO's ONNX "
            "frontend.",
            (Expectation("onnx_runtime", "gru.cell.pytorch", "pass"),
             Expectation("onnx_runtime", "gru.cell.textbook", "pass"),
             Expectation("onnx_reference", "gru.cell.textbook", "pass"),
             Expectation("openvino", "gru.cell.pytorch", "pass"),
             Expectation("openvino", "gru.cell.textbook", "pass"))),
    Finding("tensorflow_conforms", "Keras 3 on TensorFlow (tensorflow-cpu 2.21) conforms on every "
            "recurrent id in float32", (),
            "tensorflow-cpu 2.21 installs beside numpy 2.4, torch, JAX and ONNX Runtime (of what "
            "the project already uses, pip moves only h5py, from 3.16 to 3.14); `pip install "
            "'nnspec[tensorflow]'` gives these rows.",
            tuple(Expectation("keras_tensorflow", sid, "pass") for sid in RECURRENT_IDS)),
    Finding("openvino_bf16_default", "OpenVINO's CPU plugin runs a float32 model in bf16 on CPUs "
            "with bf16 arithmetic unless told otherwise",
            ("https://docs.openvino.ai/2025/openvino-workflow/running-inference/"
             "optimize-inference/precision-control.html",),
            "The CPU plugin's default INFERENCE_PRECISION_HINT is bf16 where the CPU has "
            "AVX512_BF16 or AMX (f16 where it computes float16 natively), whatever the model's "
            "dtype; the same float32 ONNX GRU is then off by about 1e-2. The openvino rows set "
            "the hint to f32 and pass at float32 bounds; the openvino_default_precision rows, "
            "compiled as a user who sets nothing compiles, fail them, and the diagnosis says "
            "the error scales like TF32 rounding: it names the precision the error fits (here "
            "between what TF32 and bfloat16 operands predict, nearer TF32's), not the hardware. "
            "On a CPU without bf16 arithmetic the default is f32 and those rows pass (this "
            "finding then reads not confirmed). The reproduction prints the hint each "
            "compilation ran with.",
            (Expectation("openvino", "gru.cell.pytorch", "pass"),
             Expectation("openvino", "lstm.cell", "pass"),
             Expectation("openvino_default_precision", "gru.cell.pytorch", "fail"),
             Expectation("openvino_default_precision", "lstm.cell", "fail")),
            _OPENVINO_BF16, ("openvino", "onnx")),
    Finding("coreml_b_hn_outside", "Core ML's GRU adds b_hn outside the reset gate",
            ("apple/coremltools#1124",),
            "n = tanh(W_in x + r ⊙ (W_hn h) + b_in + b_hn): the spec's gru.bug.bias_hn_outside_reset. "
            "Not run here (coremltools predicts on macOS only)."),
    Finding("cudnn_vs_classic_gru", "cuDNN-style (reset-after) and classic (reset-before) GRUs "
            "disagree even with all weights zero but the biases", ("tensorflow/tensorflow#8311",),
            "The two are gru.cell.pytorch and gru.cell.textbook; they agree only when b_hn = 0 "
            "and W_hn is diagonal (a check of both ids).",
            (Expectation("keras_torch", "gru.cell.pytorch", "pass"),
             Expectation("keras_torch", "gru.cell.textbook", "pass"))),
)

#: The lower-precision finding (checks/oracle/diagnosis.py, lower_precision_behind): "the error
#: scales like TF32 rounding: … while declaring DTYPE float32".
_COMPUTES_IN = re.compile(r"the error scales like (\S+) rounding: .* while declaring")


@dataclass
class Row:
    """One framework × spec id."""

    spec_id: str
    verdict: str
    variant: str | None
    computes_in: str | None
    message: str
    diagnosis: list[str]
    reproduce: str


@dataclass
class FrameworkResult:
    """What the atlas found for one adapter: ``status`` ran or skipped (with ``reason``)."""

    key: str
    framework: str
    module: str | None
    versions: dict[str, str]
    extra: str
    mapping: str
    status: str
    reason: str = ""
    dtype: str | None = None
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)


def versions(distributions: Sequence[str]) -> dict[str, str]:
    """The installed version of each distribution (absent ones left out)."""
    found = {}
    for name in distributions:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def missing(adapter: Adapter) -> str | None:
    """Why ``adapter`` cannot run here (a package absent, no adapter), or None."""
    if adapter.module is None:
        return adapter.reason
    absent = [name for name in adapter.imports if importlib.util.find_spec(name) is None]
    if absent:
        extra = f" (pip install 'nnspec[{adapter.extra}]')" if adapter.extra else ""
        return f"{', '.join(absent)} not installed{extra}"
    return None


def reproduce(module: str, ids: Sequence[str], examples: int, seed: int) -> str:
    """The one-line command that reproduces a row (or an adapter's rows)."""
    return (f".venv/bin/nnspec check {module} --only {' '.join(ids)} --examples {examples} "
            f"--seed {seed}")


def row(spec_id: str, verdict: str, diagnosis: list[str], messages: list[str], dtype: str,
        command: str) -> Row:
    """One row from a spec id's verdict, diagnosis lines and messages, for a module declaring
    ``dtype``: the variant is the first one a diagnosis line names; the dtype computed in is a
    lower precision the diagnosis found, when it named no variant (a variant matched to rounding
    explains the failure at the declared precision, and a lower-precision line beside it comes
    from a call where variant and spec differ by rounding only), else ``dtype``."""
    variants = [sid for line in diagnosis for sid in named_ids(line)]
    lower = [m.group(1) for line in diagnosis for m in _COMPUTES_IN.finditer(line)]
    provided = verdict != "not provided"
    return Row(spec_id=spec_id, verdict=verdict, variant=variants[0] if variants else None,
               computes_in=(lower[0] if lower and not variants else dtype) if provided else None,
               message=messages[0] if messages and verdict != "pass" else "",
               diagnosis=diagnosis, reproduce=command)


def check_adapter(adapter: Adapter, *, examples: int, seed: int) -> FrameworkResult:
    """Run the checks of ``adapter.ids`` on its module, as ``nnspec check`` does."""
    from nnspec import oracle
    from nnspec.checks.harness.implementation import (
        ImplementationLoadError,
        ImplementationUnavailable,
        load,
    )

    result = FrameworkResult(adapter.key, adapter.framework, adapter.module,
                             versions(adapter.distributions), adapter.extra, adapter.mapping,
                             status="skipped")
    reason = missing(adapter)
    if reason is not None or adapter.module is None:
        result.reason = reason or adapter.reason
        return result
    start = time.perf_counter()
    try:
        # The worker the checks will use, loaded first to read its DTYPE (nnspec check does so).
        impl = load(adapter.module, isolation="process")
    except (ImplementationUnavailable, ImplementationLoadError) as exc:
        result.reason = str(exc)
        return result
    result.dtype = str(impl.dtype)
    try:
        found = oracle.check(adapter.module, only=adapter.ids, examples=examples, seed=seed,
                             implementation_only=True)
    finally:
        impl.close()
    result.status, result.seconds = "ran", round(time.perf_counter() - start, 1)
    for sid in adapter.ids:
        result.rows.append(row(sid, found.verdicts.get(sid, "not provided"),
                               found.diagnoses.get(sid, []), found.messages.get(sid, []),
                               result.dtype, reproduce(adapter.module, [sid], examples, seed)))
    return result


def run_probe(finding: Finding, timeout: float = 180.0) -> dict[str, Any]:
    """Run a finding's reproduction in a fresh interpreter; its output, or why it did not run."""
    absent = [name for name in finding.probe_imports if importlib.util.find_spec(name) is None]
    if absent:
        return {"ran": False, "output": f"{', '.join(absent)} not installed"}
    try:
        done = subprocess.run([sys.executable, "-c", finding.probe], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"ran": False, "output": f"did not finish in {timeout:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"ran": done.returncode == 0, "output": lines[-1] if lines else done.stderr.strip()[-300:]}


def judge(finding: Finding, frameworks: dict[str, FrameworkResult]) -> dict[str, Any]:
    """A finding against this run: per expected row, whether the atlas shows it."""
    rows = []
    for e in finding.expect:
        fw = frameworks.get(e.adapter)
        row = next((r for r in fw.rows if r.spec_id == e.spec_id), None) if fw else None
        if row is None:
            seen = "not run here"
        else:
            named = e.variant is None or row.variant == e.variant
            seen = "confirmed" if row.verdict == e.verdict and named else (
                f"not confirmed: {row.verdict}" + (f", {row.variant}" if row.variant else ""))
        rows.append({**asdict(e), "seen": seen})
    return {"key": finding.key, "title": finding.title, "upstream": list(finding.upstream),
            "detail": finding.detail, "rows": rows,
            "probe": finding.probe or None,
            "probe_result": run_probe(finding) if finding.probe else None}


def run(adapters: Sequence[Adapter] = ADAPTERS, *, examples: int = 10, seed: int = 0,
        findings: Sequence[Finding] = FINDINGS,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Check every adapter and judge every finding; the atlas as data (schema :data:`SCHEMA`)."""
    results: dict[str, FrameworkResult] = {}
    for adapter in adapters:
        if progress:
            progress(f"{adapter.key}: {adapter.module or 'no adapter'}")
        results[adapter.key] = check_adapter(adapter, examples=examples, seed=seed)
        if progress:
            r = results[adapter.key]
            progress(f"  {r.status} ({r.seconds:.0f} s){': ' + r.reason if r.reason else ''}")
    return {
        "schema": SCHEMA, "nnspec": nnspec.__version__, "python": sys.version.split()[0],
        "examples": examples, "seed": seed, "spec_ids": list(RECURRENT_IDS),
        "command": f"nnspec atlas --examples {examples} --seed {seed}",
        "frameworks": [asdict(r) for r in results.values()],
        "findings": [judge(f, results) for f in findings],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link(upstream: str) -> str:
    """A finding's upstream reference as a Markdown link: ``owner/repo#N`` is a GitHub issue; a
    full address (a framework's documentation) is shown by its site and page."""
    if upstream.startswith("https://"):
        site, *_, page = upstream.removeprefix("https://").split("/")
        return f"[{site}: {page.removesuffix('.html')}]({upstream})"
    return f"[{upstream}](https://github.com/{upstream.replace('#', '/issues/')})"


def markdown(data: dict[str, Any]) -> str:
    """reports/atlas.md from the atlas' data."""
    ran = [f for f in data["frameworks"] if f["status"] == "ran"]
    skipped = [f for f in data["frameworks"] if f["status"] != "ran"]
    lines = [
        "# The conformance atlas of recurrent cells",
        "",
        f"Generated by `{data['command']}` (nnspec {data['nnspec']}, Python {data['python']}); "
        "do not edit. Each framework's cells and layers are mapped onto the contract (PyTorch's "
        "layout) by the module named, whose docstring holds the mapping, and checked as "
        "`nnspec check` checks them, with the verdict, the variant or bug the oracle's diagnosis "
        "named, and the dtype the framework really computes in (its DTYPE, unless the diagnosis "
        f"found a lower precision). {len(ran)} frameworks or backends ran here, "
        f"{len(skipped)} were skipped.",
        "",
        "## Frameworks",
        "",
        "| framework | versions | module | DTYPE | mapping | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in ran:
        vers = ", ".join(f"{k} {v}" for k, v in f["versions"].items())
        lines.append(f"| {_cell(f['framework'])} | {vers} | `{f['module']}` | {f['dtype']} | "
                     f"{_cell(f['mapping'])} | {f['seconds']:.0f} |")
    lines += ["", "## Verdicts", "",
              "| framework | spec id | verdict | variant named | computes in | first message | "
              "reproduce |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in ran:
        for r in f["rows"]:
            verdict = "**FAIL**" if r["verdict"] == "fail" else r["verdict"]
            message = _cell(r["message"][:140] + ("…" if len(r["message"]) > 140 else ""))
            lines.append(f"| {f['key']} | `{r['spec_id']}` | {verdict} | "
                         f"{r['variant'] or '—'} | {r['computes_in'] or '—'} | {message} | "
                         f"`{r['reproduce']}` |")
    lines += ["", "## Findings", ""]
    for g in data["findings"]:
        refs = ", ".join(_link(u) for u in g["upstream"])
        lines += [f"### {g['title']}", ""]
        lines += [f"Upstream: {refs}.", ""] if refs else []
        lines += [g["detail"], ""]
        for r in g["rows"]:
            lines.append(f"- `{r['adapter']}` × `{r['spec_id']}`: expected {r['verdict']}"
                         + (f" naming {r['variant']}" if r["variant"] else "") + f" — {r['seen']}")
        if g["probe"]:
            result = g["probe_result"]
            lines += ["", "Reproduction (`.venv/bin/python -c` this):", "", "```python",
                      g["probe"], "```", "",
                      f"Here: `{result['output']}`" if result["ran"] else
                      f"Not run here: {result['output']}"]
        lines.append("")
    lines += ["## Skipped", "", "| framework | reason |", "| --- | --- |"]
    lines += [f"| {_cell(f['framework'])} | {_cell(f['reason'])} |" for f in skipped]
    return "\n".join(lines) + "\n"


def write(data: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write ``atlas.md`` and ``atlas.json`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "atlas.md", folder / "atlas.json"
    md.write_text(markdown(data), encoding="utf-8")
    js.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
