"""Reports from run folders: one self-contained ``report.html`` and a printable ``report.pdf``.

>>> from latentatlas.report import build_report
>>> result = build_report(["runs/als", "runs/embed"], "report")      # doctest: +SKIP
>>> result.html, result.pdf                                          # doctest: +SKIP

Both are built fully (the HTML in memory, the PDF in a temporary file) before either is renamed into
place, so a failure never leaves a half report. The HTML needs no network: Plotly's JavaScript, every
figure and every thumbnail are inlined. Modules: :mod:`~latentatlas.report.sections` (what each run kind
shows), :mod:`~latentatlas.report.explorer` (the latent explorers' data), :mod:`~latentatlas.report.html`
and :mod:`~latentatlas.report.pdf` (the two renderings).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from latentatlas import runs
from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import atomic_path, umask
from latentatlas.progress import Progress, as_progress

__all__ = ["build_report", "ReportResult"]


@dataclass
class ReportResult:
    html: Path
    pdf: Path
    sections: list[str]
    pdf_pages: int
    section_pages: list[int]


def build_report(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                 title: str = "latentatlas report", explorer_points: int | None = None, neighbours: int = 8,
                 seed: int = 0, progress: Progress | Callable[[str], None] | None = None,
                 item_names=None, item_colour: str | Mapping[Any, Any] | None = None,
                 item_colour_title: str = "") -> ReportResult:
    """Build ``report.html`` and ``report.pdf`` in ``out_dir`` from run folders.

    Parameters
    ----------
    run_dirs : run folders written by latentatlas (each has ``run.json``); read with
        :func:`latentatlas.runs.load_runs`, which refuses files outside a folder.
    out_dir : folder for the two files (created if missing).
    title : title of both documents.
    explorer_points : most points each latent explorer draws (a seeded sample); default every point.
    neighbours : nearest neighbours listed when a point is clicked.
    seed : seed of the explorers' sample and of the item PCA.
    progress : a :class:`~latentatlas.progress.Progress` or a callback taking one line.
    item_names : item id → name (a mapping or a :class:`~latentatlas.ratings.names.Names`), shown in the
        item explorers (default: the names saved with each model, if any).
    item_colour, item_colour_title : what the item explorers are coloured by instead of the ratings count:
        a metadata column of the item names (``"genres"``, ``"city"``) or a mapping item id → value, and
        its name. Text values colour by category (the legend filters them), numbers on a scale.

    Every run folder is checked first (``run.json`` and every file it lists must exist); both outputs are
    built completely before either replaces a file in ``out_dir``.

    Examples
    --------
    >>> build_report(["runs/embed"], "report", explorer_points=10_000)   # doctest: +SKIP
    """
    from datetime import datetime, timezone

    from latentatlas.report.html import render_html
    from latentatlas.report.pdf import render_pdf
    from latentatlas.report.sections import build_sections

    if explorer_points is not None and (isinstance(explorer_points, bool) or explorer_points < 2):
        raise LatentAtlasError(f"explorer_points must be at least 2, got {explorer_points}")
    if neighbours < 1:
        raise LatentAtlasError(f"neighbours must be at least 1, got {neighbours}")
    progress = as_progress(progress, "report")
    loaded = runs.load_runs(run_dirs)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LatentAtlasError(f"out_dir {out} exists and is not a directory")
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    sections = build_sections(loaded, explorer_points=explorer_points, neighbours=neighbours, seed=seed,
                              progress=progress, item_names=item_names, item_colour=item_colour,
                              item_colour_title=item_colour_title)
    progress("writing report.html")
    page = render_html(sections, title=title, created=created, progress=progress)
    progress("writing report.pdf")
    pages: list = []

    def write(html_path: Path, pdf_path: Path) -> None:
        pages[:] = render_pdf(sections, pdf_path, title=title, created=created)
        html_path.write_text(page, encoding="utf-8")
        # Temporary files are private (0600); a report is meant to be shared, so use the usual mode.
        for tmp in (pdf_path, html_path):
            tmp.chmod(0o666 & ~umask())

    _write_pair(out, write)
    n_pages, first_pages = pages
    return ReportResult(out / "report.html", out / "report.pdf", [s.title for s in sections], n_pages, first_pages)


#: The files a report folder holds; a folder with nothing else in it is replaced as a whole.
REPORT_FILES = ("report.html", "report.pdf")


def _is_report_folder(out: Path) -> bool:
    """Whether ``out`` is missing, empty, or holds nothing but a report (then it may be replaced whole)."""
    try:
        return not out.exists() or (out.is_dir() and all(p.name in REPORT_FILES for p in out.iterdir()))
    except OSError:
        return False


def _write_pair(out: Path, write: Callable[[Path, Path], None]) -> None:
    """Write ``report.html`` and ``report.pdf`` into ``out`` so that they are replaced together.

    A folder that holds only a report (or nothing, or does not exist) is replaced as a whole: both files are
    written into a staged sibling folder, which is then swapped in by one ``renameat2(RENAME_EXCHANGE)``
    on Linux, so a reader sees the old pair or the new pair, never one of each (elsewhere two folder renames
    follow back to back, and a kill between them is repaired by the next run). A folder that also holds
    other files is the user's: those are never touched, and the two finished temporary files are renamed
    into it one after the other — each file is atomic, the pair is not."""
    from latentatlas.runs import _locked, _resolved, _swap_in, clean_stale

    out = _resolved(out)
    if not _is_report_folder(out):
        with atomic_path(out / "report.pdf") as pdf_tmp, atomic_path(out / "report.html") as html_tmp:
            write(html_tmp, pdf_tmp)
        return
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentAtlasError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    with _locked(out):
        clean_stale(out)
        if not _is_report_folder(out):  # changed while we waited for the lock
            with atomic_path(out / "report.pdf") as pdf_tmp, atomic_path(out / "report.html") as html_tmp:
                write(html_tmp, pdf_tmp)
            return
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=parent))
        try:
            os.chmod(stage, 0o777 & ~umask())  # mkdtemp makes 0700; a report is meant to be shared
            write(stage / "report.html", stage / "report.pdf")
            _swap_in(stage, out)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
