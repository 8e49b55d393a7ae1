"""Diagnosis: when an implementation fails, which known formula did it compute instead?

Every spec id carries named variants and known bugs (spec/*.md), and each has a reference function
(its docstring starts with the id). A function of the reference whose parameters are exactly
those of a contract function is a *candidate* for that contract function: ``gru_cell_textbook``
and ``gate_order_zrn`` for ``gru_cell``, say. When a comparison fails, the calls the check made to
the implementation are replayed on every candidate, and a candidate whose output the
implementation reproduces at the rounding level while the spec's own output is far off is named:
"matches gru.cell.textbook".

The thresholds here decide what is *named*, never what passes: the verdict itself always comes
from the tolerance model. A candidate is named when its distance to the implementation's output
is within :data:`ROUNDING_LEVEL` units of the implementation's own rounding, or
:data:`SEPARATION` times closer than the spec — so a variant is still named when the
implementation's rounding noise is far above float64's.

Two findings need no catalogue entry. *Lower precision* (:func:`lower_precision_behind`): a float64
implementation whose error scales like float32 rounding — comparable to the change float32
rounding of the same call's inputs and output causes, and far above the float64 bound — is said to
compute in float32 (spec/tolerances.md, "Lower precision than declared"), unless another call
of the function — recorded, or on designed inputs — is exact where rounding its inputs to
float32 would move the spec's outputs (:func:`rules_out`: a σ clipped beyond |x| > 8 fits float32's
scale on a one-unit call, and is exact on O(1) pre-activations). *Approximation*
(:func:`_approximation`): an output off the spec by a small amount, far above float32 rounding,
that matches no variant or bug is named an approximate σ or tanh (or a cell built on one).

A random operation (a contract function taking ``rng``: dropout, the initialisers) cannot be
replayed value by value: the implementation and a candidate consume their generators differently.
Its recorded call is replayed instead with fresh generators, on the implementation and on every
candidate, until about :data:`REPLAY_SAMPLES` values are pooled per output, and the pooled
values are compared by a two-sample Kolmogorov–Smirnov test: a candidate whose law the test keeps
at the suite's false-alarm rate ``stats.ALPHA`` while it rejects the spec's law is named — the drop
rate, the scale of the kept units, the behaviour in evaluation mode or the width of an
initialiser's law all show in the pooled values.

A catalogue match on one call can be a coincidence (a σ saturated beyond x = 20 gives 1.0 at
x = 21, as a hard sigmoid does), so a candidate is not named where a designed input contradicts
it: fresh arguments of the call's shapes for cells and layers, a spread of x for the elementwise
activations (checks/oracle/localisation.py, localise_numerics.py).

Beyond the catalogue: a loss computed through a catalogued softmax bug is a candidate too
(checks/oracle/localise_numerics.py), and a recorded call that matches no candidate goes to the
experiments of checks/oracle/localisation.py, which say where the fault is (an ignored argument,
a gate, a step) or that they could not localise it. Every line is a
:class:`~nnspec.checks.oracle.localise_findings.Finding`: the line with its kind, location,
evidence and confidence.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from nnspec.checks.oracle.localise_findings import Finding

#: Relative distance, in units of the implementation's u, that counts as "the same formula".
ROUNDING_LEVEL = 1e4

#: "Computes in float32" needs the error to lie within this factor, either way, of the error
#: float32 rounding causes on the same call (:func:`float32_error`): a float32 evaluation is the
#: exact formula on inputs perturbed by a few u₃₂ (backward stability), so its error is of that
#: order; a float64 formula difference (σ = ½(1 + tanh(x/2))) is 10⁶× below it, an approximate
#: activation (a fast exp with 1e-4 error) 100× above it.
FLOAT32_SPREAD = 16.0


#: Float32 perturbations drawn by :func:`float32_error`; the largest change per element counts.
FLOAT32_SAMPLES = 4


@dataclass(frozen=True)
class Precision:
    """A precision an implementation may compute in behind its declared DTYPE: its unit roundoff
    and what the finding says it does."""

    name: str
    unit: float
    does: str
    #: The type every input is rounded to when computing in it (float32: a float32 evaluation
    #: casts its arguments first); None where only some operands are (TF32 and bfloat16 round the
    #: operands of products, not the biases added in float32).
    inputs: type | None = None


#: The lower precisions looked for behind each declared DTYPE (spec/tolerances.md, "Lower
#: precision than declared"). TF32 keeps 10 significand bits (u = 2⁻¹¹) and is what cuBLAS and
#: cuDNN multiply float32 with by default on NVIDIA Ampere and later; float16 has the same
#: significand, so the two cannot be told apart by their rounding. bfloat16 keeps 7 (u = 2⁻⁸).
#: The name is the precision the error scales like, not a claim about the hardware: OpenVINO's
#: CPU plugin in its default bf16 mode errs closer to TF32's prediction than to bfloat16's
#: (reports/atlas.md, openvino_bf16_default).
LOWER_PRECISIONS: dict[str, tuple[Precision, ...]] = {
    "float64": (Precision("float32", 2.0**-24, "computes in float32", np.float32),),
    "float32": (Precision("TF32", 2.0**-11, "multiplies with operands of TF32's precision (10-bit "
                                             "significand: cuBLAS/cuDNN's TF32 default on Ampere "
                                             "and later; float16 operands round alike, and "
                                             "bfloat16 on only part of the operands errs between "
                                             "the two)"),
                Precision("bfloat16", 2.0**-8, "computes with bfloat16 operands (7-bit "
                                                "significand)")),
}

#: An output off the spec by more than rounding but by at most this relative distance, matching no
#: variant or bug, is named an approximation (a fast exp, a rational or piecewise-linear σ): every
#: wrong formula of the catalogue is farther (a gate order, a missing bias or tanh moves outputs by
#: tens of percent), and hard-sigmoid, the crudest approximation in use, is 0.08 off σ.
APPROXIMATE = 0.1

#: … and more than this many units of the implementation's u: below it the difference is rounding.
APPROXIMATE_FLOOR = 64.0

#: What an approximation of each contract function is called in the diagnosis.
_APPROXIMATED = {"sigmoid": "σ", "tanh": "tanh", "vjp_sigmoid": "σ'", "vjp_tanh": "tanh'"}

#: Per spec family, the functions of its formulas that implementations approximate (fast exp,
#: rational or piecewise-linear activations); per contract function, where only some of a
#: family's functions have one (a hardware rsqrt in a norm or Adam's denominator). Elsewhere the
#: formula computes none — a linear map, a penalty, a least-squares fit — so a small error is not
#: named an approximation: a constant offset in ``linear`` was once diagnosed "an approximate σ
#: or tanh".
_APPROXIMABLE = {"rnn": "σ or tanh", "gru": "σ or tanh", "lstm": "σ or tanh",
                 "sequence": "σ or tanh", "decay": "σ or tanh",
                 "activations": "exp, log, erf or tanh", "losses": "exp or log"}
_APPROXIMABLE_FUNCTIONS = {"clip_grad_norm": "square root", "adam_step": "square root",
                           "adamw_step": "square root"}

#: A candidate this many times closer to the implementation than the spec is named as well.
SEPARATION = 1e3

#: Values pooled per output when a random operation is replayed: at 10⁵ a two-sample KS test at
#: α = 10⁻⁶ rejects CDFs 0.012 apart (c(α)·√(2/n), c(α) = 2.69): drop rates 0.30 and 0.32, say.
REPLAY_SAMPLES = 100_000

#: At most this many replays of one recorded call (a shrunk example may hold a single value).
MAX_REPLAYS = 2_000

_DOC_ID = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?=$|[\s:—-])")


@dataclass(frozen=True)
class Call:
    """One call the check made to the implementation, with the values it saw (as float64)."""

    fn: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


def doc_id(f: Callable[..., Any]) -> str | None:
    """The spec id that starts the first line of ``f``'s docstring (``gru.cell.pytorch — …``):
    dotted lower-case words followed by the end of the line, a space, a colon or a dash; None
    where the docstring starts with none."""
    doc = inspect.getdoc(f) or ""
    m = _DOC_ID.match(doc.strip().splitlines()[0]) if doc.strip() else None
    return m.group(1) if m else None


def same_formula(d: float, d_spec: float, unit: float) -> bool:
    """Whether an output at relative distance ``d`` from a candidate's and ``d_spec`` from the
    spec's counts as the candidate's formula: within ROUNDING_LEVEL units ``unit`` of it, or
    finite and SEPARATION times closer to it than to the spec."""
    return d <= ROUNDING_LEVEL * unit or (math.isfinite(d) and d * SEPARATION <= d_spec)


def _params(f: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(f).parameters)


@cache
def candidates(fn: str) -> dict[str, Callable[..., Any]]:
    """Variant and bug functions of the reference that take exactly the arguments of ``fn``."""
    from nnspec.implementations import reference

    spec_fn = getattr(reference, fn, None)
    if spec_fn is None:
        return {}
    own = doc_id(spec_fn)
    module = sys.modules[spec_fn.__module__]
    found: dict[str, Callable[..., Any]] = {}
    for _, f in inspect.getmembers(module, inspect.isfunction):
        sid = doc_id(f)
        if (f.__module__ == module.__name__ and sid and sid != own and sid not in found
                and _params(f) == _params(spec_fn)):
            found[sid] = f
    return found


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, tuple | list):
        return [a for v in value for a in _arrays(v)]
    return [np.asarray(value, dtype=np.float64)]


def distance(got: Any, want: Any) -> float:
    """Largest error relative to the scale of ``want``, over all output arrays (inf if unlike)."""
    a, b = _arrays(got), _arrays(want)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.size == 0:
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            # The same inf or NaN on both sides is agreement (an overflow the candidate shares).
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            err = float(np.max(np.where(same, 0.0, np.abs(x - y))))
        scale = float(np.max(np.abs(y[np.isfinite(y)]), initial=0.0)) or 1.0
        worst = max(worst, err / scale if np.isfinite(err) else float("inf"))
    return worst


def diagnose(calls: list[Call], unit: float, *,
             draw: Callable[..., Any] | None = None) -> list[str]:
    """Name the known variants and bugs that the recorded calls reproduce instead of the spec.

    ``draw(fn, *args, **kwargs)`` calls the implementation again, unrecorded; without it random
    operations are not diagnosed.
    """
    from nnspec.checks.oracle.localisation import Experiment, localisable
    from nnspec.checks.oracle.localise_numerics import composites
    from nnspec.implementations import reference

    lines: list[str] = []
    # The most recent call per function belongs to the failing example; earlier ones may be
    # left over from examples Hypothesis tried before.
    latest = {c.fn: c for c in calls}
    for call in latest.values():
        found = {**candidates(call.fn), **composites(call.fn)}
        if not found and not localisable(call.fn):
            continue
        if _is_random(call):
            if draw is not None:
                lines.extend(_diagnose_random(call, found, unit, draw))
            continue
        try:
            spec_out = getattr(reference, call.fn)(*call.args, **call.kwargs)
        except Exception:
            continue
        d_spec = distance(call.output, spec_out)
        spec_id = doc_id(getattr(reference, call.fn)) or call.fn
        if d_spec <= ROUNDING_LEVEL * unit:
            lines.extend(_approximation(call, spec_out, d_spec, unit, spec_id))
            continue
        scored = []
        for sid, f in found.items():
            try:
                scored.append((distance(call.output, f(*call.args, **call.kwargs)), sid))
            except Exception:
                continue
        named = [(d, sid) for d, sid in sorted(scored) if same_formula(d, d_spec, unit)]
        # A recorded call can be degenerate (a shrunk example with h = 0 or a zero weight) and
        # fit a bug the implementation does not have: designed inputs must not contradict it.
        experiment = Experiment(call, unit, draw, spec_out)
        named = [(d, sid) for d, sid in named if not experiment.contradicts(found[sid])]
        if named:
            best = ", ".join(f"{sid} (relative distance {d:.2g})" for d, sid in named)
            lines.append(Finding(
                f"{call.fn}() matches {best}; the spec {spec_id} is at {d_spec:.2g}",
                kind="variant or bug", location=", ".join(sid for _, sid in named),
                evidence=f"relative distance {named[0][0]:.2g} to it, {d_spec:.2g} to the spec, "
                         f"on the failing call",
                confidence="high" if named[0][0] <= ROUNDING_LEVEL * unit else "medium"))
            continue
        # The nearest catalogued bug is not named: being nearest says nothing of where the fault
        # is; the experiments say that, or that they could not. A small error looks like an
        # approximate activation, unless an experiment places it (a term of a small weight).
        approximate = _approximation(call, spec_out, d_spec, unit, spec_id,
                                     partial(_evidence, calls, call.fn, experiment))
        try:
            localised = experiment.localise() if localisable(call.fn) else []
        except Exception:  # an experiment the call's arguments do not fit says nothing
            localised = []
        if approximate and not any(f.claims for f in localised):
            lines.extend(approximate)
            continue
        unmatched = (f"{call.fn}() matches no known variant or bug of {spec_id} (spec at "
                     f"relative distance {d_spec:.2g})")
        lines.append(Finding(unmatched, kind="note", evidence=unmatched, confidence="none"))
        lines.extend(localised)
    return list(dict.fromkeys(lines))


def _approximation(call: Call, spec_out: Any, d_spec: float, unit: float, spec_id: str,
                   evidence: Callable[[], list[Call]] = list) -> list[str]:
    """The line naming an approximate function: off the spec by a small relative distance
    (APPROXIMATE_FLOOR·u < d ≤ APPROXIMATE; for σ and tanh, whose values lie in [−1, 1], an
    absolute error ≤ APPROXIMATE) and farther than float32 rounding would put it (FLOAT32_SPREAD
    times the error of :func:`_float32_changes`). A float64 implementation whose error is of the
    size of float32 rounding gets the line "off the spec by float32 rounding" instead, unless a
    call of ``evidence()`` (other calls of the function, designed inputs) :func:`rules_out`
    float32: then the error, small and above float64's rounding, is an approximation; [] else."""
    if not APPROXIMATE_FLOOR * unit < d_spec <= (1.0 if call.fn in _APPROXIMATED else APPROXIMATE):
        return []
    got, want = _arrays(call.output), _arrays(spec_out)
    with np.errstate(invalid="ignore", over="ignore"):
        err = max(float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want, strict=True))
    what = _APPROXIMATED.get(call.fn)
    # σ and tanh lie in [−1, 1]: their approximations are judged by the absolute error.
    if what is not None and err > APPROXIMATE:
        return []
    # Float32 rounding (behind a float64 claim) is not an approximation: the error must exceed
    # FLOAT32_SPREAD times what float32 rounding of the call causes (see lower_precision_behind).
    float32 = _float32_changes(call)
    if float32 is None:
        return []
    typical = max(float(np.max(c, initial=0.0)) for c in float32[1])
    if err <= FLOAT32_SPREAD * typical:
        if unit >= float(np.finfo(np.float32).eps) / 2 or err < typical / FLOAT32_SPREAD:
            return []
        single = LOWER_PRECISIONS["float64"][0]
        if not any(rules_out(c, single, unit) for c in evidence()):
            return [Finding(f"{call.fn}() is off the spec {spec_id} by float32 rounding: max "
                            f"|error| {err:.2g} against {typical:.2g} from float32 rounding of the "
                            f"call's inputs and output — a lower precision than the declared "
                            f"DTYPE, not another formula", kind="lower precision",
                            location="float32",
                            evidence=f"max |error| {err:.2g}, float32 rounding {typical:.2g}",
                            confidence="medium")]
    if what is not None:
        x = np.asarray(call.args[1 if call.fn.startswith("vjp_") else 0], dtype=np.float64)
        where = f"x ∈ [{np.min(x):.3g}, {np.max(x):.3g}]" if x.size else "no input"
        return [Finding(f"{call.fn}() is an approximate {what}: max |error| {err:.2g} over "
                        f"{where} (relative {d_spec:.2g}), above rounding and matching no variant "
                        f"or bug of {spec_id} — a fast exp, a rational or piecewise-linear {what}",
                        kind="approximation", location=what,
                        evidence=f"max |error| {err:.2g} over {where}", confidence="medium")]
    inside = _APPROXIMABLE_FUNCTIONS.get(call.fn, _APPROXIMABLE.get(spec_id.split(".")[0]))
    if inside is None:
        return []
    return [Finding(f"{call.fn}() is an approximation of {spec_id}: max |error| {err:.2g} "
                    f"(relative {d_spec:.2g}), above rounding and matching no variant or bug — an "
                    f"approximate {inside} inside it (a fast exp, a rational or piecewise-linear "
                    f"activation, a hardware rsqrt) is the usual cause", kind="approximation",
                    location=inside, evidence=f"max |error| {err:.2g}, relative {d_spec:.2g}",
                    confidence="low")]


