"""Point Numba's on-disk cache at a user cache directory before numba is imported.

site-packages may be read-only (a system install, a shared lab machine), and numba's default is to write its
cache next to the source file. We honour a NUMBA_CACHE_DIR the user set, and otherwise use the platform's user
cache directory (``~/.cache/rnnsim/numba`` on Linux), created with mode 0700 whatever the umask. When that
cannot be created (HOME on a read-only filesystem), a private temporary folder is used instead, with one note
on stderr, rather than numba's silent fallback into site-packages (or "no locator available" when that is
read-only too).
"""

from __future__ import annotations

import os
import sys
import tempfile

from platformdirs import user_cache_dir


def _private_dir(path: str) -> bool:
    """Create ``path`` (0700) if needed; whether it is a writable directory."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if os.stat(path).st_uid == os.getuid() and os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)  # made earlier under a loose umask
        return os.access(path, os.W_OK | os.X_OK)
    except OSError:
        return False


def _choose() -> str:
    wanted = os.path.join(user_cache_dir("rnnsim"), "numba")
    if _private_dir(wanted):
        return wanted
    fallback = tempfile.mkdtemp(prefix="rnnsim-numba-")  # 0700
    print(f"rnnsim: note: cannot create the kernel cache {wanted}; using {fallback} for this run "
          "(set NUMBA_CACHE_DIR to choose a folder)", file=sys.stderr)
    return fallback


if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = _choose()

NUMBA_CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
