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
    hbt = f"model.hidden_size = {H}, task.length = {T}, task.batch_size = {B}"
    if cause == "attention":
        who = "cell" if m.cell == "attention" else "readout"
        head, fix = f"task.length = {T}: attention weights grow with T² (attention {who})", \
            "reduce task.length or task.batch_size,"
    elif cause in ("inputs", "outputs") and task.kind == "copy":
        head = f"task.alphabet = {task.alphabet}: {D} one-hot inputs and {O} outputs per step"
        fix = "reduce task.alphabet (or T, B),"
    elif cause == "inputs":
        key = "task.input_size" if task.kind == "random" else "the data's input size"
        head, fix = f"{key} = {D} inputs per step", f"reduce {key if task.kind == 'random' else 'them'} (or T, B),"
    elif cause == "outputs":
        head, fix = f"the data's {O} outputs per step", "reduce task.length or task.batch_size,"
    elif cause == "weights":
        head, fix = f"model.hidden_size = {H}: the weights", "reduce model.hidden_size"
    elif cause == "data":
        head, fix = f"task.path = {task.path}: the data held in memory", "use a smaller data file"
    else:
        head, fix = hbt, "reduce them"
    return (f"{head}: needs about {human_bytes(need)} (estimate), above the limit of {human_bytes(limit)}; "
            f"{fix} or raise RNNSIM_MAX_BYTES")
