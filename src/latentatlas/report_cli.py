"""``latentatlas report`` and ``latentatlas demo``."""

import typer


def report_command():
    """Build report.html and report.pdf from run directories."""
    raise typer.Exit(1)


def demo_command():
    """Run the whole story on built-in defaults."""
    raise typer.Exit(1)
