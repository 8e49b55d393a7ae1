"""nnspec.bench: pytest-benchmark suites (run with ``pytest bench --benchmark-enable``)."""
