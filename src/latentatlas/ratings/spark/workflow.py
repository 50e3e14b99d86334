"""The ``--engine spark`` side of ``ratings prepare | train | evaluate | recommend``, as library calls.

Each function starts (or reuses) a Spark session, does the work, writes its run folder through
:mod:`latentatlas.runs` where it has one, and returns its result; none prints. Progress lines go to the
``latentatlas`` logger and to ``progress`` (a callback or :class:`~latentatlas.progress.Progress`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from latentatlas.errors import LatentAtlasError
from latentatlas.progress import as_progress
from latentatlas.ratings.pipeline import DEFAULT_TEST_FRACTION, DEFAULT_VALIDATION_FRACTION
from latentatlas.ratings.spark.session import DEFAULT_MASTER, get_session, is_uri, parse_conf, require_spark

READ_OPTIONS = ("format", "user_col", "item_col", "rating_col", "sep", "header", "duplicates")
RECOMMENDATION_USERS = 3  # users whose top-N goes into run.json, as the local engine's run
RECOMMENDATION_N = 10


def start_session(master: str = DEFAULT_MASTER, conf=None, progress=None):
    """Check the configuration and the installation first (so a missing dependency is the only output),
    then start or reuse the Spark session."""
    parse_conf(conf)
    require_spark()
    as_progress(progress, "spark")(f"starting Spark (master {master})")
    return get_session(master, conf)


# --- prepare ---------------------------------------------------------------------------------------------------
def prepare(input=None, out: str | os.PathLike = "prepared", *, master: str = DEFAULT_MASTER, conf=None,
            builtin_size: int = 100_000, progress=None, **options):
    """Read → k-core → split on Spark and write the run folder ``out`` (``train.parquet``,
    ``validation.parquet``, ``test.parquet``, ``summary.json``, ``run.json``; a URI gets the Parquet parts
    only). ``options``: the split options of :func:`~latentatlas.ratings.spark.prep.prepare_df` and the
    read options of :func:`~latentatlas.ratings.spark.io.read_ratings_df` (None values are ignored).
    Returns the :class:`~latentatlas.ratings.spark.prep.SparkPrepared` (``.summary`` has the local keys).

    Examples
    --------
    >>> from latentatlas.ratings.spark import workflow
    >>> workflow.prepare("reviews.json", "prepared/", master="local[4]").summary["split"]  # doctest: +SKIP
    """
    from latentatlas.ratings.spark.prep import prepare_df

    spark = start_session(master, conf, progress)
    options = {k: v for k, v in options.items() if v is not None}
    prepared = prepare_df(spark, None if input is None else str(input), builtin_size=builtin_size,
                          progress=as_progress(progress, "prepare/spark"), **options)
    prepared.config = {**(prepared.config or {}), "spark_master": master}
    prepared.write(out)
    return prepared


# --- train -----------------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` produced: the scalar ``metrics`` (the local engine's keys where they apply), the
    exported local ``model`` (a :class:`~latentatlas.ratings.model.LatentFactorModel`), the Spark estimator,
    where it came from and the run folder written (or None)."""

    metrics: dict
    model: object
    estimator: object
    source: str
    out: Path | None = None
    recommendations: list = field(default_factory=list)


def _has_prepared_parts(spark, location: str) -> bool:
    """Whether ``location`` is a folder written by ``prepare --engine spark`` (local or any Hadoop URI)."""
    target = f"{location.rstrip('/')}/train.parquet"
    if not is_uri(location):
        return Path(target).is_dir()
    try:
        jvm = spark.sparkContext._jvm
        hpath = jvm.org.apache.hadoop.fs.Path(target)
        return bool(hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hpath))
    except Exception:  # an unreachable file system is reported when the data is read
        return False


def load_parts(spark, data=None, train_file=None, validation_file=None, test_file=None, *, min_entries: int = 4,
               validation_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0, progress=None,
               **read_options):
    """``([train, validation or None, test or None], source)``: DataFrames from a Spark-prepared folder, a
    local ``prepared.npz`` folder, given train/validation/test files, or a raw ratings file (prepared here
    as ``prepare`` would, with the given split). ``read_options``: those of
    :func:`~latentatlas.ratings.spark.io.read_ratings_df` (None values are ignored)."""
    from latentatlas.ratings.pipeline import PREPARED_FILE
    from latentatlas.ratings.spark.io import ratings_to_df, read_ratings_df
    from latentatlas.ratings.spark.prep import prepare_df

    read_options = {k: v for k, v in read_options.items() if v is not None}
    from latentatlas.ratings.workflow import check_sources

    if check_sources(data, train_file, validation_file, test_file):
        read = [read_ratings_df(spark, str(f), **read_options)[0] if f is not None else None
                for f in (train_file, validation_file, test_file)]
        return read, f"train {train_file}" + (f", test {test_file}" if test_file else "")
    data = None if data is None else str(data)
    if data is not None and _has_prepared_parts(spark, data):
        base = data.rstrip("/")
        return [spark.read.parquet(f"{base}/{name}.parquet") for name in ("train", "validation", "test")], data
    if data is not None and not is_uri(data) and (Path(data) / PREPARED_FILE).is_file():
        from latentatlas.ratings.prep import Split

        s = Split.load(Path(data) / PREPARED_FILE)
        return [ratings_to_df(spark, r) for r in (s.train, s.validation, s.test)], data
    prepared = prepare_df(spark, data, min_entries=min_entries, validation_fraction=validation_fraction,
                          test_fraction=test_fraction, seed=seed, progress=progress, **read_options)
    s = prepared.split
    return [s.train, s.validation, s.test], prepared.summary["source"]


