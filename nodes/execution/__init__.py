"""Execution: what turns a wanted side into an order on the wire — a book-driven signal, the pre-trade risk
check and the order encoder. Each runs on cpu and numba, and has an FPGA implementation in
``hardware/fpga/ops``."""
