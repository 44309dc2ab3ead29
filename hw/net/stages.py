"""Pipeline pieces the network engines share (``hw.net.mlp`` and ``hw.net.trainer``)."""

from amaranth.hdl import Signal, signed

__all__ = ["delayed", "logit_argmax", "conv_issue_step"]


def delayed(m, signals, cycles: int) -> tuple:
    """``signals`` ``cycles`` clock cycles later, through reset-less registers.

    What travels beside a unit's pipeline (a write's address, say) so it arrives with the unit's
    output; the unit always advances, so the registers need no enable.
    """
    signals = tuple(signals)
    for n in range(cycles):
        regs = tuple(Signal.like(s, name=f"{s.name}_d{n}", reset_less=True) for s in signals)
        m.d.sync += [r.eq(s) for r, s in zip(regs, signals, strict=True)]
        signals = regs
    return signals


def logit_argmax(m, payload, q, idx, width: int) -> None:
    """Store logit ``q`` of class ``idx`` in ``payload.logits``; keep the running argmax in
    ``payload.cls``: the first index of the largest logit (a later one wins only when greater),
    as ``golden.intmodel.argmax``. Call under the condition that a last-layer code is valid."""
    best = Signal(signed(width), name="best", reset_less=True)
    for k in range(len(payload.logits)):
        with m.If(idx == k):
            m.d.sync += payload.logits[k].eq(q)
    with m.If((idx == 0) | (q > best)):
        m.d.sync += [best.eq(q), payload.cls.eq(idx)]


def conv_issue_step(m, loop, per_conv, lanes: int, w_addr, wait, drain: int, then: str) -> None:
    """One issue cycle of a convolution's forward loop nest, shared by both engines.

    ``loop`` holds the counters (``oy, ox, g, j, ky, kx, c, cw, cl``), the group's first bias
    word ``gbias``, the output word ``oword`` and ``conv_real`` (this cycle multiplies: ``j`` below
    the layer's fan-in); ``per_conv(make)`` selects ``make(plan)`` of the current conv layer. On
    a real cycle the weight address and (c, kx, ky) advance; after ``group_cycles`` cycles the
    group, then the position, then the layer; at the layer's end ``wait = drain - 1`` and the
    FSM goes to ``then``. Call inside the engine's CONV state.
    """
    from amaranth.hdl import Const

    lp = loop
    in_c = per_conv(lambda p: Const(p.op.in_shape[2] - 1))
    k_last = per_conv(lambda p: Const(p.op.kernel - 1))
    with m.If(lp.conv_real):
        m.d.sync += [w_addr.eq(w_addr + 1), lp.c.eq(lp.c + 1), lp.cl.eq(lp.cl + 1)]
        with m.If(lp.cl == lanes - 1):
            m.d.sync += [lp.cl.eq(0), lp.cw.eq(lp.cw + 1)]
        with m.If(lp.c == in_c):
            m.d.sync += [lp.c.eq(0), lp.cl.eq(0), lp.cw.eq(0), lp.kx.eq(lp.kx + 1)]
            with m.If(lp.kx == k_last):
                m.d.sync += [lp.kx.eq(0), lp.ky.eq(lp.ky + 1)]
                with m.If(lp.ky == k_last):
                    m.d.sync += lp.ky.eq(0)
    m.d.sync += lp.j.eq(lp.j + 1)
    with m.If(lp.j == per_conv(lambda p: Const(p.group_cycles - 1))):
        # The group is issued: the next group, position or layer.
        m.d.sync += [lp.j.eq(0), lp.g.eq(lp.g + 1), lp.oword.eq(lp.oword + 1),
                     lp.gbias.eq(lp.gbias + lanes)]  # fmt: skip
        with m.If(lp.g == per_conv(lambda p: Const(p.groups - 1))):
            m.d.sync += [
                lp.g.eq(0),
                lp.gbias.eq(per_conv(lambda p: Const(p.bbase, len(lp.gbias)))),
                w_addr.eq(per_conv(lambda p: Const(p.wbase, len(w_addr)))),
                lp.ox.eq(lp.ox + 1),
            ]
            with m.If(lp.ox == per_conv(lambda p: Const(p.op.out_shape[1] - 1))):
                m.d.sync += [lp.ox.eq(0), lp.oy.eq(lp.oy + 1)]
                with m.If(lp.oy == per_conv(lambda p: Const(p.op.out_shape[0] - 1))):
                    m.d.sync += [lp.oy.eq(0), wait.eq(drain - 1)]
                    m.next = then
