"""The implementations under test that nnspec ships.

- ``torch_cpu`` (default) and ``torch_cpu_float32``: PyTorch on the CPU in float64 and float32.
- ``torch_cuda`` and ``torch_cuda_float32``: the same on a GPU (TF32 off); importing them without
  one raises ``ImplementationUnavailable`` and their checks skip with that reason.
- ``torch_cuda_tf32``: float32 on a GPU with TF32 on (cuDNN's default), declaring
  ``PRECISION = "tf32"``, so it is held to the bounds at TF32's unit roundoff.
- ``reference``: nnspec's own float64 reference exposed through the contract.

Each is a plain module of contract functions (nnspec.checks.harness.contract), as a user's would be.
"""
