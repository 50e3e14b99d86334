"""Reading ratings with Spark into a DataFrame ``(user, item, rating)``.

Format detection and column choice are the local engine's own (:func:`latentatlas.ratings.io.detect_format`,
its column-name lists and pickers), run on the first lines of the file: for a file on HDFS or S3 those
lines are fetched through Spark into a small local sample first. Only the parsing itself is Spark's.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.io import readers as local_io
from latentatlas.ratings.spark.session import is_uri, spark_error

FORMATS = tuple(f for f in local_io.FORMATS if f != "npy")
DUPLICATE_POLICIES = local_io.DUPLICATE_POLICIES
_HEAD_LINES = 2


def read_ratings_df(spark, path: str | os.PathLike, format: str | None = None, *,
                    user_col: str | int | None = None, item_col: str | int | None = None,
                    rating_col: str | int | None = None, sep: str | None = None, header: bool | None = None,
                    duplicates: str = "last", on_bad_lines: str = "error", progress=None):
    """Read ratings with Spark; returns ``(df, n_duplicates)`` with ``df`` a DataFrame ``(user, item, rating)``.

    Formats and column choice follow :func:`latentatlas.ratings.io.read_ratings`: ``csv``/``tsv`` (with or
    without header; columns by name or 0-based index), ``parquet`` (a file or a directory of parts),
    ``movielens`` (``u.data``, ``ratings.dat``, ``ratings.csv``), ``yelp``/``jsonl`` (JSON lines with
    ``user_id``, ``business_id``, ``stars`` among other fields). ``path`` is a local path or a URI
    (``hdfs://``, ``s3a://``). Ids keep the type they were read with (strings from text files). Repeated
    (user, item) pairs keep the ``last`` rating in file order (or ``first``, or their ``mean``). A missing id,
    a missing or non-numeric rating, or a malformed line is a :class:`LatentAtlasError` naming the file, the
    number of bad rows and an example; with ``on_bad_lines="skip"`` those rows are dropped instead, and their
    number and the first one are reported to ``progress``.

    Examples
    --------
    >>> df, n_dup = read_ratings_df(spark, "u.data")  # doctest: +SKIP
    >>> df.columns  # doctest: +SKIP
    ['user', 'item', 'rating']
    """
    path = str(path)
    if on_bad_lines not in ("error", "skip"):
        raise LatentAtlasError(f"on_bad_lines must be error or skip, got {on_bad_lines!r}")
    if duplicates not in DUPLICATE_POLICIES:
        raise LatentAtlasError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if format is not None and format.lower() not in (*FORMATS, "yelp"):
        raise LatentAtlasError(f"unknown format {format!r}; the Spark engine reads {', '.join(FORMATS)}")
    if not is_uri(path):
        p = Path(path)
        if not p.exists():
            raise LatentAtlasError(f"{path}: no such file")
        if p.is_file() and p.stat().st_size == 0:
            raise LatentAtlasError(f"{path}: file is empty")
    cols = (user_col, item_col, rating_col)
    is_table = (format or "").lower() == "parquet" or path.rstrip("/").lower().endswith((".parquet", ".pq"))
    try:
        if is_table:
            df = _read_parquet(spark, path, cols)
        else:
            with _local_sample(spark, path) as sample:
                fmt = (format or local_io.detect_format(sample)).lower()
                fmt = "jsonl" if fmt == "yelp" else fmt
                if fmt == "parquet":
                    df = _read_parquet(spark, path, cols)
                elif fmt == "jsonl":
                    df = _read_jsonl(spark, path, sample, cols)
                else:
                    df = _read_text_table(spark, path, sample, fmt, cols, sep, header)
    except LatentAtlasError:
        raise
    except Exception as exc:
        raise spark_error(path, exc) from None
    df, n_dup = _check_rows(df, path, skip=on_bad_lines == "skip", progress=progress)
    return _resolve_duplicates(df, duplicates, n_dup), n_dup


@contextlib.contextmanager
def _local_sample(spark, path: str) -> Iterator[Path]:
    """A local file the local detectors can read: the file itself, or for a URI (or a directory of parts)
    its first lines, fetched by Spark into a temporary file of the same name (without .gz/.bz2, as the
    lines are already decompressed)."""
    if not is_uri(path) and Path(path).is_file():
        yield Path(path)
        return
    try:
        lines = [r[0] for r in spark.read.text(path).filter("trim(value) != ''").limit(_HEAD_LINES).collect()]
    except Exception as exc:
        raise spark_error(path, exc) from None
    if not lines:
        raise LatentAtlasError(f"{path}: file is empty")
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".gz", ".bz2"):
        name = name[: -len(ext)] if name.lower().endswith(ext) else name
    with tempfile.TemporaryDirectory(prefix="latentatlas-spark-head-") as tmp:
        sample = Path(tmp) / (name or "ratings")
        sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            yield sample
        except LatentAtlasError as exc:  # the local detectors name the sample; the user knows the URI
            raise LatentAtlasError(str(exc).replace(str(sample), path)) from None


def _head(sample: Path) -> list[str]:
    first = local_io._first_line(sample)
    second = local_io._first_line(sample, skip=1)
    return [first] if second is None else [first, second]


def _ordered(df):
    """Tag rows with their order in the file(s), for the 'last'/'first' duplicate policies."""
    from pyspark.sql import functions as F

    return df.withColumn("_order", F.monotonically_increasing_id())


def _select(df, user: str, item: str, rating: str, path: str):
    from pyspark.sql import functions as F

    if len({user, item, rating}) < 3:
        raise LatentAtlasError(f"{path}: the user, item and rating columns must differ (got {user}, {item}, {rating})")
    # try_cast: a non-numeric rating becomes null and is reported by _check_rows (ANSI mode would throw a
    # JVM stack trace instead).
    return _ordered(df.select(F.col(f"`{user}`").alias("user"), F.col(f"`{item}`").alias("item"),
                              F.expr(f"try_cast(`{rating}` AS DOUBLE)").alias("rating"),
                              F.col(f"`{rating}`").cast("string").alias("_raw_rating")))


def _pick_columns(names: list[str], cols, path: str, by_name: bool = True) -> tuple[str, str, str]:
    """The user, item and rating columns among ``names``, chosen as the local readers choose them."""
    lists = (local_io.USER_NAMES, local_io.ITEM_NAMES, local_io.RATING_NAMES) if by_name else ((), (), ())
    return tuple(local_io._pick(names, wanted, cands, default, what, path)
                 for wanted, cands, default, what in zip(cols, lists, (0, 1, 2), ("user", "item", "rating")))


def _read_text_table(spark, path, sample: Path, fmt: str, cols, sep, header):
    """CSV, TSV and the MovieLens layouts (``u.data`` tabs, ``ratings.dat`` double colons, ``ratings.csv``)."""
    from pyspark.sql.types import StringType, StructField, StructType

    lines = _head(sample)
    if fmt == "movielens":
        delimiter = "::" if "::" in lines[0] else "\t" if "\t" in lines[0] else ","
        header = header if delimiter == "," else False
    else:
        delimiter = sep or ("\t" if fmt == "tsv" else local_io._sniff_delimiter(lines[0]))
    fields = lines[0].split(delimiter)
    if header is None:
        header = local_io._looks_like_header(fields, lines[1].split(delimiter) if len(lines) > 1 else None)
    names = [f.strip().strip('"') for f in fields] if header else [f"_c{k}" for k in range(len(fields))]
    user, item, rating = _pick_columns(names, cols, path, by_name=bool(header))
    schema = StructType([StructField(n, StringType()) for n in names])
    reader = (spark.read.schema(schema).option("sep", delimiter).option("header", str(bool(header)).lower())
              .option("mode", "PERMISSIVE").option("ignoreLeadingWhiteSpace", "true")
              .option("ignoreTrailingWhiteSpace", "true"))
    if delimiter == "::":
        reader = reader.option("quote", "\u0000")
    return _select(reader.csv(path), user, item, rating, path)


def _read_parquet(spark, path, cols):
    df = spark.read.parquet(path)
    user, item, rating = _pick_columns(df.columns, cols, path)
    kind = dict(df.dtypes)[rating]
    if kind not in ("tinyint", "smallint", "int", "bigint", "float", "double") and not kind.startswith("decimal"):
        raise LatentAtlasError(f"{path}: column {rating!r} is not numeric (it is {kind})")
    return _select(df, user, item, rating, path)


def _read_jsonl(spark, path, sample: Path, cols):
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    lists = (local_io.USER_NAMES, local_io.ITEM_NAMES, local_io.RATING_NAMES)
    names = [str(wanted) if wanted is not None else local_io._json_key(sample, cands, what)
             for wanted, cands, what in zip(cols, lists, ("user", "item", "rating"))]
    # An explicit schema of the three fields: Spark parses and drops the rest (the review text) line by line
    # instead of inferring a schema over the whole file. Ratings come in as text and are cast, so that a
    # non-numeric rating is reported instead of silently becoming null.
    schema = StructType([StructField(n, StringType()) for n in names] + [StructField("_corrupt", StringType())])
    df = (spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt")
          .json(path))
    # A malformed line parses to nulls and keeps its text in _corrupt; fold that into the user id check.
    df = df.withColumn(names[0], F.when(F.col("_corrupt").isNull(), F.col(f"`{names[0]}`")))
    return _select(df, names[0], names[1], names[2], path)


def _check_rows(df, path: str, skip: bool = False, progress=None):
    """One pass over the data: fail on (or with ``skip``, drop) rows with a missing id or a missing,
    non-numeric or infinite rating; returns the rows kept and the number of repeated (user, item) pairs."""
    from pyspark.sql import functions as F

    from latentatlas.progress import as_progress

    bad = (F.col("user").isNull() | (F.trim(F.col("user").cast("string")) == "") | F.col("item").isNull()
           | (F.trim(F.col("item").cast("string")) == "") | F.col("rating").isNull() | F.isnan("rating")
           | (F.abs(F.col("rating")) == float("inf")))
    stats = df.agg(F.count(F.lit(1)).alias("n"), F.sum(bad.cast("long")).alias("bad"),
                   F.countDistinct(F.when(~bad, F.struct("user", "item"))).alias("pairs")).first()
    if not stats["n"]:
        raise LatentAtlasError(f"{path}: no ratings in file")
    n_bad = int(stats["bad"] or 0)
    if n_bad:
        row = df.filter(bad).orderBy("_order").first()
        if row["user"] is None or row["item"] is None:
            what = "missing user or item id, or a malformed line"
        else:
            what = f"rating {row['_raw_rating']!r} is missing or not a number"
        message = f"{n_bad:,} bad rows; the first has user={row['user']!r}, item={row['item']!r}: {what}"
        if not skip or n_bad == stats["n"]:
            raise LatentAtlasError(f"{path}: {message}")
        as_progress(progress, "read/spark")(f"{path}: skipped {message}")
        df = df.filter(~bad)
    return df, int(stats["n"] - n_bad - stats["pairs"])


def _resolve_duplicates(df, policy: str, n_dup: int):
    from pyspark.sql import functions as F

    if not n_dup:
        return df.select("user", "item", "rating")
    grouped = df.groupBy("user", "item")
    if policy == "mean":
        return grouped.agg(F.avg("rating").alias("rating"))
    pick = F.max_by if policy == "last" else F.min_by
    return grouped.agg(pick("rating", "_order").alias("rating"))


def ratings_to_df(spark, ratings):
    """A local :class:`~latentatlas.ratings.data.Ratings` as a Spark DataFrame ``(user, item, rating)`` with
    the original ids (for tests, and for moving a small local data set to a cluster).

    Examples
    --------
    >>> from latentatlas.ratings.synthetic import synthetic
    >>> df = ratings_to_df(spark, synthetic(100, 50, 1000))  # doctest: +SKIP
    """
    import pandas as pd

    pdf = pd.DataFrame({"user": ratings.user_ids[ratings.users], "item": ratings.item_ids[ratings.items],
                        "rating": ratings.values.astype(np.float64)})
    return spark.createDataFrame(pdf)
