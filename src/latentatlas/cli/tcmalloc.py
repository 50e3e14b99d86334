"""Preloading tcmalloc for the commands that train on a CPU (it re-executes the process, so CLI only).

``scripts/setup.sh`` installs it (Debian ``libtcmalloc-minimal4``); without it the commands run as before.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

TCMALLOC_ENV = "LATENTATLAS_TCMALLOC"
_REEXEC_MARK = "_LATENTATLAS_TCMALLOC_REEXEC"
_LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]


def find_tcmalloc() -> str | None:
    """Path of an installed tcmalloc (Debian: libgoogle-perftools4 or libtcmalloc-minimal4), or None."""
    for name in ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"):
        for folder in _LIB_DIRS:
            hits = sorted(glob.glob(os.path.join(folder, name)))
            if hits:
                return hits[0]
    return None


def _started_as_cli() -> bool:
    """True when this process is the ``latentatlas`` program itself (not a test calling ``cli.run``)."""
    argv0 = Path(sys.argv[0])
    return argv0.name == "latentatlas" or argv0.parts[-2:] == ("latentatlas", "__main__.py")


def maybe_reexec_with_tcmalloc() -> None:
    """Restart this command with tcmalloc preloaded, when it is installed and not yet loaded.

    PyTorch on CPU allocates and frees large activation buffers every step; glibc malloc returns them to
    the kernel each time, so a step costs hundreds of thousands of page faults. tcmalloc keeps them, which
    halves the epoch time here with identical results. ``LATENTATLAS_TCMALLOC=0`` turns this off.
    """
    if os.environ.get(TCMALLOC_ENV, "1").strip().lower() in ("0", "no", "off", "false"):
        return
    if os.environ.get(_REEXEC_MARK) or "tcmalloc" in os.environ.get("LD_PRELOAD", "") or not _started_as_cli():
        return
    lib = find_tcmalloc()
    if lib is None:
        return
    env = dict(os.environ, **{_REEXEC_MARK: "1", "LD_PRELOAD": " ".join(filter(None, [lib, os.environ.get("LD_PRELOAD")]))})
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", "latentatlas", *sys.argv[1:]], env)
    except OSError:
        return  # cannot restart: carry on with the default allocator


started_as_cli = _started_as_cli
