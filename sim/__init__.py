"""cocotb testbenches and runner glue (imports ``hw``; reads golden files, never torch)."""
