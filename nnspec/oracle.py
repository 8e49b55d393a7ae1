"""The oracle's Python entry point: check any implementation against the spec.

    >>> from nnspec.oracle import check
    >>> result = check("my_package.my_lstm", only=["lstm.cell"])
    >>> result.ok, result.verdicts["lstm.cell"], result.diagnoses["lstm.cell"]

``check`` runs the same checks as ``pytest --impl MODULE`` (one code path for every
implementation) and returns a structured result: per spec id a verdict (*pass*, *fail*, *not
provided*), the failures as data (:class:`~nnspec.checks.harness.failure.Failure`: the function,
the worst element's position, got and want, the bound and its rule, the message) and the
diagnosis lines (known variant or bug matched, lower precision than declared).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType

from nnspec.checks.harness.failure import Failure
from nnspec.conformance import Conformance, run
from nnspec.speclib import selects


@dataclass
class OracleResult:
    """What the oracle found for one implementation."""

    implementation: str
    verdicts: dict[str, str]
    messages: dict[str, list[str]]
    diagnoses: dict[str, list[str]]
    conformance: Conformance = field(repr=False)
    #: Per spec id, what each failed check found (``str`` of one is its message; ``.headline``
    #: its first line). ``messages`` holds the first headlines and skip reasons.
    failures: dict[str, list[Failure]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no spec id failed (ids not provided do not count against it)."""
        return "fail" not in self.verdicts.values() and self.conformance.exit_code in (0, 5)

    @property
    def failed(self) -> list[str]:
        return [sid for sid, v in self.verdicts.items() if v == "fail"]


def _register(module: ModuleType) -> str:
    """Make a module object importable by name so the checks can load it like any other."""
    name = module.__name__
    if sys.modules.get(name) is not module:
        if name in sys.modules:
            name = f"nnspec_user_module_{id(module):x}"
        sys.modules[name] = module
    return name


def _option(extra_args: Sequence[str], option: str) -> str | None:
    """The value of a pytest option among ``extra_args``, given as ``--o=v`` or ``--o v``."""
    args = list(extra_args)
    for i, arg in enumerate(args):
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
        if arg == option and i + 1 < len(args):
            return args[i + 1]
    return None


def _loadable(name: str, extra_args: Sequence[str]) -> None:
    """Load ``name`` as the run will (in its worker, unless isolation is off; with the run's time
    limit, so the run reuses that worker), so that a module that cannot be used raises
    ImplementationLoadError here, in one line, instead of failing every check. One that cannot
    run here (CUDA without a GPU) goes on: its checks skip."""
    from nnspec.checks.harness.implementation import (
        DEFAULT_TIMEOUT,
        ImplementationUnavailable,
        load,
    )

    timeout = _option(extra_args, "--nnspec-timeout")
    with contextlib.suppress(ImplementationUnavailable):
        load(name, isolation=_option(extra_args, "--nnspec-isolation") or "process",
             timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout))


def check(module: str | ModuleType, *, only: Sequence[str] = (), examples: int | None = None,
          seed: int = 0, quiet: bool = True, implementation_only: bool = False,
          extra_args: Sequence[str] = (), plugins: Sequence[object] = (),
          preload: bool = True, jobs: int = 1) -> OracleResult:
    """Run every check (or those of ``only``) against ``module`` and return the findings.

    - ``module``: an importable module path, a shipped short name (``torch``, ``reference``…) or
      a module object; a path that cannot be imported, or a module without a usable DTYPE,
      raises ImplementationLoadError before any check runs. A path or name runs in a worker
      process of its own (unless ``--nnspec-isolation=none`` is among ``extra_args``); a module
      object runs in-process, as it is in memory.
    - ``only``: spec ids, or family prefixes ending in '.', to restrict the run and the verdicts
      (a check that also carries another id gives no pass on that one; a failure is kept).
    - ``examples``: Hypothesis examples per check (default: the ``ci`` profile's).
    - ``seed``: seeds the checks' generators (``--nnspec-seed``); the same seed reproduces a run.
    - ``implementation_only``: run only the checks that call ``module`` (``--nnspec-impl-only``),
      not those of the reference and the spec themselves, which say nothing about ``module``.
    - ``extra_args``: more pytest arguments (``--nnspec-timeout=S``, ``--nnspec-isolation=none``…);
      ``plugins``: more pytest plugin objects (a progress display).
    - ``preload``: load a module path before the run, so that one that cannot be used raises
      (above); ``nnspec check`` turns it off, since its header plugin loads the module while
      pytest starts and reports a load error itself.
    - ``jobs``: pytest-xdist workers for the run (1: serially; more needs pytest-xdist), whose
      verdicts are a serial run's (nnspec.conformance.run).
    """
    if preload and not isinstance(module, ModuleType):
        _loadable(module, extra_args)
    name = _register(module) if isinstance(module, ModuleType) else module
    # A module object is checked as it is in memory (a function patched in a notebook
    # included): a worker process would import its file again, so it runs in-process.
    inproc = ["--nnspec-isolation=none"] if isinstance(module, ModuleType) else []
    args = [f"--nnspec-seed={seed}", *(f"--only={sid}" for sid in only), *inproc, *extra_args]
    if examples is not None:
        args.append(f"--nnspec-examples={examples}")
    if implementation_only:
        args.append("--nnspec-impl-only")
    conformance = run([name], extra_args=args, quiet=quiet, plugins=plugins, jobs=jobs)
    verdicts: dict[str, str] = {}
    messages: dict[str, list[str]] = {}
    diagnoses: dict[str, list[str]] = {}
    failures: dict[str, list[Failure]] = {}
    for (sid, impl), cell in conformance.cells.items():
        if impl != name and impl != "(implementation-independent)":
            continue
        # A check marked with several ids runs for any of them: with --only lstm.cell, the one
        # check of lstm.layer that also carries lstm.cell is no verdict on lstm.layer — unless it
        # failed there, which is evidence, and may explain a failure of an id asked for.
        if only and not any(selects(w, sid) for w in only) and cell.verdict != "fail":
            continue
        if impl == "(implementation-independent)" and sid in verdicts:
            continue
        verdicts[sid] = cell.verdict
        messages[sid] = cell.messages
        diagnoses[sid] = cell.diagnoses
        failures[sid] = cell.failures
    return OracleResult(implementation=name, verdicts=verdicts, messages=messages,
                        diagnoses=diagnoses, conformance=conformance, failures=failures)
