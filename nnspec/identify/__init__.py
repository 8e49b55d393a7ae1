"""``nnspec identify``: how do PyTorch's parameters map onto a recurrent cell of unknown layout?

Given a cell — a callable on (x, h[, c]) and its own parameter arrays, whose shapes are known but
not their meaning — this finds which of PyTorch's parameters each entry of them is (gate block
order, transposes, per-gate matrices, concatenated ``[x, h]`` kernels, split or folded biases, a
constant the cell adds to a bias such as a forget-bias offset, a negated block such as a flipped
update gate) and which formula the cell computes (PyTorch's GRU or the textbook one, with or
without b_hn inside the reset gate, a known bug of spec/), by probing it with designed inputs
(nnspec.identify.probe). It writes the mapping as Python code that converts PyTorch weights into
the cell's parameters, checks that code against the entry-wise mapping and on random weights (at
a second size too when PARAMS is a function of the sizes), and verifies it with the full checks
of the variant's spec id before it is reported: a wrong guess cannot pass. When no layout fits,
it says what was ruled out for each formula tried.

The cell, as a module file or importable module (``nnspec identify my_cell.py``, ``nnspec
identify mypkg.my_cell``)::

    # my_cell.py: a Keras-style GRU (reset_after=True) written in NumPy
    import numpy as np

    KIND = "gru"                                   # "gru", "lstm" or "rnn"

    def PARAMS(input_size, hidden_size):           # name -> shape, at any sizes
        return {"kernel": (input_size, 3 * hidden_size),
                "recurrent_kernel": (hidden_size, 3 * hidden_size),
                "bias": (2, 3 * hidden_size)}

    def CELL(x, h, kernel, recurrent_kernel, bias):  # LSTM: CELL(x, h, c, **params) -> (h', c')
        ...                                          # -> h' (B, H)

- ``CELL(x, h, **params)`` (``CELL(x, h, c, **params)`` for the LSTM) returns h' (``(h', c')``);
  x is (B, D), h and c (B, H), and each parameter arrives as a float64 NumPy array of its shape
  (the cell may cast it). It must work at any D and H: the checks call it at many sizes.
- ``PARAMS``: a function (input_size, hidden_size) → {name: shape}, or a dict {name: shape} at
  the sizes ``INPUT_SIZE`` and ``HIDDEN_SIZE``, which the module then defines (each ≥ 2, and
  unequal, so that rows, columns and blocks cannot be confused).
- ``KIND``: ``"gru"``, ``"lstm"`` or ``"rnn"`` (``--kind`` overrides it).
- ``DTYPE`` (optional): the precision the cell computes in, for the checks; by default the dtype
  of its output.

From Python, :func:`identify` takes the same three things and returns an :class:`Identification`::

    from nnspec.identify import identify
    found = identify(CELL, PARAMS, kind="gru")
    found.ok, found.variant, found.source, found.ruled_out, found.verification

The layouts, variants and checks are data, so nothing is hard-wired to a framework: the variants
tried are the contract function's own spec ids first (gru.cell.pytorch, gru.cell.textbook;
lstm.cell; rnn.cell with tanh and with ReLU), then every variant and bug of spec/ with a reference
function of the contract's signature (nnspec.checks.oracle.diagnosis.candidates). A layout that
leaves some PyTorch parameter without a place (a GRU without b_hn, a cell without biases) fits
only with that parameter zero; a formula that places every parameter is preferred to one that
does not, and the spec's own ids to its bugs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnspec.adapters import BLOCKS
from nnspec.identify.layout import LayoutError, convert, source
from nnspec.identify.probe import IdentifyError, Inputs, Probe, Sizes, Variant, zeros
from nnspec.identify.solve import Attempt, attempt, random_distance
from nnspec.identify.verify import Verification, conversion_module, spec_id, verify

#: Probe sizes when PARAMS is a function: small (few cell calls), D ≠ H, both ≥ 2; and the second
#: size at which the generated code is checked before the full checks run.
PROBE_SIZES = Sizes(input=3, hidden=4)
SECOND_SIZES = Sizes(input=5, hidden=2)

#: The contract functions a cell of each kind is checked as, in the order tried.
FUNCTIONS = {"gru": ("gru_cell", "gru_cell_textbook"), "lstm": ("lstm_cell",), "rnn": ("rnn_cell",)}

Shapes = Mapping[str, tuple[int, ...]]
ParamsSpec = Shapes | Callable[[int, int], Shapes]


@dataclass
class Identification:
    """What :func:`identify` found.

    - ``identified``: a layout and a formula explain the cell on random weights; then
      ``variant`` (the spec or bug id it computes), ``function`` (the contract function it is
      checked as), ``source`` (the code of ``from_torch``), ``notes`` (what the layout does),
      ``missing`` (PyTorch parameters the cell has no place for).
    - ``ruled_out``: per formula tried and not chosen, why.
    - ``verification``: the full checks' verdict on ``source`` (None when not run).
    - ``seconds``: the identification's time (reading the cell's PARAMS included), the
      verification's apart.
    """

    kind: str
    identified: bool
    variant: str | None = None
    function: str | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ruled_out: list[str] = field(default_factory=list)
    dtype: str = "float64"
    nonlinearity: str | None = None
    seconds: float = 0.0
    cell_calls: int = 0
    verification: Verification | None = None
    from_torch: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Identified, and the full checks of the variant's spec id passed."""
        return self.identified and self.verification is not None and self.verification.ok


