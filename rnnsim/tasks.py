"""Data generators: adding, copy, delayed_recall, random, sine; and the data tasks file, series, digits
(rnnsim/datasets.py), drawn through :func:`make_stream`.

Each generator draws one batch from a NumPy Generator and returns batch-major arrays
``inputs`` (B, T, D), ``targets`` (B, T, O) float or (B, T) int64 for classification, ``loss_mask`` (B, T) bool,
as in DESIGN.md §2. Input and output sizes come from :func:`rnnsim.scenario.task_dims`.
"""

from __future__ import annotations

import math

import numpy as np

from rnnsim.scenario import task_dims


def adding(task, rng, B):
    """Adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015).

    Input channel 0 holds values from U(0, 1); channel 1 marks two positions, one in the first half of the sequence
    and one in the second. The target, at the last step only, is the sum of the two marked values.
    """
    T = task.length
    x = np.zeros((B, T, 2))
    x[:, :, 0] = rng.uniform(0.0, 1.0, size=(B, T))
    half = max(T // 2, 1)
    first = rng.integers(0, half, size=B)
    second = rng.integers(half, T, size=B)
    rows = np.arange(B)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = np.zeros((B, T, 1))
    y[:, -1, 0] = x[rows, first, 0] + x[rows, second, 0]
    mask = np.zeros((B, T), dtype=bool)
    mask[:, -1] = True
    return x, y, mask


def copy(task, rng, B):
    """Copy task (Arjovsky et al. 2016), one-hot coded.

    Symbols: 0 blank, 1..K data, K+1 delimiter. The first S steps show S data symbols, then L−1 blanks, the
    delimiter, and S blanks during which the network must reproduce the S symbols in order (lag L = T − 2S).
    Targets are classes 0..K (blank or a symbol) at every step; every step enters the loss.
    """
    T, S, K = task.length, task.symbols, task.alphabet
    seq = rng.integers(1, K + 1, size=(B, S))
    codes = np.zeros((B, T), dtype=np.int64)
    codes[:, :S] = seq
    codes[:, T - S - 1] = K + 1
    x = np.zeros((B, T, K + 2))
    np.put_along_axis(x, codes[:, :, None], 1.0, axis=2)
    y = np.zeros((B, T), dtype=np.int64)
    y[:, T - S:] = seq
    mask = np.ones((B, T), dtype=bool)
    return x, y, mask


def delayed_recall(task, rng, B):
    """Delayed recall (Jaeger 2001): input u_t ~ U(−0.5, 0.5); target y_t = u_{t−delay} for t ≥ delay."""
    T, k = task.length, task.delay
    u = rng.uniform(-0.5, 0.5, size=(B, T, 1))
    y = np.zeros((B, T, 1))
    y[:, k:, :] = u[:, : T - k, :]
    mask = np.zeros((B, T), dtype=bool)
    mask[:, k:] = True
    return u, y, mask


def random(task, rng, B):
    """Pure dynamics: inputs ~ N(0, 1) with ``input_size`` channels, a N(0, 1) target at the last step only."""
    T = task.length
    x = rng.standard_normal((B, T, task.input_size))
    y = np.zeros((B, T, 1))
    y[:, -1, 0] = rng.standard_normal(B)
    mask = np.zeros((B, T), dtype=bool)
    mask[:, -1] = True
    return x, y, mask


def sine(task, rng, B):
    """Next-value prediction on sine waves: x_t = sin(2πt/P + φ), φ ~ U(0, 2π); target x_{t+1} at every step."""
    T = task.length
    phase = rng.uniform(0.0, 2.0 * math.pi, size=(B, 1))
    t = np.arange(T + 1)[None, :]
    s = np.sin(2.0 * math.pi * t / task.period + phase)
    x = s[:, :T, None]
    y = s[:, 1:, None].copy()
    mask = np.ones((B, T), dtype=bool)
    return x, y, mask


GENERATORS = {"adding": adding, "copy": copy, "delayed_recall": delayed_recall, "random": random, "sine": sine}


def make_batch(task, rng, dtype=np.float64, batch_size=None):
    """One batch of ``task`` drawn from ``rng``: (inputs, targets, loss_mask), batch-major."""
    B = task.batch_size if batch_size is None else batch_size
    x, y, mask = GENERATORS[task.kind](task, rng, B)
    _, _, classification = task_dims(task)
    return x.astype(dtype), (y if classification else y.astype(dtype)), mask


def make_stream(task, rng, dtype=np.float64):
    """A callable that returns the next batch (inputs, targets, loss_mask): generated tasks draw from ``rng``; data
    tasks (file, series, digits) draw sequences without replacement within an epoch (rnnsim.datasets)."""
    if task.kind in GENERATORS:
        return lambda: make_batch(task, rng, dtype)
    from rnnsim import datasets

    return datasets.make_stream(task, rng, dtype)


def baseline(task) -> float:
    """The loss of the best input-blind answer: the bar a model must beat to show it uses its memory.

    adding          always answer 1.0 (the mean of the sum): MSE = Var(U(0,1) + U(0,1)) = 1/6
    copy            blank until the recall phase, then uniform over K: cross entropy S·log K / (L + 2S)
    delayed_recall  answer 0: MSE = Var(U(−0.5, 0.5)) = 1/12
    random          answer 0: MSE = Var(N(0, 1)) = 1
    sine            answer 0: MSE = mean of sin² = 1/2
    file, series    the training targets' mean: MSE = their variance; classes: the class frequencies, cross
    digits          entropy = their entropy (measured on the training sequences)
    """
    if task.kind not in GENERATORS:
        from rnnsim import datasets

        return datasets.load(task).baseline
    if task.kind == "adding":
        return 1.0 / 6.0
    if task.kind == "copy":
        return task.symbols * math.log(task.alphabet) / task.length
    return {"delayed_recall": 1.0 / 12.0, "random": 1.0, "sine": 0.5}[task.kind]
