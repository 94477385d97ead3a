"""tickloom pipelines: specs → validated graphs → compiled plans → batch runs (and Dagster definitions)."""
