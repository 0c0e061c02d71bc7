"""Import rules: rnnsim outside rnnsim/tui/ never imports Textual; `import rnnsim` does not import Numba."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rnnsim

PACKAGE = Path(rnnsim.__file__).resolve().parent


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "tui" not in p.relative_to(PACKAGE).parts)


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_there_are_core_modules():
    names = {p.name for p in core_modules()}
    assert {"__init__.py", "scenario.py", "cli.py", "export.py"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_does_not_import_textual(path):
    bad = sorted(n for n in imported_names(path) if n == "textual" or n.startswith("textual."))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}; only rnnsim/tui/ may import Textual"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_rnnsim_is_light():
    proc = run_python(
        "import sys, os\n"
        "import rnnsim, rnnsim.scenario, rnnsim.cli, rnnsim.export\n"
        "heavy = [m for m in ('textual', 'numba') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert os.environ.get('NUMBA_CACHE_DIR'), 'NUMBA_CACHE_DIR is set on import'\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_simulation_is_lazy_but_available():
    proc = run_python(
        "import sys\n"
        "import rnnsim\n"
        "assert 'rnnsim.simulation' not in sys.modules\n"
        "try:\n"
        "    import rnnsim.simulation\n"
        "except ImportError:\n"
        "    sys.exit(3)\n"
        "assert rnnsim.Simulation is rnnsim.simulation.Simulation\n"
        "assert 'Simulation' in dir(rnnsim)\n"
        "assert 'textual' not in sys.modules\n"
    )
    if proc.returncode == 3:
        pytest.skip("rnnsim.simulation not written yet")
    assert proc.returncode == 0, proc.stderr


def test_user_numba_cache_dir_is_respected(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import os, rnnsim; print(os.environ['NUMBA_CACHE_DIR'])"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError):
        rnnsim.no_such_thing  # noqa: B018


def test_numba_is_imported_by_the_first_kernel_call_not_by_building_a_simulation():
    # The TUI draws a Simulation's first frame before numba is imported (~0.8 s) and its kernels are loaded.
    proc = run_python(
        "import sys\n"
        "import rnnsim\n"
        "from rnnsim.cells import rnn\n"
        "from rnnsim.kernels import loader, vmath\n"
        "sim = rnnsim.Simulation(rnnsim.load_scenario('vanishing'))\n"
        "assert 'numba' not in sys.modules and not loader.kernels_loaded()\n"
        "assert isinstance(rnn.forward_loop, loader.LazyKernel), rnn.forward_loop\n"
        "sim.forward()\n"
        "assert 'numba' in sys.modules and loader.kernels_loaded()\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "assert isinstance(rnn.forward_loop, Dispatcher), rnn.forward_loop  # rebound: no wrapper per call\n"
        "assert isinstance(vmath.exp, Dispatcher)\n"
        "assert isinstance(loader.jit(vmath.sigmoid_np), Dispatcher)  # kernels defined later: made at once\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_scipy_blas_is_loaded_without_the_scipy_linalg_package():
    # numba's np.dot needs only scipy.linalg.cython_blas; scipy.linalg's __init__ costs ~0.3 s of start-up
    proc = run_python(
        "import sys, numpy as np\n"
        "import rnnsim\n"
        "sim = rnnsim.Simulation(rnnsim.load_scenario('vanishing'))\n"
        "sim.forward(); sim.backward()\n"
        "assert 'scipy.linalg.cython_blas' in sys.modules and 'scipy.linalg' not in sys.modules\n"
        "from rnnsim.kernels.blas import gemm, _dot\n"
        "a = np.arange(12.0).reshape(3, 4); out = np.empty((3, 3))\n"
        "_dot(a, a.T, out)\n"
        "assert np.allclose(out, a @ a.T)\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_scipy_blas_falls_back_to_the_plain_import():
    proc = run_python(
        "import sys, importlib.machinery\n"
        "importlib.machinery.EXTENSION_SUFFIXES[:] = ['.no-such-suffix']  # the direct load finds no file\n"
        "from rnnsim.kernels import blas\n"
        "blas._load_scipy_blas()\n"
        "assert 'scipy.linalg' in sys.modules and sys.modules['scipy.linalg.cython_blas'].__pyx_capi__\n"
    )
    assert proc.returncode == 0, proc.stderr


def test_kernel_cache_folder_follows_the_kernel_sources(tmp_path):
    # numba keys a cached kernel on its own file only; a folder per version of the sources keeps a kernel from
    # loading machine code with a stale inlined callee from another file (an activation in vmath.py, say)
    from rnnsim.kernels import loader

    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    first = loader.kernel_cache_dir("/cache", [str(a), str(b)])
    assert first.startswith("/cache/src-") and first == loader.kernel_cache_dir("/cache", [str(a), str(b)])
    b.write_text("y = 3\n")
    assert loader.kernel_cache_dir("/cache", [str(a), str(b)]) != first
    assert loader.kernel_cache_dir("", [str(a)]) == ""  # no NUMBA_CACHE_DIR: numba's default place
    sources = loader._kernel_sources()
    from rnnsim.kernels import config, vmath
    assert vmath.__file__ in sources and config.__file__ in sources and all("rnnsim" in s for s in sources)


def test_kernels_are_cached_in_the_source_keyed_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c",
         "import numba, rnnsim\n"
         "sim = rnnsim.Simulation(rnnsim.load_scenario('vanishing')); sim.forward()\n"
         "print(numba.config.CACHE_DIR)\n"],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert folder.parent == tmp_path and folder.name.startswith("src-")
    assert any(folder.rglob("*.nbi")), "kernels were cached there"
