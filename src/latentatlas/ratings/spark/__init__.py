"""The recommender on Apache Spark: the same pipeline as the local engine, as DataFrame operations.

Reading, cold-start (k-core) filtering, splits and centring run as Spark jobs on DataFrames with the
columns ``user``, ``item`` (original ids, as read) and ``rating`` (double); nothing collects the ratings to
the driver. Training is Spark MLlib's :class:`pyspark.ml.recommendation.ALS` (explicit feedback). Only the
small per-user and per-item tables (factors, means, ids) come back to the driver, when a trained model is
exported to the local model file format, so a model trained on a cluster is served and inspected locally.

pyspark is an optional dependency (``pip install 'latentatlas[spark]'``) and needs a Java 17+ runtime; it
is imported inside the functions here, so the rest of the package works without it.

Regularisation differs from the textbook loss: Spark's ALS minimises
``Σ (r_ui − x_u·y_i)² + λ (Σ_u n_u ‖x_u‖² + Σ_i n_i ‖y_i‖²)`` where ``n_u``, ``n_i`` are the numbers of
ratings of the user and item (ALS-WR, weighted-λ). The same ``--reg`` therefore regularises much more on
Spark than the local engine's plain λ unless the local engine is asked for count-weighted λ as well.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.io import _looks_like_header, _pick, _sniff_delimiter

INSTALL_HINT = "install it with: pip install 'latentatlas[spark]'"
JAVA_HINT = ("install a Java 17 (or newer) runtime, e.g. 'apt-get install openjdk-17-jre-headless', and put "
             "'java' on PATH or set JAVA_HOME")
FORMATS = ("csv", "tsv", "parquet", "movielens", "yelp", "jsonl")
DUPLICATE_POLICIES = ("last", "first", "mean")
_COLUMNS = ("user", "item", "rating")


# --- availability ------------------------------------------------------------------------------------------
def _java_executable() -> str | None:
    """The ``java`` that pyspark's launcher will run: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        exe = Path(home) / "bin" / "java"
        return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def require_spark() -> None:
    """Raise :class:`LatentAtlasError` saying what to install when pyspark or a Java 17+ runtime is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise LatentAtlasError(f"the Spark engine needs pyspark, which is not installed; {INSTALL_HINT}") from None
    java = _java_executable()
    if java is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") \
            else "no 'java' on PATH"
        raise LatentAtlasError(f"the Spark engine needs Java ({where}); {JAVA_HINT}")
    major = _java_major(java)
    if major is not None and major < 17:
        raise LatentAtlasError(f"the Spark engine needs Java 17 or newer, found Java {major} at {java}; {JAVA_HINT}")


# --- session -----------------------------------------------------------------------------------------------
def parse_conf(pairs: Iterable[str] | dict | None) -> dict[str, str]:
    """``["spark.executor.memory=4g", …]`` → dict; a pair without ``=`` or with an empty key is an error."""
    if pairs is None:
        return {}
    if isinstance(pairs, dict):
        return {str(k): str(v) for k, v in pairs.items()}
    conf = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise LatentAtlasError(f"--spark-conf expects KEY=VALUE (e.g. spark.executor.memory=4g), got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


def _local_cores(master: str) -> int | None:
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master.strip())
    if not m:
        return None
    n = m.group(1)
    return os.cpu_count() or 1 if n in (None, "*") else int(n) if n else 1


def get_session(master: str = "local[*]", conf: Iterable[str] | dict | None = None, *,
                app_name: str = "latentatlas"):
    """A :class:`~pyspark.sql.SparkSession` for ``master`` with ``conf`` (``KEY=VALUE`` strings or a dict).

    Spark's own logging is cut to errors and the console progress bar is off (we print our own progress).
    For ``local[N]`` masters the shuffle partitions default to ``2·N`` (Spark's 200 is for clusters and makes
    small jobs slow), the driver may use a quarter of the machine's memory, and a temporary checkpoint directory
    keeps long ALS lineages short. Anything given in ``conf`` wins. If a session is already running in this
    process it is reused (Spark allows one per JVM) and ``conf`` that can change at run time is applied.
    Run by ``spark-submit``, the default master leaves spark-submit's master and resources in charge.
    """
    if not isinstance(master, str) or not master.strip():
        raise LatentAtlasError(f"--spark-master must be a Spark master URL such as local[*] or spark://host:7077, "
                               f"got {master!r}")
    user_conf = parse_conf(conf)
    require_spark()
    from pyspark.sql import SparkSession

    settings = {"spark.ui.showConsoleProgress": "false", "spark.ui.enabled": "false",
                "spark.sql.execution.arrow.pyspark.enabled": "true"}
    # Under spark-submit the launcher already holds the master and resources; the default --spark-master
    # must not override them (an explicit one still does).
    submitted = bool(os.environ.get("PYSPARK_GATEWAY_PORT")) and master == "local[*]"
    cores = None if submitted else _local_cores(master)
    if SparkSession.getActiveSession() is None:
        # Quiet the JVM from its first line (setLogLevel below only acts once it is up).
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j.configurationFile=file:{_quiet_log4j()}"
    if cores is not None:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "hostname resolves to loopback" warning
        settings["spark.sql.shuffle.partitions"] = str(max(2, 2 * cores))
        settings["spark.default.parallelism"] = str(max(2, 2 * cores))
        settings["spark.driver.memory"] = f"{max(1, _physical_memory_gib() // 4)}g"
    settings.update(user_conf)
    builder = SparkSession.builder.appName(app_name)
    if not submitted:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the launcher's errors are not typed; name the usual causes
        msg = re.sub(r"\s+", " ", str(exc)).strip()
        raise LatentAtlasError(f"cannot start Spark (master {master}): {msg[:300]}; check the master URL and "
                               f"--spark-conf values, and that Java 17+ works ({JAVA_HINT})") from None
    spark.sparkContext.setLogLevel("ERROR")
    for key, value in user_conf.items():
        try:
            if spark.conf.isModifiable(key):
                spark.conf.set(key, value)
        except Exception:  # static settings of a running session cannot change; it keeps its own
            pass
    if cores is not None and not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="latentatlas-spark-ckpt-"))
    return spark


def _quiet_log4j() -> str:
    path = Path(tempfile.gettempdir()) / "latentatlas-spark-log4j2.properties"
    if not path.exists():
        from latentatlas.fsutil import write_text

        write_text(path, "rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
                         "appender.console.type = Console\nappender.console.name = console\n"
                         "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                         "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n")
    return str(path)


def _physical_memory_gib() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        return 2


# --- readers -----------------------------------------------------------------------------------------------
def _is_uri(path: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path))


def _location(path) -> str:
    """``path`` as Spark should see it. The CLI hands over :class:`pathlib.Path` objects, which fold a URI's
    ``//`` (``hdfs://nn/x`` becomes ``hdfs:/nn/x``); the authority cannot be told apart afterwards, so the
    URI is recovered from the command line that produced it."""
    import sys

    text = str(path)
    if isinstance(path, Path) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/", text) and not _is_uri(text):
        for arg in sys.argv[1:]:
            if "://" in arg and str(Path(arg)) == text:
                return arg
    return text


def _detect_format(path: str, first_line) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    for ext in (".gz", ".bz2"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "jsonl"
    if name in ("u.data", "ratings.dat") or name.endswith(".dat"):
        return "movielens"
    if name.endswith((".tsv", ".tab", ".data")):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    first = first_line()
    if first.lstrip().startswith("{"):
        return "jsonl"
    if "::" in first:
        return "movielens"
    return "tsv" if "\t" in first else "csv"


def read_ratings_df(spark, path: str | os.PathLike, format: str | None = None, *,
                    user_col: str | int | None = None, item_col: str | int | None = None,
                    rating_col: str | int | None = None, sep: str | None = None, header: bool | None = None,
                    duplicates: str = "last"):
    """Read ratings with Spark into a DataFrame ``(user, item, rating)``; returns ``(df, n_duplicates)``.

    Formats and column choice follow :func:`latentatlas.ratings.io.read_ratings`: ``csv``/``tsv`` (with or
    without header; columns by name or 0-based index), ``parquet`` (a file or a directory of parts),
    ``movielens`` (``u.data``, ``ratings.dat``, ``ratings.csv``), ``yelp``/``jsonl`` (JSON lines with
    ``user_id``, ``business_id``, ``stars`` among other fields). Ids keep the type they were read with
    (strings from text files). Repeated (user, item) pairs keep the ``last`` rating in file order
    (or ``first``, or their ``mean``). A missing id, a missing or non-numeric rating, or a malformed line is a
    :class:`LatentAtlasError` naming the file, the number of bad rows and an example.
    """
    path = _location(path)
    if duplicates not in DUPLICATE_POLICIES:
        raise LatentAtlasError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if not _is_uri(path):
        p = Path(path)
        if not p.exists():
            raise LatentAtlasError(f"{path}: no such file")
        if p.is_file() and p.stat().st_size == 0:
            raise LatentAtlasError(f"{path}: file is empty")
    head_cache: list[list[str]] = []

    def head() -> list[str]:
        if not head_cache:
            head_cache.append(_head_lines(spark, path))
        return head_cache[0]

    first_line = lambda: head()[0]  # noqa: E731

    fmt = (format or _detect_format(path, first_line)).lower()
    if fmt == "yelp":
        fmt = "jsonl"
    if fmt not in FORMATS:
        raise LatentAtlasError(f"unknown format {format!r}; the Spark engine reads {', '.join(FORMATS)}")
    cols = (user_col, item_col, rating_col)
    try:
        if fmt == "parquet":
            df = _read_parquet(spark, path, cols)
        elif fmt == "jsonl":
            df = _read_jsonl(spark, path, cols, first_line())
        elif fmt == "movielens":
            first = first_line()
            if "::" in first:
                df = _read_delimited(spark, path, cols, "::", False, head())
            elif "\t" in first:
                df = _read_delimited(spark, path, cols, "\t", False, head())
            else:
                df = _read_delimited(spark, path, cols, ",", header, head())
        else:
            delimiter = sep or ("\t" if fmt == "tsv" else _sniff_delimiter(first_line()))
            df = _read_delimited(spark, path, cols, delimiter, header, head())
    except LatentAtlasError:
        raise
    except Exception as exc:
        raise _spark_error(path, exc) from None
    n_dup = _check_rows(df, path)
    return _resolve_duplicates(df, duplicates, n_dup), n_dup


def _head_lines(spark, path: str, n: int = 2) -> list[str]:
    """The first ``n`` non-empty lines (a local file is read directly; anything else through Spark)."""
    if not _is_uri(path) and Path(path).is_file():
        import gzip
        import io

        opener = (lambda: io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")) \
            if path.endswith(".gz") else (lambda: open(path, encoding="utf-8", errors="replace"))
        lines = []
        try:
            with opener() as fh:
                for line in fh:
                    if line.strip():
                        lines.append(line.rstrip("\r\n"))
                        if len(lines) == n:
                            break
        except (OSError, EOFError) as exc:
            raise LatentAtlasError(f"{path}: cannot read file ({exc})") from None
    else:
        try:
            lines = [r[0] for r in spark.read.text(path).filter("trim(value) != ''").limit(n).collect()]
        except Exception as exc:
            raise _spark_error(path, exc) from None
    if not lines:
        raise LatentAtlasError(f"{path}: file is empty")
    return lines


def _spark_error(path: str, exc: Exception) -> LatentAtlasError:
    msg = re.sub(r"\s+", " ", str(exc)).strip()
    if "PATH_NOT_FOUND" in msg or "does not exist" in msg:
        return LatentAtlasError(f"{path}: no such file")
    return LatentAtlasError(f"{path}: Spark cannot read the file: {msg[:300]}")


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


def _read_delimited(spark, path, cols, delimiter, header, lines):
    from latentatlas.ratings.io import ITEM_NAMES, RATING_NAMES, USER_NAMES

    fields = lines[0].split(delimiter)
    if header is None:
        header = _looks_like_header(fields, lines[1].split(delimiter) if len(lines) > 1 else None)
    names = [f.strip().strip('"') for f in fields] if header else [f"_c{k}" for k in range(len(fields))]
    pick = lambda wanted, cands, default, what: _pick(names, wanted, cands if header else (), default,  # noqa: E731
                                                      what, path)
    user = pick(cols[0], USER_NAMES, 0, "user")
    item = pick(cols[1], ITEM_NAMES, 1, "item")
    rating = pick(cols[2], RATING_NAMES, 2, "rating")
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(n, StringType()) for n in names])
    reader = (spark.read.schema(schema).option("sep", delimiter).option("header", str(bool(header)).lower())
              .option("mode", "PERMISSIVE").option("ignoreLeadingWhiteSpace", "true")
              .option("ignoreTrailingWhiteSpace", "true"))
    if delimiter == "::":
        reader = reader.option("quote", "\u0000")
    df = reader.csv(path)
    return _select(df, user, item, rating, path)


def _read_parquet(spark, path, cols):
    from latentatlas.ratings.io import ITEM_NAMES, RATING_NAMES, USER_NAMES

    df = spark.read.parquet(path)
    names = df.columns
    user = _pick(names, cols[0], USER_NAMES, 0, "user", path)
    item = _pick(names, cols[1], ITEM_NAMES, 1, "item", path)
    rating = _pick(names, cols[2], RATING_NAMES, 2, "rating", path)
    kind = dict(df.dtypes)[rating]
    if kind not in ("tinyint", "smallint", "int", "bigint", "float", "double") and not kind.startswith("decimal"):
        raise LatentAtlasError(f"{path}: column {rating!r} is not numeric (it is {kind})")
    return _select(df, user, item, rating, path)


def _read_jsonl(spark, path, cols, first):
    import json

    from latentatlas.ratings.io import ITEM_NAMES, RATING_NAMES, USER_NAMES

    try:
        record = json.loads(first)
    except json.JSONDecodeError as exc:
        raise LatentAtlasError(f"{path}: line 1: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise LatentAtlasError(f"{path}: line 1: expected a JSON object per line")

    def key(wanted, cands, what):
        if wanted is not None:
            return str(wanted)
        for cand in cands:
            if cand in record:
                return cand
        raise LatentAtlasError(f"{path}: line 1: no {what} field (fields are: {', '.join(record)}); "
                               f"name it with --{what}-col")

    names = [key(cols[0], USER_NAMES, "user"), key(cols[1], ITEM_NAMES, "item"),
             key(cols[2], RATING_NAMES, "rating")]
    from pyspark.sql.types import StringType, StructField, StructType

    # An explicit schema of the three fields: Spark parses and drops the rest (the review text) line by line
    # instead of inferring a schema over the whole file. Ratings come in as text and are cast, so that a
    # non-numeric rating is reported instead of silently becoming null.
    schema = StructType([StructField(n, StringType()) for n in names] + [StructField("_corrupt", StringType())])
    df = (spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt")
          .json(path))
    from pyspark.sql import functions as F

    # A malformed line parses to nulls and keeps its text in _corrupt; fold that into the user id check.
    df = df.withColumn(names[0], F.when(F.col("_corrupt").isNull(), F.col(f"`{names[0]}`")))
    return _select(df, names[0], names[1], names[2], path)


def _check_rows(df, path: str) -> int:
    """One pass over the data: fail on a missing id or a missing, non-numeric or infinite rating; returns
    the number of repeated (user, item) pairs."""
    from pyspark.sql import functions as F

    bad = (F.col("user").isNull() | (F.trim(F.col("user").cast("string")) == "") | F.col("item").isNull()
           | (F.trim(F.col("item").cast("string")) == "") | F.col("rating").isNull() | F.isnan("rating")
           | (F.abs(F.col("rating")) == float("inf")))
    stats = df.agg(F.count(F.lit(1)).alias("n"), F.sum(bad.cast("long")).alias("bad"),
                   F.countDistinct("user", "item").alias("pairs")).first()
    if not stats["n"]:
        raise LatentAtlasError(f"{path}: no ratings in file")
    if stats["bad"]:
        row = df.filter(bad).orderBy("_order").first()
        if row["user"] is None or row["item"] is None:
            what = "missing user or item id, or a malformed line"
        else:
            what = f"rating {row['_raw_rating']!r} is missing or not a number"
        raise LatentAtlasError(f"{path}: {stats['bad']:,} bad rows; the first has user={row['user']!r}, "
                               f"item={row['item']!r}: {what}")
    return int(stats["n"] - stats["pairs"])


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
    the original ids (for tests and for moving a small local data set to a cluster)."""
    import pandas as pd

    pdf = pd.DataFrame({"user": ratings.user_ids[ratings.users], "item": ratings.item_ids[ratings.items],
                        "rating": ratings.values.astype(np.float64)})
    return spark.createDataFrame(pdf)


