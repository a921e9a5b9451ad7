"""Fitting DP models on tables larger than memory: every read of the private table is a count query
(`counts.Counts`), answered by pandas (`FrameCounts`), DuckDB (`duckdb_counts.DuckDBCounts`) or Spark, from
SQL built once for all engines (`sql`)."""
