"""nnspec.checks: the conformance checks and the oracle machinery they share."""
