"""The FPGA implementations, one file per op: golden model, formats, structure, resources and RTL."""

from hardware.fpga.ops.book_imbalance import BookImbalanceFpga
from hardware.fpga.ops.crossover import CrossoverFpga
from hardware.fpga.ops.ema import EmaFpga
from hardware.fpga.ops.order_encoder import OrderEncodeFpga
from hardware.fpga.ops.risk_check import PreTradeRiskFpga
from hardware.fpga.ops.sma import SmaFpga
from hardware.fpga.ops.threshold import ThresholdFpga
from hardware.fpga.ops.top_of_book import TopOfBookFpga

IMPLEMENTATIONS = (
    EmaFpga(), SmaFpga(), CrossoverFpga(), ThresholdFpga(), TopOfBookFpga(), BookImbalanceFpga(),
    PreTradeRiskFpga(), OrderEncodeFpga(),
)
