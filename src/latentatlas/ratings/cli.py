"""``latentatlas ratings …`` commands; each lives in a module of its own and is mounted here."""

import typer

from latentatlas.ratings.commands_model import evaluate, recommend, train
from latentatlas.ratings.commands_prepare import prepare

app = typer.Typer(no_args_is_help=True)
app.command()(prepare)
app.command()(train)
app.command()(evaluate)
app.command()(recommend)
