"""The memory estimate of a scenario by cause, and the one-line refusal that names the cause (issue 15 item 5).

``estimate_parts(sc)`` asks the cell (rnnsim/cells/base.py ``estimate_parts``: hidden buffers, T² attention
terms, inputs, outputs, weights) and adds the data a file/series/digits task holds. The sum is an upper bound of
the peak RSS growth of a Simulation's pass (benchmarks/memory_bound.py measures it; tests/unit/test_memory_bound.py
checks it). ``refusal(sc, parts, limit)`` is the message when it is above the limit: it names the largest part
with the keys that set it, so a student sees "T² for attention" or "the alphabet", not always H, T and B.
"""

from __future__ import annotations


def estimate_parts(sc) -> dict[str, int]:
    from rnnsim.cells import CELLS
    from rnnsim.cells.base import estimate_parts as cell_parts
    from rnnsim.schema import task_dims

    d, o, _ = task_dims(sc.task)
    itemsize = 8 if sc.model.dtype == "float64" else 4
    parts = cell_parts(CELLS[sc.model.cell], sc.model, sc.task.length, sc.task.batch_size, d, o, itemsize)
    data = sc.task._data
    parts["data"] = data.nbytes if data is not None else 0
    return parts


def human_bytes(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def refusal(sc, parts: dict[str, int], limit: int) -> str:
    """One line: the cause (the largest part, with its keys and values), the estimate, the limit, what to do."""
    from rnnsim.schema import task_dims

    m, task = sc.model, sc.task
    H, T, B = m.hidden_size, task.length, task.batch_size
    D, O, _ = task_dims(task)
    need = sum(parts.values())
    cause = max(parts, key=parts.get)
    share = f"{human_bytes(parts[cause])} of it"
    hbt = f"model.hidden_size = {H}, task.length = {T}, task.batch_size = {B}"
    if cause == "attention":
        who = "the attention cell" if m.cell == "attention" else "the attention readout"
        head = (f"task.length = {T}, task.batch_size = {B}: {who} keeps T×T = {T * T:,} weights per sequence "
                f"(grows with T²)")
        fix = "reduce task.length (memory grows with its square) or task.batch_size"
    elif cause in ("inputs", "outputs") and task.kind == "copy":
        head = (f"task.alphabet = {task.alphabet}, task.length = {T}, task.batch_size = {B}: the copy task's "
                f"one-hot inputs and outputs have {D} and {O} values per step (the alphabet + 2 and + 1)")
        fix = "reduce task.alphabet, task.length or task.batch_size"
    elif cause == "inputs":
        key = "task.input_size" if task.kind == "random" else "the data's input size"
        head = f"{key} = {D}, task.length = {T}, task.batch_size = {B}: {D} input values per step"
        fix = f"reduce {'task.input_size' if task.kind == 'random' else 'the inputs'}, task.length or task.batch_size"
    elif cause == "outputs":
        head = f"task.length = {T}, task.batch_size = {B}: {O} output values per step (the data's targets)"
        fix = "reduce task.length or task.batch_size"
    elif cause == "weights":
        head = f"model.hidden_size = {H}: the weights (with their gradients and optimiser state)"
        fix = "reduce model.hidden_size"
    elif cause == "data":
        head = f"task.path = {task.path}: the data set held in memory"
        fix = "use a smaller data file"
    else:
        head, fix, share = hbt, "reduce them", ""
    detail = f"estimate, {share}" if share else "estimate"
    return (f"{head}: needs about {human_bytes(need)} ({detail}), above the limit of {human_bytes(limit)}; "
            f"{fix} or raise RNNSIM_MAX_BYTES")
