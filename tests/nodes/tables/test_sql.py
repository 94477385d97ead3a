"""table.sql: DuckDB over a node's recorded outputs, run after the stream pass."""

from pathlib import Path

import pytest

from nodes.errors import GraphError
from pipelines.run import run_spec

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"

SPEC = """
tickloom: 1
name: ema_summary
kind: research
nodes:
  bars: {{op: source.bars_csv, with: {{path: "{samples}/{{instrument}}.csv.gz", instruments: [AAPL, MSFT], timezone: America/New_York}}}}
  ema: {{op: indicator.ema, in: bars.close, with: {{window: 20}}}}
  summary:
    op: table.sql
    in: ema
    with: {{query: "select instrument, count(*) as n, count(*) filter (where isnan(out)) as warmup from input group by 1 order by 1"}}
"""


def test_sql_table_op_sees_every_recorded_row(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(samples=SAMPLES))
    output = run_spec(spec, out_dir=tmp_path / "run")
    summary = output.replay.tables["summary"]["out"]
    assert summary.rows() == [("AAPL", 754, 19), ("MSFT", 754, 19)]
    assert (tmp_path / "run" / "summary.parquet").exists()


def test_a_table_op_cannot_feed_a_stream_op(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(samples=SAMPLES) + "  again: {op: indicator.sma, in: summary, with: {window: 2}}\n")
    with pytest.raises(GraphError, match="table op node 'summary' cannot feed stream node 'again'"):
        run_spec(spec, write=False)
