"""The ``latentatlas`` command. It only parses arguments and calls the library; it holds no logic.

Sub-command modules import their heavy dependencies (torch, numba, pyspark) inside the commands, so
``latentatlas --help`` and the ratings commands start quickly.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import sys

import typer

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.cli.demo import demo_command
from latentatlas.cli.options import cli_message
from latentatlas.cli.images import app as images_app
from latentatlas.cli.ratings import app as ratings_app
from latentatlas.cli.report import report_command

app = typer.Typer(
    help="Learn and explore latent representations: recommenders on ratings, autoencoders on images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from latentatlas import __version__

        typer.echo(f"latentatlas {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Learn and explore latent representations: recommenders on ratings, autoencoders on images."""


app.add_typer(ratings_app, name="ratings", help="Latent-factor recommenders on explicit ratings.")
app.add_typer(images_app, name="images", help="Convolutional autoencoder and latent-space exploration.")
app.command("report")(report_command)
app.command("demo")(demo_command)


def run(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` in this process; returns the exit status.

    Click handles usage errors itself; a :class:`LatentAtlasError` from the library becomes one line on
    stderr and status 2, never a traceback.
    """
    closed = sys.stdout is None  # started with standard output closed (`latentatlas … >&-`)
    if closed:
        sys.stdout = _closed_stdout()
    try:
        with _progress_to_stderr():
            return _run(argv)
    finally:
        if closed:
            sys.stdout = None  # what was written is lost: nothing left to flush at exit


class _ClosedOutput(io.RawIOBase):
    """Standard output that the shell closed: every write fails, as it would on the file descriptor."""

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        raise OSError(errno.EBADF, "cannot write the output: standard output is closed")


def _closed_stdout():
    return io.TextIOWrapper(io.BufferedWriter(_ClosedOutput()), encoding="utf-8", line_buffering=True)


@contextlib.contextmanager
def _progress_to_stderr():
    """The library reports progress to the ``latentatlas`` logger; on the command line those lines go to
    stderr (``--quiet`` silences them where they are made)."""
    from latentatlas.progress import logger

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _run(argv: list[str] | None) -> int:
    try:
        try:
            app(args=argv, prog_name="latentatlas")
        except SystemExit:  # click ends every command so, success included
            sys.stdout.flush()  # a full disk or closed output shows here, while the status can still say so
            raise
    except LatentAtlasError as exc:
        print(f"latentatlas: error: {printable(cli_message(str(exc)))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`latentatlas … | head`): quiet, as other tools are
        _discard_stdout()
        return 1
    except OSError as exc:  # a full disk, an unwritable folder: the system's words, on one line
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"latentatlas: error: {printable(exc.strerror or str(exc))}{printable(where)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("latentatlas: error: out of memory; use a smaller data set or fewer factors", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentatlas: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # a bug: one line for users, the traceback on request
        if os.environ.get("LATENTATLAS_DEBUG"):
            raise
        print(f"latentatlas: internal error: {type(exc).__name__}: {printable(str(exc))} (set LATENTATLAS_DEBUG=1 "
              "for the traceback, and please report it)", file=sys.stderr)
        return 1
    return 0


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main() -> None:
    sys.exit(run(sys.argv[1:]))
