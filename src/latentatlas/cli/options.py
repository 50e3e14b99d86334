"""Options shared by several commands, defined once so that they read and behave the same everywhere."""

from __future__ import annotations

import re
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

# Side features (bayes): files of user and item attributes.
ItemFeatures = Annotated[Optional[Path], typer.Option(
    "--item-features", help="bayes: item attributes as feature groups with their own priors (MovieLens u.item "
                            "or movies.csv, Yelp business.json, RecBole .item, any CSV/TSV/Parquet/JSON-lines "
                            "table with an item id column). Items here but not in the ratings become cold-start "
                            "items of the model.")]
UserFeatures = Annotated[Optional[Path], typer.Option(
    "--user-features", help="bayes: user attributes (MovieLens u.user, RecBole .user, any table with a user id "
                            "column). Users here but not in the ratings become cold-start users.")]
ItemFeatureColumns = Annotated[Optional[str], typer.Option(
    "--item-feature-columns", help="Feature groups/columns to use, comma-separated (e.g. genre,year; "
                                   "name:categorical forces a kind: numeric, categorical or multi). Default: all.")]
UserFeatureColumns = Annotated[Optional[str], typer.Option(
    "--user-feature-columns", help="Feature groups/columns of --user-features to use (e.g. age,occupation).")]
ItemFeatureId = Annotated[Optional[str], typer.Option(
    "--item-feature-id", help="The id column of --item-features (default: found by name: item, movieId, "
                              "business_id… or id).")]
UserFeatureId = Annotated[Optional[str], typer.Option(
    "--user-feature-id", help="The id column of --user-features (default: user, user_id, userId… or id).")]
ItemFeatureSep = Annotated[Optional[str], typer.Option(
    "--item-feature-sep", help="Separator of multi-valued fields of --item-features (default |; Yelp "
                               "categories: ,).")]
UserFeatureSep = Annotated[Optional[str], typer.Option(
    "--user-feature-sep", help="Separator of multi-valued fields of --user-features (default |).")]
TimeBias = Annotated[bool, typer.Option(
    "--time-bias/--no-time-bias", help="bayes: timeSVD++-style time-aware biases (per-item time bins, per-user "
                                       "drift); the ratings need timestamps.")]


def feature_options(user_columns=None, user_id=None, user_sep=None, item_columns=None, item_id=None,
                    item_sep=None) -> dict:
    """``workflow.load_parts(feature_options=…)`` from the command line's feature options."""
    out = {}
    for what, opts in (("user", dict(columns=user_columns, id_column=user_id, sep=user_sep)),
                       ("item", dict(columns=item_columns, id_column=item_id, sep=item_sep))):
        given = {k: v for k, v in opts.items() if v is not None}
        if given:
            out[what] = given
    return out


# --- library messages in command-line words ----------------------------------------------------------------
#: Library arguments and the options that set them. Library messages name arguments (``rating_col=``,
#: ``threshold must be …``); :func:`cli_message` puts the option in their place.
FLAGS = {
    "user_col": "--user-col", "item_col": "--item-col", "rating_col": "--rating-col", "sep": "--sep",
    "header": "--header", "format": "--format", "duplicates": "--duplicates", "on_bad_lines": "--on-bad-lines",
    "query": "--query", "threshold": "--threshold", "max_users": "--max-users", "metrics": "--metrics",
    "reg_weighting": "--reg-weighting", "min_entries": "--min-entries",
    "train_file": "--train", "validation_file": "--validation", "test_file": "--test",
    "explorer_points": "--explorer-points", "neighbours": "--neighbours", "out_dir": "--out",
    "master": "--spark-master", "conf": "--spark-conf", "item_colour": "--item-colour",
    "time_col": "--time-col", "leave_last_out": "--leave-last-out", "leave_k_out": "--leave-k-out",
    "user_features": "--user-features", "item_features": "--item-features", "time_bias": "--time-bias",
}

_ARG = re.compile(r"(?<![\w./=-])([a-z][a-z_]*)=(?=([^\s,;:)]?))")
_LEAD = re.compile(r"^([a-z][a-z_]*) (must|needs|is|are|cannot|should|expects)\b")
_SNAKE = re.compile(r"(?<![\w.-])([a-z]+(?:_[a-z]+)+)(?![\w=-])")
_HINT = re.compile(r"; choose (?:it|them) with ([a-z][a-z_]*)=(?=$|[\s,;)])")


def cli_message(text: str) -> str:
    """A library message with the arguments it names turned into the command line's options:
    ``choose it with rating_col=`` → ``choose it with --rating-col``, ``threshold=nan`` →
    ``--threshold nan``, ``max_users must be …`` → ``--max-users must be …``. A hint to an argument that no
    option sets is dropped."""
    text = _HINT.sub(lambda m: m[0] if m[1] in FLAGS else "", text)

    def arg(m):
        flag = FLAGS.get(m[1])
        if flag is None:
            return m[0]
        return f"{flag} " if m[2] else flag

    text = _ARG.sub(arg, text)
    text = _SNAKE.sub(lambda m: FLAGS.get(m[1], m[1]), text)  # snake_case words are argument names
    return _LEAD.sub(lambda m: f"{FLAGS.get(m[1], m[1])} {m[2]}", text)


def check_output_file(path: Path | None, flag: str, example: str = "out.json") -> None:
    """Refuse, before any work, an output file option that names a folder or sits below a file."""
    from latentatlas.errors import LatentAtlasError, printable

    if path is None:
        return
    if path.is_dir():
        raise LatentAtlasError(f"{flag} {printable(str(path))} is a folder; give a file name "
                               f"(e.g. {printable(str(path / example))})")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise LatentAtlasError(f"{flag} {printable(str(path))}: {printable(str(parent))} is not a folder")
            break
