"""Sweep files: the [sweep] table, its grid, and the validation of every grid point before anything runs.

A sweep file (DESIGN.md §4, README "Sweeps")::

    [sweep]
    scenario = "vanishing"     # a built-in name or a path (relative to this file)
    iterations = 0             # training iterations per run; 0 = one forward and backward pass
    seeds = [0, 1]             # optional: one run per seed at every grid point

    [sweep.grid]               # dotted scenario keys, each a list of values; the runs are their product
    "model.recurrent_scale" = [0.5, 1.0, 1.5]
    "task.length" = [25, 50, 100]

Every grid point is validated with the scenario loader itself (``rnnsim.scenario``: the same schema, the same
one-line messages with did-you-mean, the same per-run memory bound), so a sweep accepts exactly the values
`rnnsim run --set KEY=VALUE` accepts. Like ``rnnsim.scenario``, this module imports neither Numba nor Textual.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rnnsim import scenario as _sc
from rnnsim.scenario import Scenario, ScenarioError

__all__ = ["Sweep", "Run", "SweepSection", "load_sweep", "make_sweep", "builtin_sweeps", "is_sweep_file", "MAX_RUNS", "MAX_VALUES"]

MAX_RUNS = 100_000
"""At most this many runs (grid points × seeds) in one sweep."""
MAX_VALUES = 10_000
"""At most this many values per grid key (and seeds)."""
MAX_PROBLEMS = 50
"""Validation stops collecting after this many distinct problems."""


class SweepSection(BaseModel):
    """[sweep]: which scenario to run, how long, with which seeds, over which grid."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field("", max_length=200, description="Title shown by `rnnsim list` and the plot.")
    description: str = Field("", max_length=2000, description="What the sweep maps; shown by `rnnsim list`.")
    scenario: str = Field(
        "vanishing", min_length=1, max_length=4096, description="A built-in scenario name or a path relative to this file."
    )
    iterations: int | None = Field(
        None, ge=0, le=10_000_000,
        description="Training iterations per run; 0 = one forward and backward pass; omit for the scenario's.",
    )
    seeds: list[Annotated[int, Field(ge=0, lt=2**32)]] | None = Field(
        None, min_length=1, max_length=MAX_VALUES, description="One run per seed at every grid point (default: the scenario's seed)."
    )
    grid: dict[str, Any] = Field(
        {}, description="Dotted scenario keys, each an array of values; the runs are their product."
    )


class _SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sweep: SweepSection


