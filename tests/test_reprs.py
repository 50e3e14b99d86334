"""Short reprs, HTML summaries, figures as pictures, and Ratings as a table (indexing, DataFrames)."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas import Ratings, prepare_ratings
from latentatlas.ratings.names import Names
from latentatlas.ratings.prep import fit_biases

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def prepared():
    return prepare_ratings(builtin_size=5000)


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(0)
    n = 100_000
    return Ratings.from_arrays(rng.integers(0, 943, n), rng.integers(0, 1682, n), rng.integers(1, 6, n),
                               duplicates="first")


def test_ratings_repr_is_one_short_line(big):
    text = repr(big)
    assert text == f"Ratings({big.n_users} users × {big.n_items:,} items, {len(big):,} ratings, 1–5)"
    assert len(text) < 80
    assert repr(Ratings.from_arrays([], [], [])) == "Ratings(0 users × 0 items, 0 ratings)"
    assert repr(Ratings.from_arrays([1], [2], [3.5])) == "Ratings(1 users × 1 items, 1 ratings, 3.5)"


def test_html_summaries_are_tables_and_escape_what_users_wrote(big, prepared):
    hostile = Ratings(big.users, big.items, big.values, big.user_ids, big.item_ids,
                      {"source": "<script>alert(1)</script>\x1b[31m.csv"})
    page = hostile._repr_html_()
    assert "<table>" in page and "<script>" not in page and "&lt;script&gt;" in page and "\x1b" not in page
    assert len(page) < 3000
    names = Names([1, 2], ["<b>bold</b>", "plain"], meta={"source": "x.csv"})
    assert "<b>bold" not in names._repr_html_() and "&lt;b&gt;bold" in names._repr_html_()
    for obj in (prepared, prepared.split):
        assert "<table>" in obj._repr_html_()


def test_every_object_of_the_pipeline_has_a_short_repr(prepared):
    names = Names(np.arange(100_000), [f"title number {k} " * 5 for k in range(100_000)],
                  metadata={"genres": np.array(["Drama"] * 100_000)}, meta={"source": "/data/" + "x" * 300})
    for obj in (prepared, prepared.split, prepared.ratings, names, fit_biases(prepared.ratings)):
        assert len(repr(obj)) < 200, repr(obj)
        assert "array(" not in repr(obj)
    assert repr(prepared.split).startswith("Split(train 3,974, validation 497, test 497 ratings; 160 users")
    assert repr(names).startswith("Names(100,000 names, e.g. 0: 'title number 0")


def test_a_wrong_scikit_learn_call_gives_a_short_message(prepared):
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.dummy import DummyRegressor

    r = prepared.ratings
    with pytest.raises(Exception) as info:  # a Ratings counts users as samples: refused, in a few words
        cross_val_score(DummyRegressor(), r, r.values, cv=KFold(2))
    assert len(str(info.value)) < 300
    with pytest.raises(TypeError, match=r"to_frame\(\)"):
        cross_val_score(DummyRegressor(), r, cv=KFold(2))


def test_ratings_index_like_a_table_over_the_same_id_maps(prepared):
    r = prepared.ratings
    u, i, v = r[0]
    assert (u, i, v) == (r.user_ids[r.users[0]], r.item_ids[r.items[0]], float(r.values[0]))
    assert r[-1] == r[len(r) - 1]
    with pytest.raises(IndexError):
        r[len(r)]
    sub = r[np.array([3, 1, 3])]
    assert len(sub) == 3 and sub.user_ids is r.user_ids and sub.item_ids is r.item_ids
    np.testing.assert_array_equal(sub.values, r.values[[3, 1, 3]])
    high = r[r.values >= 4]
    assert len(high) == int((r.values >= 4).sum()) and high.values.min() >= 4
    assert len(r[10:20]) == 10 and len(r[[]]) == 0
    with pytest.raises(IndexError):
        r[np.ones(3, dtype=bool)]
    with pytest.raises(TypeError):
        r["user"]
    assert len(list(r[:4])) == 4  # iterable as (user id, item id, rating)


def test_to_frame_round_trips_and_feeds_scikit_learn(prepared):
    from sklearn.dummy import DummyRegressor
    from sklearn.model_selection import cross_val_score

    r = prepared.ratings
    df = r.to_frame()
    assert list(df.columns) == ["user", "item", "rating"] and len(df) == len(r)
    back = Ratings.from_pandas(df)
    assert back.shape == r.shape and np.isclose(back.values.sum(), r.values.sum())
    strings = Ratings.from_arrays(["ann", "bob"], ["x", "y"], [4, 2]).to_frame()
    assert strings["user"].tolist() == ["ann", "bob"] and strings["item"].tolist() == ["x", "y"]
    scores = cross_val_score(DummyRegressor(), df[["user", "item"]], df["rating"], cv=3)
    assert len(scores) == 3


def test_figures_render_as_png_without_pyplot():
    from latentatlas.plots.ratings import history_png, loss_curves, rating_histogram
    from latentatlas.plots.style import InlineFigure, png_bytes, repr_png

    fig = rating_histogram({"1": 3, "2": 5})
    assert isinstance(fig, InlineFigure)
    assert fig._repr_png_().startswith(PNG) and png_bytes(fig).startswith(PNG)
    history = {"steps": [1, 2, 3], "train_loss": [9.0, 5.0, 4.0], "validation_loss": [7.0, 6.0, 6.5],
               "train_rmse": [1.0, 0.9, 0.8], "validation_rmse": [1.1, 1.0, 1.05], "best_step": 2,
               "criterion": "validation_rmse"}
    assert history_png(history).startswith(PNG)
    assert history_png({"steps": []}) is None  # nothing to draw: IPython falls back to the text repr

    def broken():
        raise ValueError("no data")

    assert repr_png(broken) is None and repr_png(rating_histogram, {"1": 3}).startswith(PNG)
    labels = [line.get_label() for line in loss_curves(history, "rmse").axes[0].get_lines()]
    assert labels == ["training RMSE", "validation RMSE (early-stopping criterion)", "kept (step 2)"]


def test_a_bayesian_curve_is_not_called_early_stopping():
    from latentatlas.plots.ratings import loss_curves

    sampled = {"steps": [1, 2, 3, 4], "train_rmse": [1.2, 1.0, 0.9, 0.85], "validation_rmse": [1.3, 1.1, 1.0, 0.98],
               "best_step": 4, "stopped_at": 4, "criterion": "validation_rmse"}
    for metric in ("rmse", "loss"):  # a sampler records no loss: its panel shows the RMSEs either way
        ax = loss_curves(sampled, metric).axes[0]
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["training RMSE", "validation RMSE (running mean of the kept samples)"]
        assert ax.get_xlabel() == "Gibbs sample"
