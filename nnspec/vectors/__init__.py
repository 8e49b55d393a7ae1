"""Language-neutral test vectors: ``nnspec vectors --out DIR`` writes them, :func:`load_case` reads them.

A vector is one call of a contract function (checks/harness/contract.py) on fixed arguments,
with the float64 reference's outputs and, for float32 and float64, the per-element bound the
checks allow on ``|got − expected|``. Each case is a JSON file (metadata, scalars inline) and an
``.npz`` of plain arrays (``numpy.load(..., allow_pickle=False)``), so a C++, Rust or JAX
implementation can be checked without running Python. Random operations get their statistical
claims instead.

Everything a case is drawn from sits in :data:`VECTORS` (table.py), one row per (spec id,
contract function): the input recipes (recipes.py) and the bound function of
``nnspec.checks.bounds`` the checks call. Outputs are the reference's
(``nnspec.implementations.reference`` unless a row names a variant's function). The modules:

- recipes.py: the cases' input recipes;
- claims.py: the statistical claims of the random operations;
- table.py: the rows (:data:`VECTORS`) and what is not exported;
- files.py: JSON and ``.npz`` writing and reading (:func:`load_case`, :func:`load_index`);
- readme.py: the README.md of an export;
- export.py: :func:`export`, which computes every row and writes the files and index.json.
"""

from nnspec.vectors.export import arguments, contract_ids, export
from nnspec.vectors.files import DTYPES, SCHEMA, Output, VectorCase, load_case, load_index, output_at
from nnspec.vectors.recipes import Case, RngArgument
from nnspec.vectors.table import NOT_EXPORTED, VECTORS, Claims, Values, planned, reference_of, resolve

__all__ = ["DTYPES", "NOT_EXPORTED", "SCHEMA", "VECTORS", "Case", "Claims", "Output", "RngArgument",
           "Values", "VectorCase", "arguments", "contract_ids", "export", "load_case", "load_index",
           "output_at", "planned", "reference_of", "resolve"]
