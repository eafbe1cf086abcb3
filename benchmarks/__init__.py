"""Benchmarks run by hand (`make bench-customers`, …); their figures go into docs/benchmarks.md."""
