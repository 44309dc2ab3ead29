"""The synthesis targets: what each runs, how its cells count, how big its device is."""

from helu.hw.tools import ToolError

__all__ = [
    "DoesNotFit",
    "TARGETS",
    "ROLES",
    "UNIT_TARGETS",
    "ENGINE_TARGETS",
    "COMPARISON_TARGETS",
    "target_names",
    "DEFAULT_FRAC",
    "YOSYS_TIMEOUT",
    "NEXTPNR_TIMEOUT",
    "tools_for",
    "over_capacity",
]


class DoesNotFit(ToolError):
    """nextpnr could not place the design: it needs more cells or pins than the device has."""


YOSYS_TIMEOUT = 900.0
NEXTPNR_TIMEOUT = 900.0

# Cell-type classes per target: prefix match on the Yosys cell type.
TARGETS = {
    "ice40": {
        "yosys_cmd": (
            "synth_ice40 -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "capacity": {"lut": 7680, "ff": 7680},  # logic cells, each one LUT4 + one FF
        "pnr": "nextpnr-ice40",
        "pnr_args": ["--hx8k", "--package", "ct256"],
        "pnr_freq": 200,
        "device": "iCE40 HX8K ct256",
        "classes": {
            "lut": ("SB_LUT4",),
            "ff": ("SB_DFF",),
            "carry": ("SB_CARRY",),
            "ram": ("SB_RAM40_4K",),
            "dsp": ("SB_MAC16",),
        },
    },
    "ecp5": {
        "yosys_cmd": (
            "synth_ecp5 -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "capacity": {"lut": 24288, "ff": 24288},
        "pnr": "nextpnr-ecp5",
        "pnr_args": ["--25k", "--package", "CABGA381"],
        "pnr_freq": 300,
        "device": "ECP5 LFE5U-25F CABGA381",
        # The training engine registers its memories' read data here (Trainer.read_register):
        # Yosys 0.23 maps block RAM to DP16KD without its output register, 5.8 ns from clock
        # to data, which made the RAM-to-shadow path the critical one.
        "read_register": True,
        "classes": {
            "lut": ("LUT4",),
            "ff": ("TRELLIS_FF",),
            "carry": ("CCU2C",),
            "ram": ("DP16KD", "TRELLIS_DPR16X4"),
            "dsp": ("MULT18X18D", "ALU54B"),
            "mux": ("PFUMX", "L6MUX21"),
        },
    },
    "generic": {
        "yosys_cmd": (
            "synth -flatten -noabc -top {top}; abc -fast -g AND,NAND,OR,NOR,XOR,XNOR,MUX; "
            "opt_clean -purge"
        ),
        "pnr": None,
        # abc -fast: the full ABC script took minutes on one 16-bit i-GELU lane (and would take
        # far longer on 16 lanes) for about 25 % fewer gates.
        "device": "Yosys internal gates (abc -fast -g AND,NAND,OR,NOR,XOR,XNOR,MUX)",
        "classes": {
            "ff": ("$_DFF", "$_SDFF", "$_DFFE", "$_SDFFE", "$_SDFFCE", "$_ALDFF", "$_DLATCH"),
            "gates": (
                "$_AND_",
                "$_NAND_",
                "$_OR_",
                "$_NOR_",
                "$_XOR_",
                "$_XNOR_",
                "$_MUX_",
                "$_NOT_",
                "$_ANDNOT_",
                "$_ORNOT_",
                "$_BUF_",
            ),
        },
    },
    "up5k": {
        # The iCE40 UltraPlus 5K (MARLANN's device): 5280 logic cells, 30 RAM40 4K blocks,
        # 4 SPRAM 256K blocks, 8 SB_MAC16 DSPs; -dsp maps multipliers onto the DSPs.
        "yosys_cmd": (
            "synth_ice40 -dsp -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "capacity": {"lut": 5280, "ff": 5280, "dsp": 8, "ram": 30},
        # The network engines instantiate their multipliers as this DSP cell (hw.net.mac), and
        # such a design is synthesised without -dsp: Yosys 0.23's ice40_dsp pass takes every
        # SB_MAC16 for one it inferred and rewrites its parameters as a 16x16 multiply (the
        # gate-level simulation of the netlist caught it: tests/test_gates.py).
        "dsp_cell": "sb_mac16",
        "yosys_cmd_cells": (
            "synth_ice40 -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "pnr": "nextpnr-ice40",
        "pnr_args": ["--up5k", "--package", "sg48"],
        "pnr_freq": 100,
        "device": "iCE40 UP5K sg48",
        "classes": {
            "lut": ("SB_LUT4",),
            "ff": ("SB_DFF",),
            "carry": ("SB_CARRY",),
            "ram": ("SB_RAM40_4K",),  # the SPRAMs are never inferred, only instantiated
            "dsp": ("SB_MAC16",),
        },
    },
}
"""What each target runs and how its cell types count (``lut``, ``ff``, ``carry``, ``ram``,
``dsp``; ``gates`` on ``generic``), and the device's LUT4/FF capacity. The ``synth_*`` scripts stop
before their ``check`` step and repeat it without ``autoname``: Yosys 0.23's ``autoname`` only
renames cells, and on a 30 000-LUT design it ran for minutes."""

UNIT_TARGETS = tuple(TARGETS)
"""Every target takes the activation units (``helu synth --unit``, the flow's synthesis step)."""

ENGINE_TARGETS = ("up5k", "ecp5")
"""The targets the network engines (``hw.net``: ``--unit net``, ``--unit trainer``, the flow's
engine steps) are built and costed for: devices with the block RAMs their memories need
(``generic`` has none; the HX8K ``ice40`` is not a device they are costed on)."""

COMPARISON_TARGETS = ("ice40", "ecp5", "generic")
"""The targets of ``helu synth``'s default unit comparison (``--target all`` adds ``up5k``)."""

ROLES = {"units": UNIT_TARGETS, "engines": ENGINE_TARGETS}
"""What each kind of design may be synthesised for: the one list every command reads."""

assert set(ENGINE_TARGETS) <= set(TARGETS) and set(COMPARISON_TARGETS) <= set(TARGETS)


def target_names(role: str = "units") -> tuple[str, ...]:
    """The targets for ``role`` (a key of :data:`ROLES`), in the order commands list them."""
    if role not in ROLES:
        raise ValueError(f"Unknown target role {role!r}; choose from {', '.join(ROLES)}")
    return ROLES[role]


DEFAULT_FRAC = {8: 5, 16: 8}
"""Fractional bits used by :func:`sweep_params` per width (else ``width // 2``), chosen so that
alpha = 0.05 keeps some negative codes (``T`` = -2 at width 8, -13 at width 16)."""


def tools_for(target: str) -> list[str]:
    """Tool names a target needs (keys of ``hw.tools.TOOLS``)."""
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}; choose from {', '.join(TARGETS)}")
    pnr = TARGETS[target]["pnr"]
    return ["yosys"] + ([pnr] if pnr else [])


def over_capacity(counts: dict, target: str) -> list[str]:
    """What in ``counts`` (cells by class) exceeds the target device, as ``"8123 LUT > 7680"``
    strings; empty when it fits or the target has no capacity (``generic``)."""
    capacity = TARGETS[target].get("capacity", {})
    return [f"{counts[k]} {k.upper()} > {n}" for k, n in capacity.items() if counts.get(k, 0) > n]
