"""nnspec.reference: a minimal float64 NumPy implementation of every spec id.

One module per spec family. Every public function's docstring starts with the spec id it
implements, then the equation in the seed's notation and the shapes. No torch import. Smooth
functions use only operations that accept complex arrays, so complex-step differentiation
(nnspec.checks.gradients) applies to them.
"""
