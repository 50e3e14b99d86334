"""Preparation on Spark: cold-start (k-core) filtering, seeded splits with the local engine's sizes, and the
local engine's baselines (damped global/user/item biases, or user means) as DataFrame aggregations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latentatlas.errors import LatentAtlasError
from latentatlas.progress import as_progress
from latentatlas.ratings.pipeline import DEFAULT_TEST_FRACTION, DEFAULT_VALIDATION_FRACTION
from latentatlas.ratings.spark.session import is_uri

BIAS_ITERATIONS = 10  # as the local model's baseline (LatentFactorModel._fit_baseline)


def kcore_df(df, min_entries: int, *, progress=None, rounds_per_job: int = 2):
    """Recursive cold-start filter: drop users and items with ``min_entries`` or fewer ratings until none is
    left (same result as :func:`latentatlas.ratings.prep.kcore`; the k-core is unique).

    A round counts each user's and item's ratings with window functions (no join, no driver round trip)
    and drops both kinds at once, as the local engine does; ``rounds_per_job`` rounds run per Spark job,
    whose result is cached (and checkpointed every few jobs, so the plan does not grow without bound).
    ``progress`` (a callback or :class:`~latentatlas.progress.Progress`) hears one line per job.

    Examples
    --------
    >>> core = kcore_df(df, 4)  # doctest: +SKIP
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
        if progress is not None:
            first, last = rounds_per_job * (jobs - 1) + 1, rounds_per_job * jobs
            progress(f"k-core round{'s' if last > first else ''} {first}{f'-{last}' if last > first else ''}: "
                     f"{n:,} -> {m:,} ratings")
        current, done = nxt, m == n
        n = m
        if done:
            break
    if n == 0:
        raise LatentAtlasError(f"no ratings left after removing users and items with {min_entries} or fewer "
                               f"ratings; lower min_entries")
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

    PARTS = ("train", "validation", "test")

    def count(self) -> dict[str, int]:
        """The sizes, counted (one Spark job)."""
        from pyspark.sql import functions as F

        if self.tagged is None:
            return {name: getattr(self, name).count() for name in self.PARTS}
        by_role = {r["_role"]: r["n"] for r in self.tagged.groupBy("_role").agg(F.count(F.lit(1)).alias("n")).collect()}
        return {name: int(by_role.get(role, 0)) for role, name in enumerate(self.PARTS)}

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

    Examples
    --------
    >>> parts = split_df(core, validation_fraction=0.1, test_fraction=0.1, seed=0)  # doctest: +SKIP
    >>> parts.sizes()  # doctest: +SKIP
    {'train': 80000, 'validation': 10000, 'test': 10000}
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from latentatlas.ratings.prep import _count

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


# --- baselines -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SparkBiases:
    """The baseline ``mu + b_u + b_i`` on Spark: ``mu`` a float, ``user`` a DataFrame ``(user, bu)``, ``item`` a
    DataFrame ``(item, bi)``. Users and items without training ratings have no row (their offset is 0)."""

    mu: float
    user: object
    item: object

    def residuals(self, df):
        """``df`` ``(user, item, rating)`` with the baseline subtracted from ``rating``."""
        from pyspark.sql import functions as F

        return baseline_column(df, self).select("user", "item", (F.col("rating") - F.col("_base")).alias("rating"))


