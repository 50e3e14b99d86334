"""``latentatlas ratings prepare|train|evaluate|recommend``: thin shells over the ratings library."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from latentatlas.errors import LatentAtlasError

RANKING_K = 10
RANKING_USERS = 2000  # ranking metrics score every item per user; a seeded sample keeps big sets quick
SHOW_USERS = 3  # users whose top-10 goes into run.json


def train(
    data: Optional[Path] = typer.Argument(
        None, help="Prepared data (prepared.npz or the directory from `ratings prepare`) or a raw ratings file "
                   "(read, cold-start filtered and split like `ratings prepare`). Omitted without --train: the "
                   "built-in synthetic set."),
    train_file: Optional[Path] = typer.Option(None, "--train", help="Training ratings of a given split."),
    validation_file: Optional[Path] = typer.Option(
        None, "--validation", help="Validation ratings of a given split (default: 10% of --train, seeded)."),
    test_file: Optional[Path] = typer.Option(None, "--test", help="Test ratings of a given split."),
    solver: str = typer.Option("als", help="als (alternating least squares) or sgd."),
    k: Optional[int] = typer.Option(None, "--k", help="Latent factors (default 64)."),
    reg: Optional[float] = typer.Option(None, help="λ, penalty per rating on the factors (default 0.12 for als, 0.065 for sgd)."),
    lr: Optional[float] = typer.Option(None, help="SGD learning rate (default 0.02)."),
    init: str = typer.Option("random", help="random (uniform, scaled by 1/sqrt(k)) or svd."),
    max_steps: Optional[int] = typer.Option(None, help="Iterations/epochs (default 50 for als, 200 for sgd)."),
    patience: int = typer.Option(3, help="Stop after this many evaluations without improvement."),
    eval_every: int = typer.Option(1, help="Evaluate every this many steps."),
    log_every: int = typer.Option(1, help="Progress line every this many steps."),
    stop_on: str = typer.Option("rmse", help="Early-stopping criterion: rmse (validation error) or loss (classic, "
                                             "penalised)."),
    center: str = typer.Option("biases", help="Baseline removed before factorising: biases, user or none."),
    reg_weighting: str = typer.Option("count", help="count (λ·n_ratings per row, ALS-WR) or none (the plain "
                                                    "formula)."),
    als_method: str = typer.Option("cg", help="ALS row solve: cg (conjugate gradient, fast) or cholesky (exact)."),
    refit: bool = typer.Option(True, "--refit/--no-refit", help="After early stopping, retrain on train + "
                                                               "validation for the chosen number of steps."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Start from the factors of this model.npz (e.g. "
                                                                 "of an interrupted run on the same data)."),
    threads: Optional[int] = typer.Option(None, help="Threads (default: all cores)."),
    seed: int = typer.Option(0, help="Seed of initialisation, shuffles and any split made here."),
    min_entries: int = typer.Option(4, help="Raw DATA file: drop users and items with this many ratings or fewer."),
    validation_fraction: float = typer.Option(0.1, help="Raw DATA file or --train without --validation: share "
                                                        "held out for early stopping."),
    test_fraction: float = typer.Option(0.1, help="Raw DATA file: share held out for test."),
    format: Optional[str] = typer.Option(None, "--format", help="Format of raw rating files (default: detected)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Directory for model.npz, metrics.json, "
                                                                  "loss_curve.png, run.json."),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="Write the metrics JSON here too."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    engine: str = typer.Option("local", help="local (in memory) or spark (Apache Spark: needs the "
                                             "'spark' extra of latentatlas and Java 17+)."),
    spark_master: str = typer.Option("local[*]", help="Spark master URL for --engine spark (local[*], "
                                                      "spark://host:7077, yarn, k8s://…)."),
    spark_conf: Optional[List[str]] = typer.Option(None, help="Spark setting KEY=VALUE for --engine spark "
                                                              "(repeatable)."),
):
    """Train a latent factor model (ALS or SGD) with early stopping; report test RMSE, MAE and ranking metrics."""
    from latentatlas.ratings.spark import check_engine

    if check_engine(engine) == "spark":
        from latentatlas.ratings.spark import train_command

        train_command(data, train_file=train_file, validation_file=validation_file, test_file=test_file, k=k,
                      reg=reg, max_steps=max_steps, seed=seed, solver=solver, center=center,
                      reg_weighting=reg_weighting, min_entries=min_entries,
                      validation_fraction=validation_fraction, test_fraction=test_fraction, format=format,
                      out=out, metrics=metrics, json_out=json_out, quiet=quiet, master=spark_master,
                      conf=spark_conf)
        return
    from latentatlas.fsutil import save_figure, to_json, write_json
    from latentatlas.progress import Progress
    from latentatlas.ratings import metrics as M
    from latentatlas.ratings.model import LatentFactorModel

    log = Progress(f"train {solver}", quiet)
    params = {name: value for name, value in dict(k=k, reg=reg, lr=lr, max_steps=max_steps).items()
              if value is not None}
    model = LatentFactorModel(solver=solver, init=init, patience=patience, eval_every=eval_every,
                              log_every=log_every, stop_on=stop_on, center=center, reg_weighting=reg_weighting,
                              als_method=als_method, seed=seed, n_threads=threads, progress=log, **params)
    parts, source = _load_split(data, train_file, validation_file, test_file, min_entries=min_entries,
                                validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed,
                                format=format, quiet=quiet)
    train_r, val_r, test_r = parts
    log(f"{len(train_r):,} training, {len(val_r) if val_r is not None else 0:,} validation, "
        f"{len(test_r) if test_r is not None else 0:,} test ratings; {train_r.n_users:,} users x "
        f"{train_r.n_items:,} items")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    interrupted = False
    start_from = LatentFactorModel.load(resume) if resume is not None else None
    if start_from is not None:
        log(f"resuming from {resume}")
    try:
        model.fit(train_r, val_r, refit=refit, init_from=start_from)
    except KeyboardInterrupt:
        if not hasattr(model, "history_") or not model.history_.steps:
            raise
        interrupted = True
    h = model.history_
    if h.refit_steps:
        log(f"refitted on training + validation ratings for {h.refit_steps} steps")

    result = {"solver": solver, "k": model.k, "reg": model.reg, "seconds_per_iteration": h.seconds_per_iteration,
              "converged_after": h.converged_after, "best_iteration": h.best_step, "stopped_at": h.stopped_at,
              "refit_steps": h.refit_steps, "interrupted": interrupted}
    if test_r is not None and len(test_r):
        ev = M.evaluate(model, test_r, k=RANKING_K, max_users=RANKING_USERS, seed=seed)
        result.update({"test_rmse": ev["rmse"], "test_mae": ev["mae"],
                       **{f"test_{name}": ev[name] for name in (f"precision@{RANKING_K}", f"recall@{RANKING_K}",
                                                                f"ndcg@{RANKING_K}")}})
    if h.validation_rmse:
        result["validation_rmse"] = min(h.validation_rmse)
    if h.train_rmse:
        result["train_rmse"] = h.train_rmse[h.steps.index(h.best_step)] if h.best_step in h.steps else h.train_rmse[-1]
    scalars = dict(result)
    full = {**scalars, "steps": h.steps, "train_loss": h.train_loss, "validation_loss": h.validation_loss,
            "train_rmse_history": h.train_rmse, "validation_rmse_history": h.validation_rmse,
            "seconds": h.seconds, "source": source}

    if metrics is not None:
        write_json(metrics, full)
    if out is not None:
        from latentatlas.plots.ratings import loss_curves

        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "model.npz")
        write_json(out / "metrics.json", full)
        figures = []
        if h.steps:
            save_figure(loss_curves(h, "loss", titles=[solver.upper()]), out / "loss_curve.png")
            save_figure(loss_curves(h, "rmse", titles=[solver.upper()]), out / "rmse_curve.png")
            figures = [
                {"file": "loss_curve.png", "title": f"{solver.upper()}: training and validation loss",
                 "caption": "Penalised sum of squares per iteration (log scale); the dotted line marks the "
                            "iteration whose factors were kept."},
                {"file": "rmse_curve.png", "title": f"{solver.upper()}: training and validation RMSE",
                 "caption": "Root mean squared error of the factor model per iteration."}]
        config = {"data": source, "solver": solver, **model._json_params(), "refit": refit,
                  "resume": str(resume) if resume is not None else None,
                  "min_entries": min_entries, "validation_fraction": validation_fraction,
                  "test_fraction": test_fraction}
        write_json(out / "run.json", {
            "kind": "ratings-train", "title": f"{solver.upper()} latent factor model (k={model.k})",
            "created": created, "config": config,
            "metrics": {k_: v for k_, v in scalars.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "figures": figures, "artifacts": {"model": "model.npz", "metrics": "metrics.json"},
            "tables": {"recommendations": _recommendation_rows(model, train_r)},
        })
        log(f"wrote {out}/")
    if json_out:
        print(to_json(scalars, indent=None))
    else:
        print(_summary(scalars))
    if interrupted:
        raise KeyboardInterrupt


def _summary(m: dict) -> str:
    parts = [f"{m['solver']} k={m['k']}"]
    for key, label in (("test_rmse", "test RMSE"), ("test_mae", "MAE"), (f"test_ndcg@{RANKING_K}", "NDCG@10"),
                       ("validation_rmse", "best validation RMSE")):
        if key in m:
            parts.append(f"{label} {m[key]:.4f}")
    parts.append(f"best step {m['best_iteration']} of {m['stopped_at']}")
    parts.append(f"{m['seconds_per_iteration'] * 1000:.1f} ms/step")
    return ", ".join(parts)


def _recommendation_rows(model, train_r) -> list[dict]:
    counts = train_r.user_counts()
    users = [int(u) for u in np.argsort(-counts, kind="stable")[:SHOW_USERS] if counts[u] > 0]
    rows = []
    for u in users:
        items, scores = model.recommend(u, RANKING_K)
        rows += [{"user": _plain(model.user_ids_[u]), "rank": r + 1, "item": _plain(model.item_ids_[i]),
                  "score": round(float(s), 4)} for r, (i, s) in enumerate(zip(items, scores))]
    return rows


def _plain(x):
    return x.item() if hasattr(x, "item") else x


# --- data ----------------------------------------------------------------------------------------------------
def _load_split(data, train_file, validation_file, test_file, *, min_entries, validation_fraction, test_fraction,
                seed, format, quiet):
    """(train, validation or None, test or None) over one index space, and a description of the source."""
    from latentatlas.ratings import prep
    from latentatlas.ratings.pipeline import PREPARED_FILE, prepare_ratings

    given = [f for f in (train_file, validation_file, test_file) if f is not None]
    if given and data is not None:
        raise LatentAtlasError("give either DATA or --train/--validation/--test files, not both")
    if given:
        if train_file is None:
            raise LatentAtlasError("--validation and --test need --train")
        from latentatlas.ratings.io import read_ratings

        files = [train_file, validation_file, test_file]
        read = [read_ratings(f, format=format) if f is not None else None for f in files]
        train_r, val_r, test_r = _shared_space(read)
        if val_r is None:
            inner = prep.split(train_r, validation_fraction=validation_fraction, seed=seed)
            train_r, val_r = inner.train, inner.validation
        return (train_r, val_r, test_r), f"train {train_file}" + (f", test {test_file}" if test_file else "")
    if data is not None and data.is_dir():
        data = data / PREPARED_FILE
    if data is not None and prep.Split.is_split_file(data):
        s = prep.Split.load(data)
        return (s.train, s.validation, s.test), str(data)
    if data is not None and not data.exists():
        raise LatentAtlasError(f"{data}: no such file")
    prepared = prepare_ratings(data, min_entries=min_entries, validation_fraction=validation_fraction,
                               test_fraction=test_fraction, seed=seed, quiet=quiet, format=format)
    s = prepared.split
    return (s.train, s.validation, s.test), prepared.summary["source"]


def _shared_space(parts):
    """Map ratings read from separate files onto one union of user ids and item ids."""
    from latentatlas.ratings.data import Ratings

    present = [p for p in parts if p is not None]

    def union(attr):
        arrays = [getattr(p, attr) for p in present]
        if len({a.dtype.kind for a in arrays}) > 1:
            arrays = [a.astype(str) for a in arrays]
        return np.unique(np.concatenate(arrays))

    user_ids, item_ids = union("user_ids"), union("item_ids")
    out = []
    for p in parts:
        if p is None:
            out.append(None)
            continue
        uid = p.user_ids.astype(user_ids.dtype) if user_ids.dtype.kind == "U" else p.user_ids
        iid = p.item_ids.astype(item_ids.dtype) if item_ids.dtype.kind == "U" else p.item_ids
        users = np.searchsorted(user_ids, uid)[p.users]
        items = np.searchsorted(item_ids, iid)[p.items]
        out.append(Ratings(users, items, p.values, user_ids, item_ids, dict(p.meta)))
    return out


def _model_space(model, ratings):
    """``ratings`` re-indexed into the model's ids: (known Ratings, predictions for all, n unknown)."""
    from latentatlas.ratings.data import Ratings
    from latentatlas.ratings.model import map_ids

    u = map_ids(model.user_ids_, ratings.user_ids)[ratings.users]
    i = map_ids(model.item_ids_, ratings.item_ids)[ratings.items]
    known = (u >= 0) & (i >= 0)
    sub = Ratings(u[known], i[known], ratings.values[known], model.user_ids_, model.item_ids_)
    return sub, int((~known).sum())


