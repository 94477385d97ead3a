"""Table ops: batch computations over whole recorded tables (polars, DuckDB)."""
