"""solver="bayes" through LatentFactorModel and the command line: the same API as ALS and SGD, plus a
predictive standard deviation; the sampler itself is tested in test_bayes.py."""

import json

import numpy as np
import pytest

from latentatlas import LatentFactorModel, runs
from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import prep
from latentatlas.ratings.synthetic import synthetic


@pytest.fixture(scope="module")
def split():
    return prep.split(synthetic(200, 150, 8000, seed=3), validation_fraction=0.1, test_fraction=0.1, seed=0)


@pytest.fixture(scope="module")
def fitted(split):
    return LatentFactorModel(solver="bayes", k=6, n_samples=30, burn_in=10, seed=1).fit(split.train, split.validation)


def _pairs(r):
    X = np.empty((len(r), 2), dtype=object)
    X[:, 0], X[:, 1] = r.user_ids[r.users], r.item_ids[r.items]
    return X


def test_predictions_are_the_sampler_posterior_mean(fitted, split):
    t = split.test
    raw = fitted.bayes_.predict(t.users, t.items)
    np.testing.assert_allclose(fitted.predict(_pairs(t), clip=False), raw, rtol=1e-5, atol=1e-5)
    h = fitted.history_
    assert h.steps == list(range(1, 41)) and len(h.validation_rmse) == 40 and h.criterion == "validation_rmse"
    assert fitted.reg_ is None and fitted.k_value == 6


def test_return_std_only_for_bayes_and_nan_for_unknown_ids(fitted, split):
    X = _pairs(split.test)[:20]
    X[0, 0] = "stranger"
    pred, std = fitted.predict(X, return_std=True)
    assert np.isnan(std[0]) and np.all(std[1:] > 0)
    als = LatentFactorModel(k=3, max_steps=2).fit(split.train, split.validation)
    with pytest.raises(LatentAtlasError, match="return_std needs solver='bayes'"):
        als.predict(X, return_std=True)


def test_save_load_keeps_predictions_std_and_fold_in(fitted, split, tmp_path):
    fitted.save(tmp_path / "b.npz")
    back = LatentFactorModel.load(tmp_path / "b.npz")
    X = _pairs(split.test)
    for a, b in zip(fitted.predict(X, return_std=True), back.predict(X, return_std=True)):
        np.testing.assert_allclose(a, b)
    items = fitted.item_ids_[[1, 5, 9]]
    fa, fb = fitted.fold_in(items, [5, 3, 1]), back.fold_in(items, [5, 3, 1])
    np.testing.assert_allclose(fa.factors, fb.factors)
    ids, _ = back.recommend(fb, 5)
    assert not set(ids) & set(items)
    assert back.similar_items(items[0], 3)[0].shape == (3,)


def test_same_seed_same_model_and_no_early_stopping_or_hold_out(split):
    kw = dict(solver="bayes", k=4, n_samples=5, burn_in=2, seed=7)
    a = LatentFactorModel(**kw).fit(split.train)
    b = LatentFactorModel(**kw).fit(split.train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert len(a.seen_items_) == len(split.train)  # all given ratings: nothing held out
    assert a.history_.criterion == "train_rmse"


def test_ctrl_c_keeps_the_average_so_far(split):
    def stop(line):
        if line.startswith("bayes sample 8/"):
            raise KeyboardInterrupt

    m = LatentFactorModel(solver="bayes", k=4, n_samples=20, burn_in=2, seed=1, progress=stop)
    with pytest.raises(KeyboardInterrupt):
        m.fit(split.train, split.validation)
    assert m.history_.interrupted and m.bayes_.interrupted and 0 < m.bayes_.n_kept < 20
    assert np.isfinite(m.predict(_pairs(split.test))).all()


def test_bayes_options_are_checked(split):
    with pytest.raises(LatentAtlasError, match="implicit must be one of"):
        LatentFactorModel(solver="bayes", implicit="sideways").fit(split.train)
    with pytest.raises(LatentAtlasError, match="implicit_extra is for solver='bayes' only"):
        LatentFactorModel(k=2).fit(split.train, implicit_extra=_pairs(split.test))


def test_cli_trains_and_reports_a_bayes_model(tmp_path, capsys):
    out = tmp_path / "b"
    assert run(["ratings", "train", "--builtin-size", "20000", "--solver", "bayes", "--k", "4", "--n-samples", "8",
                "--burn-in", "2", "--quiet", "--json", "--out", str(out)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["solver"] == "bayes" and 0.5 < metrics["test_rmse"] < 1.5 and metrics["reg"] is None
    r = runs.load_run(out)
    assert [f["file"] for f in r.figures] == ["ranking.png", "rmse_curve.png"]
    assert run(["report", str(out), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
