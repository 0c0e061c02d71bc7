"""Sweeps: run a scenario over a grid of overrides and seeds, and tabulate the gradient regimes.

``load_sweep`` (rnnsim.sweep.spec) validates a sweep file and every grid point; ``rnnsim.sweep.table`` writes the
tidy, resumable table; ``rnnsim.sweep.backends`` runs the points in this process, a local process pool or on a
Dask cluster; ``rnnsim.sweep.plot`` draws the regime map; ``rnnsim.sweep.command`` is `rnnsim sweep`.
"""

from rnnsim.sweep.spec import MAX_RUNS, Run, Sweep, builtin_sweeps, is_sweep_file, load_sweep

__all__ = ["MAX_RUNS", "Run", "Sweep", "builtin_sweeps", "is_sweep_file", "load_sweep"]
