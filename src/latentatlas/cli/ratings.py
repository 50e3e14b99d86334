"""``latentatlas ratings prepare|train|evaluate|recommend|predict|similar``: thin shells over the ratings library
(:mod:`latentatlas.ratings.workflow`, :class:`~latentatlas.ratings.model.LatentFactorModel`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from latentatlas.cli.options import (Duplicates, Engine, Format, Header, ItemCol, ItemFeatureColumns, ItemFeatureId,
                                     ItemFeatures, ItemFeatureSep, ItemNames, JsonOut, OnBadLines, OutDir, Quiet,
                                     RatingCol, Seed, Sep, SparkConf, SparkMaster, Threads, TimeBias, TopN, UserCol,
                                     UserFeatureColumns, UserFeatureId, UserFeatures, UserFeatureSep, UserNames,
                                     feature_options, read_options)
from latentatlas.errors import LatentAtlasError, printable

app = typer.Typer(no_args_is_help=True)


def _spark(engine: str):
    """The Spark command module when ``--engine spark``, else None."""
    if engine == "local":
        return None
    if engine != "spark":
        raise LatentAtlasError(f"--engine must be local or spark, got {engine!r}")
    from latentatlas.cli import spark

    return spark


def _echo_json(obj) -> None:
    from latentatlas.fsutil import to_json

    typer.echo(to_json(obj, indent=None))


@app.command()
def prepare(
    input: Annotated[Optional[str], typer.Argument(help="Ratings file (.npy triplets, CSV/TSV, Parquet, MovieLens, "
                                                        "Yelp JSON lines) or a database URL (sqlite:///app.db, "
                                                        "postgresql://…) with --query. Omitted: the built-in "
                                                        "synthetic set.")] = None,
    query: Annotated[Optional[str], typer.Option("--query", help="With a database URL: the SQL query returning "
                                                                 "(user, item, rating) rows.")] = None,
    item_names: ItemNames = None, user_names: UserNames = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for prepared.npz, summary.json, run.json.")] = Path("prepared"),
    format: Format = None, user_col: UserCol = None, item_col: ItemCol = None, rating_col: RatingCol = None,
    sep: Sep = None, header: Header = None, duplicates: Duplicates = "last", on_bad_lines: OnBadLines = "error",
    min_entries: Annotated[int, typer.Option(help="Cold start: recursively drop users and items with this "
                                                         "many ratings or fewer (4 keeps a 5-core).")] = 4,
    n_validation: Annotated[Optional[int], typer.Option(help="Random known entries held out for validation.")] = None,
    n_test: Annotated[Optional[int], typer.Option(help="Random known entries held out for test.")] = None,
    validation_fraction: Annotated[Optional[float], typer.Option(help="Validation share of ratings (default 0.1).")] = None,
    test_fraction: Annotated[Optional[float], typer.Option(help="Test share of ratings (default 0.1).")] = None,
    leave_k_out: Annotated[Optional[int], typer.Option(help="Per user, k ratings to test and k to validation.")] = None,
    leave_last_out: Annotated[Optional[int], typer.Option(help="By time: per user, the k latest ratings to test and "
                                                               "the k before them to validation (needs timestamps)."
                                                          )] = None,
    time_col: Annotated[Optional[str], typer.Option("--time-col", help="Time column (default: timestamp, time, "
                                                                       "date or datetime; u.data's 4th).")] = None,
    seed: Seed = 0,
    builtin_size: Annotated[int, typer.Option(help="Ratings in the built-in synthetic set.")] = 100_000,
    json_out: JsonOut = False, quiet: Quiet = False,
    engine: Engine = "local", spark_master: SparkMaster = "local[*]", spark_conf: SparkConf = None,
):
    """Prepare ratings: read, drop cold-start users and items, split, write prepared.npz and a summary."""
    reading = read_options(format, user_col, item_col, rating_col, sep, header, duplicates, on_bad_lines)
    if time_col is not None:
        reading["time_col"] = time_col
    spark = _spark(engine)
    if spark is not None:
        if query or item_names or user_names or leave_last_out is not None or time_col is not None:
            raise LatentAtlasError("--query, --item-names, --user-names, --leave-last-out and --time-col work with "
                                   "--engine local only")
        spark.prepare_command(input, out=out, master=spark_master, conf=spark_conf, json_out=json_out, quiet=quiet,
                              builtin_size=builtin_size, min_entries=min_entries, n_validation=n_validation,
                              n_test=n_test, validation_fraction=validation_fraction, test_fraction=test_fraction,
                              leave_k_out=leave_k_out, seed=seed, **reading)
        return
    from latentatlas.progress import Progress
    from latentatlas.ratings.pipeline import PREPARED_FILE, prepare_ratings, summary_text

    log = Progress("prepare", quiet or json_out)
    result = prepare_ratings(input, min_entries=min_entries, n_validation=n_validation, n_test=n_test,
                             validation_fraction=validation_fraction, test_fraction=test_fraction,
                             leave_k_out=leave_k_out, leave_last_out=leave_last_out, seed=seed,
                             builtin_size=builtin_size, progress=log, quiet=quiet or json_out, query=query,
                             item_names=item_names, user_names=user_names, **reading)
    result.write(out)
    if json_out:
        _echo_json(result.summary)
    else:
        typer.echo(summary_text(result.summary))
        log(f"wrote {out / PREPARED_FILE}")


@app.command()
def train(
    data: Annotated[Optional[str], typer.Argument(
        help="Prepared data (prepared.npz or the folder from `ratings prepare`) or a raw ratings file (read, "
             "cold-start filtered and split like `ratings prepare`). Omitted without --train: the built-in "
             "synthetic set.")] = None,
    item_names: ItemNames = None, user_names: UserNames = None,
    item_features: ItemFeatures = None, user_features: UserFeatures = None,
    item_feature_columns: ItemFeatureColumns = None, user_feature_columns: UserFeatureColumns = None,
    item_feature_id: ItemFeatureId = None, user_feature_id: UserFeatureId = None,
    item_feature_sep: ItemFeatureSep = None, user_feature_sep: UserFeatureSep = None,
    time_bias: TimeBias = False,
    train_file: Annotated[Optional[Path], typer.Option("--train", help="Training ratings of a given split.")] = None,
    validation_file: Annotated[Optional[Path], typer.Option("--validation", help="Validation ratings of a given "
                                                            "split (default: a seeded 10% of --train, held out "
                                                            "only for what chooses on it, then refitted on all).")
                               ] = None,
    test_file: Annotated[Optional[Path], typer.Option("--test", help="Test ratings of a given split.")] = None,
    solver: Annotated[str, typer.Option(help="The rating model: auto (bayes up to 2 M training ratings, als "
                                             "above; an option that only one solver takes picks it), als "
                                             "(alternating least squares), sgd, or bayes (Bayesian MF by Gibbs "
                                             "sampling: no λ to tune, predictive std); with --engine spark also "
                                             "ials (Spark's implicit ALS, a ranking model).")
                      ] = "auto",
    k: Annotated[Optional[int], typer.Option("--k", help="Latent factors (default 64; 24 for bayes).")] = None,
    n_samples: Annotated[Optional[int], typer.Option(help="bayes: posterior samples averaged (default 100).")] = None,
    burn_in: Annotated[Optional[int], typer.Option(help="bayes: samples discarded first (default 10).")] = None,
    implicit: Annotated[str, typer.Option(help="bayes: implicit who-rated-what features: auto (both "
                                               "where ratings fill <= 10 % of users x items, else none), both, "
                                               "user, item or none.")] = "auto",
    reg: Annotated[Optional[float], typer.Option(help="λ, penalty per rating on the factors (default 0.12 for als, "
                                                      "0.065 for sgd).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="SGD learning rate (default 0.02).")] = None,
    init: Annotated[str, typer.Option(help="random (uniform on [0, init-scale)) or svd.")] = "random",
    init_scale: Annotated[Optional[float], typer.Option(help="Upper end of the uniform initialisation (default "
                                                             "1/sqrt(k); the classic course model uses 1).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Iterations/epochs (default 50 for als, 200 for "
                                                                 "sgd).")] = None,
    patience: Annotated[int, typer.Option(help="Stop after this many evaluations without improvement.")] = 3,
    eval_every: Annotated[int, typer.Option(help="Evaluate every this many steps.")] = 1,
    log_every: Annotated[int, typer.Option(help="Progress line every this many steps.")] = 1,
    stop_on: Annotated[str, typer.Option(help="Early-stopping criterion: rmse (validation error) or loss (classic, "
                                              "penalised).")] = "rmse",
    center: Annotated[str, typer.Option(help="Baseline removed before factorising: biases, user or none.")] = "biases",
    reg_weighting: Annotated[str, typer.Option(help="count (λ·n_ratings per row, ALS-WR) or none (the plain "
                                                    "formula).")] = "count",
    als_method: Annotated[str, typer.Option(help="ALS row solve: cg (conjugate gradient, fast) or cholesky "
                                                 "(exact).")] = "cg",
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="After early stopping, retrain on train + "
                                        "validation for the chosen number of steps.")] = True,
    ranker: Annotated[str, typer.Option(help="The ranking model that `recommend` uses: auto (chosen on the "
                                             "validation part by NDCG@10 among EASE, implicit ALS and popularity), "
                                             "ease, ials, popular, or rating (rank by the predicted rating).")
                      ] = "auto",
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Start from the factors of this model.npz or run "
                                                   "folder (e.g. of an interrupted run on the same data).")] = None,
    threads: Threads = None, seed: Seed = 0,
    min_entries: Annotated[Optional[int], typer.Option(help="Raw DATA file: drop users and items with this many "
                                                            "ratings or fewer (default 4). A --train file is used "
                                                            "whole unless this is given (the drop is reported).")
                           ] = None,
    builtin_size: Annotated[int, typer.Option(help="Ratings in the built-in synthetic set (without DATA).")] = 100_000,
    validation_fraction: Annotated[Optional[float], typer.Option(help="Raw DATA file: validation share of the "
                                                                      "split. --train without --validation: share "
                                                                      "held out (seeded) for ALS/SGD early "
                                                                      "stopping and the ranker choice, then "
                                                                      "refitted on all; bayes samples on all "
                                                                      "(default 0.1).")] = None,
    test_fraction: Annotated[Optional[float], typer.Option(help="Raw DATA file: share held out for test "
                                                                "(default 0.1).")] = None,
    leave_last_out: Annotated[Optional[int], typer.Option(help="Raw DATA file: split by time instead, per user the "
                                                               "k latest ratings to test and the k before them to "
                                                               "validation.")] = None,
    format: Format = None, user_col: UserCol = None, item_col: ItemCol = None, rating_col: RatingCol = None,
    sep: Sep = None, header: Header = None, duplicates: Duplicates = "last", on_bad_lines: OnBadLines = "error",
    out: OutDir = None,
    metrics: Annotated[Optional[Path], typer.Option("--metrics", help="Write the metrics JSON here too.")] = None,
    json_out: JsonOut = False, quiet: Quiet = False,
    engine: Engine = "local", spark_master: SparkMaster = "local[*]", spark_conf: SparkConf = None,
):
    """Train a rating model (ALS, SGD or Bayesian) and a ranking model for the top-N lists; report test RMSE,
    MAE and full-ranking NDCG/recall/precision/MAP/coverage@10 beside the most-popular baseline.

    Ctrl-C keeps the best model so far, writes it and prints the command that resumes it (exit 130).
    """
    reading = read_options(format, user_col, item_col, rating_col, sep, header, duplicates, on_bad_lines)
    solver, by_size = _auto_solver(solver, engine, reg=reg, lr=lr, max_steps=max_steps, init_scale=init_scale, resume=resume,
                          n_samples=n_samples, burn_in=burn_in, item_features=item_features,
                          user_features=user_features, time_bias=time_bias)
    _check_train_options(data, engine, solver, metrics, reg=reg, lr=lr, max_steps=max_steps, init_scale=init_scale,
                         n_samples=n_samples, burn_in=burn_in)
    features = feature_options(user_feature_columns, user_feature_id, user_feature_sep, item_feature_columns,
                               item_feature_id, item_feature_sep)
    _check_side_options(solver, engine, item_features, user_features, features, time_bias)
    spark = _spark(engine)
    if spark is not None and leave_last_out is not None:
        raise LatentAtlasError("--leave-last-out works with --engine local only")
    if spark is not None:
        spark.train_command(Path(data) if data is not None and "://" not in data else data, train_file=train_file, validation_file=validation_file, test_file=test_file, k=k,
                            reg=reg, max_steps=max_steps, seed=seed, solver=solver, center=center,
                            reg_weighting=reg_weighting, min_entries=4 if min_entries is None else min_entries,
                            validation_fraction=validation_fraction, test_fraction=test_fraction,
                            out=out, metrics=metrics, json_out=json_out, quiet=quiet, master=spark_master,
                            conf=spark_conf, **reading)
        return
    from latentatlas import runs
    from latentatlas.fsutil import write_json
    from latentatlas.progress import Progress
    from latentatlas.ratings import workflow
    from latentatlas.ratings.model import LatentFactorModel

    log = Progress(f"train {solver}", quiet)
    params = {name: value for name, value in dict(k=k, reg=reg, lr=lr, max_steps=max_steps, init_scale=init_scale,
                                                  n_samples=n_samples, burn_in=burn_in).items() if value is not None}
    model = LatentFactorModel(solver=solver, init=init, patience=patience, eval_every=eval_every,
                              log_every=log_every, stop_on=stop_on, center=center, reg_weighting=reg_weighting,
                              als_method=als_method, seed=seed, n_threads=threads, refit=refit, implicit=implicit,
                              progress=log, **params, **({"time_bias": True} if time_bias else {}))
    model._validate()  # bad options fail before any data is read
    from latentatlas.checks import choice
    from latentatlas.ratings.recommender import RANKERS

    choice("--ranker", ranker, RANKERS)
    if out is None:
        out = runs.default_dir(runs.RATINGS_TRAIN)
    parts = workflow.load_parts(data, train_file=train_file, validation_file=validation_file, test_file=test_file,
                                min_entries=min_entries, validation_fraction=validation_fraction,
                                test_fraction=test_fraction, leave_last_out=leave_last_out, seed=seed,
                                builtin_size=builtin_size, progress=log, user_features=user_features,
                                item_features=item_features, feature_options=features, **reading)
    if by_size and len(parts.train) > AUTO_BAYES_MAX:
        model.set_params(solver="als")
        log.label = "train als"
        log(f"solver als (--solver auto: {len(parts.train):,} training ratings, more than {AUTO_BAYES_MAX:,} for bayes)")
    elif by_size:
        log(f"solver {solver} (--solver auto)")
    if time_bias and parts.train.timestamps is None:
        raise LatentAtlasError(f"--time-bias needs timestamps, and the training ratings "
                               f"({train_file or data or 'the built-in synthetic set'}) have none (a timestamp/date "
                               "column, MovieLens u.data/ratings.csv or Yelp reviews give them; --time-col names "
                               "one)")
    if item_names is not None or user_names is not None:
        from latentatlas.ratings.pipeline import _names

        parts.item_names = _names(item_names, parts.train.item_ids, "item", log) or parts.item_names
        parts.user_names = _names(user_names, parts.train.user_ids, "user", log) or parts.user_names
    config = {"min_entries": min_entries, "validation_fraction": validation_fraction, "test_fraction": test_fraction}
    if time_bias:
        config["time_bias"] = True
    if leave_last_out is not None:
        config["leave_last_out"] = leave_last_out
    result = workflow.train(parts, model, out=out, resume=resume, config=config, progress=log, seed=seed,
                            ranker=ranker)
    model = result.model
    if metrics is not None:
        try:
            write_json(metrics, result.history)
        except OSError as exc:
            raise LatentAtlasError(f"cannot write --metrics {metrics}: {exc.strerror or exc}") from None
    scalars = result.metrics
    if json_out:
        _echo_json({**scalars, "out": str(result.out)})
    else:
        typer.echo(_summary(scalars, result.history.get("ranking")))
        typer.echo(f"model: {result.out / runs.FILES[runs.MODEL]}")
    if result.interrupted:
        for note in result.notes:
            log(note)
        if model.solver == "bayes":  # a Gibbs chain cannot be resumed: no command that would be refused
            typer.echo(f"latentatlas: interrupted; the posterior mean of the {model.history_.stopped_at} samples so "
                       f"far is in {result.out} (a bayes run cannot be resumed; run it again for more samples)",
                       err=True)
            raise typer.Exit(130)
        again = shlex.join(["latentatlas", *_without(sys.argv[1:], "--resume", "--out", "-o"), "--out", str(out),
                            "--resume", str(result.out / runs.FILES[runs.MODEL])])
        typer.echo(f"latentatlas: interrupted; the best model so far (step {model.history_.best_step}) is in "
                   f"{result.out}; continue with: {again}", err=True)
        raise typer.Exit(130)


#: ``--solver auto`` samples (bayes) up to this many training ratings and solves (als) above: bayes won on 6 of 8
#: validation scenarios of four real data sets, at about 40-60 CPU s per million ratings against ALS's 3 s
#: (benchmarks/RESULTS-rating-defaults.md).
AUTO_BAYES_MAX = 2_000_000


def _auto_solver(solver: str, engine: str, **given) -> tuple[str, bool]:
    """``--solver auto``: the solver an option given implies (only bayes takes --n-samples, features...; only
    als/sgd take --reg, --resume...), Spark's ALS on --engine spark, else bayes, to be switched to als above
    :data:`AUTO_BAYES_MAX` training ratings once the data are read (then the flag returned is True)."""
    if solver != "auto":
        return solver, False
    if engine != "local":
        return "als", False
    if given.pop("lr") is not None:
        return "sgd", False
    if any(given.pop(name) is not None for name in ("reg", "max_steps", "init_scale", "resume")):
        return "als", False
    return "bayes", not any(value not in (None, False) for value in given.values())


def _check_side_options(solver, engine, item_features, user_features, features: dict, time_bias: bool) -> None:
    """Refuse, before any data is read, side features and time biases where they cannot apply."""
    given = [flag for flag, value in (("--item-features", item_features), ("--user-features", user_features))
             if value is not None]
    for what, flag in (("item", "--item-features"), ("user", "--user-features")):
        if what in features and flag not in given:
            opts = ", ".join(f"--{what}-feature-{'id' if k == 'id_column' else k}" for k in features[what])
            raise LatentAtlasError(f"{opts} {'needs' if len(features[what]) == 1 else 'need'} {flag} FILE")
    if given and solver != "bayes":
        raise LatentAtlasError(f"{'/'.join(given)} {'needs' if len(given) == 1 else 'need'} --solver bayes (side "
                               f"features enter the Bayesian model; --solver {solver} has no place for them)")
    if time_bias and solver != "bayes":
        raise LatentAtlasError(f"--time-bias needs --solver bayes (--solver {solver} has no time terms)")
    if (given or time_bias) and engine != "local":
        raise LatentAtlasError("--item-features, --user-features and --time-bias work with --engine local only")


def _check_train_options(data, engine, solver, metrics, **given) -> None:
    """Refuse, before any data is read, what ``train`` would otherwise ignore or fail on late."""
    from latentatlas.cli.options import check_output_file

    if engine == "local" and solver == "ials":
        raise LatentAtlasError("--solver ials is Spark's implicit ALS (with --engine spark); the local engine fits a "
                               "rating model (--solver als, sgd or bayes) and a ranking model beside it: use "
                               "--ranker ials")
    if engine == "local" and data is not None and "://" in data:  # a database URL: train has no --query
        raise LatentAtlasError(f"train reads ratings files and prepared folders, not a database: run `latentatlas "
                               f"ratings prepare {data} --query SQL --out FOLDER` and train on FOLDER")
    check_output_file(metrics, "--metrics", "metrics.json")
    flags = {"reg": "--reg", "lr": "--lr", "max_steps": "--max-steps", "init_scale": "--init-scale",
             "n_samples": "--n-samples", "burn_in": "--burn-in"}
    if solver == "bayes":
        unused = [flags[k] for k in ("reg", "lr", "max_steps", "init_scale") if given.get(k) is not None]
        if unused:
            raise LatentAtlasError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to --solver "
                                   "bayes (it samples its precisions instead of a λ, and runs --burn-in + "
                                   "--n-samples samples)")
    else:
        unused = [flags[k] for k in ("n_samples", "burn_in") if given.get(k) is not None]
        if unused:
            raise LatentAtlasError(f"{', '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} to --solver "
                                   "bayes only")


def _without(argv: list[str], *flags: str) -> list[str]:
    """``argv`` without the given options and their values (``--flag value`` or ``--flag=value``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in flags:
            skip = True
            continue
        if any(arg.startswith(f + "=") for f in flags if f.startswith("--")):
            continue
        out.append(arg)
    return out


def _summary(m: dict, ranking: list[dict] | None = None) -> str:
    parts = [f"{m['solver']} k={m['k']}"]
    step = "sample" if m["solver"] == "bayes" else "step"
    for key, label in (("test_rmse", "test RMSE"), ("test_mae", "MAE"), ("validation_rmse", "best validation RMSE")):
        if key in m:
            parts.append(f"{label} {m[key]:.4f}")
    if m["solver"] == "bayes":
        parts.append(f"{m['stopped_at']} samples")
    else:
        parts.append(f"best step {m['best_iteration']} of {m['stopped_at']}")
    parts.append(f"{m['seconds_per_iteration'] * 1000:.1f} ms/{step}")
    lines = ["rating model: " + ", ".join(parts), f"ranking model: {m.get('ranker', 'the rating model')}"]
    lines += [m[key] for key in ("rating_model_data", "ranking_model_data") if m.get(key)]  # what trained each
    for what in ("user", "item"):
        if m.get(f"{what}_feature_groups"):
            lines.append(f"{what} features: {m[what + '_feature_groups']} ({m[what + '_feature_columns']:,} columns)")
    if "cold_start_users" in m:
        lines.append(f"cold start: the model knows {m['cold_start_users']:,} users and {m['cold_start_items']:,} "
                     "items from their features alone")
    if m.get("time_bias"):
        lines.append("time-aware biases: per-item time bins and per-user drift")
    if ranking:
        lines.append(_ranking_table(ranking))
    return "\n".join(lines)


def _ranking_table(rows: list[dict]) -> str:
    """Full-ranking metrics, one model a line (the first is the one whose lists `recommend` shows)."""
    from latentatlas.errors import printable

    names = [k for k in rows[0] if "@" in k]
    width = max(len("test lists (full ranking)"), *(len(printable(r["model"])) for r in rows))
    out = [f"{'test lists (full ranking)':{width}s}  " + "  ".join(f"{n:>12s}" for n in names)]
    for r in rows:
        out.append(f"{printable(r['model']):{width}s}  " + "  ".join(f"{r[n]:12.4f}" for n in names))
    return "\n".join(out)


@app.command("export-projector")
def export_projector(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.npz written by `ratings train`, or "
                                                                     "its run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for tensors.tsv, metadata.tsv and "
                                                          "projector_config.pbtxt.")],
    users: Annotated[bool, typer.Option("--users", help="Export the user factors instead of the item factors.")] = False,
    parquet: Annotated[Optional[Path], typer.Option("--parquet", help="Also write the factors with ids and names "
                                                                      "as this Parquet file.")] = None,
):
    """The item (or user) factors as TensorBoard Embedding Projector files, with ids and names as metadata."""
    from latentatlas.ratings import workflow

    model = workflow.load_model(model_path)
    res = workflow.export_factors(model, out, users=users, parquet=parquet)
    typer.echo(f"wrote {res.n_points:,} {'user' if users else 'item'} vectors to {res.path}")
    if res.message:
        typer.echo(res.message, err=True)


