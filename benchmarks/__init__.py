"""Throughput and learning benchmarks: `python -m benchmarks.<name>`, each writing JSON."""
