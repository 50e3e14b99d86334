"""Progress of long work, through the standard ``logging`` module (logger ``latentatlas``) and an optional
callback — never ``print``.

In a notebook nothing shows by default (the logger only has a ``NullHandler``, and Python's default level is
WARNING); ``logging.basicConfig(level=logging.INFO)`` or a callback shows the lines. The command line
installs a handler that writes them to stderr unless ``--quiet``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable, Iterator

logger = logging.getLogger("latentatlas")
logger.addHandler(logging.NullHandler())

ProgressCallback = Callable[[str], None]


class Progress:
    """Reports ``[label] message`` lines to the ``latentatlas`` logger (INFO) and to ``callback``, unless
    ``quiet``; also measures elapsed time."""

    def __init__(self, label: str = "", quiet: bool = False, callback: ProgressCallback | None = None):
        self.label = label
        self.quiet = quiet
        self.callback = callback
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        line = f"[{self.label}] {message}" if self.label else message
        logger.info(line)
        if self.callback is not None:
            self.callback(line)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @contextlib.contextmanager
    def ticking(self, message: str, every: float = 5.0) -> Iterator[None]:
        """Report ``message`` now and then every ``every`` seconds with the elapsed time, until the block
        ends (for one long call that cannot report progress itself: a t-SNE, a kernel compilation)."""
        self(f"{message} ...")
        if self.quiet:
            yield
            return
        start, done = time.perf_counter(), threading.Event()

        def tick() -> None:
            while not done.wait(every):
                self(f"{message} ... {time.perf_counter() - start:.0f} s")

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
        self(f"{message}: done in {time.perf_counter() - start:.1f} s")


def as_progress(progress: "Progress | ProgressCallback | None", label: str = "") -> Progress:
    """A :class:`Progress` from whatever a library function was given: a Progress, a callback or None."""
    if isinstance(progress, Progress):
        return progress
    return Progress(label, callback=progress)