#: Spark implicit ALS (``solver="ials"``): regParam and the confidence scale applied to graded ratings (0.2-1).
IALS_REG = 0.1
IALS_ALPHA = 10.0


def train(data=None, *, train_file=None, validation_file=None, test_file=None, k: int | None = None,
          reg: float | None = None, max_steps: int | None = None, seed: int = 0, solver: str = "als",
          center: str = "biases", bias_reg: float = 5.0, reg_weighting: str = "count", min_entries: int = 4,
          validation_fraction: float | None = None, test_fraction: float | None = None, out=None, metrics=None,
          master: str = DEFAULT_MASTER, conf=None, progress=None, **read_options) -> TrainResult:
    """Spark MLlib ALS on the prepared (or given) split with the local engine's defaults and baseline, test
    and validation RMSE/MAE computed by Spark, the model exported in the local format and, with ``out``, a
    run folder (``model.npz``, ``metrics.json``, ``run.json``) written through :mod:`latentatlas.runs`.

    ``k`` → rank, ``reg`` → regParam (λ per rating; Spark always weights λ by the row's number of ratings,
    the local ``reg_weighting="count"``), ``max_steps`` → maxIter (no early stopping on Spark; None means
    :data:`~latentatlas.ratings.spark.als.DEFAULT_MAX_ITER`), ``seed`` → seed, ``center``/``bias_reg`` as
    the local model. ``metrics``: also write the metrics JSON to this path. ``read_options``: those of
    :func:`~latentatlas.ratings.spark.io.read_ratings_df`, for raw ratings files.

    Examples
    --------
    >>> from latentatlas.ratings.spark import workflow
    >>> workflow.train("prepared/", out="model/").metrics["test_rmse"]  # doctest: +SKIP
    """
    from latentatlas.ratings.spark.als import SparkALS

    log = as_progress(progress, "train spark")
    if solver not in ("als", "ials"):
        raise LatentAtlasError(f"the Spark engine trains with Spark MLlib's ALS: solver 'als' (ratings) or 'ials' "
                               f"(implicit ALS for top-N lists), not {solver!r}")
    implicit = solver == "ials"
    if reg_weighting != "count":
        raise LatentAtlasError("Spark's ALS always weights λ by each row's number of ratings; "
                               "use reg_weighting='count' (the default) on Spark")
    est = SparkALS(reg=IALS_REG if implicit and reg is None else reg, max_iter=max_steps, seed=seed, center=center,
                   bias_reg=bias_reg, implicit=implicit, alpha=IALS_ALPHA, **({"k": k} if k is not None else {}))
    est._validate()  # before Spark starts: a bad argument is the only output
    if metrics is not None and Path(metrics).is_dir():
        raise LatentAtlasError(f"metrics={str(metrics)!r} is a folder; give a file name")
    spark = start_session(master, conf, progress)
    validation_fraction = DEFAULT_VALIDATION_FRACTION if validation_fraction is None else validation_fraction
    test_fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    (train_df, val, test), source = load_parts(
        spark, data, train_file, validation_file, test_file, min_entries=min_entries,
        validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed,
        progress=as_progress(progress, "prepare/spark"), **read_options)
    log(f"ALS k={est.k}, regParam={est.reg_value}, maxIter={est.iterations}, "
        + (f"implicitPrefs, alpha={est.alpha}" if implicit else f"center={est.center}") + f" on {source}")
    est.fit(train_df)
    log(f"trained on {est.n_train_:,} ratings in {est.fit_seconds_:.1f} s")
    result = {"engine": "spark", "solver": solver, "k": est.k, "reg": est.reg_value, "max_iter": est.iterations,
              "center": est.center, "seconds_per_iteration": est.fit_seconds_ / est.iterations,
              "fit_seconds": est.fit_seconds_, "train_ratings": est.n_train_, "best_iteration": est.iterations,
              "stopped_at": est.iterations, "converged_after": -1}
    for name, part in (("validation", val), ("test", test)):
        if part is not None and not implicit:  # an implicit model ranks; it predicts no ratings
            ev = est.evaluate(part)
            if ev["n"]:
                result.update({f"{name}_rmse": ev["rmse"], f"{name}_mae": ev["mae"], f"{name}_ratings": ev["n"],
                               f"{name}_cold_ratings": ev["n_cold"]})
    model = est.to_local(train_df)
    outcome = TrainResult(result, model, est, source, recommendations=_top_user_rows(model, train_df))
    full = {**result, "source": source, "train_loss": [], "validation_loss": []}
    if metrics is not None:
        from latentatlas.fsutil import write_json

        write_json(metrics, full)
    if out is not None:
        outcome.out = _write_train_run(out, outcome, full, {
            "data": source, "engine": "spark", "spark_master": master, **est.local_params(),
            "min_entries": min_entries, "validation_fraction": validation_fraction, "test_fraction": test_fraction})
        log(f"wrote {outcome.out}/")
    return outcome