_TABLES = {"sweep": SweepSection}


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its grid values (in the order of ``Sweep.keys``) and its seed."""

    index: int
    values: tuple[Any, ...]
    seed: int


@dataclass(frozen=True)
class Sweep:
    """A validated sweep. ``runs()`` lists every run; ``scenario(run)`` builds its validated Scenario."""

    source: str
    name: str
    description: str
    base: Scenario
    iterations: int | None
    seeds: tuple[int, ...]
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    fingerprint: str = field(default="")

    @property
    def n_runs(self) -> int:
        return math.prod(len(v) for v in self.values) * len(self.seeds)

    def runs(self) -> Iterator[Run]:
        """Every run, grid point by grid point (the last key fastest), each point once per seed."""
        index = 0
        for point in itertools.product(*self.values):
            for seed in self.seeds:
                yield Run(index, tuple(point), seed)
                index += 1

    def run_at(self, index: int) -> Run:
        """The run with this index (as ``runs()`` numbers them: the seeds fastest, then the last key)."""
        if not 0 <= index < self.n_runs:
            raise IndexError(f"run {index} of a sweep of {self.n_runs} runs")
        rest, picks = index, []
        for values in (*self.values, self.seeds)[::-1]:
            rest, pos = divmod(rest, len(values))
            picks.append(values[pos])
        *point, seed = picks[::-1]
        return Run(index, tuple(point), seed)

    def changes(self, run: Run) -> dict[str, Any]:
        """The overrides of one run: `rnnsim run SCENARIO --set KEY=VALUE ...` with these gives the same row."""
        changes = dict(zip(self.keys, run.values))
        changes["scenario.seed"] = run.seed
        return changes

    def scenario(self, run: Run) -> Scenario:
        return self.base.with_changes(self.changes(run))

    def iterations_for(self, sc: Scenario) -> int:
        return sc.training.iterations if self.iterations is None else self.iterations

    def describe(self) -> dict[str, Any]:
        """What determines every row (the fingerprint is its hash)."""
        return {
            "scenario": self.base.to_dict(),
            "iterations": self.iterations,
            "seeds": list(self.seeds),
            "grid": {k: list(v) for k, v in zip(self.keys, self.values)},
        }


# -------------------------------------------------------------------------------------------------------- files


def _builtin_sweep_dir() -> Path | None:
    root = _sc._builtin_dir()
    if root is None or not (root / "sweeps").is_dir():
        return None
    return root / "sweeps"


def builtin_sweeps() -> dict[str, Path]:
    """Built-in sweep names -> file paths (``scenarios/sweeps/*.toml``), sorted by name."""
    directory = _builtin_sweep_dir()
    if directory is None:
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.toml"), key=lambda p: p.stem) if p.is_file()}


def is_sweep_file(path_or_name: str | os.PathLike[str]) -> bool:
    """Whether this names a built-in sweep or a readable TOML file with a top-level [sweep] table."""
    text = os.fspath(path_or_name)
    if _sc._looks_like_name(text) and not os.path.exists(text):
        return text in builtin_sweeps()
    try:
        return isinstance(_sc._read_toml(Path(text), text).get("sweep"), dict)
    except ScenarioError:
        return False


def load_sweep(path_or_name: str | os.PathLike[str]) -> Sweep:
    """Load a sweep file (a path or a built-in sweep name) and validate every grid point; raises ScenarioError."""
    text = os.fspath(path_or_name)
    builtins = builtin_sweeps()
    if _sc._looks_like_name(text) and not os.path.exists(text):
        if text not in builtins:
            raise ScenarioError(
                f"{text}: no such file or built-in sweep{_sc._did_you_mean(text, list(builtins))} "
                f"(built-in sweeps: {', '.join(builtins) or '(none found)'})",
                source=text,
            )
        path, source = builtins[text], text
    else:
        path, source = Path(text), text
    data = _sc._read_toml(path, source)
    if "sweep" not in data:
        raise ScenarioError(
            f"{source}: no [sweep] table; a sweep file has [sweep] with scenario, iterations, seeds and "
            "[sweep.grid] (see the README, Sweeps); a scenario file goes to `rnnsim run`",
            source=source,
        )
    try:
        section = _SweepFile.model_validate(data).sweep
    except ValidationError as exc:
        problems = [f"{source}: {_sc._describe_error(err, data, _TABLES)}" for err in exc.errors(include_url=False)]
        raise ScenarioError(problems, source=source, hint_path=str(path)) from None
    return _build(section, path, source)


def _base_scenario(section: SweepSection, path: Path, source: str) -> Scenario:
    name = section.scenario
    relative = path.parent / name
    target: str = str(relative) if (not _sc._looks_like_name(name) or relative.exists()) else name
    try:
        return _sc.load_scenario(target)
    except ScenarioError as exc:
        raise ScenarioError([f"{source}: sweep.scenario = {name!r}: {p}" for p in exc.problems], source=source) from None


_SCALARS = (str, int, float, bool)


def _check_grid(section: SweepSection, source: str) -> list[str]:
    grid = section.grid
    if not grid:
        return [
            f"{source}: sweep.grid: missing or empty; allowed: a table [sweep.grid] of dotted scenario keys, each an "
            'array of values, e.g. "model.recurrent_scale" = [0.5, 1.0, 1.5]'
        ]
    problems = []
    for key, values in grid.items():
        where = f"{source}: sweep.grid.{key}"
        if not isinstance(values, list) or not values:
            problems.append(f"{where} = {_sc._show(values)}: allowed: a non-empty array of values, e.g. [0.5, 1.0]")
        elif len(values) > MAX_VALUES:
            problems.append(f"{where}: {len(values)} values; allowed: at most {MAX_VALUES}")
        elif not all(isinstance(v, _SCALARS) for v in values):
            bad = next(v for v in values if not isinstance(v, _SCALARS))
            problems.append(f"{where}: a value is {_sc._show(bad)}; allowed: numbers, strings or booleans")
        elif len({json.dumps(v) for v in values}) != len(values):
            problems.append(f"{where}: a value appears twice; allowed: distinct values")
        if key == "scenario.seed":
            problems.append(f"{where}: the seed is not a grid key; allowed: sweep.seeds = [0, 1, ...]")
        if key == "training.iterations" and section.iterations is not None:
            problems.append(
                f"{where}: sweep.iterations = {section.iterations} already sets the iterations of every run; "
                "allowed: one of the two"
            )
    return problems


def _build(section: SweepSection, path: Path, source: str) -> Sweep:
    base = _base_scenario(section, path, source)
    problems = _check_grid(section, source)
    if problems:
        raise ScenarioError(problems, source=source, hint_path=str(path))
    seeds = tuple(section.seeds) if section.seeds is not None else (base.scenario.seed,)
    return make_sweep(base, section.grid, section.iterations, seeds, source, name=section.name,
                      description=section.description, hint=str(path))


def make_sweep(
    base: Scenario, grid: dict[str, list[Any]], iterations: int | None, seeds: tuple[int, ...], source: str,
    name: str = "", description: str = "", hint: str | None = None,
) -> Sweep:
    """A validated Sweep of ``base`` over ``grid`` (what a sweep file gives, built in memory: the TUI's view 8);
    every grid point is validated as in a file. Raises ScenarioError."""
    keys = tuple(grid)
    values = tuple(tuple(grid[k]) for k in keys)
    if len(set(seeds)) != len(seeds):
        raise ScenarioError(f"{source}: sweep.seeds: a seed appears twice; allowed: distinct seeds", source=source)
    n_runs = math.prod(len(v) for v in values) * len(seeds)
    if n_runs > MAX_RUNS:
        sizes = " x ".join(str(len(v)) for v in values) + (f" x {len(seeds)} seeds" if len(seeds) > 1 else "")
        raise ScenarioError(
            f"{source}: sweep.grid: {sizes} = {n_runs} runs; allowed: at most {MAX_RUNS} runs in one sweep",
            source=source,
        )
    _validate_points(base, keys, values, source, hint or source)
    sweep = Sweep(
        source=source,
        name=name or f"sweep of {base.scenario.name}",
        description=description,
        base=base,
        iterations=iterations,
        seeds=tuple(seeds),
        keys=keys,
        values=values,
    )
    return _fingerprinted(sweep)


def _fingerprinted(sweep: Sweep) -> Sweep:
    digest = hashlib.sha256(json.dumps(sweep.describe(), sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return dataclasses.replace(sweep, fingerprint=digest)


def sweep_from_record(info: Any, source: str) -> Sweep:
    """The Sweep a table's ``OUT.sweep.json`` records (what `rnnsim sweep --show` draws); raises ScenarioError."""
    try:
        grid = info["grid"]
        sweep = Sweep(
            source=str(info.get("sweep", source)),
            name=str(info.get("name") or f"sweep {info.get('sweep', source)}"),
            description="",
            base=Scenario.from_dict(info["scenario"], source=f"{source}.sweep.json"),
            iterations=info["iterations"],
            seeds=tuple(int(s) for s in info["seeds"]),
            keys=tuple(grid),
            values=tuple(tuple(v) for v in grid.values()),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(f"{source}.sweep.json: not a sweep record ({type(exc).__name__}: {exc})", source=source) from None
    return _fingerprinted(sweep)


def _validate_points(base: Scenario, keys: tuple[str, ...], values: tuple[tuple, ...], source: str, hint: str) -> None:
    """Validate every grid point with the scenario loader (schema, cross-field rules, memory bound per run).

    The seed only selects weights and data (its range is checked above), so each point is validated once.
    """
    where = f"{source} [sweep.grid]"
    data = base.to_dict()
    problems: dict[str, None] = {}
    for point in itertools.product(*values):
        try:
            _sc._apply_changes(data, dict(zip(keys, point)), where)
        except ScenarioError as exc:
            problems.update(dict.fromkeys(exc.problems))
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        raise ScenarioError(list(problems), source=source, hint_path=hint)
