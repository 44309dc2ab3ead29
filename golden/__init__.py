"""Golden model: PyTorch HeLU, training, quantization and export.

Kept free of torch imports so that ``helu.golden.fixed`` stays light for ``hw`` and ``sim``.
"""