ModelArg = Annotated[Path, typer.Argument(metavar="MODEL", help="A model.npz written by `ratings train`, or its "
                                                                "run folder.")]


@app.command()
def evaluate(
    model_path: ModelArg,
    test: Annotated[Path, typer.Argument(metavar="TEST", help="Test ratings: a raw ratings file, or prepared data "
                                                              "(its test part is used).")],
    top_n: TopN = 10,
    threshold: Annotated[Optional[float], typer.Option(help="Relevance threshold for the ranking metrics "
                                                            "(default: 3/4 up the rating scale, 4 on 1-5).")] = None,
    max_users: Annotated[int, typer.Option(help="Users sampled for the ranking metrics.")] = 2000,
    format: Format = None, user_col: UserCol = None, item_col: ItemCol = None, rating_col: RatingCol = None,
    sep: Sep = None, header: Header = None, duplicates: Duplicates = "last", on_bad_lines: OnBadLines = "error",
    json_out: JsonOut = False,
    engine: Engine = "local", spark_master: SparkMaster = "local[*]", spark_conf: SparkConf = None,
):
    """Evaluate a saved model on test ratings (original ids): RMSE, MAE, precision/recall/NDCG@n."""
    reading = read_options(format, user_col, item_col, rating_col, sep, header, duplicates, on_bad_lines)
    spark = _spark(engine)
    if spark is not None:  # RMSE and MAE computed by Spark; ranking metrics are local only
        if threshold is not None:
            raise LatentAtlasError("--threshold is for the ranking metrics of --engine local; the Spark engine "
                                   "computes RMSE and MAE")
        spark.evaluate_command(model_path, test, json_out=json_out, master=spark_master, conf=spark_conf, **reading)
        return
    from latentatlas.ratings import workflow

    model = workflow.load_model(model_path)
    out = workflow.evaluate(model, workflow.read_test(test, **reading), k=top_n, threshold=threshold,
                            max_users=max_users)
    if json_out:
        _echo_json(out)
        return
    ranking = out.pop("ranking")
    for name, value in out.items():
        if "@" in name:
            continue
        typer.echo(f"{name:20s} {value:.4f}" if isinstance(value, float) else f"{name:20s} {value}")
    typer.echo(_ranking_table(ranking))
    if out["unknown_ratings"]:
        typer.echo(f"note: {out['unknown_share']:.1%} of the test ratings have a user or item the model was not "
                   "trained on; they are predicted from the biases alone", err=True)


