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
    out.mkdir(parents=True, exist_ok=True)
    # Both temporary files are complete before the first rename; the renames follow back to back.
    with atomic_path(out / "report.pdf") as pdf_tmp, atomic_path(out / "report.html") as html_tmp:
        n_pages, first_pages = render_pdf(sections, pdf_tmp, title=title, created=created)
        html_tmp.write_text(page, encoding="utf-8")
        # Temporary files are private (0600); a report is meant to be shared, so use the usual mode.
        for tmp in (pdf_tmp, html_tmp):
            tmp.chmod(0o666 & ~umask())
    return ReportResult(out / "report.html", out / "report.pdf", [s.title for s in sections], n_pages, first_pages)
