"""The recommender's runs as library calls: load a split, train and evaluate a model, write its run folder.

The command line (``latentatlas ratings …``) and the demo are thin shells over these functions, so a run
made from a notebook is the same as one made from the shell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas import runs
from latentatlas.errors import LatentAtlasError
from latentatlas.progress import as_progress
from latentatlas.ratings.data import Ratings

RANKING_K = 10
RANKING_USERS = 2000  # ranking metrics score every item per user; a seeded sample keeps big sets quick
SHOW_USERS = 3  # users whose top-10 goes into run.json


@dataclass
class Parts:
    """Train, validation and test ratings over one index space, and where they came from."""

    train: Ratings
    validation: Ratings | None
    test: Ratings | None
    source: str
    item_names: Any = None
    user_names: Any = None
    #: Without a validation part: the share of the training ratings held out (seeded) where a model chooses
    #: something on it (early stopping, the ranking model), which is then refitted on all of them; None: the
    #: rating model's own ``validation_fraction``.
    validation_fraction: float | None = None
    #: Side features (:class:`~latentatlas.ratings.features.Features`) for the bayes solver, and their summaries.
    user_features: Any = None
    item_features: Any = None
    feature_summary: dict = field(default_factory=dict)


def load_parts(data=None, *, train_file=None, validation_file=None, test_file=None, min_entries: int | None = None,
               validation_fraction: float | None = None, test_fraction: float | None = None,
               n_validation: int | None = None, n_test: int | None = None, leave_k_out: int | None = None,
               leave_last_out: int | None = None, seed: int = 0, builtin_size: int = 100_000, progress=None,
               user_features=None, item_features=None, feature_options: dict | None = None,
               **read_options) -> Parts:
    """The ratings to train on: prepared data (``prepared.npz`` or its folder), a raw ratings file prepared
    on the fly like ``prepare_ratings``, given split files, or (all None) the built-in synthetic set.

    ``min_entries``: the cold-start filter of a raw file (default 4); a given ``train_file`` is used whole
    unless it is given, and then what it drops is reported.

    ``user_features``/``item_features``: side attributes (a file path, DataFrame or
    :class:`~latentatlas.ratings.features.Features`) for the bayes solver, checked against the ratings' ids;
    ``feature_options`` = ``{"user": {"id_column":…, "columns":…, "sep":…}, "item": {…}}`` for the files."""
    parts = _load_parts(data, train_file=train_file, validation_file=validation_file, test_file=test_file,
                        min_entries=min_entries, validation_fraction=validation_fraction,
                        test_fraction=test_fraction, n_validation=n_validation, n_test=n_test,
                        leave_k_out=leave_k_out, leave_last_out=leave_last_out, seed=seed,
                        builtin_size=builtin_size, progress=progress, **read_options)
    return with_features(parts, user_features, item_features, feature_options, progress)


def with_features(parts: Parts, user_features=None, item_features=None, feature_options: dict | None = None,
                  progress=None) -> Parts:
    """``parts`` with side features read (:func:`~latentatlas.ratings.pipeline.load_features`) and checked
    against its training ids."""
    from latentatlas.ratings.pipeline import load_features

    if user_features is None and item_features is None:
        return parts
    log = as_progress(progress)
    options = feature_options or {}
    for what, source in (("user", user_features), ("item", item_features)):
        if source is None:
            continue
        ids = parts.train.user_ids if what == "user" else parts.train.item_ids
        features, summary = load_features(source, ids, what, log, **(options.get(what) or {}))
        setattr(parts, f"{what}_features", features)
        parts.feature_summary[what] = summary
    return parts


def _load_parts(data=None, *, train_file=None, validation_file=None, test_file=None, min_entries: int | None = None,
                validation_fraction: float | None = None, test_fraction: float | None = None,
                n_validation: int | None = None, n_test: int | None = None, leave_k_out: int | None = None,
                leave_last_out: int | None = None, seed: int = 0, builtin_size: int = 100_000, progress=None,
                **read_options) -> Parts:
    from latentatlas.ratings import prep
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.pipeline import PREPARED_FILE, prepare_ratings

    if check_sources(data, train_file, validation_file, test_file):
        # A given training file is used whole, in its own id space (as ``fit(X, y)`` on the same file): no
        # cold-start filter (that is ``prepare``'s, and reported there), and no validation part cut out here.
        # Without a validation file, :class:`~latentatlas.ratings.recommender.Recommender` holds out
        # ``validation_fraction`` only for what chooses on it, and refits on all (``train`` says so).
        train, validation, test = [read_ratings(f, **read_options) if f is not None else None
                                   for f in (train_file, validation_file, test_file)]
        if validation_fraction is not None and not 0 <= validation_fraction < 1:
            raise LatentAtlasError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
        log = as_progress(progress)
        if min_entries is not None:
            before = len(train)
            train = prep.kcore(train, min_entries)
            log(f"{train_file}: cold-start filter (min_entries={min_entries}) dropped {before - len(train):,} of "
                f"{before:,} training ratings; {len(train):,} left")
        else:
            log(f"{train_file}: {len(train):,} training ratings, all used ({train.n_users:,} users x "
                f"{train.n_items:,} items)")
        return Parts(train, validation, test, f"train {train_file}" + (f", test {test_file}" if test_file else ""),
                     validation_fraction=validation_fraction)
    from latentatlas.ratings.pipeline import is_database_url

    if data is not None and not is_database_url(data):
        data = Path(data)
        if data.is_dir():
            data = data / PREPARED_FILE
        if not data.exists():
            raise LatentAtlasError(f"{data}: no such file")
        if prep.Split.is_split_file(data):
            s = prep.Split.load(data)
            return Parts(s.train, s.validation, s.test, str(data), s.item_names, s.user_names)
    prepared = prepare_ratings(data, min_entries=4 if min_entries is None else min_entries,
                               validation_fraction=validation_fraction,
                               test_fraction=test_fraction, n_validation=n_validation, n_test=n_test,
                               leave_k_out=leave_k_out, leave_last_out=leave_last_out, seed=seed,
                               builtin_size=builtin_size, progress=progress,
                               quiet=False, **read_options)
    s = prepared.split
    return Parts(s.train, s.validation, s.test, prepared.summary["source"], s.item_names, s.user_names)


def check_sources(data, train_file, validation_file, test_file) -> bool:
    """Whether the ratings come as given split files (True) or as ``data`` (False); an error for a mix."""
    given = [f for f in (train_file, validation_file, test_file) if f is not None]
    if given and data is not None:
        raise LatentAtlasError("give either data or train_file/validation_file/test_file, not both")
    if given and train_file is None:
        raise LatentAtlasError("validation_file and test_file need train_file")
    return bool(given)


def read_test(path, **read_options) -> Ratings:
    """Test ratings: the test part of prepared data, or a raw ratings file."""
    from latentatlas.ratings import prep
    from latentatlas.ratings.io import read_ratings
    from latentatlas.ratings.pipeline import PREPARED_FILE

    path = Path(path)
    path = path / PREPARED_FILE if path.is_dir() else path
    if prep.Split.is_split_file(path):
        return prep.Split.load(path).test
    return read_ratings(path, **read_options)


def load_model(path):
    """A saved model: a ``ratings train`` run folder (its rating model and, where it has one, its ranking
    model, as a :class:`~latentatlas.ratings.recommender.Recommender`), a ``model.npz`` (the same, when a
    ``ranking.npz`` lies beside it) or any single model file."""
    from latentatlas.ratings.base import load_recommender
    from latentatlas.ratings.recommender import RANKING_FILE, RATING_FILE, Recommender

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if (p.is_dir() or p.name == RATING_FILE) and (folder / RATING_FILE).is_file() and (folder / RANKING_FILE).is_file():
        return Recommender.load(folder)
    return load_recommender(p)


def load_rating_model(path):
    """The rating model (``LatentFactorModel``) of a run folder or model file, e.g. to resume from."""
    from latentatlas.ratings.model import LatentFactorModel

    return LatentFactorModel.load(path)


# --- evaluation -----------------------------------------------------------------------------------------
def evaluate(model, ratings: Ratings, *, k: int = RANKING_K, threshold: float | None = None,
             max_users: int | None = RANKING_USERS, seed: int = 0) -> dict[str, Any]:
    """A fitted model on ratings with original ids: RMSE and MAE (models that predict ratings), and the
    full-ranking metrics at ``k`` of its lists beside the popularity baseline of its training data (and, for a
    :class:`~latentatlas.ratings.recommender.Recommender`, beside its rating model's lists).

    The model's metrics have plain names (``ndcg@10``…); the others are prefixed ``popular_`` and
    ``rating_model_``; ``ranking`` holds the rows as a table. Ratings of users or items the model never saw are
    counted (``unknown_ratings``, ``unknown_share``); when none can be scored, a clear error instead of
    metrics of nothing.
    """
    from latentatlas.ratings import metrics as M
    from latentatlas.ratings.base import to_space

    checks.integer("max_users", max_users, 1, none_ok=True)
    if threshold is not None and not math.isfinite(threshold):
        raise LatentAtlasError(f"threshold must be a finite number, got {threshold!r}")
    if len(ratings) == 0:
        raise LatentAtlasError("no test ratings to evaluate on")
    known, unknown = to_space(ratings, model.user_ids_, model.item_ids_)
    if len(known) == 0:
        raise LatentAtlasError(f"none of the {len(ratings):,} test ratings has a user and an item that the model "
                               "was trained on (different ids, or another data set?)")
    out: dict[str, Any] = {"n_ratings": len(ratings), "unknown_ratings": unknown,
                           "unknown_share": unknown / len(ratings)}
    if getattr(model, "predicts_ratings", False):
        pred = model.predict(ratings)
        out.update({"rmse": M.rmse(ratings.values, pred), "mae": M.mae(ratings.values, pred)})
    rows = M.ranking_report(model, known, k=k, threshold=threshold, max_users=max_users, seed=seed)
    names = [f"ndcg@{k}", f"recall@{k}", f"precision@{k}", f"map@{k}", f"coverage@{k}"]
    for row in rows:
        prefix = "" if row["key"] == "model" else row["key"] + "_"
        out.update({prefix + name: row[name] for name in names})
    out["ranking_users"] = rows[0]["ranking_users"]
    out["relevance_threshold"] = rows[0]["relevance_threshold"]
    out["ranking"] = [{"model": row["model"], **{name: round(row[name], 4) for name in names}} for row in rows]
    return out


# --- training runs ----------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` did: the rating model and the recommender holding it (with its ranking model), the
    metrics, where the run folder went, and whether it was cut short."""

    model: Any
    metrics: dict[str, Any]
    history: dict[str, Any]
    interrupted: bool = False
    out: Path | None = None
    notes: list[str] = field(default_factory=list)
    recommender: Any = None


def train(parts: Parts, model, *, out=None, resume=None, config: dict | None = None, progress=None,
          seed: int = 0, ranker: str = "auto", user_features=None, item_features=None) -> TrainResult:
    """Fit the rating model ``model`` on ``parts`` (early stopping on the validation part) and, beside it, a
    ranking model chosen on the validation part (``ranker``: see
    :class:`~latentatlas.ratings.recommender.Recommender`); evaluate both on the test part beside the
    popularity baseline and, with ``out``, write the run folder (model.npz, ranking.npz, metrics.json, curves,
    run.json) as one atomic swap.

    ``resume``: a model file or run folder whose rating-model factors the fit starts from. On Ctrl-C the best
    model so far is kept and written (``interrupted=True`` in the result) — into ``out`` unless ``out`` holds
    a finished run, which is never replaced by a partial one: then into ``<out>-interrupted``.

    ``user_features``/``item_features`` (a path, DataFrame or Features; default: those of ``parts``) go to the
    ``bayes`` rating model; ids with features but no training ratings become cold-start users/items of the
    model. A model with ``time_bias=True`` needs timestamps on the training ratings.
    """
    from latentatlas.ratings.recommender import Recommender

    log = as_progress(progress, f"train {model.solver}")
    if user_features is not None or item_features is not None:
        parts = with_features(parts, user_features, item_features, progress=progress)
    train_r, val_r, test_r = parts.train, parts.validation, parts.test
    feature_args = {f"{what}_features": getattr(parts, f"{what}_features") for what in ("user", "item")
                    if getattr(parts, f"{what}_features") is not None}
    if feature_args and model.solver != "bayes":
        raise LatentAtlasError(f"user_features/item_features are for solver='bayes' (this model's solver is "
                               f"{model.solver!r})")
    if getattr(model, "time_bias", False):
        if model.solver != "bayes":
            raise LatentAtlasError(f"time_bias is for solver='bayes' (this model's solver is {model.solver!r})")
        if train_r.timestamps is None:
            raise LatentAtlasError("time_bias needs timestamps, and the training ratings have none (a "
                                   "timestamp/date column or a MovieLens/Yelp file gives them)")
    log(f"{len(train_r):,} training, {len(val_r) if val_r is not None else 0:,} validation, "
        f"{len(test_r) if test_r is not None else 0:,} test ratings; {train_r.n_users:,} users x "
        f"{train_r.n_items:,} items")
    start_from = load_rating_model(resume) if resume is not None else None
    if start_from is not None:
        log(f"resuming from {resume}")
    if model.progress is None and progress is not None:
        model.set_params(progress=progress)
    if val_r is None and parts.validation_fraction is not None:
        model.set_params(validation_fraction=parts.validation_fraction)
    rec = Recommender(ranker=ranker, rating_model=model, seed=seed, n_threads=model.n_threads,
                      progress=model.progress, validation_fraction=model.validation_fraction)
    created = runs.now()
    interrupted = False
    try:
        rec.fit(train_r, validation=val_r, init_from=start_from, **feature_args)
    except KeyboardInterrupt:
        fitted = getattr(rec, "rating_model_", None)
        if fitted is None or not hasattr(fitted, "history_") or not fitted.history_.steps:
            raise
        interrupted = True
    model = rec.rating_model_
    rec.set_names(items=parts.item_names, users=parts.user_names)
    h = model.history_
    used = trained_on(rec, train_r, val_r)
    for line in used.values():
        log(line)
    metrics: dict[str, Any] = {
        "solver": model.solver, "k": model.k_value, "reg": model.reg_, "seconds_per_iteration": h.seconds_per_iteration,
        "converged_after": h.converged_after, "best_iteration": h.best_step, "stopped_at": h.stopped_at,
        "refit_steps": h.refit_steps, "interrupted": interrupted, "ranker": rec.ranker_name_,
        "training_ratings": len(train_r), "rating_model_ratings": len(model.seen_items_),
        "ranker_validation_ratings": getattr(rec, "n_ranker_validation_", 0),
        "rating_model_data": used["rating"], "ranking_model_data": used["ranking"]}
    side = side_summary(model, parts)
    for line in side.pop("lines"):
        log(line)
    metrics.update(side)
    ranking: list[dict] = []
    if test_r is not None and len(test_r):
        ev = evaluate(rec, test_r, seed=seed)
        ranking = ev.pop("ranking")
        metrics.update({f"test_{name}": value for name, value in ev.items()
                        if name in ("rmse", "mae") or "@" in name})
    if h.validation_rmse:
        metrics["validation_rmse"] = min(h.validation_rmse)
    if h.train_rmse:
        metrics["train_rmse"] = h.train_rmse[h.steps.index(h.best_step)] if h.best_step in h.steps else h.train_rmse[-1]
    history = {**metrics, **{key: getattr(h, field) for field, key in runs.HISTORY_KEYS.items()},
               "seconds": h.seconds, "source": parts.source, "ranking": ranking, "ranker_choice": rec.ranker_table_}
    result = TrainResult(model, metrics, history, interrupted, recommender=rec)
    if out is not None:
        out = Path(out)
        if interrupted and _finished(out):
            result.notes.append(f"{out} holds a finished run, which a partial one does not replace")
            out = out.parent / f"{out.name}-interrupted"
        cfg = {"data": parts.source, **model._json_params(), "reg_used": model.reg_, "ranker": ranker,
               "resume": str(resume) if resume is not None else None, **(config or {})}
        for what, summary in parts.feature_summary.items():
            cfg.setdefault(f"{what}_features", summary["source"])
            cfg[f"{what}_feature_groups"] = metrics.get(f"{what}_feature_groups")
        write_train_run(out, rec, metrics, history, cfg, train_r, created=created)
        result.out = out
        log(f"wrote {out}/")
    return result


def cold_start_counts(model) -> tuple[int, int]:
    """How many users and items a fitted model knows without any training rating (cold start: they came
    with side features)."""
    indptr = getattr(model, "seen_indptr_", None)
    if indptr is None:
        return 0, 0
    users = int((np.diff(indptr) == 0).sum())
    items = int(len(model.item_ids_) - len(np.unique(model.seen_items_)))
    return users, items


def side_summary(model, parts: Parts) -> dict[str, Any]:
    """Metrics (and log ``lines``) saying which side features and time terms the rating model used and how
    many cold-start users/items it knows."""
    out: dict[str, Any] = {"lines": []}
    for what in ("user", "item"):
        s = parts.feature_summary.get(what)
        if s is None:
            continue
        out[f"{what}_feature_groups"] = ", ".join(f"{g} ({n})" for g, n in s["groups"].items())
        out[f"{what}_feature_columns"] = s["columns"]
        out["lines"].append(f"{what} features: {out[f'{what}_feature_groups']}, {s['columns']:,} columns from "
                            f"{s['source']}")
    if parts.feature_summary:
        users, items = cold_start_counts(model)
        out["cold_start_users"], out["cold_start_items"] = users, items
        out["lines"].append(f"the model knows {users:,} cold-start users and {items:,} cold-start items (features, "
                            "no training ratings)")
    if getattr(model, "time_bias", False):
        out["time_bias"] = True
        bins = getattr(model, "time_bins", None)
        out["lines"].append("time-aware biases: per-item time bins" + (f" ({bins})" if bins else "")
                            + " and per-user drift")
    return out


def trained_on(rec, train_r: Ratings, val_r: Ratings | None) -> dict[str, str]:
    """Which ratings trained (and chose) the rating model and the ranking model of a fitted
    :class:`~latentatlas.ratings.recommender.Recommender`, one line each: nothing is held out silently."""
    model = rec.rating_model_
    h = model.history_
    name, given, final = model.solver.upper(), len(train_r), len(model.seen_items_)
    n_val = getattr(rec, "n_ranker_validation_", 0)
    if val_r is not None:
        if model.solver == "bayes":
            rating = (f"{name} sampled on the {final:,} training ratings; the {n_val:,} validation ratings were "
                      "only scored per sample")
        elif h.refit_steps:
            rating = (f"{name} early-stopped on the {n_val:,} validation ratings, then refitted on training + "
                      f"validation ({final:,} ratings) for {h.refit_steps} steps")
        else:
            rating = f"{name} trained on {final:,} training ratings, stopped on the {n_val:,} validation ratings"
    elif model.solver == "bayes":
        rating = (f"{name} sampled on all {final:,} training ratings (it chooses nothing on validation data, so "
                  "none is held out for it)")
    elif h.refit_steps:
        rating = (f"{name} early-stopped on {int(round(model.validation_fraction * given)):,} held-out"
                  f" training ratings (seeded {model.validation_fraction:.0%}), then refitted on all "
                  f"{final:,} for {h.refit_steps} steps")
    elif final < given:
        rating = (f"{name} trained on {final:,} of the {given:,} training ratings; {given - final:,} were held out "
                  "for early stopping (no refit)")
    else:
        rating = f"{name} trained on all {final:,} training ratings"
    if rec.ranking_model_ is model:
        ranking = "ranking model: the rating model's lists (by predicted rating)"
    elif not rec.ranker_table_:
        ranking = (f"ranking model {rec.ranker_name_} fitted on {len(rec.seen_items_):,} ratings (not chosen on "
                   "validation ratings)")
    elif getattr(rec, "validation_held_out_", False):
        ranking = (f"ranking model chosen on {n_val:,} held-out training ratings (seeded "
                   f"{rec.validation_fraction:.0%}), then refitted on all {len(rec.seen_items_):,}")
    else:
        ranking = (f"ranking model chosen on the {n_val:,} validation ratings, then refitted on training + "
                   f"validation ({len(rec.seen_items_):,} ratings)")
    return {"rating": "rating model " + rating, "ranking": ranking}


def _finished(out: Path) -> bool:
    run = out / runs.RUN_FILE
    if not run.is_file():
        return False
    try:
        loaded = runs.load_run(out)
    except LatentAtlasError:
        return False
    return not loaded.metrics.get("interrupted", False)


def write_train_run(out, rec, metrics: dict, history: dict, config: dict, train_r: Ratings,
                    created: str | None = None) -> Path:
    """The run folder of a trained :class:`~latentatlas.ratings.recommender.Recommender` (or a bare rating
    model), replacing ``out`` as a whole."""
    from latentatlas.fsutil import save_figure, write_json
    from latentatlas.plots.ratings import loss_curves

    model = getattr(rec, "rating_model_", rec)
    name = model.solver.upper()
    h = model.history_
    with runs.staged_run(out) as stage:
        artifacts = {runs.MODEL: runs.FILES[runs.MODEL], runs.METRICS: runs.FILES[runs.METRICS]}
        if hasattr(rec, "write_into"):
            rec.write_into(stage)
            if (stage / runs.FILES[runs.RANKING]).is_file():
                artifacts[runs.RANKING] = runs.FILES[runs.RANKING]
        else:
            model.save(stage / runs.FILES[runs.MODEL])
        write_json(stage / runs.FILES[runs.METRICS], history)
        figures = []
        if h.steps and model.solver == "bayes":
            save_figure(loss_curves(h, "rmse", titles=[name]), stage / "rmse_curve.png")
            figures = [runs.figure(
                "rmse_curve.png", f"{name}: RMSE per Gibbs sample",
                "Training RMSE of each sample's parameters and validation RMSE of the running posterior mean "
                "(the prediction the model makes), per sample; the first samples are burn-in.")]
        elif h.steps:
            stop = "validation RMSE" if h.criterion == "validation_rmse" else \
                "penalised validation loss" if h.criterion == "validation_loss" else "training " + h.criterion[6:]
            save_figure(loss_curves(h, "loss", titles=[name]), stage / "loss_curve.png")
            save_figure(loss_curves(h, "rmse", titles=[name]), stage / "rmse_curve.png")
            figures = [
                runs.figure("loss_curve.png", f"{name}: training loss",
                            "Penalised sum of squares per iteration (log scale); the dotted line marks the "
                            f"iteration whose factors were kept (early stopping watched the {stop})."),
                runs.figure("rmse_curve.png", f"{name}: training and validation RMSE",
                            f"Root mean squared error of the factor model per iteration; early stopping "
                            f"watched the {stop}.")]
        if history.get("ranking"):
            from latentatlas.plots.ratings import ranking_bars

            save_figure(ranking_bars(history["ranking"]), stage / "ranking.png")
            figures.insert(0, runs.figure(
                "ranking.png", "Top-10 lists on the test part",
                "Full-ranking metrics at 10 (every item a user did not rate in training is ranked; relevant = a "
                "test rating of at least 3/4 of the scale): the lists `recommend` shows, the rating model's "
                "lists by predicted rating, and the most popular items, on the same users."))
        scalars = {k: v for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        scalars["interrupted"] = bool(metrics.get("interrupted"))
        tables = {runs.RECOMMENDATIONS_TABLE: recommendation_rows(rec, train_r)}
        if history.get("ranking"):
            tables[runs.RANKING_TABLE] = history["ranking"]
        if history.get("ranker_choice"):
            tables[runs.RANKER_CHOICE_TABLE] = history["ranker_choice"]
        ranker = getattr(rec, "ranker_name_", None) if hasattr(rec, "ranking_model_") else None
        title = f"{name} latent factor model (k={model.k_value})" + (f" + {ranker}" if ranker and
                                                                     rec.ranking_model_ is not model else "")
        runs.write_run(stage, runs.RATINGS_TRAIN, title, created=created, config=config, metrics=scalars,
                       figures=figures, artifacts=artifacts, tables=tables)
    return Path(out)


def recommendation_rows(model, train_r: Ratings, n_users: int = SHOW_USERS, n: int = RANKING_K) -> list[dict]:
    """Top-``n`` lists of the ``n_users`` most active training users, as table rows (with the predicted
    rating beside a ranking model's score)."""
    counts = train_r.user_counts()
    users = [train_r.user_ids[u] for u in np.argsort(-counts, kind="stable")[:n_users] if counts[u] > 0]
    if not users:
        return []
    items, scores = model.recommend_batch(users, n)
    rows = [{"user": _plain(u), "rank": r + 1, "item": _plain(i), "score": round(float(s), 4)}
            for u, row_i, row_s in zip(users, items, scores)
            for r, (i, s) in enumerate(zip(row_i, row_s)) if np.isfinite(s)]
    rows = with_predictions(model, rows)
    return add_names(model, rows)


def with_predictions(model, rows: list[dict]) -> list[dict]:
    """``rows`` (with ``user`` and ``item``) plus the rating model's ``predicted`` rating, where the scores
    come from a separate ranking model."""
    ranking = getattr(model, "ranking_model_", None)
    if not rows or ranking is None or ranking is getattr(model, "rating_model_", None) or "user" not in rows[0]:
        return rows
    pred = model.predict(np.array([[row["user"], row["item"]] for row in rows], dtype=object))
    return [{**row, "predicted": round(float(p), 2)} for row, p in zip(rows, pred)]


def add_names(model, rows: list[dict]) -> list[dict]:
    """``rows`` with a ``name`` after each ``item`` (and ``user``) the model has names for."""
    for what in ("item", "user"):
        names = getattr(model, f"{what}_names_", None)
        if names is None or not rows or what not in rows[0]:
            continue
        found = names.lookup([row[what] for row in rows], missing="")
        rows = [{**{k: v for k, v in row.items()}, f"{what}_name": str(n)} for row, n in zip(rows, found)]
    return rows


def _plain(x):
    return x.item() if hasattr(x, "item") else x




def export_factors(model, out, *, users: bool = False, parquet=None):
    """A model's item (or user) factors as TensorBoard projector files (ids and names as metadata), and
    optionally as Parquet; returns :class:`latentatlas.exports.ProjectorExport`."""
    from latentatlas.exports import export_parquet, export_projector

    what = "user" if users else "item"
    ids = model.user_ids_ if users else model.item_ids_
    factors = model.user_embeddings_ if users else model.item_embeddings_
    names = getattr(model, f"{what}_names_", None)
    named = names.lookup(ids, missing="") if names is not None else None
    metadata = {}
    if names is not None:
        for col in names.metadata:
            metadata[col] = names.column(col, ids, missing="")
    res = export_projector(out, factors, ids=ids, names=named, metadata=metadata or None,
                           tensor_name=f"{what} factors")
    if parquet is not None:
        table = {"id": ids, "factor": np.asarray(factors, dtype=np.float32)}
        if named is not None:
            table["name"] = named
        export_parquet(parquet, table)
    return res