def _float32_changes(call: Call, u32: float = float(np.finfo(np.float32).eps) / 2
                     ) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """The spec's outputs on a recorded call, and per output and element the error float32
    rounding causes there: the largest change of the spec's value when every floating input is
    perturbed by a relative u₃₂ (FLOAT32_SAMPLES draws), plus the output's own rounding u₃₂·|value|.
    ``u32`` names another precision's unit roundoff (TF32, bfloat16) to get its error instead.
    None for a random call or a call the spec cannot evaluate."""
    from nnspec.implementations import reference

    spec_fn = getattr(reference, call.fn, None)
    if spec_fn is None or _is_random(call):
        return None
    rng = np.random.default_rng(0)

    def perturbed(a: Any) -> Any:
        if isinstance(a, tuple | list):
            return type(a)(perturbed(v) for v in a)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a * (1.0 + u32 * rng.uniform(-1.0, 1.0, a.shape))
        return a

    try:
        with np.errstate(all="ignore"):
            exact = _arrays(spec_fn(*call.args, **call.kwargs))
            change = [np.zeros(e.shape) for e in exact]
            for _ in range(FLOAT32_SAMPLES):
                moved = _arrays(spec_fn(*perturbed(call.args),
                                        **{k: perturbed(v) for k, v in call.kwargs.items()}))
                change = [np.fmax(c, np.abs(m - e)) for c, m, e in zip(change, moved, exact, strict=True)]
    except Exception:
        return None
    return exact, [c + u32 * np.abs(e) for c, e in zip(change, exact, strict=True)]


