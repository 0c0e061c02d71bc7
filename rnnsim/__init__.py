"""rnnsim: a terminal simulator of recurrent networks (tanh RNN, LSTM, GRU).

Public API (DESIGN.md section 2)::

    import rnnsim
    sc = rnnsim.load_scenario("vanishing")          # a built-in name or a path to a .toml file
    sim = rnnsim.Simulation(sc)

``import rnnsim`` does not import Numba: ``Simulation`` is imported on first use, so ``rnnsim validate``,
``rnnsim list`` and ``rnnsim schema`` start quickly.
"""

from rnnsim import _numba_env  # noqa: F401  (sets NUMBA_CACHE_DIR before anything can import numba)

__version__ = "0.1.0"

from rnnsim.scenario import Scenario, ScenarioError, load_scenario  # noqa: E402

__all__ = ["Scenario", "ScenarioError", "Simulation", "load_scenario", "__version__"]


def __getattr__(name: str):
    if name == "Simulation":
        from rnnsim.simulation import Simulation

        return Simulation
    raise AttributeError(f"module 'rnnsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"Simulation"})
