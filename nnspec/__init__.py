"""nnspec: an executable specification, oracle and benchmark suite for classic deep-learning formulas.

Sub-packages (folders of the repository, mapped by ``pyproject.toml``):

- ``nnspec.spec``            ← ``spec/``       the formulas, one Markdown file per family
- ``nnspec.reference``       ← ``reference/``  float64 NumPy implementation of every spec id
- ``nnspec.checks``          ← ``checks/``     pytest + Hypothesis checks and the oracle machinery
- ``nnspec.bench``           ← ``bench/``      benchmarks
- ``nnspec.implementations``                   the shipped implementations under test
"""

__version__ = "0.1.0"