def float32_error(calls: list[Call], fn: str | None, want: np.ndarray,
                  unit: float = float(np.finfo(np.float32).eps) / 2) -> np.ndarray | None:
    """The error float32 rounding (or that of the precision with unit roundoff ``unit``) causes on
    ``want``, an output of the latest recorded call of ``fn`` (:func:`_float32_changes`); None
    where that call is not recorded, is random, or has no output equal to ``want``."""
    latest = [c for c in calls if c.fn == fn][-1:]
    found = _float32_changes(latest[0], unit) if latest else None
    if found is None:
        return None
    for exact, change in zip(*found, strict=True):
        if exact.shape == want.shape and np.allclose(exact, want, rtol=1e-9, atol=0.0,
                                                     equal_nan=True):
            return change
    return None


def _orders(p: Precision, unit: float) -> float:
    """A third of the binary orders between ``unit`` and the lower precision's, as a factor: 2¹⁰
    for float32 behind float64, 2⁵ for TF32 and 2⁶ for bfloat16 behind float32."""
    return 2.0 ** math.ceil(math.log2(p.unit / unit) / 3)


def _rounded_inputs(a: Any, to: type) -> Any:
    if isinstance(a, tuple | list):
        return type(a)(_rounded_inputs(v, to) for v in a)
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return a.astype(to).astype(np.float64)
    if isinstance(a, float):
        return float(to(a))
    return a


