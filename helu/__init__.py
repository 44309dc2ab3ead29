"""HeLU hardware toolkit: from a trained PyTorch model to verified, synthesized gates.

Subpackages: ``helu.golden`` (PyTorch model, training, fixed-point golden vectors),
``helu.hw`` (Amaranth units, Verilog, Yosys/nextpnr), ``helu.sim`` (cocotb testbenches),
``helu.common`` (output folders and parallel jobs, below all of them), and the command line in
``helu.cli``.
"""

from pathlib import Path as _Path

from helu.common import outdir as _outdir

__version__ = "0.1.0"


def _verilog_folder(names) -> bool:
    return bool(names) and all(_Path(n).suffix in (".v", ".json") for n in names)


# The folders the commands write (helu.common.outdir's kinds; golden and sim register their own).
# Registered here, where every import of the package passes, so that a step run without the
# command line (a test, the flow) finds its kind whatever it imported first.
for _kind, _names in {
    "train": ("metrics.json", "checkpoints"),
    "synth": ("results.json",),
    "prove": ("results.json",),
    "onchip": ("onchip.json",),
    "flow": ("report.md", "summary.json", "skipped.json"),
    "collapse": ("collapse.json", "cells"),
}.items():
    _outdir.register_kind(_kind, _names)
_outdir.register_kind("verilog", looks_like=_verilog_folder)
