"""Bulk engines that run compiled policy plans: DuckDB (embedded default), Spark (scale-out, later)."""