def rules_out(call: Call, p: Precision, unit: float) -> bool:
    """Whether the implementation's output on ``call`` shows that it does not compute in ``p``
    (a precision that rounds every input, :attr:`Precision.inputs`): rounding the call's floating
    inputs to ``p`` — the first thing such an evaluation does — moves the spec's outputs beyond
    the declared precision's rounding (ROUNDING_LEVEL units ``unit`` of their scale) and
    :func:`_orders` times farther than the implementation's output is from them. An evaluation
    in ``p`` would be off by that move, less an improbable cancellation by its own rounding: a
    σ clipped to 0 and 1 beyond |x| > 8 is exact on pre-activations inside (0 off), while its
    one-unit failing call is off by float32's amount."""
    from nnspec.implementations import reference

    spec_fn = getattr(reference, call.fn, None)
    if p.inputs is None or spec_fn is None or _is_random(call):
        return False
    try:
        with np.errstate(all="ignore"):
            exact = _arrays(spec_fn(*call.args, **call.kwargs))
            moved = _arrays(spec_fn(*_rounded_inputs(call.args, p.inputs),
                                    **{k: _rounded_inputs(v, p.inputs)
                                       for k, v in call.kwargs.items()}))
        got = _arrays(call.output)
    except Exception:
        return False
    if len(got) != len(exact) or any(g.shape != e.shape for g, e in zip(got, exact, strict=True)):
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        err = max((distance(g, e) * (float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)) or 1.0)
                   for g, e in zip(got, exact, strict=True)), default=0.0)
        effect = max((float(np.max(np.where(np.isfinite(m) & np.isfinite(e), np.abs(m - e), 0.0),
                                    initial=0.0)) for m, e in zip(moved, exact, strict=True)),
                     default=0.0)
    scale = max((float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)) for e in exact),
                default=0.0) or 1.0
    return math.isfinite(err) and effect > max(_orders(p, unit) * err, ROUNDING_LEVEL * unit * scale)


