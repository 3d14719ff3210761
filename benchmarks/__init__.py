"""Throughput and learning benchmarks; each module is `python -m benchmarks.<name>` and writes JSON."""
