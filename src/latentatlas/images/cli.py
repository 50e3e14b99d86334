"""``latentatlas images …`` commands; each lives in a module of its own and is mounted here."""

import typer

from latentatlas.images.commands_latent import embed, encode, interpolate
from latentatlas.images.commands_train import train

app = typer.Typer(no_args_is_help=True)
app.command()(train)
app.command()(encode)
app.command()(embed)
app.command()(interpolate)
