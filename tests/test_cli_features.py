"""``ratings train --item-features/--user-features/--time-bias`` end to end on a tiny generated data set whose
ratings follow the item genre, with two cold-start items (in the features file, never rated)."""

import inspect
import json

import numpy as np
import pytest

from latentatlas.cli import run
from latentatlas.ratings.model import LatentFactorModel

N_USERS, N_ITEMS = 60, 40
COLD = (900, 901)  # item 900 is genre A, 901 genre B; neither is rated

from latentatlas.ratings.recommender import Recommender  # noqa: E402

MODEL_TAKES_FEATURES = all("item_features" in inspect.signature(fit).parameters
                           for fit in (LatentFactorModel.fit, Recommender.fit))
MODEL_TAKES_TIME = "time_bias" in LatentFactorModel().get_params()
needs_features = pytest.mark.skipif(not MODEL_TAKES_FEATURES, reason="Recommender.fit(item_features=) has not "
                                                                      "landed yet")
needs_time = pytest.mark.skipif(not MODEL_TAKES_TIME, reason="LatentFactorModel(time_bias=) has not landed yet")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Ratings: 4 for genre A items, 2 for genre B (plus a little seeded noise), with timestamps; an item
    features file (genre, a numeric size) and a user features file (a group)."""
    d = tmp_path_factory.mktemp("feat")
    rng = np.random.default_rng(7)
    genre = np.where(np.arange(N_ITEMS) % 2 == 0, "A", "B")
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(1, N_USERS + 1):
        for i in rng.choice(N_ITEMS, size=12, replace=False):
            r = (4.0 if genre[i] == "A" else 2.0) + rng.normal(0, 0.3)
            lines.append(f"{u},{i + 1},{min(5, max(1, round(r)))},{900_000_000 + int(rng.integers(0, 10**7))}")
    (d / "ratings.csv").write_text("\n".join(lines) + "\n")
    items = ["movieId,genre,size"] + [f"{i + 1},{genre[i]},{i % 5}" for i in range(N_ITEMS)]
    items += [f"{COLD[0]},A,1", f"{COLD[1]},B,1"]
    (d / "items.csv").write_text("\n".join(items) + "\n")
    users = ["userId,group"] + [f"{u},{'x' if u % 2 else 'y'}" for u in range(1, N_USERS + 1)] + ["777,x"]
    (d / "users.csv").write_text("\n".join(users) + "\n")
    (d / "pairs.csv").write_text(f"user,item\n1,{COLD[0]}\n1,{COLD[1]}\n777,1\n")
    return d


def _train(data, out, *extra):
    return run(["ratings", "train", "--train", str(data / "ratings.csv"), "--solver", "bayes", "--k", "4",
                "--n-samples", "30", "--burn-in", "10", "--implicit", "none", "--ranker", "rating",
                "--seed", "1", "--out", str(out), "--quiet", *map(str, extra)])


def test_features_need_the_bayes_solver(data, tmp_path, capsys):
    code = run(["ratings", "train", "--train", str(data / "ratings.csv"), "--solver", "als", "--item-features",
                str(data / "items.csv"), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--item-features needs --solver bayes" in err
    code = run(["ratings", "train", "--train", str(data / "ratings.csv"), "--reg", "0.1", "--time-bias", "--out",
                str(tmp_path / "r"), "--quiet"])  # --reg makes --solver auto choose als
    assert code == 2 and "--time-bias needs --solver bayes" in capsys.readouterr().err
    code = run(["ratings", "train", "--train", str(data / "ratings.csv"), "--solver", "bayes",
                "--item-feature-columns", "genre", "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2 and "--item-feature-columns needs --item-features FILE" in capsys.readouterr().err


def test_bad_feature_files_are_one_line_and_exit_2(data, tmp_path, capsys):
    (tmp_path / "dup.csv").write_text("movieId,genre\n1,A\n2,B\n1,B\n")
    code = _train(data, tmp_path / "r", "--item-features", tmp_path / "dup.csv")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "dup.csv line 4: duplicate id 1" in err
    code = _train(data, tmp_path / "r", "--item-features", data / "items.csv", "--item-feature-columns", "genre,year")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown feature column 'year'; the columns are genre, size" in err
    (tmp_path / "other.csv").write_text("movieId,genre\n5000,A\n5001,B\n")
    code = _train(data, tmp_path / "r", "--item-features", tmp_path / "other.csv")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "none of its 2 ids is an item id of the ratings" in err
    (tmp_path / "noid.csv").write_text("code,genre\n1,A\n")
    code = _train(data, tmp_path / "r", "--item-features", tmp_path / "noid.csv")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no id column" in err and "--item-feature-id" in err
    assert not (tmp_path / "r").exists()


def test_time_bias_needs_timestamps(data, tmp_path, capsys):
    (tmp_path / "plain.csv").write_text("\n".join(
        line.rsplit(",", 1)[0] for line in (data / "ratings.csv").read_text().splitlines()) + "\n")
    code = run(["ratings", "train", "--train", str(tmp_path / "plain.csv"), "--solver", "bayes", "--time-bias",
                "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--time-bias needs timestamps" in err


@needs_features
def test_cold_start_items_and_users_are_predicted_from_their_features(data, tmp_path, capsys):
    out = tmp_path / "run"
    code = _train(data, out, "--item-features", data / "items.csv", "--item-feature-columns", "genre",
                  "--user-features", data / "users.csv", "--json")
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["item_feature_groups"] == "genre (2)" and summary["item_feature_columns"] == 2
    assert summary["user_feature_groups"] == "group (2)"
    assert summary["cold_start_items"] == 2 and summary["cold_start_users"] == 1
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["metrics"]["cold_start_items"] == 2
    assert run_json["config"]["item_features"].endswith("items.csv")
    assert run_json["config"]["item_feature_groups"] == "genre (2)"

    code = run(["ratings", "predict", str(out), str(data / "pairs.csv"), "--json"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = rows[0]
    pred = {(r["user"], r["item"]): r["prediction"] for r in rows}
    a, b = pred[(1, COLD[0])], pred[(1, COLD[1])]
    model = LatentFactorModel.load(out / "model.npz")
    mean = float(model.global_mean_) if hasattr(model, "global_mean_") else 3.0
    # ratings follow the genre (A about 4, B about 2): the cold items' predictions must follow theirs
    assert a > mean + 0.4 and b < mean - 0.4 and a - b > 1.0
    assert 777 in model.user_ids_.tolist() and COLD[0] in model.item_ids_.tolist()

    code = run(["ratings", "recommend", str(out), "--user", "777", "--json"])
    assert code == 0
    code = run(["ratings", "similar", str(out), "--item", str(COLD[0]), "--json"])
    assert code == 0
    capsys.readouterr()


@needs_features
def test_features_from_python_and_the_cli_give_the_same_model(data, tmp_path, capsys):
    import pandas as pd

    from latentatlas.ratings import workflow

    out = tmp_path / "cli"
    assert _train(data, out, "--item-features", data / "items.csv") == 0
    capsys.readouterr()
    cli_model = LatentFactorModel.load(out / "model.npz")
    parts = workflow.load_parts(train_file=data / "ratings.csv", item_features=pd.read_csv(data / "items.csv"))
    model = LatentFactorModel(solver="bayes", k=4, n_samples=30, burn_in=10, implicit="none", seed=1)
    result = workflow.train(parts, model, seed=1, ranker="rating")
    assert result.metrics["cold_start_items"] == 2
    pairs = np.array([[1, COLD[0]], [2, COLD[1]], [3, 1]], dtype=object)
    np.testing.assert_allclose(result.model.predict(pairs), cli_model.predict(pairs), rtol=1e-6)


@needs_time
def test_time_bias_trains_and_is_reported(data, tmp_path, capsys):
    out = tmp_path / "time"
    code = _train(data, out, "--time-bias", "--json")
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["time_bias"] is True
    assert json.loads((out / "run.json").read_text())["config"]["time_bias"] is True
