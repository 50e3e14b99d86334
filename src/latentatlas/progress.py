"""Progress of long work, through the standard ``logging`` module (logger ``latentatlas``), an optional
callback and, in a notebook, one updating bar — never ``print``.

Where the lines go:

* **logging** — every line goes to the ``latentatlas`` logger at INFO. The logger only has a ``NullHandler``
  and Python's default level is WARNING, so nothing shows unless asked
  (``logging.basicConfig(level=logging.INFO)``). The command line installs a handler that writes the lines
  to stderr unless ``--quiet``.
* **a callback** — ``progress=callable`` on the functions and estimators that take one gets each line.
* **a bar** — in a Jupyter or VS Code notebook (an IPython kernel), work that counts (``als step 12/50``,
  ``bayes sample 7/60``, ``epoch 1/3 batch 20/100``, t-SNE iterations) shows as one updating bar
  (``tqdm.auto``), and one long silent call (a kernel compilation, a t-SNE) as a bar with its elapsed time.
  :func:`set_progress` turns bars off (``set_progress(False)``), on outside notebooks too
  (``set_progress(True)``), or back to the default (``set_progress("auto")``); ``progress=False`` turns them
  off for one call, and a callback replaces them. Where logging already shows the INFO lines, the default
  draws no bar beside them. A terminal gets no bar unless asked: the command line keeps its lines.

Importing this module changes nothing global and imports neither IPython nor tqdm.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterator, NamedTuple

logger = logging.getLogger("latentatlas")
logger.addHandler(logging.NullHandler())

ProgressCallback = Callable[[str], None]

#: None: bars in notebooks only (the default); True: always; False: never. Set with :func:`set_progress`.
_bars_setting: bool | None = None


def set_progress(enabled: "bool | str | None" = "auto") -> None:
    """Show progress bars: ``True`` always, ``False`` never, ``"auto"`` (the default) in notebooks only.

    Only the bars: log lines and ``progress=`` callbacks are unaffected.

    Examples
    --------
    >>> import latentatlas
    >>> latentatlas.set_progress(False)   # no bars, even in a notebook
    >>> latentatlas.set_progress("auto")  # back to the default
    """
    global _bars_setting
    if enabled == "auto" or enabled is None:
        _bars_setting = None
    elif enabled is True or enabled is False:
        _bars_setting = enabled
    else:
        from latentatlas.errors import LatentAtlasError

        raise LatentAtlasError(f"set_progress takes True, False or 'auto', got {enabled!r}")


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (Jupyter, JupyterLab, VS Code, Colab). Imports nothing:
    a kernel has already imported IPython and ipykernel."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # a half-initialised IPython: no bars rather than an error
        return False
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def lines_shown() -> bool:
    """Whether logging shows the progress lines somewhere: the ``latentatlas`` logger is enabled for INFO
    and a handler other than a ``NullHandler`` would receive them (``logging.basicConfig(level=INFO)``)."""
    if not logger.isEnabledFor(logging.INFO):
        return False
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) and h.level <= logging.INFO for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def bars_enabled() -> bool:
    """Whether a :class:`Progress` without a callback shows bars now: with ``set_progress("auto")`` (the
    default) in a notebook whose logging does not already show the lines; see :func:`set_progress`."""
    if _bars_setting is None:
        return in_notebook() and not lines_shown()
    return _bars_setting


class Progress:
    """Reports ``[label] message`` lines to the ``latentatlas`` logger (INFO) and to ``callback``, unless
    ``quiet``; in a notebook, without a callback, also one updating bar; measures elapsed time.

    ``bar``: None (the default) follows :func:`set_progress`; False never shows a bar; True always does.
    A ``Progress`` given as ``callback`` is a larger job this one is a step of: its quietness, callback and
    bar setting carry over.
    """

    def __init__(self, label: str = "", quiet: bool = False, callback: "ProgressCallback | Progress | None" = None,
                 bar: bool | None = None):
        if isinstance(callback, Progress):  # a step inside a larger job: its quietness, callback and bar
            quiet = quiet or callback.quiet
            bar = callback.bar if bar is None else bar
            callback = callback.callback
        if callback is False:  # progress=False: no bar, no callback (log lines as configured)
            callback, bar = None, False
        if callback is not None and not callable(callback):
            from latentatlas.errors import LatentAtlasError

            raise LatentAtlasError(f"progress must be a callable, a Progress, False or None; got {callback!r}")
        self.label = label
        self.quiet = quiet
        self.callback = callback
        self.bar = bar
        self.start = time.perf_counter()

    def __repr__(self) -> str:
        flags = [f"{self.label!r}"] + (["quiet"] if self.quiet else []) + (["callback"] if self.callback else [])
        return f"Progress({', '.join(flags)})"

    def _emit(self, message: str) -> None:
        line = f"[{self.label}] {message}" if self.label else message
        logger.info(line)
        if self.callback is not None:
            self.callback(line)

    def shows_bar(self) -> bool:
        """Whether this reporter draws a bar: not quiet, no callback, and bars on (``bar`` or
        :func:`set_progress`)."""
        if self.quiet or self.callback is not None or self.bar is False:
            return False
        return True if self.bar else bars_enabled()

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        self._emit(message)
        if self.shows_bar():
            _BARS.message(self, message)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @contextlib.contextmanager
    def ticking(self, message: str, every: float = 5.0, delay: float = 0.0) -> Iterator[None]:
        """Report ``message`` now and then every ``every`` seconds with the elapsed time, until the block
        ends (for one long call that cannot report progress itself: a t-SNE, a kernel compilation).
        With ``delay``, say nothing unless the block is still running after that many seconds. In a
        notebook the same shows as a bar with the elapsed time, gone when the block ends."""
        if self.quiet:
            yield
            return
        bar = self.shows_bar()
        start, done = time.perf_counter(), threading.Event()
        said = [False]
        handle: list[Any] = [None]

        def say(text: str) -> None:
            said[0] = True
            self._emit(text)

        def begin() -> None:
            say(f"{message} ...")
            if bar:
                handle[0] = _BARS.timer(self, message)

        if not delay:
            begin()

        def tick() -> None:
            if delay:
                if done.wait(delay):
                    return
                begin()
            next_line = every
            while not done.wait(min(every, 0.5) if bar else every):
                elapsed = time.perf_counter() - start
                if bar:
                    _BARS.refresh(handle[0])
                if elapsed >= next_line:
                    say(f"{message} ... {elapsed:.0f} s")
                    next_line += every

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            if handle[0] is not None:
                _BARS.finish(handle[0])
        if said[0]:
            self._emit(f"{message}: done in {time.perf_counter() - start:.1f} s")


def as_progress(progress: "Progress | ProgressCallback | bool | None", label: str = "") -> Progress:
    """A :class:`Progress` from whatever a library function was given: a Progress, a callback, None
    (log lines, and a bar in a notebook) or False (no bar, no callback)."""
    if isinstance(progress, Progress):
        return progress
    if progress is True:
        return Progress(label, bar=True)
    return Progress(label, callback=progress)


# --- the bar ---------------------------------------------------------------------------------------------------
#: ``12/50``: a count out of a total, not part of a path or a date.
_FRACTION = re.compile(r"(?<![\w./])(\d+)/(\d+)(?![\w/.]*\w)")


class Counts(NamedTuple):
    key: str  # what is counted: the text before the first count
    n: int
    total: int
    description: str  # the text before the last count
    rest: str  # the text after it
    inner: int | None  # of two-level counts, the inner total (batches per epoch)


def parse_counts(message: str) -> Counts | None:
    """What a counting line counts, or None.

    ``als step 12/50  train rmse 0.9`` → ``Counts("als step", 12, 50, "als step", "train rmse 0.9", None)``.
    Two counts, an outer and an inner one (``epoch 2/3 batch 5/10 …``), count inner steps overall: 15 of 30.
    """
    found = list(_FRACTION.finditer(message))
    if not found:
        return None
    first, last = found[0], found[-1]
    key = message[: first.start()].strip(" :,[]")
    a, big_a = int(first.group(1)), int(first.group(2))
    if big_a <= 0:
        return None
    if len(found) >= 2:
        b, big_b = int(last.group(1)), int(last.group(2))
        if big_b <= 0:
            return None
        n, total = (a - 1) * big_b + b, big_a * big_b
        description = message[: last.start()].strip(" :,")
    else:
        n, total, description, big_b = a, big_a, key, None
    rest = re.sub(r"\s+", " ", message[last.end():]).strip(" :,")
    return Counts(key, n, total, description, rest, big_b)


class _Bars:
    """The one live bar of this process. A line that counts something else replaces it; the bar closes
    when its count is complete or when the reporter that opened it is gone (its work is over)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bar = None  # the live tqdm bar
        self.owner: int | None = None  # id of the Progress that opened it
        self.key: tuple | None = None
        self.inner: int | None = None  # the inner total of two-level counts (batches per epoch)
        self.timed = False  # a ticking bar (no total)
        self.finalizers: set[int] = set()
        self.finished: tuple | None = None  # (key, total, inner) of the bar that last completed
        self.broken = False  # a bar could not be drawn: do not try again

    # _new and _close run with the lock held
    def _new(self, owner: Progress, total: int | None, description: str, leave: bool):
        """A new tqdm bar, or None when none can be drawn here (then no bar is tried again)."""
        import warnings

        if self.broken:
            return None
        try:
            with warnings.catch_warnings():
                # tqdm.auto warns when ipywidgets are missing, and then draws a text bar (fine in a notebook)
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm

                bar = tqdm(total=total, desc=description, leave=leave, dynamic_ncols=True,
                           bar_format=None if total else "{desc}: {elapsed}")
        except Exception:  # no tqdm, a broken widget front end: the work goes on without bars
            self.broken = True
            return None
        if id(owner) not in self.finalizers:
            self.finalizers.add(id(owner))
            weakref.finalize(owner, self._release, id(owner))
        return bar

    def _close(self) -> None:
        bar, self.bar, self.owner, self.key, self.inner, self.timed = self.bar, None, None, None, None, False
        if bar is None:
            return
        try:
            if getattr(bar, "container", None) is not None and bar.total and bar.n < bar.total:
                # a widget bar stopped early (early stopping) is not an error: full and green, not red
                bar.total = bar.n
                bar.container.children[1].max = max(bar.n, 1)
            bar.close()
        except Exception:  # a display that went away must not break the work
            pass

    def message(self, owner: Progress, message: str) -> None:
        counts = parse_counts(message)
        if counts is None:
            return
        key, n, total, description, rest, inner = counts
        with self.lock:
            full_key = (id(owner), owner.label, key)
            if self.bar is None and self.finished is not None:
                f_key, f_total, f_inner = self.finished
                if f_key == full_key and f_inner and inner is None and total * f_inner == f_total and n == total:
                    return  # "epoch 3/3: …" after the last batch completed the bar
            live = self.bar is not None and not self.timed and self.key == full_key
            if live and self.inner and inner is None and total * self.inner == self.bar.total:
                n, total, description = n * self.inner, self.bar.total, ""  # "epoch 2/3: …" after its batches
            if self.bar is not None and (not live or total != self.bar.total):
                self._close()
            if self.bar is None:
                self.bar = self._new(owner, total, description or owner.label, leave=True)
                if self.bar is None:
                    return
                self.owner, self.key, self.timed, self.inner = id(owner), full_key, False, inner
                self.finished = None
            bar = self.bar
            try:
                if description and description != bar.desc:
                    bar.set_description_str(description, refresh=False)
                bar.set_postfix_str(rest[:80], refresh=False)
                step = min(n, total) - bar.n
                if step > 0:
                    bar.update(step)
                else:
                    bar.n = min(n, total)
                    bar.refresh()
            except Exception:  # a display that went away must not break the work
                pass
            if n >= total:
                self.finished = (full_key, total, self.inner)
                self._close()

    def timer(self, owner: Progress, message: str) -> object:
        with self.lock:
            self._close()
            self.bar = self._new(owner, None, message, leave=False)
            if self.bar is not None:
                self.owner, self.key, self.timed = id(owner), ("timer", message), True
            return self.bar

    def refresh(self, handle) -> None:
        with self.lock:
            if handle is not None and handle is self.bar:
                try:
                    self.bar.refresh()
                except Exception:
                    pass

    def finish(self, handle) -> None:
        with self.lock:
            if handle is self.bar:
                self._close()

    def _release(self, owner_id: int) -> None:
        # From a weakref finalizer, which may run inside any code (the garbage collector): never wait for the
        # lock; a bar left open is closed by the next one.
        self.finalizers.discard(owner_id)
        if self.owner != owner_id or not self.lock.acquire(blocking=False):
            return
        try:
            if self.owner == owner_id:
                self._close()
        finally:
            self.lock.release()


_BARS = _Bars()
