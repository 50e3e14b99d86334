"""One door (issue 16): the same training and test files give the same rating model through
``latentatlas ratings train --train --test`` and through ``LatentFactorModel().fit(X, y)``; the training file is
used whole, and what is held out for what is said in the output."""

import json

import numpy as np
import pandas as pd
import pytest

from latentatlas import LatentFactorModel, Recommender
from latentatlas.cli import run
from latentatlas.ratings import prep
from latentatlas.ratings.synthetic import synthetic


def _write_csv(path, r):
    pd.DataFrame({"user": r.user_ids[r.users], "item": r.item_ids[r.items], "rating": r.values}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("door")
    # users and items with few ratings (the prepare k-core would drop some), and test users/items unseen in train
    split = prep.split(synthetic(160, 120, 3000, seed=5), validation_fraction=0.0, test_fraction=0.2, seed=1)
    return _write_csv(folder / "train.csv", split.train), _write_csv(folder / "test.csv", split.test)


SETTINGS = {"bayes": (["--k", "4", "--n-samples", "6", "--burn-in", "2"], dict(k=4, n_samples=6, burn_in=2)),
            "als": (["--k", "4", "--max-steps", "6"], dict(k=4, max_steps=6))}


@pytest.mark.parametrize("solver", ["bayes", "als"])
def test_cli_and_python_give_the_same_model_on_the_same_files(files, solver, tmp_path, capsys):
    train_csv, test_csv = files
    flags, params = SETTINGS[solver]
    out = tmp_path / solver
    assert run(["ratings", "train", "--train", str(train_csv), "--test", str(test_csv), "--solver", solver, *flags,
                "--seed", "3", "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    cli = LatentFactorModel.load(out / "model.npz")

    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    python = LatentFactorModel(solver=solver, seed=3, **params).fit(train[["user", "item"]], train["rating"])
    X = test[["user", "item"]]
    np.testing.assert_array_equal(cli.predict(X), python.predict(X))
    if solver == "bayes":
        np.testing.assert_array_equal(cli.predict(X, return_std=True)[1], python.predict(X, return_std=True)[1])
    # the whole training file: no cold-start filter, every user and item of it kept
    assert len(cli.seen_items_) == len(train) == metrics["training_ratings"]
    assert cli.n_users_ == train["user"].nunique() and cli.n_items_ == train["item"].nunique()
    # the test metrics are those of this model on the test file
    pred = cli.predict(X)
    assert metrics["test_rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - test["rating"]) ** 2))))


def test_bayes_samples_on_all_ratings_and_the_ranker_alone_gets_a_held_out_part(files, tmp_path, capsys):
    train_csv, test_csv = files
    flags, _ = SETTINGS["bayes"]
    assert run(["ratings", "train", "--train", str(train_csv), "--test", str(test_csv), "--solver", "bayes", *flags,
                "--ranker", "auto", "--out", str(tmp_path / "b")]) == 0
    captured = capsys.readouterr()
    n = len(pd.read_csv(train_csv))
    held = int(round(0.1 * n))
    assert f"rating model BAYES sampled on all {n:,} training ratings" in captured.out
    assert f"ranking model chosen on {held:,} held-out training ratings (seeded 10%), then refitted on all {n:,}" \
        in captured.out
    assert f"{n:,} training ratings, all used" in captured.err
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["rating_model_ratings"] == n and metrics["ranker_validation_ratings"] == held


def test_als_hold_out_is_reported_and_refitted(files, tmp_path, capsys):
    train_csv, test_csv = files
    flags, _ = SETTINGS["als"]
    assert run(["ratings", "train", "--train", str(train_csv), "--test", str(test_csv), *flags, "--quiet",
                "--validation-fraction", "0.2", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    n = len(pd.read_csv(train_csv))
    assert f"rating model ALS early-stopped on {int(round(0.2 * n)):,} held-out training ratings (seeded 20%), " \
           f"then refitted on all {n:,}" in out


def test_a_filter_on_the_training_file_only_when_asked_and_reported(files, tmp_path, capsys):
    train_csv, test_csv = files
    assert run(["ratings", "train", "--train", str(train_csv), "--test", str(test_csv), "--k", "3",
                "--max-steps", "2", "--min-entries", "10", "--ranker", "rating", "--out", str(tmp_path / "f")]) == 0
    err = capsys.readouterr().err
    n = len(pd.read_csv(train_csv))
    model = LatentFactorModel.load(tmp_path / "f" / "model.npz")
    kept = len(model.seen_items_)
    assert kept < n
    assert f"cold-start filter (min_entries=10) dropped {n - kept:,} of {n:,} training ratings" in err


def test_the_recommender_fits_its_rating_model_as_the_model_alone_would(files):
    train = pd.read_csv(files[0])
    X, y = train[["user", "item"]], train["rating"]
    rec = Recommender(ranker="popular", rating_model=LatentFactorModel(solver="bayes", k=3, n_samples=3, burn_in=1,
                                                                                 seed=2), seed=2).fit(X, y)
    alone = LatentFactorModel(solver="bayes", k=3, n_samples=3, burn_in=1, seed=2).fit(X, y)
    np.testing.assert_array_equal(rec.predict(X), alone.predict(X))
    assert len(rec.rating_model_.seen_items_) == len(train)
    assert rec.n_ranker_validation_ == int(round(0.1 * len(train))) and rec.validation_held_out_