def _kind(kind: str) -> str:
    if kind not in BLOCKS:
        raise IdentifyError(f"kind must be one of {sorted(BLOCKS)}, got {kind!r}")
    return kind


def _shapes(params: ParamsSpec, sizes: Sizes) -> dict[str, tuple[int, ...]]:
    raw = params(sizes.input, sizes.hidden) if callable(params) else params
    if not isinstance(raw, Mapping) or not raw:
        raise IdentifyError(f"PARAMS must map parameter names to shapes, got {raw!r}")
    out = {}
    for name, shape in raw.items():
        try:
            dims = tuple(int(d) for d in (shape if isinstance(shape, tuple | list) else (shape,)))
        except (TypeError, ValueError):
            raise IdentifyError(f"PARAMS[{name!r}] must be a shape (a tuple of ints), "
                                f"got {shape!r}") from None
        if any(d < 1 for d in dims):
            raise IdentifyError(f"PARAMS[{name!r}] has an empty dimension: {dims}")
        out[str(name)] = dims
    return out


def _sizes(params: ParamsSpec, input_size: int | None, hidden_size: int | None) -> Sizes:
    if callable(params) and input_size is None and hidden_size is None:
        return PROBE_SIZES
    if input_size is None or hidden_size is None:
        raise IdentifyError("give both input_size and hidden_size (INPUT_SIZE and HIDDEN_SIZE in "
                            "the module) for PARAMS' shapes, or make PARAMS a function "
                            "(input_size, hidden_size) -> shapes")
    if input_size < 2 or hidden_size < 2 or input_size == hidden_size:
        raise IdentifyError(f"the probe sizes must be at least 2 and differ, so rows, columns "
                            f"and blocks cannot be confused; got input {input_size}, hidden "
                            f"{hidden_size}")
    return Sizes(input_size, hidden_size)


def variants(kind: str) -> list[Variant]:
    """The formulas tried, in order: the contract functions' own spec ids, then the variants and
    bugs of spec/ with a reference function of the same signature."""
    from nnspec.checks.oracle.diagnosis import candidates
    from nnspec.implementations import reference

    found: list[Variant] = []
    for function in FUNCTIONS[kind]:
        formula = getattr(reference, function)
        if kind == "rnn":
            found += [Variant(spec_id(function), function, formula, phi) for phi in ("tanh", "relu")]
        else:
            found.append(Variant(spec_id(function), function, formula))
    seen = {v.id for v in found}
    for function in FUNCTIONS[kind]:
        for sid, formula in candidates(function).items():
            if sid not in seen:
                seen.add(sid)
                found.append(Variant(sid, function, formula, "tanh" if kind == "rnn" else None,
                                     in_spec=False))
    return found


