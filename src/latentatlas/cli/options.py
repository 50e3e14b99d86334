"""Options shared by several commands, defined once so that they read and behave the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="Threads (default: all cores).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random step.")]
TopN = Annotated[int, typer.Option("--top-n", "-n", help="Length of the lists.")]

# Reading ratings files (prepare, train, evaluate, predict).
Format = Annotated[Optional[str], typer.Option("--format", help="npy, csv, tsv, parquet, movielens, yelp/jsonl "
                                                                "(default: from the file name and content).")]
UserCol = Annotated[Optional[str], typer.Option("--user-col", help="User column: name or 0-based index.")]
ItemCol = Annotated[Optional[str], typer.Option("--item-col", help="Item column: name or 0-based index.")]
RatingCol = Annotated[Optional[str], typer.Option("--rating-col", help="Rating column: name or 0-based index.")]
Sep = Annotated[Optional[str], typer.Option("--sep", help="Field separator of a delimited file (default: sniffed).")]
Header = Annotated[Optional[bool], typer.Option("--header/--no-header",
                                                help="Whether a CSV/TSV file has a header line (default: detected).")]
Duplicates = Annotated[str, typer.Option("--duplicates",
                                         help="Repeated (user, item) pairs: keep 'last', 'first', or 'mean'.")]
OnBadLines = Annotated[str, typer.Option("--on-bad-lines",
                                         help="error: stop at the first bad line, naming it; skip: drop bad lines, "
                                              "count them and name the first few.")]

# Spark.
Engine = Annotated[str, typer.Option("--engine", help="local (in memory) or spark (Apache Spark: needs the "
                                                      "'spark' extra of latentatlas and Java 17+).")]
SparkMaster = Annotated[str, typer.Option("--spark-master", help="Spark master URL for --engine spark (local[*], "
                                                                 "spark://host:7077, yarn, k8s://…).")]
SparkConf = Annotated[Optional[list[str]], typer.Option("--spark-conf", help="Spark setting KEY=VALUE for "
                                                                             "--engine spark (repeatable).")]

OutDir = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: a new folder "
                                                                    "under runs/).")]


def read_options(format=None, user_col=None, item_col=None, rating_col=None, sep=None, header=None,
                 duplicates="last", on_bad_lines="error") -> dict:
    """The keyword arguments of ``read_ratings`` that were set on the command line."""
    given = dict(format=format, user_col=user_col, item_col=item_col, rating_col=rating_col, sep=sep,
                 header=header)
    opts = {k: v for k, v in given.items() if v is not None}
    if duplicates != "last":
        opts["duplicates"] = duplicates
    if on_bad_lines != "error":
        opts["on_bad_lines"] = on_bad_lines
    return opts

ItemNames = Annotated[Optional[Path], typer.Option("--item-names", help="A file naming the item ids (MovieLens "
                                                                        "movies.csv, Yelp business.json, any "
                                                                        "id,name CSV), kept with the data and "
                                                                        "the model.")]
UserNames = Annotated[Optional[Path], typer.Option("--user-names", help="A file naming the user ids.")]
