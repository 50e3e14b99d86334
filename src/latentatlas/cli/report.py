"""``latentatlas report``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def report_command(
    run_dirs: List[Path] = typer.Argument(..., metavar="RUN_DIR...",
                                          help="Run directories written by the other commands (each has run.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for report.html and report.pdf."),
    title: str = typer.Option("latentatlas report", help="Title of both documents."),
    explorer_points: Optional[int] = typer.Option(
        None, help="Cap on the points each latent explorer draws (a seeded sample); default: every point."),
    neighbours: int = typer.Option(8, help="Nearest neighbours listed when a point is clicked."),
    seed: int = typer.Option(0, help="Seed of the explorers' sample (with --explorer-points) and the item PCA."),
    item_colour: Optional[str] = typer.Option(
        None, "--item-colour", metavar="COLUMN",
        help="Colour the item explorers by this metadata column of the item names saved with the model "
             "(e.g. genres, city); default: the number of ratings."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
):
    """Build report.html (self-contained, interactive) and report.pdf from run directories."""
    from latentatlas.progress import Progress
    from latentatlas.report import build_report

    progress = Progress("report", quiet)
    result = build_report(run_dirs, out, title=title, explorer_points=explorer_points, neighbours=neighbours,
                          seed=seed, progress=progress, item_colour=item_colour)
    progress(f"done in {progress.elapsed:.1f} s: {len(result.sections)} sections, {result.pdf_pages} PDF pages")
    typer.echo(f"{result.html}\n{result.pdf}")