def _describe(kind: str, a: Attempt, hidden: int) -> tuple[list[str], list[str]]:
    """Notes on the chosen layout (negated gates, offsets) and the PyTorch parameters missing."""
    notes = []
    names = BLOCKS[kind]
    signs: dict[int, set[int]] = {}
    for k, sign in a.matches.values():
        signs.setdefault(a.slots[k].row // hidden, set()).add(sign)
    for gate, s in sorted(signs.items()):
        if s == {-1}:
            what = ("the update gate is flipped, h' = (1 − z) ⊙ h + z ⊙ n: " if
                    (kind, names[gate]) == ("gru", "z") else f"gate {names[gate]} enters negated: ")
            notes.append(f"{what}its block is PyTorch's negated (1 − σ(a) = σ(−a))")
    offsets: dict[tuple[int, float], int] = {}
    for k, v in a.offsets.items():
        key = (a.slots[k].row // hidden, v)
        offsets[key] = offsets.get(key, 0) + 1
    for (gate, v), count in sorted(offsets.items()):
        each = "" if count == hidden else f" on {count} of its {hidden} units"
        notes.append(f"the cell adds {v:+g} to gate {names[gate]}'s bias itself{each} (as a "
                     f"forget-bias offset does): the conversion subtracts it")
    missing = sorted({f"{t.tensor}[{names[t.row // hidden]}]" for s in a.unfilled for t in s.terms})
    return notes, missing


def _compile(code: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<nnspec identify>", "exec"), namespace)
    return namespace["from_torch"]


def identify(cell: Callable[..., Any], params: ParamsSpec, *, kind: str,
             input_size: int | None = None, hidden_size: int | None = None,
             dtype: Any = None, seed: int = 0, run_checks: bool = True,
             examples: int | None = None) -> Identification:
    """Identify the layout and formula of ``cell`` and verify the conversion.

    - ``cell``: ``cell(x, h, **params) -> h'``, or ``cell(x, h, c, **params) -> (h', c')`` for
      the LSTM, on NumPy arrays, at any input and hidden size.
    - ``params``: {name: shape} at ``input_size``, ``hidden_size``, or a function of the two
      returning it (then the probe picks the sizes).
    - ``kind``: ``"gru"``, ``"lstm"`` or ``"rnn"``.
    - ``dtype``: the precision the cell computes in, for the probes and the checks (default: its
      output's).
    - ``seed``: seeds the probe's random inputs and the checks (same seed, same run).
    - ``run_checks``: verify with the full checks (default True); without, ``ok`` is False.
    - ``examples``: Hypothesis examples per check in the verification (default: the profile's).

    Raises :class:`IdentifyError` (a ``ValueError``, one line) for a kind, PARAMS or sizes that
    cannot be probed, and when the cell raises or returns something not shaped like the state.

    The cell is called in the calling process, with no time limit: a cell that hangs, calls
    ``os._exit`` or ``sys.exit``, or crashes takes the caller with it. ``nnspec identify`` runs
    this in a child process with a wall-clock limit (nnspec.cli.identify) for a cell not trusted.
    """
    start = time.perf_counter()
    kind = _kind(kind)
    sizes = _sizes(params, input_size, hidden_size)
    shapes = _shapes(params, sizes)
    rng = np.random.default_rng(seed)
    # The declared precision sets the probe's "same formula" threshold from the start: a cell
    # that computes in float32 and returns float64 is otherwise held to float64's rounding.
    probe = Probe(cell, kind, shapes, Inputs.draw(kind, sizes, rng),
                  dtype=np.dtype(dtype) if dtype is not None else np.dtype(np.float64))
    zero_signatures = probe.signatures(probe.zeros(), probe.entries)
    attempts: list[Attempt] = []
    for v in variants(kind):
        a = attempt(v, probe, kind, sizes, rng, zero_signatures)
        attempts.append(a)
        if a.fits and not a.unfilled:
            break
    fitting = [a for a in attempts if a.fits]
    result = Identification(kind=kind, identified=False,
                            dtype=str(np.dtype(dtype) if dtype is not None else probe.dtype))
    if fitting:
        best = min(fitting, key=lambda a: (-_filled(a), not a.variant.in_spec))
        equal = [a for a in fitting if a is not best and _filled(a) == _filled(best)]
        result.ruled_out = [f"{a.variant.id}{_phi(a.variant)}: {a.note or _why_not(a, best)}"
                            for a in attempts if a is not best and a not in equal]
        _finish(result, best, probe, kind, sizes, rng, params)
        result.notes += [f"the cell is {a.variant.id} as well ({describe(a.variant.id)}), "
                         f"with {_missing_text(a, kind, sizes.hidden)}" for a in equal]
    else:
        result.ruled_out = [f"{a.variant.id}{_phi(a.variant)}: {a.note}" for a in attempts]
    result.seconds = time.perf_counter() - start
    result.cell_calls = probe.calls
    if result.identified and run_checks and result.from_torch is not None and result.function:
        module = conversion_module(cell, result.from_torch, kind=kind, function=result.function,
                                   dtype=result.dtype, nonlinearity=result.nonlinearity)
        result.verification = verify(module, spec_id(result.function), seed=seed,
                                     examples=examples)
    return result


def describe(variant_id: str | None) -> str:
    """What a spec id's heading, or a bug's entry in spec/*.md, says it computes."""
    from nnspec import speclib

    for entry in speclib.load().values():
        if entry.id == variant_id:
            return entry.title
        if variant_id in entry.bugs:
            return entry.bugs[variant_id]
    return "a formula without an entry in spec/"


def _phi(v: Variant) -> str:
    return f" with {v.nonlinearity}" if v.nonlinearity and v.in_spec else ""


def _filled(a: Attempt) -> int:
    """How many of PyTorch's observable quantities the cell holds under this formula: the
    dimension of the weights it reproduces. Formulas that explain the same cell equally well
    (NNX's GRU: PyTorch's with b_hn = 0, or b_hn outside the reset gate) hold as many."""
    return len(a.slots) - len(a.unfilled)


def _missing_text(a: Attempt, kind: str, hidden: int) -> str:
    names = sorted({f"{t.tensor}[{BLOCKS[kind][t.row // hidden]}]"
                    for s in a.unfilled for t in s.terms})
    return f"no place for {', '.join(names)}" if names else "a place for every parameter"


def _why_not(a: Attempt, best: Attempt) -> str:
    if a.fits:
        return (f"fits too, but reproduces {_filled(a)} of PyTorch's quantities where the chosen "
                f"{best.variant.id} reproduces {_filled(best)}")
    return a.note


def _finish(result: Identification, best: Attempt, probe: Probe, kind: str, sizes: Sizes,
            rng: np.random.Generator, params: ParamsSpec) -> None:
    """Write the chosen attempt's code, check it against the entry-wise conversion and, when
    PARAMS gives shapes at any size, at a second size; fill ``result``."""
    v = best.variant
    result.variant, result.nonlinearity = v.id, v.nonlinearity
    # A bug of spec/ is checked as the contract function of its family: its checks fail and the
    # diagnosis names it, which is the verification that it computes that bug.
    result.function = v.function if v.in_spec else FUNCTIONS[kind][0]
    result.notes, result.missing = _describe(kind, best, sizes.hidden)
    formulas = best.formulas(probe)
    summary = f"PyTorch's {kind.upper()} weights -> this cell's parameters ({v.id}{_phi(v)})."
    try:
        code = source(kind, formulas, sizes.hidden, summary)
    except LayoutError as exc:
        result.ruled_out.append(f"{v.id}: every entry has a place, but not by whole gate blocks, "
                                f"so no conversion for other sizes can be written ({exc})")
        return
    from_torch = _compile(code)
    theta = {k: rng.normal(size=s.shape) for k, s in zeros(kind, sizes).items()}
    by_code, by_entry = from_torch(**theta), convert(formulas, theta)
    # Exact: the code only copies, transposes, negates and concatenates PyTorch's entries, sums
    # folded ones and adds a constant offset, and Formula.value rounds those sums in the code's
    # order (terms left to right, then the constant), so any difference is a wrong entry.
    if set(by_code) != set(by_entry) or any(
            np.shape(by_code[k]) != by_entry[k].shape
            or not np.array_equal(by_code[k], by_entry[k]) for k in by_entry):
        result.ruled_out.append(f"{v.id}: the block structure written as code does not give the "
                                f"entries found (a partial block); no conversion is reported")
        return
    if callable(params):
        # At another size the entries the cell has no place for are their whole gate blocks.
        H = SECOND_SIZES.hidden
        zero = {k: np.zeros(w.shape, dtype=bool) for k, w in zeros(kind, SECOND_SIZES).items()}
        for t in (t for s in best.unfilled for t in s.terms):
            gate = t.row // sizes.hidden
            zero[t.tensor][gate * H:(gate + 1) * H] = True
        second = random_distance(probe.cell, v, kind, SECOND_SIZES,
                                 lambda theta: from_torch(**theta), rng, zero=zero)
        if second > best.limit:
            result.ruled_out.append(
                f"{v.id}: the layout found at D={sizes.input}, H={sizes.hidden} misses at "
                f"D={SECOND_SIZES.input}, H={SECOND_SIZES.hidden} by relative distance "
                f"{second:.2g}: the cell's layout depends on its sizes otherwise than by blocks")
            return
    result.identified, result.source, result.from_torch = True, code, from_torch


def load(target: str) -> tuple[Callable[..., Any], ParamsSpec, dict[str, Any]]:
    """CELL, PARAMS and the optional settings (KIND, INPUT_SIZE, HIDDEN_SIZE, DTYPE) of a module
    file (``path/to/cell.py``) or an importable module (``pkg.cell``, from the current
    directory as ``python -m`` would); :class:`IdentifyError` with one line otherwise."""
    import importlib
    import importlib.util
    import os
    import sys

    try:
        if target.endswith(".py") or os.sep in target:
            if not os.path.isfile(target):
                raise IdentifyError(f"no such file: {target}")
            name = "nnspec_identify_" + os.path.splitext(os.path.basename(target))[0]
            spec = importlib.util.spec_from_file_location(name, target)
            if spec is None or spec.loader is None:
                raise IdentifyError(f"{target} cannot be imported as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except IdentifyError:
        raise
    except Exception as exc:
        raise IdentifyError(f"importing {target} raised {type(exc).__name__}: {exc}") from None
    missing = [n for n in ("CELL", "PARAMS") if not hasattr(module, n)]
    if missing:
        raise IdentifyError(f"{target} defines no {' and no '.join(missing)}: it needs CELL (the "
                            f"cell) and PARAMS (name -> shape), see `nnspec identify --help`")
    if not callable(module.CELL):
        raise IdentifyError(f"{target}: CELL must be callable, got {type(module.CELL).__name__}")
    settings = {key.lower(): getattr(module, key)
                for key in ("KIND", "INPUT_SIZE", "HIDDEN_SIZE", "DTYPE") if hasattr(module, key)}
    return module.CELL, module.PARAMS, settings


__all__ = ["FUNCTIONS", "Identification", "IdentifyError", "describe", "identify", "load", "variants"]

