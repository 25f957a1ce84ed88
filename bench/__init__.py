"""Benchmarks; each module writes its figures into BENCHMARKS.md."""
