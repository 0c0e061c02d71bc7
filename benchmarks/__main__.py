"""`python -m benchmarks`: the cell-kernel benchmark of issue 6 (grid, scaling, memory, start-up) in one run.

Writes the "Cell kernels" sections of docs/benchmarks.md and, with matplotlib (`pip install -e '.[bench]'`), the
scaling plots docs/images/bench-scaling-h.svg and -t.svg; `--no-write` only prints. Progress goes to stderr. The TUI
benchmark is separate: `python -m benchmarks.bench_tui`.
"""

from benchmarks.bench_cells import main

main()
