"""Benchmarks that compare pgwarden with the exporter it replaces, in the same run (`make bench`)."""
