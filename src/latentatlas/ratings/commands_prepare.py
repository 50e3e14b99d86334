"""``latentatlas ratings prepare``: read, filter, split and summarise a ratings file."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import typer


def prepare(
    input: Optional[Path] = typer.Argument(None, help="Ratings file (.npy triplets, CSV/TSV, Parquet, MovieLens, "
                                                      "Yelp JSON lines). Omitted: the built-in synthetic set."),
    out: Path = typer.Option(Path("prepared"), "--out", "-o", help="Directory for prepared.npz, summary.json, run.json."),
    format: Optional[str] = typer.Option(None, "--format", help="npy, csv, tsv, parquet, movielens, yelp/jsonl "
                                                                "(default: from the file name and content)."),
    user_col: Optional[str] = typer.Option(None, help="User column: name or 0-based index."),
    item_col: Optional[str] = typer.Option(None, help="Item column: name or 0-based index."),
    rating_col: Optional[str] = typer.Option(None, help="Rating column: name or 0-based index."),
    sep: Optional[str] = typer.Option(None, help="Field separator of a delimited file (default: sniffed)."),
    header: Optional[bool] = typer.Option(None, "--header/--no-header", help="Whether a CSV/TSV file has a header "
                                                                            "line (default: detected)."),
    duplicates: str = typer.Option("last", help="Repeated (user, item) pairs: keep 'last', 'first', or 'mean'."),
    min_entries: int = typer.Option(4, help="Cold start: recursively drop users and items with this many ratings "
                                            "or fewer (4 keeps a 5-core)."),
    n_validation: Optional[int] = typer.Option(None, help="Random known entries held out for validation."),
    n_test: Optional[int] = typer.Option(None, help="Random known entries held out for test."),
    validation_fraction: Optional[float] = typer.Option(None, help="Validation share of ratings (default 0.1)."),
    test_fraction: Optional[float] = typer.Option(None, help="Test share of ratings (default 0.1)."),
    leave_k_out: Optional[int] = typer.Option(None, help="Per user, k ratings to test and k to validation."),
    seed: int = typer.Option(0, help="Seed of the split (and of the built-in data set)."),
    builtin_size: int = typer.Option(100_000, help="Ratings in the built-in synthetic set."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    engine: str = typer.Option("local", help="local (in memory) or spark (Apache Spark: needs the "
                                             "'spark' extra of latentatlas and Java 17+)."),
    spark_master: str = typer.Option("local[*]", help="Spark master URL for --engine spark (local[*], "
                                                      "spark://host:7077, yarn, k8s://…)."),
    spark_conf: Optional[List[str]] = typer.Option(None, help="Spark setting KEY=VALUE for --engine spark "
                                                              "(repeatable)."),
):
    """Prepare ratings: read, drop cold-start users and items, split, write prepared.npz and a summary."""
    from latentatlas.ratings.spark import check_engine

    if check_engine(engine) == "spark":
        from latentatlas.ratings.spark import prepare_command

        prepare_command(input, out=out, master=spark_master, conf=spark_conf, json_out=json_out, quiet=quiet,
                        builtin_size=builtin_size, format=format, user_col=user_col, item_col=item_col,
                        rating_col=rating_col, sep=sep, header=header, duplicates=duplicates,
                        min_entries=min_entries, n_validation=n_validation, n_test=n_test,
                        validation_fraction=validation_fraction, test_fraction=test_fraction,
                        leave_k_out=leave_k_out, seed=seed)
        return
    from latentatlas.ratings.pipeline import PREPARED_FILE, prepare_ratings, summary_text
    from latentatlas.fsutil import to_json

    result = prepare_ratings(
        input, format=format, user_col=user_col, item_col=item_col, rating_col=rating_col, sep=sep,
        header=header, duplicates=duplicates, min_entries=min_entries, n_validation=n_validation, n_test=n_test,
        validation_fraction=validation_fraction, test_fraction=test_fraction, leave_k_out=leave_k_out,
        seed=seed, builtin_size=builtin_size, quiet=quiet or json_out,
    )
    result.write(out, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if json_out:
        print(to_json(result.summary, indent=None))
    else:
        print(summary_text(result.summary))
        if not quiet:
            print(f"wrote {out / PREPARED_FILE}", file=sys.stderr)
