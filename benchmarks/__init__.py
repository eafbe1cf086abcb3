"""Benchmarks run by hand (`make bench-customers`); their figures go into README.md."""
