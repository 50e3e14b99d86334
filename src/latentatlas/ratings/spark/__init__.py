"""The recommender on Apache Spark: the local engine's pipeline and model as DataFrame operations.

Reading, cold-start (k-core) filtering, splits and the baseline (damped global/user/item biases) run as
Spark jobs on DataFrames with the columns ``user``, ``item`` (original ids, as read) and ``rating``
(double); nothing collects the ratings to the driver. Training is Spark MLlib's ALS with the local
engine's defaults. Only the small per-user and per-item tables come back to the driver, when a trained
model is exported to the local model file, so a model trained on a cluster is served and inspected locally.

Modules: :mod:`.session` (is Spark usable, a tuned session), :mod:`.io` (readers), :mod:`.prep` (k-core,
splits, baselines, :func:`prepare_df`), :mod:`.als` (:class:`SparkALS`, export, scoring a local model on
Spark), :mod:`.workflow` (prepare / train / evaluate / recommend as the command line runs them).

pyspark is an optional dependency (``pip install 'latentatlas[spark]'``; in a source checkout
``.venv/bin/pip install -e '.[spark]'``) and needs a Java 17+ runtime. Importing this package imports
neither; the names below load their module on first use.

Examples
--------
>>> from latentatlas.ratings.spark import get_session, prepare_df, SparkALS
>>> spark = get_session("local[4]")                                  # doctest: +SKIP
>>> prepared = prepare_df(spark, "u.data")                           # doctest: +SKIP
>>> est = SparkALS().fit(prepared.split.train)                       # doctest: +SKIP
>>> est.evaluate(prepared.split.test)["rmse"]                        # doctest: +SKIP
>>> est.to_local(prepared.split.train).save("model.npz")             # doctest: +SKIP
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "session": ("INSTALL_HINT", "JAVA_HINT", "DEFAULT_MASTER", "require_spark", "parse_conf", "get_session"),
    "io": ("read_ratings_df", "ratings_to_df"),
    "prep": ("kcore_df", "split_df", "SparkSplit", "fit_biases_df", "SparkBiases", "user_means_df", "center_df",
             "prepare_df", "SparkPrepared"),
    "als": ("SparkALS", "DEFAULT_MAX_ITER", "evaluate_model_df", "recommend_model_df"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [*_HOME, "workflow"]


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    elif name == "workflow":
        value = importlib.import_module(f"{__name__}.workflow")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
