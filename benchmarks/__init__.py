"""Benchmarks: load generators and side-by-side comparisons; results are written to docs/."""
