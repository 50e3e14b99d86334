"""The Python-first API of the recommender: a scikit-learn regressor over original ids, and its runs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from latentatlas import LatentFactorModel, Ratings, prepare_ratings, runs
from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import metrics as M
from latentatlas.ratings import prep, workflow
from latentatlas.ratings.synthetic import synthetic


@pytest.fixture(scope="module")
def string_ratings():
    """Ratings with string user ids and integer item ids unlike their indices."""
    r = synthetic(120, 80, 4000, seed=5)
    users = np.array([f"user-{j}" for j in range(r.n_users)])
    items = np.arange(r.n_items) * 7 + 1000
    return Ratings(r.users, r.items, r.values, users, items, dict(r.meta))


@pytest.fixture(scope="module")
def Xy(string_ratings):
    r = string_ratings
    X = np.empty((len(r), 2), dtype=object)
    X[:, 0], X[:, 1] = r.user_ids[r.users], r.item_ids[r.items]
    return X, r.values.astype(np.float64)


@pytest.fixture(scope="module")
def fitted(Xy):
    X, y = Xy
    return LatentFactorModel(k=6, max_steps=10, seed=1).fit(X, y)


# --- scikit-learn conventions ------------------------------------------------------------------------------
def test_clone_and_params_round_trip():
    from sklearn.base import clone

    m = LatentFactorModel(k=7, reg=0.3, solver="sgd", validation_fraction=0.2)
    params = m.get_params()
    assert params["k"] == 7 and params["validation_fraction"] == 0.2 and "progress" in params
    c = clone(m)
    assert c is not m and c.get_params() == params
    assert m.set_params(k=3) is m and m.k == 3


def test_grid_search_and_cross_val_score_run(Xy):
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    X, y = Xy
    cv = KFold(3, shuffle=True, random_state=0)
    grid = GridSearchCV(LatentFactorModel(max_steps=5), {"k": [2, 8]}, scoring="neg_root_mean_squared_error",
                        cv=cv).fit(X, y)
    assert grid.best_params_["k"] in (2, 8) and -1.5 < grid.best_score_ < -0.5
    scores = cross_val_score(LatentFactorModel(k=4, max_steps=5), X, y, cv=cv,
                             scoring="neg_root_mean_squared_error")
    assert scores.shape == (3,) and np.all(scores < 0)


def test_fit_X_y_holds_out_validation_then_refits_on_everything(Xy, string_ratings):
    X, y = Xy
    m = LatentFactorModel(k=6, max_steps=10, seed=1).fit(X, y)
    h = m.history_
    assert h.validation_rmse and h.refit_steps == h.best_step > 0
    # The refit saw every rating: every user has as many seen items as ratings in X.
    counts = np.diff(m.seen_indptr_)
    assert counts.sum() == len(X)
    # Early stopping is the same as making that split by hand and fitting on it (the same ratings held out)...
    r = Ratings.from_arrays(X[:, 0], X[:, 1], y)
    inner = prep.split(r, int(round(0.1 * len(X))), 0, seed=1)
    by_hand = LatentFactorModel(k=6, max_steps=10, seed=1, refit=False).fit(inner.train, inner.validation)
    assert h.steps == by_hand.history_.steps and h.validation_rmse == by_hand.history_.validation_rmse
    assert h.best_step == by_hand.history_.best_step
    # ...and the refit is best_step steps on all the given ratings, as given (in their order).
    everything = LatentFactorModel(k=6, max_steps=h.best_step, seed=1, validation_fraction=0).fit(X, y)
    np.testing.assert_array_equal(m.user_factors_, everything.user_factors_)
    np.testing.assert_array_equal(m.predict(X[:100]), everything.predict(X[:100]))
    # Without hold-out there is nothing to stop on: max_steps steps, no refit.
    plain = LatentFactorModel(k=6, max_steps=4, validation_fraction=0).fit(X, y)
    assert plain.history_.stopped_at == 4 and plain.history_.refit_steps == 0


def test_fit_accepts_a_dataframe_and_ratings(Xy):
    pd = pytest.importorskip("pandas")
    X, y = Xy
    df = pd.DataFrame({"item": X[:, 1].astype(int), "user": X[:, 0]})  # columns found by name, any order
    a = LatentFactorModel(k=4, max_steps=3, validation_fraction=0).fit(df, y)
    b = LatentFactorModel(k=4, max_steps=3, validation_fraction=0).fit(X, y)
    np.testing.assert_allclose(a.predict(X[:50]), b.predict(X[:50]))
    r = Ratings.from_pandas(pd.DataFrame({"userId": X[:, 0], "movieId": X[:, 1].astype(int), "rating": y}))
    c = LatentFactorModel(k=4, max_steps=3, validation_fraction=0).fit(r)
    np.testing.assert_allclose(c.predict(X[:50]), b.predict(X[:50]))


def test_ratings_constructors():
    r = Ratings.from_arrays(["ann", "bob", "ann", "ann"], [10, 10, 20, 10], [4, 3, 5, 2])
    assert r.user_ids.tolist() == ["ann", "bob"] and r.item_ids.tolist() == [10, 20]
    got = {(r.user_ids[u], r.item_ids[i]): v for u, i, v in zip(r.users, r.items, r.values)}
    assert got == {("ann", 10): 2.0, ("bob", 10): 3.0, ("ann", 20): 5.0}  # the last repeat wins
    import scipy.sparse as sp

    s = Ratings.from_sparse(sp.csr_matrix([[5, 0, 1], [0, 3, 0]]), user_ids=["a", "b"], item_ids=[7, 8, 9])
    assert sorted(zip(s.user_ids[s.users], s.item_ids[s.items], s.values)) == [("a", 7, 5.0), ("a", 9, 1.0),
                                                                                ("b", 8, 3.0)]
    with pytest.raises(LatentAtlasError, match="same length"):
        Ratings.from_arrays([1, 2], [1], [3, 4])
    with pytest.raises(LatentAtlasError, match=r"ratings\[1\] is missing"):
        Ratings.from_arrays([1, 2], [1, 2], [3, float("nan")])


# --- every method speaks original ids --------------------------------------------------------------------
def test_predict_takes_original_ids_and_handles_unknown_ones(fitted):
    u, i = fitted.user_ids_[3], fitted.item_ids_[5]
    direct = fitted.mu_ + fitted.user_bias_[3] + fitted.item_bias_[5] + fitted.user_factors_[3] @ fitted.item_factors_[5]
    X = np.array([[u, i], ["stranger", i], [u, -1]], dtype=object)
    pred = fitted.predict(X, clip=False)
    assert pred[0] == pytest.approx(direct, abs=1e-5)
    assert pred[1] == pytest.approx(fitted.mu_ + fitted.item_bias_[5])
    assert pred[2] == pytest.approx(fitted.mu_ + fitted.user_bias_[3])
    assert np.all(fitted.predict(X) <= fitted.scale_[1])


def test_recommend_batch_equals_recommend_per_user_and_brute_force(fitted):
    users = fitted.user_ids_[[0, 5, 17]]
    ids, scores = fitted.recommend_batch(users, n=6, clip=False)
    for row, user in enumerate(users):
        one_ids, one_scores = fitted.recommend(user, 6, clip=False)
        np.testing.assert_array_equal(ids[row], one_ids)
        np.testing.assert_allclose(scores[row], one_scores)
        u = fitted.user_index(user)
        X = np.empty((fitted.n_items_, 2), dtype=object)
        X[:, 0], X[:, 1] = user, fitted.item_ids_
        everything = fitted.predict(X, clip=False)
        everything[fitted.seen_items_[fitted.seen_indptr_[u]:fitted.seen_indptr_[u + 1]]] = -np.inf
        np.testing.assert_array_equal(one_ids, fitted.item_ids_[np.argsort(-everything, kind="stable")[:6]])
    clipped = fitted.recommend_batch(users, n=6)[1]
    assert np.nanmax(clipped) <= fitted.scale_[1]


def test_recommend_among_candidates_and_with_seen(fitted):
    user = fitted.user_ids_[2]
    cands = fitted.item_ids_[[1, 4, 9]]
    ids, _ = fitted.recommend(user, 10, items=cands, exclude_seen=False)
    assert set(ids) == set(cands)


def test_similar_items_and_users_are_cosine_brute_force(fitted):
    for F, ids, method, query in ((fitted.item_factors_, fitted.item_ids_, fitted.similar_items, 4),
                                  (fitted.user_factors_, fitted.user_ids_, fitted.similar_users, 9)):
        F = F.astype(np.float64)
        cos = F @ F[query] / (np.linalg.norm(F, axis=1) * np.linalg.norm(F[query]))
        cos[query] = -np.inf
        got_ids, got = method(ids[query], n=5)
        np.testing.assert_array_equal(got_ids, ids[np.argsort(-cos, kind="stable")[:5]])
        np.testing.assert_allclose(got, np.sort(cos)[::-1][:5], atol=1e-6)


def test_fold_in_by_ids_reproduces_the_index_version(fitted):
    items = fitted.item_ids_[[3, 8, 20]]
    a = fitted.fold_in(list(items) + [-12345], [5, 4, 1, 3])  # an unknown item is ignored
    b = fitted.fold_in_indices([3, 8, 20], [5, 4, 1])
    np.testing.assert_allclose(a.factors, b.factors)
    ids, _ = fitted.recommend(a, 5)
    assert not set(ids) & set(items)


def test_unknown_ids_are_named(fitted):
    with pytest.raises(LatentAtlasError, match="unknown user id 'nobody'"):
        fitted.recommend("nobody")
    with pytest.raises(LatentAtlasError, match="unknown item id 99"):
        fitted.similar_items(99)
    with pytest.raises(LatentAtlasError, match="unknown user id 'nobody'"):
        fitted.recommend_batch(["nobody"])


# --- trust: resume, refit, Ctrl-C -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def split():
    return prep.split(synthetic(150, 100, 5000, seed=8), validation_fraction=0.1, test_fraction=0.1, seed=0)


def test_refit_starts_from_the_resumed_factors(split):
    kw = dict(k=5, max_steps=6, patience=10, dtype="float64", seed=2)
    base = LatentFactorModel(**kw, refit=False).fit(split.train, split.validation)
    resumed = LatentFactorModel(**kw, refit=True).fit(split.train, split.validation, init_from=base)
    # The refit repeats the run from the resumed factors on train + validation for best_step steps:
    both = Ratings(np.r_[split.train.users, split.validation.users], np.r_[split.train.items, split.validation.items],
                   np.r_[split.train.values, split.validation.values], split.train.user_ids, split.train.item_ids)
    ref = LatentFactorModel(**{**kw, "max_steps": resumed.history_.best_step}, refit=False,
                            validation_fraction=0).fit(both, init_from=base)
    np.testing.assert_allclose(resumed.user_factors_, ref.user_factors_, atol=1e-10)
    # (the bug this guards against: the refit started again from a random draw, discarding the resumed run)
    from_scratch = LatentFactorModel(**{**kw, "max_steps": resumed.history_.best_step}, refit=False,
                                     validation_fraction=0).fit(both)
    assert not np.allclose(resumed.user_factors_, from_scratch.user_factors_)


def test_ctrl_c_during_the_refit_keeps_the_early_stopped_model(split):
    def interrupt_in_refit(line):
        if "refit step 1" in line:
            raise KeyboardInterrupt

    kw = dict(k=5, max_steps=5, patience=10, dtype="float64", seed=2)
    plain = LatentFactorModel(**kw, refit=False).fit(split.train, split.validation)
    m = LatentFactorModel(**kw, progress=interrupt_in_refit)
    with pytest.raises(KeyboardInterrupt):
        m.fit(split.train, split.validation)
    assert m.history_.interrupted and m.history_.steps == plain.history_.steps
    np.testing.assert_allclose(m.user_factors_, plain.user_factors_)
    assert len(m.seen_items_) == len(split.train)  # the training ratings, not train + validation


def test_fit_prints_nothing_and_restores_thread_counts(split, capfd):
    import numba

    before = numba.get_num_threads()
    LatentFactorModel(k=3, max_steps=2, n_threads=1).fit(split.train, split.validation)
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""
    assert numba.get_num_threads() == before


def test_progress_goes_to_the_callback_and_the_logger(split, caplog):
    lines = []
    with caplog.at_level("INFO", logger="latentatlas"):
        LatentFactorModel(k=3, max_steps=2, progress=lines.append, refit=False).fit(split.train, split.validation)
    assert any("als step 2/2" in line for line in lines)
    assert any("als step 2/2" in r.getMessage() for r in caplog.records)


# --- imports change nothing ----------------------------------------------------------------------------------
def test_importing_the_library_pulls_in_no_cli_and_changes_no_global_state():
    code = """
