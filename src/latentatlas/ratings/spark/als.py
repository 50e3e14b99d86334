"""Spark MLlib's ALS with the local engine's defaults and baseline, and the way back to a local model file.

:class:`SparkALS` factorises what remains after the same damped global/user/item biases as
:class:`latentatlas.ratings.model.LatentFactorModel` (``center="biases"``, ``bias_reg=5``), with the same
``k`` and λ. Spark's ALS always weights λ by each row's number of ratings (ALS-WR), which is the local
default ``reg_weighting="count"``, so the same ``reg`` means the same objective in both engines. Spark has no
early stopping; it runs :data:`DEFAULT_MAX_ITER` iterations unless told otherwise.

:meth:`SparkALS.to_local` collects only the per-user and per-item tables (factors, biases, ids) and builds
a local model with ``mu_``, ``user_bias_`` and ``item_bias_`` exactly like a locally trained one.
:func:`evaluate_model_df` and :func:`recommend_model_df` go the other way: they score a local model file on
ratings held by Spark.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.spark.prep import SparkBiases, baseline_column, fit_biases_df, user_mean_baseline

#: Iterations when none are given. Spark cannot stop early; on MovieLens-100K the local engine's exact ALS
#: at these defaults reaches its best validation RMSE after 5-14 steps and is within 0.0014 of it from step
#: 10 on, on 3 seeds (benchmarks/RESULTS-spark.md). 10 is also Spark's own default maxIter.
DEFAULT_MAX_ITER = 10
CENTERS = ("biases", "user", "none")
#: Above this many training ratings, :meth:`SparkALS.to_local` does not collect the (user, item) pairs.
SEEN_LIMIT = 20_000_000
#: More iterations than this need a checkpoint directory: ALS's lineage grows by one step per iteration, and
#: around 50 steps serialising a task overflows the JVM stack.
UNCHECKPOINTED_ITERATIONS = 20


def _default_reg() -> float:
    from latentatlas.ratings.model import DEFAULT_REG

    return DEFAULT_REG["als"]


def index_ids(df, column: str, name: str):
    """Distinct values of ``column`` numbered 0, 1, … in sorted order: DataFrame ``(column, name)``.
    Spark's ALS needs integer ids; ours may be strings."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # One sort of the distinct ids in a single partition: the id table is per-user (per-item), far smaller
    # than the ratings, and this costs one job where the distributed numbering of with_row_index costs three.
    return (df.select(column).distinct()
            .withColumn(name, (F.row_number().over(Window.orderBy(column)) - 1).cast("int")))


def _dot(a, b):
    from pyspark.sql import functions as F

    return F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0), lambda acc, v: acc + v)