def fit_biases_df(train, reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = BIAS_ITERATIONS) -> SparkBiases:
    """Global mean plus damped user and item offsets on Spark: :func:`latentatlas.ratings.prep.fit_biases`
    (the local model's ``center="biases"``) as DataFrame aggregations, with the same result.

    Alternating damped means, ``b_i = Σ_u (r − μ − b_u) / (n_i + reg_item)``, then the same for ``b_u``,
    ``n_iter`` times; each half-step is one aggregation whose small result (one row per item or user) is
    checkpointed, so the plan stays short. The ratings are shuffled twice per iteration.

    Examples
    --------
    >>> b = fit_biases_df(train_df)  # doctest: +SKIP
    >>> b.mu, b.user.columns, b.item.columns  # doctest: +SKIP
    (3.52, ['user', 'bu'], ['item', 'bi'])
    """
    from pyspark.sql import functions as F

    if reg_user < 0 or reg_item < 0:
        raise LatentAtlasError(f"bias regularisers must be >= 0, got {reg_user}, {reg_item}")
    if n_iter < 1:
        raise LatentAtlasError(f"n_iter must be >= 1, got {n_iter}")
    ratings = train.select("user", "item", F.col("rating").cast("double").alias("rating")).persist()
    mu = ratings.agg(F.avg("rating")).first()[0]
    if mu is None:
        ratings.unpersist()
        raise LatentAtlasError("no training ratings")
    mu = float(mu)

    def damped(side: str, other, other_col: str, reg: float, name: str):
        resid = F.col("rating") - F.lit(mu)
        x = ratings
        if other is not None:
            x = x.join(other, "user" if side == "item" else "item", "left")
            resid = resid - F.coalesce(F.col(other_col), F.lit(0.0))
        return (x.groupBy(side).agg((F.sum(resid) / (F.count(F.lit(1)) + F.lit(float(reg)))).alias(name))
                .localCheckpoint())

    bu = bi = None
    for _ in range(n_iter):
        bi = damped("item", bu, "bu", reg_item, "bi")
        bu = damped("user", bi, "bi", reg_user, "bu")
    ratings.unpersist()
    return SparkBiases(mu, bu, bi)


def user_means_df(train):
    """Each user's mean rating over ``train``: DataFrame ``(user, mean)``."""
    from pyspark.sql import functions as F

    return train.groupBy("user").agg(F.avg("rating").alias("mean"))


def user_mean_baseline(train) -> SparkBiases:
    """The local model's ``center="user"`` baseline: ``mu`` the global mean, ``b_u`` each user's mean minus it."""
    from pyspark.sql import functions as F

    mu = float(train.agg(F.avg("rating")).first()[0])
    users = user_means_df(train).select("user", (F.col("mean") - F.lit(mu)).alias("bu"))
    items = train.sparkSession.createDataFrame([], f"item {dict(train.dtypes)['item']}, bi double")
    return SparkBiases(mu, users, items)


def baseline_column(df, biases: SparkBiases, name: str = "_base"):
    """``df`` plus a column ``name`` holding ``mu + b_u + b_i`` (an offset is 0 where the user or item has none)."""
    from pyspark.sql import functions as F

    x = df.join(biases.user, "user", "left").join(biases.item, "item", "left")
    base = F.lit(float(biases.mu)) + F.coalesce(F.col("bu"), F.lit(0.0)) + F.coalesce(F.col("bi"), F.lit(0.0))
    return x.withColumn(name, base).drop("bu", "bi")


def center_df(df, means, fill: float):
    """Subtract each user's mean (users without one get ``fill``, the global training mean): ``(user, item,
    rating)`` with centred ratings."""
    from pyspark.sql import functions as F

    return (df.join(means, "user", "left")
            .select("user", "item", (F.col("rating") - F.coalesce(F.col("mean"), F.lit(fill))).alias("rating")))


