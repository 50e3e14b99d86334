"""``latentatlas ratings train|evaluate|recommend`` end to end on small synthetic files."""

import json

import numpy as np
import pytest

from latentatlas.cli import run
from latentatlas.ratings import metrics as M
from latentatlas.ratings.model import LatentFactorModel
from latentatlas.ratings.pipeline import prepare_ratings
from latentatlas.ratings.synthetic import synthetic


def _write_csv(path, r, user_prefix=""):
    lines = ["userId,movieId,rating"]
    lines += [f"{user_prefix}{r.user_ids[u]},{r.item_ids[i]},{v:g}" for u, i, v in zip(r.users, r.items, r.values)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    return _write_csv(tmp_path_factory.mktemp("data") / "ratings.csv", synthetic(150, 100, 4000, seed=11))


@pytest.fixture(scope="module")
def trained(ratings_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = run(["ratings", "train", str(ratings_csv), "--k", "5", "--max-steps", "6", "--seed", "3",
                "--out", str(out / "als"), "--metrics", str(out / "m.json"), "--quiet"])
    assert code == 0
    return out


def test_train_writes_the_run_directory_contract(trained, ratings_csv):
    d = trained / "als"
    run_json = json.loads((d / "run.json").read_text())
    assert run_json["kind"] == "ratings-train" and run_json["config"]["solver"] == "als"
    assert {f["file"] for f in run_json["figures"]} <= {p.name for p in d.iterdir()}
    assert run_json["artifacts"] == {"model": "model.npz", "metrics": "metrics.json", "ranking": "ranking.npz"}
    rows = run_json["tables"]["recommendations"]
    assert rows and {"user", "rank", "item", "score"} <= set(rows[0])
    metrics = json.loads((trained / "m.json").read_text())
    for key in ("test_rmse", "test_mae", "seconds_per_iteration", "converged_after", "train_loss",
                "validation_loss"):
        assert key in metrics
    assert metrics == json.loads((d / "metrics.json").read_text())
    assert len(metrics["train_loss"]) == len(metrics["steps"]) == metrics["stopped_at"] <= 6
    # The reported test RMSE is the loaded model's error on the split the pipeline makes from the file.
    model = LatentFactorModel.load(d / "model.npz")
    test = prepare_ratings(ratings_csv, seed=3, quiet=True).split.test
    assert metrics["test_rmse"] == pytest.approx(M.rmse(test.values, model.predict_indices(test.users, test.items)))
    assert run_json["metrics"]["test_rmse"] == metrics["test_rmse"]
    assert model.item_factors_.shape == (model.n_items_, 5)
    # the first user row of the table is that user's top item, from the ranking model kept beside it
    from latentatlas.ratings.workflow import load_model

    u = rows[0]["user"]
    items, _ = load_model(d).recommend(u, 10)
    assert [r["item"] for r in rows if r["user"] == u] == items.tolist()


def test_evaluate_and_recommend_use_original_ids(trained, ratings_csv, tmp_path, capsys):
    model = LatentFactorModel.load(trained / "als" / "model.npz")
    test = prepare_ratings(ratings_csv, seed=3, quiet=True).split.test
    test_csv = tmp_path / "test.csv"
    lines = ["userId,movieId,rating"] + [f"{test.user_ids[u]},{test.item_ids[i]},{v:g}"
                                         for u, i, v in zip(test.users, test.items, test.values)]
    lines.append("123456,0,3")  # a user the model never saw: predicted by the baseline
    test_csv.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert run(["ratings", "evaluate", str(trained / "als" / "model.npz"), str(test_csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pred = np.append(model.predict_indices(test.users, test.items), np.clip(model.mu_ + model.item_bias_[0], 1, 5))
    assert out["rmse"] == pytest.approx(M.rmse(np.append(test.values, 3), pred))
    assert out["unknown_ratings"] == 1 and out["n_ratings"] == len(test) + 1

    user = model.user_ids_[7]
    assert run(["ratings", "recommend", str(trained / "als" / "model.npz"), "--user", str(user), "-n", "4",
                "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    from latentatlas.ratings.workflow import load_model

    recommender = load_model(trained / "als" / "model.npz")  # the ranking model beside it makes the lists
    items, scores = recommender.recommend(user, 4)
    assert [r["item"] for r in rows] == items.tolist() and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert [r["predicted"] for r in rows] == pytest.approx(model.predict([[user, i] for i in items]), abs=0.005)


def test_train_on_a_given_split_with_string_ids(tmp_path, capsys):
    r = synthetic(80, 60, 1500, seed=2)
    from latentatlas.ratings import prep

    s = prep.split(r, test_fraction=0.2, seed=0)
    train_csv = _write_csv(tmp_path / "train.csv", s.train, user_prefix="u")
    test_csv = _write_csv(tmp_path / "test.csv", s.test, user_prefix="u")
    code = run(["ratings", "train", "--train", str(train_csv), "--test", str(test_csv), "--solver", "sgd",
                "--k", "3", "--max-steps", "4", "--json", "--quiet", "--out", str(tmp_path / "sgd")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    model = LatentFactorModel.load(tmp_path / "sgd" / "model.npz")
    assert model.user_ids_.dtype.kind == "U"
    pairs = np.column_stack([np.char.add("u", s.test.user_ids[s.test.users].astype(str)).astype(object),
                             s.test.item_ids[s.test.items].astype(object)])
    pred = model.predict(pairs)
    assert out["test_rmse"] == pytest.approx(M.rmse(s.test.values, pred))


def test_train_on_prepared_directory(tmp_path, capsys):
    assert run(["ratings", "prepare", "--builtin-size", "10000", "--out", str(tmp_path / "p"), "--quiet"]) == 0
    capsys.readouterr()
    assert run(["ratings", "train", str(tmp_path / "p"), "--k", "3", "--max-steps", "2", "--json", "--quiet",
                "--no-refit"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refit_steps"] == 0 and out["stopped_at"] == 2


@pytest.mark.parametrize("argv, message", [
    (["ratings", "train", "--k", "0", "X"], "k must be an integer >= 1, got 0"),
    (["ratings", "train", "--solver", "newton", "X"], "solver must be one of als, sgd, bayes; got 'newton'"),
    (["ratings", "train", "--reg", "-1", "X"], "reg must be a finite number >= 0, got -1.0"),
    (["ratings", "train", "missing.csv"], "missing.csv: no such file"),
    (["ratings", "recommend", "MODEL", "--user", "no-such-user"], "unknown user id 'no-such-user'"),
    (["ratings", "evaluate", "missing.npz", "CSV"], "missing.npz: no such model file"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, trained, ratings_csv, capsys):
    argv = [str(trained / "als" / "model.npz") if a == "MODEL" else str(ratings_csv) if a in ("X", "CSV") else a
            for a in argv]
    capsys.readouterr()
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("latentatlas: error: ") and message in err


def test_bad_file_in_a_subprocess(tmp_path, run_cli):
    f = tmp_path / "bad.csv"
    f.write_text("userId,movieId,rating\n1,2,4\n1,3,four\n")
    res = run_cli("ratings", "train", f, "--quiet")
    assert res.returncode == 2
    assert res.stderr.strip() == f"latentatlas: error: {f}: line 3: rating 'four' is not a number"


def test_train_resumes_from_a_saved_model(trained, ratings_csv, tmp_path, capsys):
    model = trained / "als" / "model.npz"
    assert run(["ratings", "train", str(ratings_csv), "--k", "5", "--max-steps", "1", "--seed", "3", "--resume",
                str(model), "--no-refit", "--json", "--quiet", "--out", str(tmp_path / "r")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stopped_at"] == 1
    assert json.loads((tmp_path / "r" / "run.json").read_text())["config"]["resume"] == str(model)
    assert run(["ratings", "train", str(ratings_csv), "--k", "6", "--resume", str(model), "--quiet"]) == 2
    assert "k=5, not 6" in capsys.readouterr().err


def test_loss_curve_figure_draws_the_histories():
    from latentatlas.plots.ratings import loss_curves, rating_histogram
    from latentatlas.ratings.model import History

    h = History(steps=[2, 4, 6], train_loss=[9.0, 5.0, 4.0], validation_loss=[7.0, 6.0, 6.5],
                train_rmse=[1.0, 0.9, 0.8], validation_rmse=[1.1, 1.0, 1.05], best_step=4)
    fig = loss_curves({"ALS": h, "SGD": h.to_dict()}, "rmse")
    assert [ax.get_title() for ax in fig.axes] == ["ALS", "SGD"]
    lines = fig.axes[1].get_lines()
    np.testing.assert_array_equal(lines[0].get_xdata(), [2, 4, 6])
    np.testing.assert_array_equal(lines[1].get_ydata(), [1.1, 1.0, 1.05])
    assert lines[2].get_xdata()[0] == 4  # the kept step
    bars = rating_histogram({"1": 3, "2": 5, "3": 0}).axes[0].patches
    assert [b.get_height() for b in bars] == [3, 5, 0]
