"""Benchmarks: each compares Viva with a baseline measured in the same run and prints ratios.

`python -m bench --mode smoke` runs every benchmark on a small input in seconds (CI);
`--mode full` runs the sizes BENCHMARKS.md reports.
"""
