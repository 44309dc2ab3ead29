"""Baseline activation units for the hardware comparison: ReLU comparator, LeakyReLU, i-GELU.

Each follows the unit contract of ``hw.units`` (stream ports ``i`` with payload
``{"z": ArrayLayout(signed(width), lanes)}`` and ``o`` with ``{"y": ...}``, registered outputs,
one transfer per cycle, full backpressure, ``o.valid`` independent of ``o.ready``) and has its
integer golden model in ``golden.intbaselines``:

- :class:`ReluComparator`: ReLU as a naive design writes it, ``y = z if z > 0 else 0`` with a
  real ``z > 0`` comparator and ordinary (resettable) registers. Same function as the HeLU
  forward unit, different circuit: the point of comparison.
- :class:`LeakyRelu`: ``y = z if z > 0 else z >> shift`` (slope ``2**-shift``).
- :class:`IntGelu`: the I-BERT integer GELU, pipelined over ``latency`` stages.

``UNITS`` (also ``BASELINE_UNITS``) registers them for the toolkit under ``"relu-cmp"``,
``"leaky"`` and ``"igelu"``.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned

from helu.golden import fixed, intbaselines
from helu.golden.fixed import Format
from helu.hw.units.base import (
    ElementwiseUnit,
    Param,
    UnitInfo,
    UnitParams,
    check_width,
    pipeline,
    refusal,
    register_stage,
)

__all__ = ["ReluComparator", "LeakyRelu", "IntGelu", "BASELINE_UNITS", "UNITS"]

ORDER = 2


class ReluComparator(ElementwiseUnit):
    """ReLU written as a comparator: ``y = z if z > 0 else 0``, what a naive design does.

    Reference: ``golden.intbaselines.relu_cmp`` (the same function as the HeLU forward unit). The
    select is a full ``z > 0`` comparison, deliberately not reduced to the sign bit, and every
    register (payload included) resets on ``rst``, as an ordinary ``always @(posedge clk)`` block
    with a reset would.

    Parameters
    ----------
    width : int
        Bits of ``z`` and ``y``, sign included (2 to 32).
    lanes : int
        Elements per transfer (positive).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"z": ArrayLayout(signed(width), lanes)})))``
    o : ``Out(stream.Signature(StructLayout({"y": ArrayLayout(signed(width), lanes)})))``

    Timing: ``latency`` 1; one transfer per cycle; ``i.ready = ~o.valid | o.ready``; ``rst``
    clears ``o.valid`` and the output payload.
    """

    def elaborate(self, platform):
        m = Module()
        advance = pipeline(m, self.i, self.o, self.latency)
        with m.If(advance):
            for n in range(self.lanes):
                z = self.i.payload.z[n]
                m.d.sync += self.o.payload.y[n].eq(Mux(z > 0, z, 0))
        return m


class LeakyRelu(ElementwiseUnit):
    """LeakyReLU with a power-of-two slope: ``y = z if z > 0 else z >> shift``.

    Reference: ``golden.intbaselines.leaky`` (arithmetic shift: negative results round toward minus
    infinity). The sign bit selects (at ``z = 0`` both branches give 0) and the shift is wiring,
    so each output bit is a 2-input mux. Payload registers have no reset (only ``o.valid`` does).

    Parameters
    ----------
    width : int
        Bits of ``z`` and ``y``, sign included (2 to 32).
    lanes : int
        Elements per transfer (positive).
    shift : int
        Slope ``2**-shift`` for negative inputs (positive; 7 gives ~0.0078, near PyTorch's 0.01).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"z": ArrayLayout(signed(width), lanes)})))``
    o : ``Out(stream.Signature(StructLayout({"y": ArrayLayout(signed(width), lanes)})))``

    Timing: ``latency`` 1; one transfer per cycle; ``i.ready = ~o.valid | o.ready``; ``rst``
    clears ``o.valid`` only.
    """

    def __init__(self, width=8, lanes=1, *, shift=7):
        with refusal(self):
            self._shift = intbaselines.check_leaky_shift(shift)
        super().__init__(width, lanes)

    @property
    def shift(self) -> int:
        return self._shift

    def elaborate(self, platform):
        m = Module()
        payload = register_stage(m, self.i, self.o)
        with m.If(self.i.ready):
            for n in range(self.lanes):
                z = self.i.payload.z[n]
                m.d.sync += payload.y[n].eq(Mux(z[-1], z >> self._shift, z))
        return m


class IntGelu(ElementwiseUnit):
    """The I-BERT integer GELU (i-GELU), requantized to the input format, pipelined.

    Reference: ``golden.intbaselines.igelu`` with the constants of
    ``golden.intbaselines.igelu_constants`` for ``Format(width, frac)`` (input scale
    ``2**-frac``). Per lane and stage (each ends in a register, so no multiplier shares a stage
    with another adder chain):

    1. ``u = clip - min(|z|, clip)`` (``clip = -q_b``): two adders and a sign select;
    2. ``u**2``: the squarer of i-POLY;
    3. ``P = -(q_erf + q_1)``: ``pos_offset - u**2`` for ``z >= 0``, ``neg_offset + u**2``
       below (so ``-q_out = z * P`` and ``P >= 0``);
    4. ``z * P``: signed by unsigned multiplier;
    5. ``z * P * mult + 2**(shift - 1)``: the requantization by a constant, with its rounding;
    6. ``>> shift``, saturated to the format: the output register.

    Two variable multipliers (one a squarer) and one constant multiplier per lane; no DSP is
    needed (on iCE40 HX8K they are LUT logic). Register widths follow the exact ranges of the
    constants.

    Parameters
    ----------
    width : int
        Bits of ``z`` and ``y``, sign included (2 to 32; the format must keep the integer model
        within ``golden.intbaselines.MAX_PRODUCT_BITS``).
    lanes : int
        Elements per transfer (positive).
    frac : int
        Fractional bits of ``z`` and ``y``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"z": ArrayLayout(signed(width), lanes)})))``
    o : ``Out(stream.Signature(StructLayout({"y": ArrayLayout(signed(width), lanes)})))``

    Timing: ``latency`` cycles (6) from an accepted input to its output being valid; one transfer
    per cycle sustained; the whole pipeline stalls together when the output is held
    (``i.ready = ~o.valid | o.ready``); ``rst`` clears the valid bits only (in-flight transfers
    are dropped), the datapath registers have no reset.
    """

    _STAGES = 6

    def __init__(self, width=8, lanes=1, *, frac=4):
        with refusal(self):
            check_width(width)
            self._consts = intbaselines.igelu_constants(Format(width, frac))
        super().__init__(width, lanes)

    @property
    def frac(self) -> int:
        return self._consts.fmt.frac

    @property
    def constants(self) -> intbaselines.IGeluConstants:
        """The integer constants of this build (``golden.intbaselines.igelu_constants``)."""
        return self._consts

    @property
    def latency(self) -> int:
        return self._STAGES

    def elaborate(self, platform):
        m = Module()
        c = self._consts
        advance = pipeline(m, self.i, self.o, self.latency)
        u_shape = unsigned(c.clip.bit_length())
        sq_shape = unsigned((c.clip**2).bit_length())
        p_shape = unsigned(c.p_max.bit_length())
        prod_shape = signed(self.width + p_shape.width)
        acc_shape = signed(c.product_bits + 1)
        y = Signal(self.o.payload.y.shape(), reset_less=True)
        m.d.comb += self.o.payload.y.eq(y)
        fmt = c.fmt
        for n in range(self.lanes):

            def reg(shape, name, n=n):
                return Signal(shape, name=f"{name}_{n}", reset_less=True)

            z = self.i.payload.z[n]
            z1, z2, z3 = (reg(signed(self.width), f"z{k}") for k in (1, 2, 3))
            u, sq, p = reg(u_shape, "u"), reg(sq_shape, "sq"), reg(p_shape, "p")
            prod, acc = reg(prod_shape, "prod"), reg(acc_shape, "acc")
            # |z| < clip  <=>  clip - |z| > 0; both signs computed, the sign of z picks one.
            short = Mux(z[-1], c.clip + z, c.clip - z)
            shifted = acc >> c.shift
            with m.If(advance):
                m.d.sync += [
                    z1.eq(z),
                    u.eq(Mux(short[-1], 0, short)),
                    z2.eq(z1),
                    sq.eq(u * u),
                    z3.eq(z2),
                    p.eq(Mux(z2[-1], c.neg_offset + sq, c.pos_offset - sq)),
                    prod.eq(z3 * p),
                    # fixed.shift_round's constant folded into this stage's sum; the shift
                    # below completes the rule.
                    acc.eq(prod * Const(c.mult) + fixed.round_bias(c.shift)),
                    y[n].eq(
                        Mux(
                            shifted > fmt.max_code,
                            fmt.max_code,
                            Mux(shifted < fmt.min_code, fmt.min_code, shifted),
                        )
                    ),
                ]
        return m


def _ref_relu_cmp(params: UnitParams, inputs):
    return {"y": intbaselines.relu_cmp(inputs["z"])}


def _ref_leaky(params: UnitParams, inputs):
    return {"y": intbaselines.leaky(inputs["z"], params.leaky_shift)}


def _ref_igelu(params: UnitParams, inputs):
    return {"y": intbaselines.igelu(inputs["z"], Format(params.width, params.frac))}


LEAKY_SHIFT = Param(
    "leaky_shift",
    7,
    "LeakyReLU slope 2**-shift (7 gives ~0.0078, near PyTorch's 0.01)",
    "s",
    int,
    intbaselines.check_leaky_shift,
)

UNITS: dict[str, UnitInfo] = {
    "relu-cmp": UnitInfo(
        build=lambda p: ReluComparator(p.width, p.lanes),
        reference=_ref_relu_cmp,
        uses=("width", "lanes"),
        description="ReLU as a naive design writes it: z > 0 comparator, resettable registers",
        study="relu",
    ),
    "leaky": UnitInfo(
        build=lambda p: LeakyRelu(p.width, p.lanes, shift=p.leaky_shift),
        reference=_ref_leaky,
        uses=("width", "lanes"),
        params=(LEAKY_SHIFT,),
        description="LeakyReLU, slope 2**-leaky_shift: y = z if z > 0 else z >> leaky_shift",
        study="leaky",
    ),
    "igelu": UnitInfo(
        build=lambda p: IntGelu(p.width, p.lanes, frac=p.frac),
        reference=_ref_igelu,
        uses=("width", "lanes", "frac"),
        description=f"I-BERT integer GELU (i-GELU) in Q(width, frac), {IntGelu._STAGES} stages",
        study="gelu",
        # 16 lanes are ~8k LUT4 at 8 bits (~30k at 16), over the iCE40 HX8K, and take Yosys/ABC
        # many minutes; LUTs per lane, what the comparison plots, come from 1 lane.
        max_lanes=1,
        max_lanes_why="16 lanes exceed the iCE40 HX8K and take Yosys many minutes",
    ),
}
"""The baseline units, keyed by the names the CLI and the synthesis flow use."""

BASELINE_UNITS = UNITS
