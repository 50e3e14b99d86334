"""``latentatlas demo``."""

from __future__ import annotations

from pathlib import Path

import typer


def demo_command(
    out: Path = typer.Option(Path("latentatlas-demo"), "--out", "-o", help="Directory for every run and the report."),
    quick: bool = typer.Option(False, "--quick", help="Smaller data and fewer epochs: a few minutes on 2 cores."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final lines."),
    tiny: bool = typer.Option(False, "--tiny", hidden=True, help="Smallest sizes, for tests."),
    seed: int = typer.Option(0, help="Seed of every random step."),
):
    """Run the whole story on built-in data: ratings (ALS vs SGD), the image autoencoder, and the report."""
    from latentatlas.demo import run_demo
    from latentatlas.cli.tcmalloc import maybe_reexec_with_tcmalloc

    # `images train` restarts its process with tcmalloc preloaded when started as the program; inside the
    # demo that restart would begin the whole demo again, so take it here, before any work.
    maybe_reexec_with_tcmalloc()
    result = run_demo(out, size="tiny" if tiny else "quick" if quick else "full", quiet=quiet, seed=seed)
    typer.echo(f"report: {result.html}\nreport: {result.pdf}")