def _rows_out(rows: list[dict], out: Path | None, json_out: bool, columns: list[str]) -> None:
    """Rows as a table on stdout, as JSON, or into a CSV/Parquet file (by its suffix)."""
    if out is not None:
        _write_table(out, rows, columns)
        typer.echo(f"wrote {len(rows):,} rows to {out}", err=True)
    elif json_out:
        _echo_json(rows)
    else:
        typer.echo("  ".join(f"{printable(c):>12}" for c in columns))
        for row in rows:  # ids and names come from files: escaped, as in error messages
            typer.echo("  ".join(f"{row[c]:>12.3f}" if isinstance(row[c], float) else f"{printable(str(row[c])):>12}"
                                 for c in columns))


def _write_table(path: Path, rows: list[dict], columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from latentatlas.fsutil import atomic_path

    table = pa.table({c: [r[c] for r in rows] for c in columns})
    if path.suffix.lower() not in (".parquet", ".csv") or path.is_dir():
        raise LatentAtlasError(f"--out {path}: give a .parquet or .csv file name")
    try:
        with atomic_path(path) as tmp:
            if path.suffix.lower() == ".parquet":
                pq.write_table(table, tmp)
            else:
                pacsv.write_csv(table, tmp)
    except OSError as exc:
        raise LatentAtlasError(f"cannot write {path}: {exc.strerror or exc}") from None


def _plain(x):
    return x.item() if hasattr(x, "item") else x


@app.command()
def recommend(
    model_path: ModelArg,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="Original user id.")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Top-N for every user of the model (use --out "
                                                                "recs.parquet or .csv).")] = False,
    ratings_file: Annotated[Optional[Path], typer.Option("--ratings", help="A new user's ratings (a small file "
                                                         "with item and rating columns): fold them in and "
                                                         "recommend for that user.")] = None,
    top_n: TopN = 10,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Also list items the user rated.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the list to a .parquet or .csv file.")] = None,
    json_out: JsonOut = False,
    engine: Engine = "local", spark_master: SparkMaster = "local[*]", spark_conf: SparkConf = None,
):
    """Top-N recommendations (original ids in and out), best first: the ranking model's lists (with the rating
    model's predicted rating beside each score), or a rating model's lists by predicted rating."""
    if sum([user is not None, all_users, ratings_file is not None]) != 1:
        raise LatentAtlasError("give exactly one of --user, --all-users or --ratings")
    spark = _spark(engine)
    if spark is not None:
        if user is None:
            raise LatentAtlasError("--engine spark recommends for one --user")
        spark.recommend_command(model_path, user, top_n, include_seen=include_seen, json_out=json_out,
                                master=spark_master, conf=spark_conf)
        return
    from latentatlas.ratings import workflow

    model = workflow.load_model(model_path)
    if all_users:
        items, scores = model.recommend_batch(model.user_ids_, top_n, exclude_seen=not include_seen)
        rows = [{"user": _plain(u), "rank": r + 1, "item": _plain(i), "score": round(float(s), 4)}
                for u, row_i, row_s in zip(model.user_ids_, items, scores)
                for r, (i, s) in enumerate(zip(row_i, row_s)) if s == s]
        rows = workflow.add_names(model, workflow.with_predictions(model, rows))
        _rows_out(rows, out, json_out, list(rows[0]) if rows else ["user", "rank", "item", "score"])
        return
    if ratings_file is not None:
        from latentatlas.ratings.pairs import read_item_ratings

        items_in, values = read_item_ratings(ratings_file)
        who = model.fold_in(items_in, values)
        if len(who.items) == 0:
            raise LatentAtlasError(f"{ratings_file}: none of its items is known to the model")
    else:
        who = _typed_id(model.user_ids_, user, "user")
    items, scores = model.recommend(who, top_n, exclude_seen=not include_seen)
    rows = [{"user": _plain(who), "rank": r + 1, "item": _plain(i), "score": round(float(s), 4)}
            for r, (i, s) in enumerate(zip(items, scores))]
    if ratings_file is None:
        rows = workflow.with_predictions(model, rows)
    rows = workflow.add_names(model, [{k: v for k, v in row.items() if k != "user"} for row in rows])
    _rows_out(rows, out, json_out, list(rows[0]) if rows else ["rank", "item", "score"])