import os, sys, matplotlib
import sklearn, numba, pyarrow, scipy.sparse  # dependencies: scikit-learn sets KMP_* variables on import
backend, rc = matplotlib.get_backend(), dict(matplotlib.rcParams)
env = dict(os.environ)
umask = os.umask(0o022); os.umask(umask)
import latentatlas, latentatlas.ratings, latentatlas.images, latentatlas.runs, latentatlas.plots.ratings
from latentatlas import LatentFactorModel, Ratings, read_ratings, prepare_ratings
import latentatlas.ratings.model, latentatlas.ratings.kernels.als, latentatlas.ratings.workflow
assert not any(m == "typer" or m.startswith("typer.") or m == "click" for m in sys.modules), "typer imported"
assert matplotlib.get_backend() == backend, "backend changed"
assert dict(matplotlib.rcParams) == rc, "rcParams changed"
assert dict(os.environ) == env, "environment changed"
print(sorted(latentatlas.__all__))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"MPLBACKEND": "",
                                                                                         "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert "LatentFactorModel" in res.stdout and "ConvAutoencoder" in res.stdout


# --- runs ---------------------------------------------------------------------------------------------------
def test_every_run_kind_round_trips_through_the_contract(tmp_path):
    for kind in runs.KINDS:
        folder = tmp_path / kind
        folder.mkdir()
        artifacts = {}
        for key in runs.REQUIRED_ARTIFACTS[kind]:
            (folder / runs.FILES[key]).write_bytes(b"x")
            artifacts[key] = runs.FILES[key]
        (folder / "f.png").write_bytes(b"png")
        written = runs.write_run(folder, kind, f"a {kind} run", config={"a": 1}, metrics={"m": 0.5},
                                 figures=[runs.figure("f.png", "F", "cap")], artifacts=artifacts,
                                 tables={"t": [{"x": 1}]})
        back = runs.load_run(folder)
        assert back == written
        for key in artifacts:
            assert back.artifact(key) == folder / runs.FILES[key]
    with pytest.raises(ValueError, match="must name the artifacts model"):
        runs.write_run(tmp_path / runs.RATINGS_PREPARE, runs.RATINGS_TRAIN, "t")


