"""bones2peaches ingest: FreeWheel v4 log files to a partitioned Parquet lake."""

__version__ = "0.1.0"
