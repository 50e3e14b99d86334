"""Progress output for long work: periodic lines on stderr, silenced by ``quiet``."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints ``[label] message`` lines to stderr unless quiet; also measures elapsed time."""

    def __init__(self, label: str = "", quiet: bool = False, stream=None):
        self.label = label
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        prefix = f"[{self.label}] " if self.label else ""
        print(f"{prefix}{message}", file=self.stream, flush=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