class SparkALS:
    """Explicit-feedback matrix factorisation with Spark MLlib's ALS, the local engine's model on Spark.

    Parameters
    ----------
    k : int
        Latent factors (Spark's ``rank``); 64 as the local default.
    reg : float or None
        λ per rating (Spark's ``regParam``, always count-weighted); None means the local ALS default, 0.12.
    max_iter : int or None
        ALS iterations (``maxIter``); None means :data:`DEFAULT_MAX_ITER`. No early stopping on Spark.
    seed : int
    center : {"biases", "user", "none"}
        Baseline removed before factorising, as the local model's ``center``: damped global + user + item
        means (``bias_reg`` is their pseudo-count; :func:`~latentatlas.ratings.spark.prep.fit_biases_df`),
        each user's mean, or nothing. It is added back at prediction time; users or items without
        training ratings are predicted from the baseline alone. Predictions are clipped to the training range.
    bias_reg : float
    num_blocks : int or None
        Spark's user and item blocks (default: the context's parallelism, at least 2).
    implicit : bool
        Implicit ALS for ranking (``implicitPrefs``; Hu et al. 2008): every rating is a positive whose
        confidence grows with its value (``1 + alpha·w``, ``w`` from 0.2 for the lowest rating to 1 for the
        highest, as the local :class:`~latentatlas.ratings.ials.ImplicitALS` grades them); no baseline.
        :meth:`to_local` then gives an ``ImplicitALS`` ranking model.
    alpha : float
        ``implicit`` only: Spark's confidence scale.

    Learned state: ``model_`` (the ``ALSModel``), ``user_index_`` / ``item_index_`` (DataFrames mapping
    original ids to ALS ids), ``biases_`` (a :class:`~latentatlas.ratings.spark.prep.SparkBiases`),
    ``rating_range_``, ``n_train_``, ``fit_seconds_``.

    Examples
    --------
    >>> est = SparkALS().fit(train_df)  # doctest: +SKIP
    >>> est.evaluate(test_df)["rmse"]  # doctest: +SKIP
    0.91
    >>> est.to_local(train_df).save("model.npz")  # doctest: +SKIP
    """

    def __init__(self, k: int = 64, reg: float | None = None, max_iter: int | None = None, seed: int = 0,
                 center: str = "biases", bias_reg: float = 5.0, num_blocks: int | None = None,
                 implicit: bool = False, alpha: float = 1.0):
        self.k = k
        self.reg = reg
        self.max_iter = max_iter
        self.seed = seed
        self.center = center
        self.bias_reg = bias_reg
        self.num_blocks = num_blocks
        self.implicit = implicit
        self.alpha = alpha

    @property
    def reg_value(self) -> float:
        """λ in use: ``reg``, or the local ALS default when it is None."""
        return float(self.reg) if self.reg is not None else _default_reg()

    @property
    def iterations(self) -> int:
        return int(self.max_iter) if self.max_iter is not None else DEFAULT_MAX_ITER

    def _validate(self):
        checks.integer("k", self.k, 1)
        if self.reg is not None and (not np.isfinite(self.reg) or self.reg < 0):
            raise LatentAtlasError(f"reg must be >= 0, got {self.reg!r}")
        if self.max_iter is not None and (isinstance(self.max_iter, bool)
                                          or not isinstance(self.max_iter, (int, np.integer)) or self.max_iter <= 0):
            raise LatentAtlasError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if self.center not in CENTERS:
            raise LatentAtlasError(f"center must be one of {', '.join(CENTERS)}; got {self.center!r}")
        if not np.isfinite(self.bias_reg) or self.bias_reg < 0:
            raise LatentAtlasError(f"bias_reg must be >= 0, got {self.bias_reg!r}")
        if not np.isfinite(self.alpha) or self.alpha <= 0:
            raise LatentAtlasError(f"alpha must be > 0, got {self.alpha!r}")
        if self.num_blocks is not None and self.num_blocks <= 0:
            raise LatentAtlasError(f"num_blocks must be positive, got {self.num_blocks!r}")

    def _baseline(self, train) -> SparkBiases:
        if self.center == "biases" and not self.implicit:
            return fit_biases_df(train, float(self.bias_reg), float(self.bias_reg))
        if self.center == "user" and not self.implicit:
            return user_mean_baseline(train)
        spark = train.sparkSession
        return SparkBiases(0.0, spark.createDataFrame([], f"user {dict(train.dtypes)['user']}, bu double"),
                           spark.createDataFrame([], f"item {dict(train.dtypes)['item']}, bi double"))

    def fit(self, train) -> "SparkALS":
        """Fit on a DataFrame ``(user, item, rating)``; returns self."""
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        self._validate()
        train = train.select("user", "item", F.col("rating").cast("double").alias("rating"))
        stats = train.agg(F.count(F.lit(1)).alias("n"), F.min("rating").alias("lo"),
                          F.max("rating").alias("hi")).first()
        if not stats["n"]:
            raise LatentAtlasError("no training ratings")
        self.n_train_ = int(stats["n"])
        self.rating_range_ = (float(stats["lo"]), float(stats["hi"]))
        self.biases_ = self._baseline(train)
        self.biases_.user.persist()
        self.biases_.item.persist()
        self.user_index_ = index_ids(train, "user", "u").persist()
        self.item_index_ = index_ids(train, "item", "i").persist()
        resid = baseline_column(train, self.biases_)
        lo, hi = self.rating_range_
        target = (F.lit(0.2) + F.lit(0.8) * (F.col("rating") - F.lit(lo)) / F.lit(max(hi - lo, 1e-9))) \
            if self.implicit else F.col("rating") - F.col("_base")
        data = (resid.join(self.user_index_, "user").join(self.item_index_, "item")
                .select("u", "i", target.cast("float").alias("r")))
        blocks = self.num_blocks or max(2, data.sparkSession.sparkContext.defaultParallelism)
        als = ALS(rank=int(self.k), regParam=self.reg_value, maxIter=self.iterations, seed=int(self.seed),
                  userCol="u", itemCol="i", ratingCol="r", implicitPrefs=bool(self.implicit),
                  alpha=float(self.alpha), nonnegative=False, numUserBlocks=blocks, numItemBlocks=blocks,
                  coldStartStrategy="nan")
        start = time.perf_counter()
        try:
            with self._checkpoints(data.sparkSession.sparkContext):
                self.model_ = als.fit(data)
        except LatentAtlasError:
            raise
        except Exception as exc:
            msg = re.sub(r"\s+", " ", str(exc)).strip()
            raise LatentAtlasError(f"Spark ALS failed: {msg[:400]}") from None
        self.fit_seconds_ = time.perf_counter() - start
        return self

    @contextlib.contextmanager
    def _checkpoints(self, sc):
        """A checkpoint directory for the fit when ALS needs one (it checkpoints every 10 iterations): the
        context's own if set; on a local master a temporary one, removed with this estimator (the final
        factors may be read back from it) and unset again after the fit; on a cluster, an error asking for one."""
        if sc.getCheckpointDir() or self.iterations <= UNCHECKPOINTED_ITERATIONS:
            yield
            return
        if not sc.master.startswith("local"):
            raise LatentAtlasError(f"{self.iterations} ALS iterations need a checkpoint directory on the cluster; "
                                   f"set spark.checkpoint.dir=hdfs://… in conf= (or use at most "
                                   f"{UNCHECKPOINTED_ITERATIONS} iterations)")
        self._checkpoint_dir = tempfile.TemporaryDirectory(prefix="latentatlas-spark-ckpt-")
        sc.setCheckpointDir(self._checkpoint_dir.name)
        try:
            yield
        finally:
            getattr(sc._jsc.sc(), "checkpointDir_$eq")(sc._jvm.scala.Option.apply(None))

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise LatentAtlasError("this SparkALS is not fitted yet; call fit() first")

    def predict(self, df):
        """``df`` plus a ``prediction`` column (original scale, clipped to the training range) and ``cold``
        (True where the user or item had no training ratings, so only the baseline predicts)."""
        from pyspark.sql import functions as F

        self._check_fitted()
        x = df.join(self.user_index_, "user", "left").join(self.item_index_, "item", "left")
        x = x.withColumn("u", F.coalesce(F.col("u"), F.lit(-1))).withColumn("i", F.coalesce(F.col("i"), F.lit(-1)))
        x = baseline_column(x, self.biases_)
        scored = self.model_.transform(x).withColumnRenamed("prediction", "_factor")
        cold = F.isnan("_factor") | F.col("_factor").isNull()
        factor = F.when(cold, F.lit(0.0)).otherwise(F.col("_factor"))
        lo, hi = self.rating_range_
        pred = F.least(F.greatest(F.col("_base") + factor, F.lit(lo)), F.lit(hi))
        return scored.withColumn("prediction", pred).withColumn("cold", cold).drop("u", "i", "_base", "_factor")

    def evaluate(self, df) -> dict:
        """RMSE and MAE over every rating of ``df`` (cold-start ones included, predicted from the baseline),
        as the local engine reports them; also the counts ``n`` and ``n_cold``."""
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
        """Top-``n`` items per user id: ``{user_id: [(item_id, score), …]}`` best first, scored
        ``mu + b_u + b_i + q_u·p_i`` (not clipped) over every training item, seen ones included. The
        requested users' factors meet every item's on Spark; only the top ``n`` per user come back.
        Unknown users are an error."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        self._check_fitted()
        checks.integer("n", n, 1)
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
        subset = spark.createDataFrame([(r["user"], r["u"]) for r in found], f"user {kind}, u int")
        user_side = (subset.join(self.model_.userFactors.withColumnRenamed("id", "u"), "u")
                     .join(self.biases_.user, "user", "left")
                     .select("user", F.col("features").alias("q"), F.coalesce("bu", F.lit(0.0)).alias("bu")))
        item_side = (self.item_index_.join(self.model_.itemFactors.withColumnRenamed("id", "i"), "i")
                     .join(self.biases_.item, "item", "left")
                     .select("item", F.col("features").alias("p"), F.coalesce("bi", F.lit(0.0)).alias("bi")))
        score = F.lit(float(self.biases_.mu)) + F.col("bu") + F.col("bi") + _dot("q", "p")
        rank = F.row_number().over(Window.partitionBy("user").orderBy(F.desc("score"), "item"))
        top = (user_side.crossJoin(item_side).select("user", "item", score.alias("score"))
               .withColumn("rank", rank).filter(F.col("rank") <= int(n)))
        out: dict = {u: [] for u in asked.values()}
        for r in top.orderBy("user", "rank").collect():
            out[asked[r["user"]]].append((r["item"], float(r["score"])))
        return out

    # --- export ------------------------------------------------------------------------------------------
    def factors(self) -> dict:
        """The learned state as numpy arrays, in ALS id order (index ``u`` is ``user_ids[u]``): ``user_ids``,
        ``item_ids``, ``user_factors`` (n_users × k), ``item_factors`` (n_items × k), ``user_bias``,
        ``item_bias``, ``mu``, ``rating_range``. Collects the per-user and per-item tables only."""
        self._check_fitted()
        user_ids, user_factors, user_bias = self._collect_side(self.model_.userFactors, self.user_index_,
                                                               self.biases_.user, "user", "u", "bu")
        item_ids, item_factors, item_bias = self._collect_side(self.model_.itemFactors, self.item_index_,
                                                               self.biases_.item, "item", "i", "bi")
        return {"user_ids": as_ids(user_ids), "item_ids": as_ids(item_ids), "user_factors": user_factors,
                "item_factors": item_factors, "user_bias": user_bias, "item_bias": item_bias,
                "mu": float(self.biases_.mu), "rating_range": self.rating_range_}

    def _collect_side(self, factors, index, bias, column: str, key: str, bias_col: str):
        rows = (index.join(factors.withColumnRenamed("id", key), key, "left").join(bias, column, "left")
                .orderBy(key).collect())
        ids = [r[column] for r in rows]
        mat = np.zeros((len(rows), int(self.k)), dtype=np.float32)
        for j, r in enumerate(rows):
            if r["features"] is not None:
                mat[j] = r["features"]
        offsets = np.array([r[bias_col] or 0.0 for r in rows], dtype=np.float64)
        return ids, mat, offsets

    def local_params(self) -> dict:
        """The local :class:`~latentatlas.ratings.model.LatentFactorModel` hyper-parameters this model
        corresponds to (Spark solves each row exactly, as ``als_method="cholesky"``)."""
        return {"k": int(self.k), "reg": self.reg, "solver": "als", "max_steps": self.iterations,
                "center": self.center, "bias_reg": float(self.bias_reg), "reg_weighting": "count",
                "als_method": "cholesky", "seed": int(self.seed)}

    def to_local(self, train=None, *, include_seen: bool | None = None):
        """The fitted model as a local :class:`~latentatlas.ratings.model.LatentFactorModel` with the same
        factors, ``mu_``, ``user_bias_``, ``item_bias_`` and id maps, so ``save``/``load``, ``predict_ids``,
        ``recommend_ids`` and the ``recommend``/``report`` commands work on it.

        The local model excludes each user's training items from recommendations; that needs the training
        (user, item) pairs on the driver, 8 bytes a rating. ``include_seen=None`` collects them (from
        ``train``, the DataFrame given to :meth:`fit`) only up to :data:`SEEN_LIMIT` ratings; without them
        the exported model recommends seen items too.
        """
        from latentatlas.ratings.model import History, LatentFactorModel

        f = self.factors()
        if self.implicit:
            return self._to_local_implicit(f, train, include_seen)
        model = LatentFactorModel(**self.local_params())
        model.user_factors_, model.item_factors_ = f["user_factors"], f["item_factors"]
        model.user_bias_, model.item_bias_ = f["user_bias"], f["item_bias"]
        model.user_ids_, model.item_ids_ = f["user_ids"], f["item_ids"]
        model.mu_ = f["mu"]
        model.reg_ = self.reg_value  # λ in use, as the local model records it
        model.scale_ = tuple(f["rating_range"])
        if include_seen is None:
            include_seen = train is not None and self.n_train_ <= SEEN_LIMIT
        if include_seen:
            if train is None:
                raise LatentAtlasError("include_seen needs the training DataFrame")
            model.seen_indptr_, model.seen_items_ = self._seen(train)
        else:
            model.seen_indptr_ = np.zeros(len(f["user_ids"]) + 1, dtype=np.int64)
            model.seen_items_ = np.zeros(0, dtype=np.int32)
        steps = self.iterations
        model.history_ = History(steps=[steps], seconds=[self.fit_seconds_ / steps], best_step=steps,
                                 stopped_at=steps)
        return model

    def _to_local_implicit(self, f: dict, train, include_seen: bool | None):
        """The implicit model as a local :class:`~latentatlas.ratings.ials.ImplicitALS` ranking model."""
        from latentatlas.ratings.ials import ImplicitALS

        model = ImplicitALS(k=int(self.k), reg=self.reg_value, alpha=float(self.alpha), alpha0=1.0, nu=0.0,
                            preference="graded", iterations=self.iterations, seed=int(self.seed))
        model.user_factors_, model.item_factors_ = f["user_factors"], f["item_factors"]
        model.user_ids_, model.item_ids_ = f["user_ids"], f["item_ids"]
        model.scale_ = tuple(f["rating_range"])
        model.display_name = f"Spark implicit ALS (k={int(self.k)})"
        if include_seen is None:
            include_seen = train is not None and self.n_train_ <= SEEN_LIMIT
        if include_seen:
            model.seen_indptr_, model.seen_items_ = self._seen(train)
        else:
            model.seen_indptr_ = np.zeros(len(f["user_ids"]) + 1, dtype=np.int64)
            model.seen_items_ = np.zeros(0, dtype=np.int32)
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


def as_ids(values: list) -> np.ndarray:
    """Ids as int64 when every one is an integer in int64 range, or text that writes one canonically
    (``17``, not ``017``), else str — the local readers' rule, so both engines give a model the same ids."""
    from latentatlas.ratings.io import CANONICAL_INT

    try:
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            return np.asarray(values, dtype=np.int64)
        strs = [str(v) for v in values]
        if all(re.fullmatch(CANONICAL_INT, s) for s in strs):
            return np.asarray([int(s) for s in strs], dtype=np.int64)
    except OverflowError:  # beyond int64: every digit kept, as text
        pass
    return np.asarray([str(v) for v in values], dtype=str)


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
    as ``predict_ids`` does locally. Returns ``rmse``, ``mae``, ``n_ratings``, ``unknown_ratings``.

    Examples
    --------
    >>> from latentatlas.ratings.model import LatentFactorModel
    >>> evaluate_model_df(spark, LatentFactorModel.load("model.npz"), test_df)  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    users, items = _factor_tables(spark, model)
    df = _same_id_type(_same_id_type(df, "user", model.user_ids_), "item", model.item_ids_)
    x = df.join(F.broadcast(users), "user", "left").join(F.broadcast(items), "item", "left")
    known = F.col("q").isNotNull() & F.col("p").isNotNull()
    raw = (F.lit(float(model.mu_)) + F.coalesce("bu", F.lit(0.0)) + F.coalesce("bi", F.lit(0.0))
           + F.when(known, _dot("q", "p")).otherwise(F.lit(0.0)))
    lo, hi = model.scale_
    pred = F.least(F.greatest(raw, F.lit(float(lo))), F.lit(float(hi)))
    err = pred - F.col("rating")
    row = x.agg(F.count(F.lit(1)).alias("n"), F.avg(err * err).alias("mse"), F.avg(F.abs(err)).alias("mae"),
                F.sum((~known).cast("long")).alias("unknown")).first()
    if not row["n"]:
        raise LatentAtlasError("no test ratings")
    return {"rmse": float(np.sqrt(row["mse"])), "mae": float(row["mae"]), "n_ratings": int(row["n"]),
            "unknown_ratings": int(row["unknown"])}


def recommend_model_df(spark, model, user, n: int = 10, exclude_seen: bool = True) -> list[tuple]:
    """Top-``n`` ``(item id, score)`` for one user of a local model, scored by Spark over the item table
    (``model.recommend_ids`` computes the same locally)."""
    from pyspark.sql import functions as F

    checks.integer("n", n, 1)
    u = model.user_index(user)
    _, items = _factor_tables(spark, model)
    q = F.array(*[F.lit(float(x)) for x in model.user_factors_[u]])
    scored = items.withColumn("score", F.lit(float(model.mu_ + model.user_bias_[u])) + F.col("bi") + _dot(q, "p"))
    if exclude_seen:
        seen = model.item_ids_[model.seen_items_[model.seen_indptr_[u]:model.seen_indptr_[u + 1]]].tolist()
        if seen:
            scored = scored.filter(~F.col("item").isin(seen))
    rows = scored.orderBy(F.desc("score"), "item").limit(int(n)).collect()
    return [(r["item"], float(r["score"])) for r in rows]