# --- preparation -------------------------------------------------------------------------------------------
def kcore_df(df, min_entries: int, *, log=None, rounds_per_job: int = 2):
    """Recursive cold-start filter: drop users and items with ``min_entries`` or fewer ratings until none is
    left (same result as :func:`latentatlas.ratings.prep.kcore`; the k-core is unique).

    A round counts each user's and item's ratings with window functions (no join, no driver round trip)
    and drops both kinds at once, as the local engine does; ``rounds_per_job`` rounds run per Spark job,
    whose result is cached (and checkpointed every few jobs, so the plan does not grow without bound).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if min_entries < 0:
        raise LatentAtlasError(f"min_entries must be >= 0, got {min_entries}")
    by_user, by_item = Window.partitionBy("user"), Window.partitionBy("item")
    current = df.select("user", "item", "rating").persist()
    n = current.count()
    jobs = 0
    while n:
        nxt = current
        for _ in range(rounds_per_job):
            nxt = (nxt.withColumn("_nu", F.count(F.lit(1)).over(by_user))
                   .withColumn("_ni", F.count(F.lit(1)).over(by_item))
                   .filter((F.col("_nu") > min_entries) & (F.col("_ni") > min_entries))
                   .drop("_nu", "_ni"))
        nxt = nxt.localCheckpoint() if jobs % 4 == 3 else nxt.persist()
        m = nxt.count()
        current.unpersist()
        jobs += 1
        if log:
            first, last = rounds_per_job * (jobs - 1) + 1, rounds_per_job * jobs
            log(f"k-core round{'s' if last > first else ''} {first}{f'-{last}' if last > first else ''}: "
                f"{n:,} -> {m:,} ratings")
        current, done = nxt, m == n
        n = m
        if done:
            break
    if n == 0:
        raise LatentAtlasError(f"no ratings left after removing users and items with {min_entries} or fewer "
                               f"ratings; lower --min-entries")
    return current


def with_row_index(df, order: list, name: str = "_row"):
    """``df`` plus a column ``name`` numbering the rows 0, 1, … in the (total) order ``order``.

    Distributed: a range-partitioned sort, a per-partition count (one small row per partition to the
    driver), then each row's index is its partition's offset plus its position inside the partition. The
    sorted data is checkpointed once, so both passes see the same partitions.
    """
    from pyspark.sql import functions as F

    tagged = (df.repartitionByRange(*order).sortWithinPartitions(*order)
              .withColumn("_pid", F.spark_partition_id())
              .withColumn("_mid", F.monotonically_increasing_id())
              .localCheckpoint())
    parts = tagged.groupBy("_pid").agg(F.count(F.lit(1)).alias("n"), F.min("_mid").alias("m0")).collect()
    offset, mapping = 0, []
    for row in sorted(parts, key=lambda r: r["_pid"]):
        mapping += [F.lit(row["_pid"]), F.lit(offset - row["m0"])]
        offset += row["n"]
    shift = F.create_map(*mapping)[F.col("_pid")] if mapping else F.lit(0)
    return tagged.withColumn(name, F.col("_mid") + shift).drop("_pid", "_mid")


@dataclass(frozen=True)
class SparkSplit:
    """Disjoint train / validation / test DataFrames ``(user, item, rating)``."""

    train: object
    validation: object
    test: object
    tagged: object = None  # all ratings with their role (0 train, 1 validation, 2 test)
    known_sizes: dict | None = None

    def count(self) -> dict[str, int]:
        """The sizes, counted (one Spark job)."""
        from pyspark.sql import functions as F

        if self.tagged is None:
            return {"train": self.train.count(), "validation": self.validation.count(), "test": self.test.count()}
        by_role = {r["_role"]: r["n"] for r in self.tagged.groupBy("_role").agg(F.count(F.lit(1)).alias("n")).collect()}
        return {name: int(by_role.get(role, 0)) for role, name in enumerate(("train", "validation", "test"))}

    def sizes(self) -> dict[str, int]:
        """The sizes: known without a job for count-based splits, counted for leave-k-out."""
        return dict(self.known_sizes) if self.known_sizes is not None else self.count()


def split_df(df, n_validation: int | None = None, n_test: int | None = None, *,
             validation_fraction: float | None = None, test_fraction: float | None = None,
             leave_k_out: int | None = None, seed: int = 0, total: int | None = None) -> SparkSplit:
    """The split of :func:`latentatlas.ratings.prep.split` on Spark, with exactly the same sizes.

    Each rating gets a seeded pseudo-random key ``xxhash64(seed, user, item)`` (it does not depend on how
    the data is partitioned); the ratings with the ``n_validation`` smallest keys go to validation, the next
    ``n_test`` to test. Fractions are rounded as in the local engine. ``leave_k_out`` ranks each user's
    ratings by the key instead. The chosen entries differ from numpy's permutation; the counts do not.
    """
    from latentatlas.ratings.prep import _count
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = F.xxhash64(F.lit(int(seed)), F.col("user"), F.col("item"))
    df = df.select("user", "item", "rating").withColumn("_key", key)
    if leave_k_out is not None:
        if any(v is not None for v in (n_validation, n_test, validation_fraction, test_fraction)):
            raise LatentAtlasError("leave_k_out cannot be combined with n_validation/n_test or fractions")
        if leave_k_out < 1:
            raise LatentAtlasError(f"leave_k_out must be >= 1, got {leave_k_out}")
        k = int(leave_k_out)
        w = Window.partitionBy("user").orderBy("_key", "item")
        ranked = (df.withColumn("_rank", F.row_number().over(w) - 1)
                  .withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy("user"))))
        role = (F.when((F.col("_n") > 2 * k) & (F.col("_rank") < k), 2)
                .when((F.col("_n") > 2 * k) & (F.col("_rank") < 2 * k), 1).otherwise(0))
        tagged = ranked.withColumn("_role", role).drop("_rank", "_n").localCheckpoint()
        known = None
    else:
        total = df.count() if total is None else total
        n_val = _count(n_validation, validation_fraction, total, "validation")
        n_tst = _count(n_test, test_fraction, total, "test")
        if n_val + n_tst >= total:
            raise LatentAtlasError(f"validation ({n_val}) + test ({n_tst}) ratings leave nothing to train on "
                                   f"(only {total} ratings)")
        indexed = with_row_index(df, ["_key", "user", "item"])
        tagged = indexed.withColumn(
            "_role", F.when(F.col("_row") < n_val, 1).when(F.col("_row") < n_val + n_tst, 2).otherwise(0)
        ).drop("_row")
        known = {"train": total - n_val - n_tst, "validation": n_val, "test": n_tst}
    cols = ["user", "item", "rating"]
    return SparkSplit(*(tagged.filter(F.col("_role") == r).select(*cols) for r in (0, 1, 2)), tagged=tagged,
                      known_sizes=known)


def user_means_df(train):
    """Each user's mean rating over ``train``: DataFrame ``(user, mean)``."""
    from pyspark.sql import functions as F

    return train.groupBy("user").agg(F.avg("rating").alias("mean"))