def evaluate(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A model.npz written by `ratings train`."),
    test: Path = typer.Argument(..., metavar="TEST", help="Test ratings: a raw ratings file, or prepared data "
                                                         "(its test part is used)."),
    k: int = typer.Option(RANKING_K, "--k", help="Length of the top-N lists for precision/recall/NDCG."),
    threshold: Optional[float] = typer.Option(None, help="Relevance threshold for the ranking metrics "
                                                         "(default: 3/4 up the rating scale, 4 on 1-5)."),
    max_users: int = typer.Option(RANKING_USERS, help="Users sampled for the ranking metrics."),
    format: Optional[str] = typer.Option(None, "--format", help="Format of a raw test file (default: detected)."),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    engine: str = typer.Option("local", help="local (in memory) or spark (Apache Spark: needs the "
                                             "'spark' extra of latentatlas and Java 17+)."),
    spark_master: str = typer.Option("local[*]", help="Spark master URL for --engine spark (local[*], "
                                                      "spark://host:7077, yarn, k8s://…)."),
    spark_conf: Optional[List[str]] = typer.Option(None, help="Spark setting KEY=VALUE for --engine spark "
                                                              "(repeatable)."),
):
    """Evaluate a saved model on test ratings (original ids): RMSE, MAE, precision/recall/NDCG@k."""
    from latentatlas.ratings.spark import check_engine

    if check_engine(engine) == "spark":  # RMSE and MAE computed by Spark; ranking metrics are local only
        from latentatlas.ratings.spark import evaluate_command

        evaluate_command(model_path, test, format=format, json_out=json_out, master=spark_master, conf=spark_conf)
        return
    from latentatlas.fsutil import to_json
    from latentatlas.ratings import metrics as M
    from latentatlas.ratings import prep
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.pipeline import PREPARED_FILE

    model = LatentFactorModel.load(model_path)
    path = test / PREPARED_FILE if test.is_dir() else test
    if prep.Split.is_split_file(path):
        ratings = prep.Split.load(path).test
    else:
        from latentatlas.ratings.io import read_ratings

        ratings = read_ratings(path, format=format)
    if len(ratings) == 0:
        raise LatentAtlasError(f"{test}: no test ratings")
    pred = model.predict_ids(ratings.user_ids[ratings.users], ratings.item_ids[ratings.items])
    out = {"rmse": M.rmse(ratings.values, pred), "mae": M.mae(ratings.values, pred), "n_ratings": len(ratings)}
    known, unknown = _model_space(model, ratings)
    out["unknown_ratings"] = unknown
    if len(known):
        ev = M.evaluate(model, known, k=k, threshold=threshold, max_users=max_users)
        out.update({name: ev[name] for name in (f"precision@{k}", f"recall@{k}", f"ndcg@{k}", "ranking_users",
                                                "relevance_threshold")})
    if json_out:
        print(to_json(out, indent=None))
    else:
        for name, value in out.items():
            print(f"{name:20s} {value:.4f}" if isinstance(value, float) else f"{name:20s} {value}")


