"""Benchmark-only helpers (``scripts/benchmark.py`` and its tests).

Nothing in the library proper imports this package: it builds Model
Garden's reference model and random inputs for timing.
"""
