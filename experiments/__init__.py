"""Command-line entry points: `python -m experiments.train` and `python -m experiments.sweep`."""
