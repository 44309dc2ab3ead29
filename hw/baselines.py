"""Baseline activation units for the hardware comparison (ReLU comparator, LeakyReLU, i-GELU)."""

BASELINE_UNITS: dict = {}
