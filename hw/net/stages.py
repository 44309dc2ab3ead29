"""Pipeline pieces the network engines share (``hw.net.mlp`` and ``hw.net.trainer``)."""

from amaranth.hdl import Signal, signed

__all__ = ["delayed", "logit_argmax"]


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