def center_df(df, means, fill: float):
    """Subtract each user's mean (users without one get ``fill``, the global training mean): ``(user, item,
    rating)`` with centred ratings."""
    from pyspark.sql import functions as F

    return (df.join(means, "user", "left")
            .select("user", "item", (F.col("rating") - F.coalesce(F.col("mean"), F.lit(fill))).alias("rating")))


@dataclass
class SparkPrepared:
    """Result of :func:`prepare_df`: the split and a summary with the same keys as the local one."""

    split: SparkSplit
    summary: dict

    def write(self, out_dir: str | Path, config: dict | None = None, created: str | None = None) -> Path:
        """Write ``train.parquet``, ``validation.parquet``, ``test.parquet`` (Spark directories),
        ``summary.json`` and ``run.json`` into ``out_dir`` (local or, for the Parquet parts, any Spark URI)."""
        from latentatlas.fsutil import write_json

        out = _location(out_dir).rstrip("/")
        for name in ("train", "validation", "test"):
            getattr(self.split, name).write.mode("overwrite").parquet(f"{out}/{name}.parquet")
        if _is_uri(out):
            return Path(out)
        out_dir = Path(out)
        write_json(out_dir / "summary.json", self.summary)
        metrics = {k: self.summary[k] for k in ("users", "items", "ratings", "density", "duplicates")}
        metrics.update({f"{k}_ratings": v for k, v in self.summary["split"].items()})
        write_json(out_dir / "run.json", {
            "kind": "ratings-prepare", "title": f"Ratings (Spark): {self.summary['source']}", "created": created,
            "config": dict(config or {}, engine="spark"), "metrics": metrics, "figures": [],
            "artifacts": {"train": "train.parquet", "validation": "validation.parquet", "test": "test.parquet",
                          "summary": "summary.json"},
            "tables": {"rating histogram": [{"rating": k, "count": v} for k, v in self.summary["histogram"].items()]},
        })
        return out_dir


