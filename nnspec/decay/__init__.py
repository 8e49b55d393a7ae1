"""The gradient-norm decay measurement around the reference's nnspec.reference.decay
(spec/decay.md): ``summary`` (one measurement as data and text), ``torch_cells`` (torch
autograd's side), ``sweeps`` (the report's sweeps), ``plots`` and ``report`` (the report's
section). ``nnspec decay`` (nnspec.cli.decay) measures one configuration."""