def lower_precision_behind(declared: str, err: np.ndarray, bound: np.ndarray, unit: float,
                           calls: list[Call], fn: str | None, want: np.ndarray, *,
                           draw: Callable[..., Any] | None = None) -> Finding | None:
    """The finding "computes in a lower precision than declared" (:data:`LOWER_PRECISIONS`) for an
    implementation declaring ``declared`` (its DTYPE's name, or its PRECISION) that fails
    ``bound`` (built for unit roundoff ``unit``), when its error scales like that precision's
    rounding (spec/tolerances.md, "Lower precision than declared"): within the bound restated at
    that precision's unit everywhere; above the declared bound somewhere by a third of the binary
    orders between the two units (2¹⁰ for float32 behind float64, 2⁵ for TF32 and 2⁶ for bfloat16
    behind float32), since an error just over the declared bound is a matter of that precision;
    and within a factor FLOAT32_SPREAD, either way, of :func:`float32_error` at the precision's
    unit (at the largest of each). A tiny error fits under the lower bound too and fails the
    last two; an approximate activation's error is far above rounding and fails the last. Of
    several precisions that fit, the one whose predicted error is closest to the observed one is
    named.

    One call can fit the last condition by coincidence (a σ clipped beyond |x| > 8 is off by
    float32's amount on a one-unit call), so a precision that rounds every input is not named
    where another recorded call of ``fn``, or a designed input (``draw(fn, **args)`` calls the
    implementation, checks/oracle/localisation.py), :func:`rules_out` it."""
    if not unit or not np.all(np.isfinite(err)):
        return None
    found = []
    others: list[Call] | None = None
    for p in LOWER_PRECISIONS.get(declared, ()):
        low = bound * (p.unit / unit)
        if not np.all(err <= low):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            above = float(np.max(err / np.maximum(bound, np.finfo(np.float64).tiny), initial=0.0))
        if above < _orders(p, unit):
            continue
        scale = float32_error(calls, fn, want, p.unit)
        if scale is None:
            continue
        worst, typical = float(np.max(err, initial=0.0)), float(np.max(scale, initial=0.0))
        if not typical / FLOAT32_SPREAD <= worst <= FLOAT32_SPREAD * typical:
            continue
        if p.inputs is not None:
            if others is None:
                others = evidence_calls(calls, fn, unit, draw)
            if any(rules_out(c, p, unit) for c in others):
                continue
        found.append((abs(math.log(worst / typical)) if worst > 0 else math.inf, p, worst,
                      typical, above))
    if not found:
        return None
    _, p, worst, typical, above = min(found, key=lambda f: f[0])
    evidence = (f"max {worst:.2g}, against {typical:.2g} from {p.name} rounding of the same "
                f"call's inputs and output and {above:.2g}× the {declared} bound")
    return Finding(f"the error scales like {p.name} rounding: {evidence}: the implementation "
                   f"{p.does} while declaring DTYPE {declared}", kind="lower precision",
                   location=p.name, evidence=evidence, confidence="high")


