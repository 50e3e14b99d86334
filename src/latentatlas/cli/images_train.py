"""Kept for ``latentatlas.cli.demo``, which imports the tcmalloc restart from here; the code lives in
:mod:`latentatlas.cli.tcmalloc` and ``images train`` in :mod:`latentatlas.cli.images`."""

from latentatlas.cli.tcmalloc import TCMALLOC_ENV, find_tcmalloc, maybe_reexec_with_tcmalloc  # noqa: F401