def _typed_id(ids, text: str, what: str):
    """An id from the command line, typed like the model's ``ids`` (integers stay integers); other text is
    passed on as it is, so that a model with names takes a unique name too (``--item "Toy Story"``)."""
    if ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            return text
    return text


@app.command()
def predict(
    model_path: ModelArg,
    pairs: Annotated[Path, typer.Argument(metavar="PAIRS", help="A file of (user, item) pairs: CSV/TSV/Parquet "
                                                                "with user and item columns.")],
    user_col: UserCol = None, item_col: ItemCol = None, sep: Sep = None, header: Header = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write user, item, prediction to a .parquet "
                                                                    "or .csv file.")] = None,
    json_out: JsonOut = False,
):
    """Predicted ratings for a file of (user, item) pairs; unknown users or items get the biases alone."""
    from latentatlas.ratings import workflow
    from latentatlas.ratings.pairs import read_pairs

    model = workflow.load_model(model_path)
    users, items = read_pairs(pairs, user_col=user_col, item_col=item_col, sep=sep, header=header)
    pred = model.predict(_typed_pairs(model, users, items))
    rows = [{"user": _plain(u), "item": _plain(i), "prediction": round(float(p), 4)}
            for u, i, p in zip(users, items, pred)]
    _rows_out(rows, out, json_out, ["user", "item", "prediction"])