def evidence_calls(calls: list[Call], fn: str | None, unit: float,
                   draw: Callable[..., Any] | None) -> list[Call]:
    """The recorded calls of ``fn`` and, with ``draw``, the implementation's outputs on the
    designed inputs of its latest call (:meth:`~nnspec.checks.oracle.localisation.Experiment.
    designed`: fresh arguments of its shapes for cells and layers, a spread of x for the
    elementwise functions)."""
    from nnspec.checks.oracle.localisation import Experiment

    own = [c for c in calls if c.fn == fn]
    if not own or draw is None:
        return own
    return _evidence(calls, fn, Experiment(own[-1], unit, draw))


def _evidence(calls: list[Call], fn: str | None, experiment: Any) -> list[Call]:
    """The recorded calls of ``fn`` and the implementation's outputs on an experiment's designed
    inputs."""
    return [c for c in calls if c.fn == fn] + _designed_calls(experiment)


def _designed_calls(experiment: Any) -> list[Call]:
    """The implementation's outputs on an experiment's designed inputs, as calls."""
    try:
        return [Call(experiment.fn, (), t.args, t.output) for t in experiment.designed()]
    except Exception:  # a call the designed inputs do not fit adds no evidence
        return []


def _is_random(call: Call) -> bool:
    return any(isinstance(a, np.random.Generator) for a in (*call.args, *call.kwargs.values()))


