"""Benchmarks: each writes bench/results/NAME.json (commit, machine, metrics with ratios)."""
