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

    def __init__(self, label: str = "", quiet: bool = False, callback: "ProgressCallback | Progress | None" = None):
        if isinstance(callback, Progress):  # a step inside a larger job: its quietness and its callback
            quiet = quiet or callback.quiet
            callback = callback.callback
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
    def ticking(self, message: str, every: float = 5.0, delay: float = 0.0) -> Iterator[None]:
        """Report ``message`` now and then every ``every`` seconds with the elapsed time, until the block
        ends (for one long call that cannot report progress itself: a t-SNE, a kernel compilation).
        With ``delay``, say nothing unless the block is still running after that many seconds."""
        if self.quiet:
            yield
            return
        start, done = time.perf_counter(), threading.Event()
        said = [False]

        def say(text: str) -> None:
            said[0] = True
            self(text)

        if not delay:
            say(f"{message} ...")

        def tick() -> None:
            if delay and not done.wait(delay):
                say(f"{message} ...")
            while not done.wait(every):
                say(f"{message} ... {time.perf_counter() - start:.0f} s")

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
        if said[0]:
            self(f"{message}: done in {time.perf_counter() - start:.1f} s")


def as_progress(progress: "Progress | ProgressCallback | None", label: str = "") -> Progress:
    """A :class:`Progress` from whatever a library function was given: a Progress, a callback or None."""
    if isinstance(progress, Progress):
        return progress
    return Progress(label, callback=progress)