def prepare_df(spark, path=None, *, min_entries: int = 4, n_validation: int | None = None,
               n_test: int | None = None, validation_fraction: float | None = None,
               test_fraction: float | None = None, leave_k_out: int | None = None, seed: int = 0,
               builtin_size: int = 100_000, quiet: bool = False, **read_options) -> SparkPrepared:
    """Read → k-core → split on Spark, as :func:`latentatlas.ratings.pipeline.prepare_ratings` does locally
    (same defaults: 10 % validation and 10 % test when no split is given). ``path=None`` uses the built-in
    synthetic set (generated locally and handed to Spark)."""
    from pyspark.sql import functions as F

    from latentatlas.progress import Progress

    log = Progress("prepare/spark", quiet)
    if not any(v is not None for v in (n_validation, n_test, validation_fraction, test_fraction, leave_k_out)):
        validation_fraction, test_fraction = 0.1, 0.1
    if path is None:
        from latentatlas.ratings.pipeline import load_input

        raw, n_dup = ratings_to_df(spark, load_input(None, builtin_size=builtin_size, seed=seed)), 0
        source = f"built-in synthetic ({builtin_size:,} ratings, seed {seed})"
    else:
        raw, n_dup = read_ratings_df(spark, path, **read_options)
        source = _location(path)
    before = raw.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("user").alias("u"),
                     F.countDistinct("item").alias("i")).first()
    log(f"read {before['n']:,} ratings: {before['u']:,} users x {before['i']:,} items from {source}")
    if n_dup:
        log(f"{n_dup:,} repeated (user, item) pairs resolved by keeping {read_options.get('duplicates', 'last')}")
    filtered = kcore_df(raw, min_entries, log=log)
    stats = filtered.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("user").alias("u"),
                         F.countDistinct("item").alias("i"), F.min("rating").alias("lo"),
                         F.max("rating").alias("hi"), F.avg("rating").alias("mean")).first()
    log(f"cold-start filter (more than {min_entries} ratings per user and item): {before['u']:,} x "
        f"{before['i']:,} -> {stats['u']:,} x {stats['i']:,}, {stats['n']:,} ratings kept")
    parts = split_df(filtered, n_validation, n_test, validation_fraction=validation_fraction,
                     test_fraction=test_fraction, leave_k_out=leave_k_out, seed=seed, total=stats["n"])
    sizes = parts.sizes()
    log(f"split: {sizes}")
    summary = {
        "source": source, "engine": "spark",
        "users": stats["u"], "items": stats["i"], "ratings": stats["n"],
        "density": stats["n"] / (stats["u"] * stats["i"]),
        "duplicates": n_dup,
        "shape_before": [before["u"], before["i"]], "ratings_before": before["n"],
        "shape_after": [stats["u"], stats["i"]],
        "rating_min": float(stats["lo"]), "rating_max": float(stats["hi"]), "rating_mean": float(stats["mean"]),
        "histogram": _histogram(filtered),
        "split": sizes,
    }
    return SparkPrepared(parts, summary)


