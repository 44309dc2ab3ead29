"""HeLU hardware toolkit: from a trained PyTorch model to verified, synthesized gates.

Subpackages: ``helu.golden`` (PyTorch model, training, fixed-point golden vectors),
``helu.hw`` (Amaranth units, Verilog, Yosys/nextpnr), ``helu.sim`` (cocotb testbenches), and the
command line in ``helu.cli``.
"""

__version__ = "0.1.0"
