"""tickloom hardware: targets (cpu, numba, fpga), how each runs a node, cost models and placement."""