def _histogram(df) -> dict[str, int]:
    counts = df.groupBy("rating").count().orderBy("rating").limit(21).collect()
    if len(counts) <= 20:
        return {f"{r['rating']:g}": int(r["count"]) for r in counts}
    from pyspark.sql import functions as F

    lo, hi = df.agg(F.min("rating"), F.max("rating")).first()
    width = (hi - lo) / 10 or 1.0
    rows = (df.select(F.least(F.floor((F.col("rating") - lo) / width), F.lit(9)).cast("int").alias("b"))
            .groupBy("b").count().collect())
    by_bin = {r["b"]: int(r["count"]) for r in rows}
    return {f"{lo + j * width:.3g}-{lo + (j + 1) * width:.3g}": by_bin.get(j, 0) for j in range(10)}


# --- training ----------------------------------------------------------------------------------------------
def index_ids(df, column: str, name: str):
    """Distinct values of ``column`` numbered 0, 1, … in sorted order: DataFrame ``(column, name)``.
    Spark's ALS needs integer ids; ours may be strings."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # One sort of the distinct ids in a single partition: the id table is per-user (per-item), far smaller
    # than the ratings, and this costs one job where the distributed numbering of with_row_index costs three.
    return (df.select(column).distinct()
            .withColumn(name, (F.row_number().over(Window.orderBy(column)) - 1).cast("int")))


class SparkALS:
    """Explicit-feedback matrix factorisation with Spark MLlib's ALS, on user-mean-centred ratings.

    Hyper-parameters map onto :class:`pyspark.ml.recommendation.ALS`: ``k`` → ``rank``, ``reg`` →
    ``regParam``, ``max_iter`` → ``maxIter``, ``seed`` → ``seed``. Spark weights λ by each row's number of
    ratings (ALS-WR, see the module docstring), and runs a fixed number of iterations (no early stopping).
    With ``center=True`` each user's mean training rating is subtracted before factorising and added back at
    prediction time, as the local engine does; users or items without training ratings are predicted from
    the means alone. Predictions are clipped to the training rating range.

    Learned state: ``model_`` (the ``ALSModel``), ``user_index_`` / ``item_index_`` (DataFrames mapping
    original ids to ALS ids), ``user_means_`` (DataFrame ``user, mean``), ``global_mean_``,
    ``rating_range_``, ``n_train_``, ``fit_seconds_``.
    """

    def __init__(self, k: int = 64, reg: float = 0.05, max_iter: int = 10, seed: int = 0, center: bool = True,
                 num_blocks: int | None = None):
        self.k = k
        self.reg = reg
        self.max_iter = max_iter
        self.seed = seed
        self.center = center
        self.num_blocks = num_blocks

    def _validate(self):
        if not isinstance(self.k, (int, np.integer)) or self.k <= 0:
            raise LatentAtlasError(f"k must be a positive integer, got {self.k!r}")
        if not np.isfinite(self.reg) or self.reg < 0:
            raise LatentAtlasError(f"reg must be >= 0, got {self.reg!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter <= 0:
            raise LatentAtlasError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if self.num_blocks is not None and self.num_blocks <= 0:
            raise LatentAtlasError(f"num_blocks must be positive, got {self.num_blocks!r}")

    def fit(self, train) -> "SparkALS":
        """Fit on a DataFrame ``(user, item, rating)``; returns self."""
        import time

        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        self._validate()
        train = train.select("user", "item", "rating")
        stats = train.agg(F.count(F.lit(1)).alias("n"), F.avg("rating").alias("mean"),
                          F.min("rating").alias("lo"), F.max("rating").alias("hi")).first()
        if not stats["n"]:
            raise LatentAtlasError("no training ratings")
        self.n_train_ = int(stats["n"])
        self.global_mean_ = float(stats["mean"])
        self.rating_range_ = (float(stats["lo"]), float(stats["hi"]))
        self.user_index_ = index_ids(train, "user", "u").persist()
        self.item_index_ = index_ids(train, "item", "i").persist()
        if self.center:
            self.user_means_ = user_means_df(train).persist()
            train = center_df(train, self.user_means_, self.global_mean_)
        else:
            self.user_means_ = None
        data = (train.join(self.user_index_, "user").join(self.item_index_, "item")
                .select("u", "i", F.col("rating").cast("float").alias("r")))
        blocks = self.num_blocks or max(2, data.sparkSession.sparkContext.defaultParallelism)
        als = ALS(rank=int(self.k), regParam=float(self.reg), maxIter=int(self.max_iter), seed=int(self.seed),
                  userCol="u", itemCol="i", ratingCol="r", implicitPrefs=False, nonnegative=False,
                  numUserBlocks=blocks, numItemBlocks=blocks, coldStartStrategy="nan")
        start = time.perf_counter()
        try:
            self.model_ = als.fit(data)
        except Exception as exc:
            msg = re.sub(r"\s+", " ", str(exc)).strip()
            raise LatentAtlasError(f"Spark ALS failed: {msg[:400]}") from None
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise LatentAtlasError("this SparkALS is not fitted yet; call fit() first")

    def predict(self, df):
        """``df`` plus a ``prediction`` column (original scale, clipped to the training range)."""
        from pyspark.sql import functions as F

        self._check_fitted()
        x = df.join(self.user_index_, "user", "left").join(self.item_index_, "item", "left")
        x = x.withColumn("u", F.coalesce(F.col("u"), F.lit(-1))).withColumn("i", F.coalesce(F.col("i"), F.lit(-1)))
        if self.user_means_ is not None:
            x = x.join(self.user_means_, "user", "left")
            base = F.coalesce(F.col("mean"), F.lit(self.global_mean_))
        else:
            x = x.withColumn("mean", F.lit(None).cast("double"))
            base = F.lit(0.0)
        self.model_.setColdStartStrategy("nan")
        scored = self.model_.transform(x).withColumnRenamed("prediction", "_factor")
        factor = F.when(F.isnan("_factor") | F.col("_factor").isNull(), F.lit(0.0)).otherwise(F.col("_factor"))
        lo, hi = self.rating_range_
        pred = F.least(F.greatest(base + factor, F.lit(lo)), F.lit(hi))
        cold = F.isnan("_factor") | F.col("_factor").isNull()
        return scored.withColumn("prediction", pred).withColumn("cold", cold).drop("u", "i", "mean", "_factor")

    def evaluate(self, df) -> dict:
        """RMSE and MAE over every rating of ``df`` (cold-start ones included, predicted from the means),
        as the local engine reports them; also the counts."""
        from pyspark.sql import functions as F

        err = F.col("prediction") - F.col("rating")
        row = self.predict(df).agg(F.count(F.lit(1)).alias("n"), F.avg(err * err).alias("mse"),
                                   F.avg(F.abs(err)).alias("mae"), F.sum(F.col("cold").cast("long")).alias("cold")
                                   ).first()
        if not row["n"]:
            return {"rmse": float("nan"), "mae": float("nan"), "n": 0, "n_cold": 0}
        return {"rmse": float(np.sqrt(row["mse"])), "mae": float(row["mae"]), "n": int(row["n"]),
                "n_cold": int(row["cold"] or 0)}

    def recommend(self, users, n: int = 10) -> dict:
        """Top-``n`` items per user id via ``ALSModel.recommendForUserSubset``: ``{user_id: [(item_id, score),
        …]}`` best first, scores on the rating scale (user mean added, not clipped). Seen items are not
        excluded (Spark's behaviour). Unknown users are an error."""
        from pyspark.sql import functions as F

        self._check_fitted()
        if n <= 0:
            raise LatentAtlasError(f"n must be positive, got {n}")
        spark = self.user_index_.sparkSession
        kind = dict(self.user_index_.dtypes)["user"]
        asked = {}
        for u in users:  # ids as the user typed them (CLI: text) → the column's type
            try:
                asked[str(u) if kind == "string" else int(u) if kind in ("int", "bigint") else u] = u
            except (TypeError, ValueError):
                raise LatentAtlasError(f"unknown user id {u!r} (ids are integers)") from None
        wanted = spark.createDataFrame([(u,) for u in asked], f"user {kind}")
        found = wanted.join(self.user_index_, "user").collect()
        missing = set(asked) - {r["user"] for r in found}
        if missing:
            raise LatentAtlasError(f"unknown user id {asked[sorted(missing, key=str)[0]]!r} "
                                   f"(not in the training data)")
        subset = spark.createDataFrame([(r["u"],) for r in found], "u int")
        recs = (self.model_.recommendForUserSubset(subset, int(n))
                .select("u", F.posexplode("recommendations").alias("rank", "rec"))
                .select("u", "rank", F.col("rec.i").alias("i"), F.col("rec.rating").alias("score"))
                .join(self.user_index_, "u").join(self.item_index_, "i"))
        if self.user_means_ is not None:
            recs = recs.join(self.user_means_, "user", "left").withColumn(
                "score", F.col("score") + F.coalesce(F.col("mean"), F.lit(self.global_mean_)))
        out: dict = {u: [] for u in asked.values()}
        for r in recs.orderBy("user", "rank").collect():
            out[asked[r["user"]]].append((r["item"], float(r["score"])))
        return out

    # --- export ------------------------------------------------------------------------------------------
    def factors(self) -> dict:
        """The learned state as numpy arrays, in ALS id order (index ``u`` is ``user_ids[u]``): ``user_ids``,
        ``item_ids``, ``user_factors`` (n_users × k), ``item_factors`` (n_items × k), ``user_means``
        (zeros without centring), ``global_mean``. Collects the per-user and per-item tables only."""
        self._check_fitted()
        users = self._collect_side(self.model_.userFactors, self.user_index_, "user", "u")
        items = self._collect_side(self.model_.itemFactors, self.item_index_, "item", "i")
        if self.user_means_ is not None:
            means = dict((r["user"], r["mean"]) for r in self.user_means_.collect())
            user_means = np.array([means.get(u, self.global_mean_) for u in users[0]], dtype=np.float64)
        else:
            user_means = np.zeros(len(users[0]))
        return {"user_ids": _as_ids(users[0]), "item_ids": _as_ids(items[0]), "user_factors": users[1],
                "item_factors": items[1], "user_means": user_means, "global_mean": self.global_mean_,
                "rating_range": self.rating_range_}

    def to_local(self, train=None, *, include_seen: bool | None = None):
        """The fitted model as a local :class:`~latentatlas.ratings.model.LatentFactorModel`
        (``center="user"``, ``reg_weighting="count"`` — Spark's objective), so ``save``/``load``,
        ``predict_ids``, ``recommend_ids`` and the ``recommend``/``report`` commands work on it.

        The local model excludes each user's training items from recommendations; that needs the training
        (user, item) pairs on the driver, 8 bytes a rating. ``include_seen=None`` collects them (from
        ``train``, the DataFrame given to :meth:`fit`) only up to 20 M ratings; without them the exported
        model recommends seen items too, as Spark's ``recommendForUserSubset`` does.
        """
        from latentatlas.ratings.model import History, LatentFactorModel

        f = self.factors()
        model = LatentFactorModel(k=int(self.k), reg=float(self.reg), solver="als", max_steps=int(self.max_iter),
                                  center="user" if self.center else "none", reg_weighting="count",
                                  seed=int(self.seed))
        mu = f["global_mean"] if self.center else 0.0
        model.user_factors_ = f["user_factors"]
        model.item_factors_ = f["item_factors"]
        model.user_bias_ = (f["user_means"] - mu) if self.center else np.zeros(len(f["user_ids"]))
        model.item_bias_ = np.zeros(len(f["item_ids"]))
        model.user_ids_, model.item_ids_ = f["user_ids"], f["item_ids"]
        model.mu_ = float(mu)
        model.scale_ = tuple(f["rating_range"])
        if include_seen is None:
            include_seen = train is not None and self.n_train_ <= 20_000_000
        if include_seen:
            if train is None:
                raise LatentAtlasError("include_seen needs the training DataFrame")
            model.seen_indptr_, model.seen_items_ = self._seen(train)
        else:
            model.seen_indptr_ = np.zeros(len(f["user_ids"]) + 1, dtype=np.int64)
            model.seen_items_ = np.zeros(0, dtype=np.int32)
        model.history_ = History(steps=[int(self.max_iter)], seconds=[self.fit_seconds_ / self.max_iter],
                                 best_step=int(self.max_iter), stopped_at=int(self.max_iter))
        return model

    def _seen(self, train):
        """CSR (indptr, items) of each user's training items, in ALS index order (Arrow transfer)."""
        from pyspark.sql import functions as F

        pairs = (train.select("user", "item").join(self.user_index_, "user").join(self.item_index_, "item")
                 .select("u", "i").orderBy("u", "i").toPandas())
        users = pairs["u"].to_numpy(np.int64)
        items = pairs["i"].to_numpy(np.int32)
        n_users = int(self.user_index_.agg(F.count(F.lit(1))).first()[0])
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        return indptr, items

    def _collect_side(self, factors, index, column: str, key: str):
        rows = index.join(factors.withColumnRenamed("id", key), key, "left").orderBy(key).collect()
        ids = [r[column] for r in rows]
        mat = np.zeros((len(rows), int(self.k)), dtype=np.float32)
        for j, r in enumerate(rows):
            if r["features"] is not None:
                mat[j] = r["features"]
        return ids, mat


def _as_ids(values: list) -> np.ndarray:
    """Ids as int64 when every one is an integer (or a string of one), else str — as the local readers do."""
    if all(isinstance(v, (int, np.integer)) for v in values):
        return np.asarray(values, dtype=np.int64)
    strs = [str(v) for v in values]
    if all(re.fullmatch(r"[+-]?\d{1,18}", s) for s in strs):
        ints = np.asarray([int(s) for s in strs], dtype=np.int64)
        if len(np.unique(ints)) == len(ints):  # "007" and "7" are different ids as text
            return ints
    return np.asarray(strs, dtype=str)


# --- scoring a local model file on Spark -------------------------------------------------------------------
def _factor_tables(spark, model):
    """A local LatentFactorModel's users ``(user, bu, q)`` and items ``(item, bi, p)`` as DataFrames."""
    import pandas as pd

    users = pd.DataFrame({"user": model.user_ids_.tolist(), "bu": model.user_bias_.astype(float),
                          "q": list(model.user_factors_.astype(float))})
    items = pd.DataFrame({"item": model.item_ids_.tolist(), "bi": model.item_bias_.astype(float),
                          "p": list(model.item_factors_.astype(float))})
    return spark.createDataFrame(users), spark.createDataFrame(items)


def _same_id_type(df, column: str, ids: np.ndarray):
    from pyspark.sql import functions as F

    return df.withColumn(column, F.col(column).cast("string" if ids.dtype.kind == "U" else "long"))


def evaluate_model_df(spark, model, df) -> dict:
    """RMSE and MAE of a local :class:`~latentatlas.ratings.model.LatentFactorModel` on ratings held in a
    Spark DataFrame ``(user, item, rating)``, computed by Spark (the model's tables are broadcast; the
    ratings stay distributed). Unknown users or items are predicted from the known part of the baseline,
    as ``predict_ids`` does locally."""
    from pyspark.sql import functions as F

    users, items = _factor_tables(spark, model)
    df = _same_id_type(_same_id_type(df, "user", model.user_ids_), "item", model.item_ids_)
    x = df.join(F.broadcast(users), "user", "left").join(F.broadcast(items), "item", "left")
    dot = F.aggregate(F.zip_with("q", "p", lambda a, b: a * b), F.lit(0.0), lambda acc, v: acc + v)
    known = F.col("q").isNotNull() & F.col("p").isNotNull()
    raw = (F.lit(float(model.mu_)) + F.coalesce("bu", F.lit(0.0)) + F.coalesce("bi", F.lit(0.0))
           + F.when(known, dot).otherwise(F.lit(0.0)))
    lo, hi = model.scale_
    pred = F.least(F.greatest(raw, F.lit(float(lo))), F.lit(float(hi)))
    err = pred - F.col("rating")
    row = x.agg(F.count(F.lit(1)).alias("n"), F.avg(err * err).alias("mse"), F.avg(F.abs(err)).alias("mae"),
                F.sum((~known).cast("long")).alias("unknown")).first()
    if not row["n"]:
        raise LatentAtlasError("no test ratings")
    return {"rmse": float(np.sqrt(row["mse"])), "mae": float(row["mae"]), "n_ratings": int(row["n"]),
            "unknown_ratings": int(row["unknown"])}


# --- commands (the CLI's --engine spark calls these; they hold the Spark side of each command) -------------
def _session_for(master: str, conf, quiet: bool):
    from latentatlas.progress import Progress

    parse_conf(conf)
    require_spark()  # before any progress line, so a missing dependency is the only output
    Progress("spark", quiet)(f"starting Spark (master {master})")
    return get_session(master, conf)


def prepare_command(input, *, out, master: str = "local[*]", conf=None, json_out: bool = False,
                    quiet: bool = False, builtin_size: int = 100_000, **options) -> dict:
    """``latentatlas ratings prepare --engine spark``: read → k-core → split on Spark; writes the three
    parts as Parquet directories plus ``summary.json`` and ``run.json`` into ``out``; prints the summary."""
    import sys
    from datetime import datetime, timezone

    from latentatlas.fsutil import to_json
    from latentatlas.ratings.pipeline import summary_text

    spark = _session_for(master, conf, quiet or json_out)
    read_keys = ("format", "user_col", "item_col", "rating_col", "sep", "header", "duplicates")
    read_options = {k: options.pop(k) for k in read_keys if options.get(k) is not None}
    prepared = prepare_df(spark, input, builtin_size=builtin_size, quiet=quiet or json_out, **options,
                          **read_options)
    config = {"input": prepared.summary["source"], "spark_master": master, **options, **read_options}
    prepared.write(out, config=config, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if json_out:
        print(to_json(prepared.summary, indent=None))
    else:
        print(summary_text(prepared.summary))
        if not quiet:
            print(f"wrote {out}/train.parquet, validation.parquet, test.parquet", file=sys.stderr)
    return prepared.summary


def _has_prepared_parts(spark, location: str) -> bool:
    """Whether ``location`` is a directory written by ``prepare --engine spark`` (local or any Hadoop URI)."""
    target = f"{location.rstrip('/')}/train.parquet"
    if not _is_uri(location):
        return Path(target).is_dir()
    try:
        jvm = spark.sparkContext._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(target)
        return bool(hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hpath))
    except Exception:  # an unreachable file system is reported when the data is read
        return False


def _spark_parts(spark, data, train_file, validation_file, test_file, *, min_entries, validation_fraction,
                 test_fraction, seed, format, quiet):
    """(train, validation or None, test or None) DataFrames and a description of the source."""
    given = [f for f in (train_file, validation_file, test_file) if f is not None]
    if given and data is not None:
        raise LatentAtlasError("give either DATA or --train/--validation/--test files, not both")
    if given:
        if train_file is None:
            raise LatentAtlasError("--validation and --test need --train")
        read = [read_ratings_df(spark, f, format=format)[0] if f is not None else None
                for f in (train_file, validation_file, test_file)]
        return read, f"train {train_file}" + (f", test {test_file}" if test_file else "")
    if data is not None:
        data = _location(data)
    if data is not None and _has_prepared_parts(spark, data):
        base = data.rstrip("/")
        return [spark.read.parquet(f"{base}/{name}.parquet") for name in ("train", "validation", "test")], data
    if data is not None and not _is_uri(str(data)) and Path(data).is_dir() and (Path(data) / "prepared.npz").exists():
        from latentatlas.ratings import prep

        s = prep.Split.load(Path(data) / "prepared.npz")
        return [ratings_to_df(spark, r) for r in (s.train, s.validation, s.test)], str(data)
    prepared = prepare_df(spark, data, min_entries=min_entries, validation_fraction=validation_fraction,
                          test_fraction=test_fraction, seed=seed, quiet=quiet,
                          **({"format": format} if format else {}))
    s = prepared.split
    return [s.train, s.validation, s.test], prepared.summary["source"]


def train_command(data=None, *, train_file=None, validation_file=None, test_file=None, k=None, reg=None,
                  max_steps=None, seed: int = 0, solver: str = "als", center: str = "user",
                  reg_weighting: str = "count", min_entries: int = 4, validation_fraction: float = 0.1,
                  test_fraction: float = 0.1, format=None, out=None, metrics=None, json_out: bool = False,
                  quiet: bool = False, master: str = "local[*]", conf=None) -> dict:
    """``latentatlas ratings train --engine spark``: Spark MLlib ALS on the prepared (or given) split, test
    RMSE/MAE on Spark, and the model exported to ``out/model.npz`` in the local format (so ``ratings
    recommend``, ``evaluate`` and ``report`` work on it locally). Flags map as: ``--k`` → rank, ``--reg``
    → regParam (λ per rating: Spark always weights λ by the row's number of ratings), ``--max-steps`` →
    maxIter (no early stopping on Spark), ``--seed`` → seed."""
    from datetime import datetime, timezone

    from latentatlas.fsutil import to_json, write_json
    from latentatlas.progress import Progress

    log = Progress("train spark", quiet)
    if solver != "als":
        raise LatentAtlasError(f"the Spark engine trains with ALS only (Spark MLlib); got --solver {solver}")
    if reg_weighting != "count":
        raise LatentAtlasError("Spark's ALS always weights λ by each row's number of ratings; "
                               "use --reg-weighting count (the default) with --engine spark")
    if center == "biases":
        log("the Spark engine centres on user means (--center user); biases are a local-engine option")
        center = "user"
    if center not in ("user", "none"):
        raise LatentAtlasError(f"--center must be user or none with --engine spark, got {center!r}")
    spark = _session_for(master, conf, quiet)
    (train, val, test), source = _spark_parts(
        spark, data, train_file, validation_file, test_file, min_entries=min_entries,
        validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed, format=format, quiet=quiet)
    est = SparkALS(k=k if k is not None else 64, reg=reg if reg is not None else 0.12,
                   max_iter=max_steps if max_steps is not None else 10, seed=seed, center=center == "user")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    log(f"ALS k={est.k}, regParam={est.reg}, maxIter={est.max_iter} on {source}")
    est.fit(train)
    log(f"trained on {est.n_train_:,} ratings in {est.fit_seconds_:.1f} s")
    result = {"engine": "spark", "solver": "als", "k": est.k, "reg": est.reg, "max_iter": est.max_iter,
              "seconds_per_iteration": est.fit_seconds_ / est.max_iter, "fit_seconds": est.fit_seconds_,
              "train_ratings": est.n_train_, "best_iteration": est.max_iter, "stopped_at": est.max_iter,
              "converged_after": -1}
    for name, part in (("validation", val), ("test", test)):
        if part is not None:
            ev = est.evaluate(part)
            if ev["n"]:
                result.update({f"{name}_rmse": ev["rmse"], f"{name}_mae": ev["mae"], f"{name}_ratings": ev["n"],
                               f"{name}_cold_ratings": ev["n_cold"]})
    if metrics is not None:
        write_json(metrics, {**result, "source": source})
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model = est.to_local(train)
        model.save(out / "model.npz")
        write_json(out / "metrics.json", {**result, "source": source, "train_loss": [], "validation_loss": []})
        write_json(out / "run.json", {
            "kind": "ratings-train", "title": f"Spark ALS latent factor model (k={est.k})", "created": created,
            "config": {"data": source, "engine": "spark", "spark_master": master, "k": est.k, "reg": est.reg,
                       "max_steps": est.max_iter, "seed": seed, "center": center, "reg_weighting": "count",
                       "min_entries": min_entries, "validation_fraction": validation_fraction,
                       "test_fraction": test_fraction},
            "metrics": {k_: v for k_, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "figures": [], "artifacts": {"model": "model.npz", "metrics": "metrics.json"},
            "tables": {"recommendations": _top_user_rows(est, train)},
        })
        log(f"wrote {out}/")
    if json_out:
        print(to_json(result, indent=None))
    else:
        parts = [f"spark als k={est.k}"]
        for key, label in (("test_rmse", "test RMSE"), ("test_mae", "MAE"), ("validation_rmse", "validation RMSE")):
            if key in result:
                parts.append(f"{label} {result[key]:.4f}")
        parts.append(f"{est.max_iter} iterations, {result['seconds_per_iteration']:.2f} s/iteration")
        print(", ".join(parts))
    return result


def _top_user_rows(est: SparkALS, train, n_users: int = 3, n: int = 10) -> list[dict]:
    from pyspark.sql import functions as F

    top = [r["user"] for r in train.groupBy("user").count().orderBy(F.desc("count"), "user").limit(n_users).collect()]
    recs = est.recommend(top, n)
    plain = lambda v: _as_ids([v])[0].item()  # noqa: E731  (the ids as the exported model holds them)
    return [{"user": plain(u), "rank": r + 1, "item": plain(i), "score": round(s, 4)}
            for u in top for r, (i, s) in enumerate(recs[u])]


def evaluate_command(model_path, test, *, format=None, json_out: bool = False, master: str = "local[*]",
                     conf=None, quiet: bool = False) -> dict:
    """``latentatlas ratings evaluate MODEL TEST --engine spark``: RMSE and MAE computed by Spark on a test
    set read by Spark (a ratings file, a Parquet directory, or the ``test.parquet`` of a Spark-prepared
    directory). Ranking metrics are computed by the local engine only."""
    from latentatlas.fsutil import to_json
    from latentatlas.ratings.model import LatentFactorModel

    model = LatentFactorModel.load(model_path)
    spark = _session_for(master, conf, quiet or json_out)
    test = _location(test)
    path = Path(test) if not _is_uri(test) else None
    if path is not None and path.is_dir() and (path / "test.parquet").exists():
        df = spark.read.parquet(str(path / "test.parquet"))
    else:
        df = read_ratings_df(spark, test, format=format)[0]
    out = evaluate_model_df(spark, model, df)
    if json_out:
        print(to_json(out, indent=None))
    else:
        for name, value in out.items():
            print(f"{name:20s} {value:.4f}" if isinstance(value, float) else f"{name:20s} {value}")
    return out


def recommend_model_df(spark, model, user, n: int = 10, exclude_seen: bool = True) -> list[tuple]:
    """Top-``n`` ``(item id, score)`` for one user of a local model, scored by Spark over the item table
    (``model.recommend_ids`` computes the same locally)."""
    from pyspark.sql import functions as F

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise LatentAtlasError(f"n must be an integer >= 1, got {n!r}")
    u = model.user_index(user)
    _, items = _factor_tables(spark, model)
    q = F.array(*[F.lit(float(x)) for x in model.user_factors_[u]])
    dot = F.aggregate(F.zip_with(q, "p", lambda a, b: a * b), F.lit(0.0), lambda acc, v: acc + v)
    scored = items.withColumn("score", F.lit(float(model.mu_ + model.user_bias_[u])) + F.col("bi") + dot)
    if exclude_seen:
        seen = model.item_ids_[model.seen_items_[model.seen_indptr_[u]:model.seen_indptr_[u + 1]]].tolist()
        if seen:
            scored = scored.filter(~F.col("item").isin(seen))
    rows = scored.orderBy(F.desc("score"), "item").limit(int(n)).collect()
    return [(r["item"], float(r["score"])) for r in rows]


def recommend_command(model_path, user, n: int = 10, *, include_seen: bool = False, json_out: bool = False,
                      master: str = "local[*]", conf=None, quiet: bool = False) -> list[dict]:
    """``latentatlas ratings recommend MODEL --user ID --engine spark``."""
    from latentatlas.fsutil import to_json
    from latentatlas.ratings.model import LatentFactorModel

    model = LatentFactorModel.load(model_path)
    spark = _session_for(master, conf, quiet or json_out)
    recs = recommend_model_df(spark, model, user, n, exclude_seen=not include_seen)
    rows = [{"rank": r + 1, "item": i.item() if hasattr(i, "item") else i, "score": round(s, 4)}
            for r, (i, s) in enumerate(recs)]
    if json_out:
        print(to_json(rows, indent=None))
    else:
        print(f"{'rank':>4}  {'item':>12}  score")
        for row in rows:
            print(f"{row['rank']:>4}  {str(row['item']):>12}  {row['score']:.3f}")
    return rows


ENGINES = ("local", "spark")


def check_engine(engine: str) -> str:
    """The ``--engine`` value, validated (``local`` or ``spark``)."""
    if engine not in ENGINES:
        raise LatentAtlasError(f"--engine must be local or spark, got {engine!r}")
    return engine
