"""Point Numba's on-disk cache at a user cache directory before numba is imported.

site-packages may be read-only (a system install, a shared lab machine), and numba's default is to write its
cache next to the source file. We honour a NUMBA_CACHE_DIR the user set, and otherwise use the platform's user
cache directory (``~/.cache/rnnsim/numba`` on Linux).
"""

from __future__ import annotations

import os

from platformdirs import user_cache_dir

if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(user_cache_dir("rnnsim"), "numba")

NUMBA_CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