def _pooled(f: Callable[..., Any], call: Call, replays: int, stream: int) -> list[np.ndarray]:
    """``f`` on the call's arguments, a fresh generator per replay; the values of each output
    pooled across replays. Replay i of stream s draws from default_rng([s, i]): reproducible."""

    def fresh(a: Any, i: int) -> Any:
        return np.random.default_rng([stream, i]) if isinstance(a, np.random.Generator) else a

    pooled: list[list[np.ndarray]] = []
    for i in range(replays):
        out = _arrays(f(*(fresh(a, i) for a in call.args),
                        **{k: fresh(v, i) for k, v in call.kwargs.items()}))
        pooled = pooled or [[] for _ in out]
        if len(out) != len(pooled):
            raise ValueError("the number of outputs changed between replays")
        for acc, a in zip(pooled, out, strict=True):
            acc.append(a.ravel())
    return [np.concatenate(acc) for acc in pooled]


def _snapped(a: np.ndarray, unit: float) -> np.ndarray:
    """``a`` with its significands rounded to multiples of ROUNDING_LEVEL·unit: values that differ
    only by the implementation's rounding become one atom (x/(1 − p) in float32 and in float64),
    which the KS test would otherwise see as two laws."""
    with np.errstate(invalid="ignore"):
        significand, exponent = np.frexp(a)
        step = ROUNDING_LEVEL * unit
        return np.ldexp(np.round(significand / step) * step, exponent)


