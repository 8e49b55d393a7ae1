"""Package marker: the Markdown spec files ship inside nnspec as ``nnspec.spec``."""
