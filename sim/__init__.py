"""cocotb testbenches and runner glue (imports ``hw``; reads golden files, never torch)."""

# The environment variable naming a bench's job file (``runner.run_bench`` sets it). Here, in the
# package root, so a bench imports it without the unit benches' Amaranth-side stimulus code.
JOB_ENV = "HELU_SIM_JOB"
