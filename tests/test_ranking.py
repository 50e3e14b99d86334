"""Ranking models and full-ranking evaluation, against closed forms, brute force and hand-computed lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import metrics as M
from latentatlas.ratings.base import load_recommender
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.ease import EASE, check_memory
from latentatlas.ratings.ials import ImplicitALS
from latentatlas.ratings.popular import Popularity
from latentatlas.ratings.recommender import Recommender
from latentatlas.ratings.synthetic import synthetic


@pytest.fixture(scope="module")
def data():
    r = synthetic(120, 60, 2500, seed=4)
    from latentatlas.ratings import prep

    return prep.split(r, validation_fraction=0.1, test_fraction=0.2, seed=1)


def _tiny():
    # 5 users x 4 items; ratings 1-5
    users = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4])
    items = np.array([0, 1, 1, 2, 3, 0, 0, 2, 3])
    values = np.array([5, 3, 4, 1, 5, 2, 4, 4, 3], dtype=float)
    return Ratings(users, items, values, np.arange(5), np.arange(4) * 10)


def test_ease_matches_the_closed_form_on_a_tiny_matrix():
    r = _tiny()
    lam = 0.7
    X = np.zeros((5, 4))
    X[r.users, r.items] = 1.0
    P = np.linalg.inv(X.T @ X + lam * np.eye(4))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    model = EASE(reg=lam).fit(r)
    np.testing.assert_allclose(model.weights_, B, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model._score_rows(np.arange(5)), X @ B, rtol=1e-5, atol=1e-6)
    # rating weights: the lowest rating counts 0.2, the highest 1
    W = np.zeros((5, 4))
    W[r.users, r.items] = 0.2 + 0.8 * (r.values - 1) / 4
    P = np.linalg.inv(W.T @ W + lam * np.eye(4))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(EASE(reg=lam, weighting="rating").fit(r).weights_, B, rtol=1e-5, atol=1e-6)


def test_ease_checks_memory_before_allocating():
    with pytest.raises(LatentAtlasError) as err:
        check_memory(150_000, limit=8 << 30)
    msg = str(err.value)
    assert "\n" not in msg and "150,000 items" in msg and "8.0 GiB" in msg and "ials" in msg
    with pytest.raises(LatentAtlasError, match="over the limit"):
        EASE(reg=1.0, max_memory=100).fit(_tiny())


def test_popularity_ranks_by_training_count_and_skips_seen():
    r = _tiny()  # item counts: 0:3, 1:2, 2:2, 3:2
    model = Popularity().fit(r)
    ids, counts = model.recommend(4, n=3)  # user 4 rated item 30
    assert ids.tolist() == [0, 10, 20] and counts.tolist() == [3, 2, 2]


def test_hand_computed_list_metrics():
    # relevant {1, 5}; list [3, 1, 2]: one hit at rank 2
    top = np.array([[3, 1, 2], [5, 1, 4]])
    indptr = np.array([0, 2, 3])
    relevant = np.array([1, 5, 4])  # user 0: {1, 5}; user 1: {4}
    out = M.list_metrics(top, indptr, relevant, 3)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    np.testing.assert_allclose(out["ndcg"], [ndcg0, (1 / 2) / 1])
    np.testing.assert_allclose(out["recall"], [0.5, 1.0])
    np.testing.assert_allclose(out["precision"], [1 / 3, 1 / 3])
    np.testing.assert_allclose(out["map"], [(1 / 2) / 2, (1 / 3) / 1])
    for u, rel in enumerate(([1, 5], [4])):  # the per-list reference functions agree
        assert out["ndcg"][u] == pytest.approx(M.ndcg_at_k(top[u], rel, 3))
        assert out["map"][u] == pytest.approx(M.average_precision_at_k(top[u], rel, 3))


@pytest.mark.parametrize("make", [lambda: EASE(reg=5.0), lambda: ImplicitALS(k=4, iterations=3), Popularity,
                                  lambda: Recommender(ranker="auto")], ids=["ease", "ials", "popular", "auto"])
def test_ranking_metrics_equal_brute_force_and_seen_items_never_appear(data, make):
    model = make().fit(data.train, validation=data.validation)
    # brute force: score every item per user, drop seen ones, sort
    thr = M.default_threshold(model.scale_)
    seen = {u: set(model.seen(u).tolist()) for u in range(model.n_users_)}
    per_user = {}
    for u, i, v in zip(data.test.users, data.test.items, data.test.values):
        if v >= thr:
            per_user.setdefault(int(u), set()).add(int(i))
    ndcg, cover = [], set()
    for u, rel in sorted(per_user.items()):
        scores = model._score_rows(np.array([u]))[0]
        ranked = [i for i in np.lexsort((np.arange(len(scores)), -scores)) if i not in seen[u]][:10]
        assert not set(ranked) & seen[u]
        ndcg.append(M.ndcg_at_k(ranked, rel, 10))
        cover.update(ranked)
    got = M.ranking_metrics(model, data.test, k=10)
    assert got["ranking_users"] == len(per_user)
    assert got["ndcg@10"] == pytest.approx(np.mean(ndcg))
    assert got["coverage@10"] == pytest.approx(len(cover) / model.n_items_)
    # seen items never appear, even when a user has fewer unseen items than n
    ids, scores = model.recommend_batch(model.user_ids_, n=model.n_items_)
    for u in range(model.n_users_):
        real = ids[u][np.isfinite(scores[u])]
        assert not set(model.item_index(i) for i in real) & seen[u]
        assert len(real) == model.n_items_ - len(seen[u])
        assert not set(model.item_index(i) for i in ids[u]) & seen[u]  # padding repeats a real item


def test_recommender_chooses_on_validation_and_round_trips(data, tmp_path):
    rec = Recommender().fit(data.train, validation=data.validation)
    table = rec.ranker_table_
    best = max(table, key=lambda row: row["validation_ndcg@10"])
    assert [row["ranker"] for row in table if row["chosen"]] == [best["ranker"]] == [rec.ranker_name_]
    assert len(rec.ranking_model_.seen_items_) == len(data.train) + len(data.validation)  # refitted on both
    pairs = [[data.test.user_ids[u], data.test.item_ids[i]] for u, i in zip(data.test.users[:20], data.test.items[:20])]
    np.testing.assert_array_equal(rec.predict(pairs), rec.rating_model_.predict(pairs))
    rec.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    user = data.train.user_ids[3]
    np.testing.assert_array_equal(back.recommend(user, n=5)[0], rec.recommend(user, n=5)[0])
    np.testing.assert_allclose(back.predict(pairs), rec.predict(pairs))
    assert back.ranker_name_ == rec.ranker_name_ and len(repr(back)) < 200


def test_folded_in_user_gets_unseen_items_and_ease_fold_in_is_a_row_of_x():
    r = _tiny()
    model = EASE(reg=0.5).fit(r)
    folded = model.fold_in([0, 10], [5, 3])  # the same items user 0 rated
    np.testing.assert_allclose(model._score_folded(folded), model._score_rows(np.array([0]))[0], rtol=1e-6)
    ids, _ = model.recommend(folded, n=4)
    assert set(ids.tolist()) == {20, 30}
    with pytest.raises(LatentAtlasError, match="outside the rating scale"):
        model.fold_in([0], [9])


@pytest.mark.parametrize("make", [lambda: EASE(reg=2.0), lambda: ImplicitALS(k=3, iterations=2), Popularity])
def test_ranking_models_save_and_load_without_pickle(tmp_path, make):
    r = _tiny()
    model = make().fit(r)
    path = model.save(tmp_path / "m.npz")
    back = load_recommender(path)
    assert type(back) is type(model)
    np.testing.assert_allclose(back._score_rows(np.arange(5)), model._score_rows(np.arange(5)))
    with np.load(path, allow_pickle=False) as z:
        assert "meta" in z.files
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(LatentAtlasError, match="bad.npz") as err:
        load_recommender(tmp_path / "bad.npz")
    assert "\n" not in str(err.value)


def test_ids_and_names_in_and_out():
    from latentatlas.ratings.names import Names

    r = _tiny()
    model = EASE(reg=1.0).fit(r)
    model.set_names(items=Names(np.array([0, 10, 20, 30]), np.array(["Alpha (1990)", "Beta", "Gamma", "Beta"])))
    assert model.item_index("Alpha (1990)") == 0
    with pytest.raises(LatentAtlasError) as err:
        model.item_index("Beta")  # two items carry that name
    assert "\n" not in str(err.value)
    ids, _ = model.similar_items("Gamma", n=2)
    assert 20 not in ids.tolist() and len(ids) == 2
    with pytest.raises(LatentAtlasError, match="unknown item id 99"):
        model.similar_items(99)


def test_the_ease_search_goes_past_the_upper_edge_of_its_grid():
    from latentatlas.ratings.recommender import _beyond_the_edge

    tried = [EASE(reg=lam, weighting="rating") for lam in (10.0, 100.0)] + [EASE(reg=1000.0, weighting="binary")]
    label, make = _beyond_the_edge(EASE(reg=100.0, weighting="rating"), tried, None)
    assert make().reg == 250.0 and make().weighting == "rating" and "250" in label
    assert _beyond_the_edge(EASE(reg=10.0, weighting="rating"), tried, None) is None
    assert _beyond_the_edge(Popularity(), tried, None) is None


def test_cli_refuses_an_unknown_ranker_before_reading_data(tmp_path, capsys):
    from latentatlas.cli import run

    assert run(["ratings", "train", str(tmp_path / "missing.csv"), "--ranker", "best", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ranker must be one of auto, ease, ials, popular, rating" in err
    assert not (tmp_path / "o").exists()


def test_python_misuse_gets_one_line_errors_not_numpy_ones(tmp_path):
    r = _tiny()
    model = EASE(reg=1.0).fit(r)
    for call, text in ((lambda: model.recommend([1, 2]), "give one user id"),
                       (lambda: model.similar_items([0, 10]), "give one item id"),
                       (lambda: model.recommend_batch([[1, 2]]), "flat list of user ids"),
                       (lambda: load_recommender(tmp_path / "x.csv"), "no such model file")):
        with pytest.raises(LatentAtlasError, match=text) as err:
            call()
        assert "\n" not in str(err.value)
    (tmp_path / "x.csv").write_text("1,2,3\n")
    with pytest.raises(LatentAtlasError, match="not a latentatlas model file") as err:
        load_recommender(tmp_path / "x.csv")
    assert "pickle" not in str(err.value)
    with pytest.raises(LatentAtlasError, match="not a Recommender folder"):
        Recommender.load(tmp_path / "x.csv")


def test_ease_without_reg_chooses_it_on_a_held_out_share_and_fits_on_everything(data):
    from latentatlas.ratings.ease import REG_GRID

    model = EASE().fit(data.train)  # no validation given: 10 % of the training ratings choose λ
    assert str(model.reg_) in model.validation_scores_
    assert set(map(str, REG_GRID)) <= set(model.validation_scores_)
    assert len(model.seen_items_) == len(data.train)  # refitted on all of them
    best = max(model.validation_scores_.values())
    assert model.validation_scores_[str(model.reg_)] == best