def test_load_run_refuses_files_outside_the_folder(tmp_path):
    (tmp_path / "secret.txt").write_text("x")
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"kind": "ratings-prepare", "artifacts": {"s": "../secret.txt"}}))
    with pytest.raises(LatentAtlasError, match="outside the run folder"):
        runs.load_run(run_dir)


def test_a_failed_run_leaves_the_old_folder_untouched(tmp_path):
    out = tmp_path / "run"
    with runs.staged_run(out) as stage:
        (stage / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with runs.staged_run(out) as stage:
            (stage / "a.txt").write_text("new")
            raise RuntimeError("disk full, say")
    assert (out / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left behind
    # A kill between the two renames of a non-atomic swap: the old run is put back on the next run.
    stray = tmp_path / ".run.replaced-123"
    out.rename(stray)
    runs.clean_stale(out)
    assert (out / "a.txt").read_text() == "old" and not stray.exists()


# --- the command line on the same contract -------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "prep"
    assert run(["ratings", "prepare", "--builtin-size", "8000", "--out", str(out), "--quiet"]) == 0
    return out


def test_one_split_option_keeps_the_others_defaults():
    data = prepare_ratings(builtin_size=8000, test_fraction=0.2)
    sizes = data.split.sizes()
    n = len(data.ratings)
    assert sizes["test"] == round(0.2 * n) and sizes["validation"] == round(0.1 * n)
    with pytest.raises(LatentAtlasError, match="leave_k_out=1000 holds out nothing"):
        prepare_ratings(builtin_size=8000, leave_k_out=1000)


def test_train_records_the_lambda_used_and_clips_shown_scores(prepared, tmp_path, capsys):
    out = tmp_path / "m"
    assert run(["ratings", "train", str(prepared), "--k", "4", "--max-steps", "3", "--quiet", "--out", str(out)]) == 0
    meta = runs.load_run(out)
    assert meta.metrics["reg"] == pytest.approx(0.12) and meta.config["reg_used"] == pytest.approx(0.12)
    assert all(row["score"] <= 5 for row in meta.tables["recommendations"])


def test_ctrl_c_in_train_writes_the_best_model_and_the_resume_command(prepared, tmp_path, capsys, monkeypatch):
    from latentatlas.ratings.model import LatentFactorModel as Model

    finished = tmp_path / "done"
    assert run(["ratings", "train", str(prepared), "--k", "4", "--max-steps", "3", "--quiet", "--out",
                str(finished)]) == 0
    before = (finished / "model.npz").read_bytes()

    def interrupted_refit(self, *a, **kw):
        self.history_.interrupted = True
        raise KeyboardInterrupt

    monkeypatch.setattr(Model, "_refit", interrupted_refit)
    capsys.readouterr()
    assert run(["ratings", "train", str(prepared), "--k", "4", "--max-steps", "3", "--quiet", "--out",
                str(finished)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and "done-interrupted" in err
    assert (finished / "model.npz").read_bytes() == before  # a finished run is never replaced by a partial one
    partial = runs.load_run(tmp_path / "done-interrupted")
    assert partial.metrics["interrupted"] is True
    monkeypatch.undo()
    resume_path = err.split("--resume ")[1].split()[0]
    assert run(["ratings", "train", str(prepared), "--k", "4", "--max-steps", "3", "--quiet", "--out",
                str(tmp_path / "resumed"), "--resume", resume_path]) == 0


def test_evaluate_refuses_when_nothing_can_be_scored(prepared, tmp_path, capsys):
    out = tmp_path / "m"
    assert run(["ratings", "train", str(prepared), "--k", "3", "--max-steps", "2", "--quiet", "--out", str(out)]) == 0
    strangers = tmp_path / "strangers.csv"
    strangers.write_text("userId,movieId,rating\n900001,900002,4\n900003,900004,2\n")
    capsys.readouterr()
    assert run(["ratings", "evaluate", str(out), str(strangers)]) == 2
    assert "none of the 2 test ratings" in capsys.readouterr().err
    assert run(["ratings", "evaluate", str(out), str(prepared), "--max-users", "0"]) == 2
    assert "max-users must be an integer >= 1" in capsys.readouterr().err


def test_recommend_for_all_users_predict_pairs_and_similar(prepared, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "m"
    assert run(["ratings", "train", str(prepared), "--k", "3", "--max-steps", "2", "--quiet", "--out", str(out)]) == 0
    model = workflow.load_model(out)
    assert run(["ratings", "recommend", str(out), "--all-users", "-n", "3", "--out", str(tmp_path / "r.parquet")]) == 0
    table = pq.read_table(tmp_path / "r.parquet").to_pydict()
    assert len(table["user"]) == 3 * model.n_users_
    ids, _ = model.recommend(table["user"][0], 3)
    assert table["item"][:3] == ids.tolist()
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"user,item\n{model.user_ids_[0]},{model.item_ids_[1]}\n")
    capsys.readouterr()
    assert run(["ratings", "predict", str(out), str(pairs), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["prediction"] == pytest.approx(model.predict([[model.user_ids_[0], model.item_ids_[1]]])[0],
                                                  abs=1e-4)
    assert run(["ratings", "similar", str(out), "--item", str(model.item_ids_[2]), "-n", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["item"] for r in rows] == model.similar_items(model.item_ids_[2], 2)[0].tolist()
    new_user = tmp_path / "me.csv"
    new_user.write_text(f"item,rating\n{model.item_ids_[0]},5\n{model.item_ids_[3]},1\n")
    assert run(["ratings", "recommend", str(out), "--ratings", str(new_user), "-n", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and {r["item"] for r in rows}.isdisjoint({model.item_ids_[0], model.item_ids_[3]})


def test_every_public_name_resolves():
    import latentatlas

    for name in latentatlas.__all__:
        assert getattr(latentatlas, name) is not None, name
    features = latentatlas.Features.from_frame(
        __import__("pandas").DataFrame({"item": [1, 2], "genre": ["Comedy|Drama", "Drama"]}))
    assert list(features.ids) == [1, 2] and features.matrix.shape[0] == 2