# --- the pipeline ----------------------------------------------------------------------------------------------
@dataclass
class SparkPrepared:
    """Result of :func:`prepare_df`: the split, a summary with the same keys as the local one, and the config."""

    split: SparkSplit
    summary: dict
    config: dict | None = None

    def write(self, out_dir: str | Path, created: str | None = None) -> Path:
        """Write ``train.parquet``, ``validation.parquet``, ``test.parquet`` (Spark directories),
        ``summary.json`` and ``run.json`` (through :mod:`latentatlas.runs`) into ``out_dir``.

        A local ``out_dir`` is replaced as a whole (written beside it, swapped in at the end); a URI
        (``hdfs://…``) gets the three Parquet parts only, as a run folder is local.
        """
        from latentatlas import runs
        from latentatlas.fsutil import write_json

        out = str(out_dir).rstrip("/")
        if is_uri(out):
            self._write_parts(out)
            return Path(out)
        with runs.staged_run(out) as stage:
            self._write_parts(str(stage))
            write_json(stage / runs.FILES[runs.SUMMARY], self.summary)
            metrics = {k: self.summary[k] for k in ("users", "items", "ratings", "density", "duplicates")}
            metrics.update({f"{k}_ratings": v for k, v in self.summary["split"].items()})
            artifacts = {part: f"{part}.parquet" for part in (runs.TRAIN_PART, runs.VALIDATION_PART, runs.TEST_PART)}
            runs.write_run(
                stage, runs.RATINGS_PREPARE, f"Ratings (Spark): {self.summary['source']}", created=created,
                config=dict(self.config or {}, engine="spark"), metrics=metrics,
                artifacts={**artifacts, runs.SUMMARY: runs.FILES[runs.SUMMARY]},
                tables={"rating histogram": [{"rating": k, "count": v}
                                             for k, v in self.summary["histogram"].items()]})
        return Path(out)

    def _write_parts(self, out: str) -> None:
        for name in SparkSplit.PARTS:
            getattr(self.split, name).write.mode("overwrite").parquet(f"{out}/{name}.parquet")


def prepare_df(spark, path=None, *, min_entries: int = 4, n_validation: int | None = None,
               n_test: int | None = None, validation_fraction: float | None = None,
               test_fraction: float | None = None, leave_k_out: int | None = None, seed: int = 0,
               builtin_size: int = 100_000, progress=None, **read_options) -> SparkPrepared:
    """Read → k-core → split on Spark, as :func:`latentatlas.ratings.pipeline.prepare_ratings` does locally
    (same defaults: 10 % validation and 10 % test when no split is given). ``path=None`` uses the built-in
    synthetic set (generated locally and handed to Spark). ``progress``: a callback or
    :class:`~latentatlas.progress.Progress` for the progress lines.

    Examples
    --------
    >>> prepared = prepare_df(spark, "u.data")  # doctest: +SKIP
    >>> prepared.summary["split"]  # doctest: +SKIP
    {'train': 79999, 'validation': 10000, 'test': 10000}
    """
    from pyspark.sql import functions as F

    from latentatlas.ratings.spark.io import ratings_to_df, read_ratings_df

    log = as_progress(progress, "prepare/spark")
    if not any(v is not None for v in (n_validation, n_test, validation_fraction, test_fraction, leave_k_out)):
        validation_fraction, test_fraction = DEFAULT_VALIDATION_FRACTION, DEFAULT_TEST_FRACTION
    if path is None:
        from latentatlas.ratings.pipeline import load_input

        raw, n_dup = ratings_to_df(spark, load_input(None, builtin_size=builtin_size, seed=seed)), 0
        source = f"built-in synthetic ({builtin_size:,} ratings, seed {seed})"
    else:
        raw, n_dup = read_ratings_df(spark, path, progress=log, **read_options)
        source = str(path)
    before = raw.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("user").alias("u"),
                     F.countDistinct("item").alias("i")).first()
    log(f"read {before['n']:,} ratings: {before['u']:,} users x {before['i']:,} items from {source}")
    if n_dup:
        log(f"{n_dup:,} repeated (user, item) pairs resolved by keeping {read_options.get('duplicates', 'last')}")
    filtered = kcore_df(raw, min_entries, progress=log)
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
    config = {"input": source, "min_entries": min_entries, "n_validation": n_validation, "n_test": n_test,
              "validation_fraction": validation_fraction, "test_fraction": test_fraction,
              "leave_k_out": leave_k_out, "seed": seed,
              **{k: v for k, v in read_options.items() if v is not None}}
    return SparkPrepared(parts, summary, config)


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
