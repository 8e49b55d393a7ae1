"""nnspec: an executable specification, oracle and benchmark suite for classic deep-learning formulas.

Sub-packages (folders of the repository, mapped by ``pyproject.toml``):

- ``nnspec.spec``            ← ``spec/``       the formulas, one Markdown file per family
- ``nnspec.reference``       ← ``reference/``  float64 NumPy implementation of every spec id
- ``nnspec.checks``          ← ``checks/``     pytest + Hypothesis checks and the oracle machinery
- ``nnspec.bench``           ← ``bench/``      benchmarks
- ``nnspec.implementations``                   the shipped implementations under test

and, in ``nnspec/`` itself, the tool: ``nnspec.cli`` (the ``nnspec`` command, one module per
subcommand), ``nnspec.oracle`` and ``nnspec.conformance`` (running the checks and collecting their
findings as data), ``nnspec.verdicts`` (what ``nnspec check`` prints), ``nnspec.progress`` (the
progress line on stderr), ``nnspec.report``,
``nnspec.decay`` (the gradient-norm decay measurement), ``nnspec.vectors`` and ``nnspec.adapters``.
"""

from importlib.metadata import version

#: The installed distribution's version: pyproject.toml holds the one copy.
__version__ = version("nnspec")