def _agreement(a: list[np.ndarray], b: list[np.ndarray], unit: float) -> float:
    """The smallest two-sample KS p-value over the outputs (0 when they are not comparable).

    The test depends only on the order of the pooled values, so each sample is replaced by its
    values' positions in the sorted union of both: ±inf keep their place, and NaN (which
    numpy.unique sorts last, all NaNs as one value) becomes an atom of its own.
    """
    from scipy import stats

    if len(a) != len(b) or any(x.size == 0 or y.size == 0 for x, y in zip(a, b, strict=True)):
        return 0.0
    pvalues = []
    for x, y in zip(a, b, strict=True):
        _, codes = np.unique(np.concatenate([_snapped(x, unit), _snapped(y, unit)]),
                             return_inverse=True)
        pvalues.append(stats.ks_2samp(codes[:x.size], codes[x.size:]).pvalue)
    return float(min(pvalues))


def _diagnose_random(call: Call, found: dict[str, Callable[..., Any]], unit: float,
                     draw: Callable[..., Any]) -> list[str]:
    """Name the candidates whose law the implementation's replayed outputs follow."""
    from nnspec.checks.harness.stats import ALPHA
    from nnspec.implementations import reference

    size = max(1, sum(a.size for a in _arrays(call.output)))
    replays = int(min(MAX_REPLAYS, -(-REPLAY_SAMPLES // size)))
    spec_fn = getattr(reference, call.fn)
    spec_id = doc_id(spec_fn) or call.fn
    try:
        got = _pooled(lambda *a, **k: draw(call.fn, *a, **k), call, replays, stream=0)
        p_spec = _agreement(got, _pooled(spec_fn, call, replays, stream=1), unit)
    except Exception:
        return []
    how = f"{replays} replay{'s' if replays > 1 else ''} of {size} value{'s' if size > 1 else ''}"
    if p_spec >= ALPHA:
        return [Finding(f"{call.fn}() replayed ({how}) follows the law of the spec {spec_id} "
                        f"(two-sample KS p = {p_spec:.2g}): the failure lies beyond one call's "
                        f"law (dependence between draws or elements, or a rare event)",
                        kind="law", location="beyond one call's law",
                        evidence=f"KS p = {p_spec:.2g} against the spec", confidence="low")]
    scored = []
    for stream, (sid, f) in enumerate(found.items(), start=2):
        try:
            scored.append((_agreement(got, _pooled(f, call, replays, stream), unit), sid))
        except Exception:
            continue
    named = [(p, sid) for p, sid in sorted(scored, reverse=True) if p >= ALPHA]
    if named:
        best = ", ".join(f"{sid} (two-sample KS p = {p:.2g})" for p, sid in named)
        return [Finding(f"{call.fn}() replayed ({how}) follows the law of {best}; the spec "
                        f"{spec_id}'s law is rejected (p = {p_spec:.2g} < α = {ALPHA:g})",
                        kind="variant or bug", location=", ".join(sid for _, sid in named),
                        evidence=f"{how}: KS p = {named[0][0]:.2g}, spec p = {p_spec:.2g}",
                        confidence="high")]
    return [Finding(f"{call.fn}() replayed ({how}) follows no known variant or bug of {spec_id} "
                    f"(spec rejected at p = {p_spec:.2g}): could not localise", kind="unlocalised",
                    evidence=f"{how}: spec p = {p_spec:.2g}", confidence="none")]


_NAMED = re.compile(r"\b([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+) \((?:relative distance|two-sample KS)")


def named_ids(line: str) -> list[str]:
    """The variant and bug ids that one diagnosis line names as matched ([] for other lines)."""
    if "no known variant" in line or "follows the law of the spec" in line:
        return []
    if isinstance(line, Finding) and line.kind != "variant or bug":
        return []
    return _NAMED.findall(line.split("; the spec ", 1)[0])