def _typed_pairs(model, users, items):
    import numpy as np

    def typed(ids, known):
        ids = np.asarray(ids)
        if known.dtype.kind in "iu" and ids.dtype.kind not in "iu":
            try:
                return ids.astype(np.int64)
            except ValueError:
                return ids.astype(str)
        return ids.astype(str) if known.dtype.kind == "U" else ids

    out = np.empty((len(users), 2), dtype=object)
    out[:, 0], out[:, 1] = typed(users, model.user_ids_), typed(items, model.item_ids_)
    return out


@app.command()
def similar(
    model_path: ModelArg,
    item: Annotated[Optional[str], typer.Option("--item", "-i", help="Original item id.")] = None,
    user: Annotated[Optional[str], typer.Option("--user", "-u", help="Original user id.")] = None,
    top_n: TopN = 10,
    json_out: JsonOut = False,
):
    """The items (or users) whose latent factors are most similar (cosine) to the given one."""
    if (item is None) == (user is None):
        raise LatentAtlasError("give exactly one of --item or --user")
    from latentatlas.ratings import workflow

    model = workflow.load_model(model_path)
    if item is not None:
        ids, cos = model.similar_items(_typed_id(model.item_ids_, item, "item"), top_n)
        what = "item"
    else:
        ids, cos = model.similar_users(_typed_id(model.user_ids_, user, "user"), top_n)
        what = "user"
    rows = workflow.add_names(model, [{"rank": r + 1, what: _plain(i), "cosine": round(float(c), 4)}
                                      for r, (i, c) in enumerate(zip(ids, cos))])
    _rows_out(rows, None, json_out, list(rows[0]) if rows else ["rank", what, "cosine"])