def recommend(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A model.npz written by `ratings train`."),
    user: str = typer.Option(..., "--user", "-u", help="Original user id."),
    n: int = typer.Option(10, "-n", "--n", help="Number of items."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Also list items the user rated in training."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list of {rank, item, score}."),
    engine: str = typer.Option("local", help="local (in memory) or spark (Apache Spark: needs the "
                                             "'spark' extra of latentatlas and Java 17+)."),
    spark_master: str = typer.Option("local[*]", help="Spark master URL for --engine spark (local[*], "
                                                      "spark://host:7077, yarn, k8s://…)."),
    spark_conf: Optional[List[str]] = typer.Option(None, help="Spark setting KEY=VALUE for --engine spark "
                                                              "(repeatable)."),
):
    """Top-N recommendations for a user (original ids in and out), best first, with predicted ratings."""
    from latentatlas.ratings.spark import check_engine

    if check_engine(engine) == "spark":
        from latentatlas.ratings.spark import recommend_command

        recommend_command(model_path, user, n, include_seen=include_seen, json_out=json_out, master=spark_master,
                          conf=spark_conf)
        return
    from latentatlas.fsutil import to_json
    from latentatlas.ratings.model import LatentFactorModel

    if n < 1:
        raise LatentAtlasError(f"-n must be >= 1, got {n}")
    model = LatentFactorModel.load(model_path)
    items, scores = model.recommend_ids(user, n, exclude_seen=not include_seen)
    rows = [{"rank": r + 1, "item": _plain(i), "score": round(float(s), 4)} for r, (i, s) in
            enumerate(zip(items, scores))]
    if json_out:
        print(to_json(rows, indent=None))
    else:
        print(f"{'rank':>4}  {'item':>12}  score")
        for row in rows:
            print(f"{row['rank']:>4}  {str(row['item']):>12}  {row['score']:.3f}")


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


app = typer.Typer(no_args_is_help=True)
app.command()(prepare)
app.command()(train)
app.command()(evaluate)
app.command()(recommend)
