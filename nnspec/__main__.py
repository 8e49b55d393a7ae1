"""``python -m nnspec`` is the ``nnspec`` command."""

from nnspec.cli import main

raise SystemExit(main())