def _write_train_run(out, outcome: TrainResult, full: dict, config: dict) -> Path:
    from latentatlas import runs
    from latentatlas.fsutil import write_json

    scalars = {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    with runs.staged_run(out) as stage:
        outcome.model.save(stage / runs.FILES[runs.MODEL])
        write_json(stage / runs.FILES[runs.METRICS], full)
        title = f"Spark {'implicit ALS ranking' if outcome.estimator.implicit else 'ALS latent factor'} model " \
                f"(k={outcome.estimator.k})"
        runs.write_run(stage, runs.RATINGS_TRAIN, title,
                       config=config, metrics=scalars,
                       artifacts={runs.MODEL: runs.FILES[runs.MODEL], runs.METRICS: runs.FILES[runs.METRICS]},
                       tables={"recommendations": outcome.recommendations})
    return Path(out)


def _top_user_rows(model, train_df, n_users: int = RECOMMENDATION_USERS, n: int = RECOMMENDATION_N) -> list[dict]:
    """The top-``n`` of the ``n_users`` users with the most training ratings, from the exported model (seen
    items excluded where they were exported), as the local engine's run shows them."""
    from pyspark.sql import functions as F

    from latentatlas.ratings.spark.als import as_ids

    top = [r["user"] for r in train_df.groupBy("user").count().orderBy(F.desc("count"), "user")
           .limit(n_users).collect()]
    rows = []
    for user in as_ids(top).tolist() if top else []:
        items, scores = model.recommend(user, n)
        rows += [{"user": user, "rank": r + 1, "item": _plain(i), "score": round(float(s), 4)}
                 for r, (i, s) in enumerate(zip(items, scores))]
    return rows


def _plain(x):
    return x.item() if hasattr(x, "item") else x


# --- evaluate and recommend a local model file on Spark --------------------------------------------------------
def evaluate(model_path, test, *, master: str = DEFAULT_MASTER, conf=None, progress=None, **read_options) -> dict:
    """RMSE and MAE of a saved model, computed by Spark on a test set read by Spark (a ratings file, a Parquet
    folder, or the ``test.parquet`` of a Spark-prepared folder): ``rmse``, ``mae``, ``n_ratings``,
    ``unknown_ratings``. Ranking metrics are the local engine's (``--engine local``). ``read_options``:
    those of :func:`~latentatlas.ratings.spark.io.read_ratings_df`."""
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.spark.als import evaluate_model_df
    from latentatlas.ratings.spark.io import read_ratings_df

    model = LatentFactorModel.load(model_path)
    spark = start_session(master, conf, progress)
    test = str(test)
    if not is_uri(test) and (Path(test) / "test.parquet").is_dir():
        df = spark.read.parquet(str(Path(test) / "test.parquet"))
    else:
        df = read_ratings_df(spark, test, **{k: v for k, v in read_options.items() if v is not None})[0]
    return evaluate_model_df(spark, model, df)


def recommend(model_path, user, n: int = 10, *, include_seen: bool = False, master: str = DEFAULT_MASTER,
              conf=None, progress=None) -> list[dict]:
    """Top-``n`` items for ``user`` (an original id) of a saved model, scored by Spark: a list of
    ``{rank, item, score}``, best first."""
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.spark.als import recommend_model_df

    model = LatentFactorModel.load(model_path)
    spark = start_session(master, conf, progress)
    recs = recommend_model_df(spark, model, user, n, exclude_seen=not include_seen)
    return [{"rank": r + 1, "item": _plain(i), "score": round(s, 4)} for r, (i, s) in enumerate(recs)]
