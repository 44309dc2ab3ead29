"""Amaranth HeLU units, Verilog generation and the synthesis flow (never imports torch)."""
