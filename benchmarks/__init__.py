"""Side-by-side benchmarks of rnnsim (run with ``python -m benchmarks``; results go to docs/benchmarks.md)."""
