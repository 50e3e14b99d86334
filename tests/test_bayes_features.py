"""Side features and time biases in the Bayesian model (issue 16): the generalised feature block of the Gibbs
sampler against dense Gaussian posteriors, recovery of a known model, cold start, and model files."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.bayes import gibbs_fit
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.kernels import bayes as kb
from latentatlas.ratings.model import LatentFactorModel


# --- the kernel: a sweep over grouped feature columns ------------------------------------------------------
def _tiny_problem(seed=0, n_rows=5, n_cols=4, k=2):
    """Rows u with their own design ``f_u`` (n_u × k), targets ``t_u`` and own vector ``x_u``; a sparse feature
    matrix F (rows × columns, arbitrary values) whose columns' vectors w_f enter row u as Σ_f F_uf w_f."""
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(3 + u, k)) for u in range(n_rows)]
    targets = [rng.normal(size=3 + u) for u in range(n_rows)]
    x = rng.normal(size=(n_rows, k))
    F = rng.uniform(0.3, 1.5, (n_rows, n_cols)) * (rng.random((n_rows, n_cols)) < 0.6)
    F[0, :] = np.maximum(F[0, :], 0.5)  # every column has a row
    groups = np.array([0, 0, 1, 1][:n_cols], dtype=np.int32)
    means = rng.normal(size=(2, k))
    precs = rng.uniform(0.5, 3.0, (2, k))
    return feats, targets, x, F, groups, means, precs


def _state(feats, targets, x, F, W):
    S = F @ W
    gram = np.array([f.T @ f for f in feats])
    grad = np.array([f.T @ (t - f @ (x[u] + S[u])) for u, (f, t) in enumerate(zip(feats, targets))])
    return S, gram, grad


def _csc(F):
    m = sp.csc_matrix(F)
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float64)


def test_feature_sweep_is_the_sequence_of_exact_column_conditionals():
    feats, targets, x, F, groups, means, precs = _tiny_problem()
    alpha = 1.7
    rng = np.random.default_rng(1)
    W = rng.normal(size=(F.shape[1], 2))
    S, gram, grad = _state(feats, targets, x, F, W)
    W_out, S_out, grad_out = W.copy(), S.copy(), grad.copy()
    kb.sample_columns(*_csc(F), groups, gram, grad_out, W_out, S_out, means, precs, alpha, np.uint64(3), False)
    # reference: column after column, the dense ridge regression of w_f given everything else
    Wr = W.copy()
    for j in range(F.shape[1]):
        g = groups[j]
        A, b = np.diag(precs[g]), precs[g] * means[g]
        for u in np.flatnonzero(F[:, j]):
            f, t = feats[u], targets[u]
            others = F[u] @ Wr - F[u, j] * Wr[j]
            A = A + alpha * F[u, j] ** 2 * f.T @ f
            b = b + alpha * F[u, j] * f.T @ (t - f @ (x[u] + others))
        Wr[j] = np.linalg.solve(A, b)
    np.testing.assert_allclose(W_out, Wr, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(S_out, F @ Wr, rtol=1e-9, atol=1e-11)
    _, _, grad_ref = _state(feats, targets, x, F, Wr)
    np.testing.assert_allclose(grad_out, grad_ref, rtol=1e-8, atol=1e-10)


def test_feature_sweeps_sample_the_dense_joint_posterior():
    # with everything else fixed, the columns' vectors have a joint Gaussian posterior; the sequential sweep
    # is a Gibbs chain on it, so its draws must have that mean and covariance
    feats, targets, x, F, groups, means, precs = _tiny_problem(seed=2, n_rows=4, n_cols=3)
    alpha, k, n_cols = 2.0, 2, 3
    design = [np.hstack([F[u, j] * f for j in range(n_cols)]) for u, f in enumerate(feats)]
    prior_prec = np.concatenate([precs[groups[j]] for j in range(n_cols)])
    prior_mean = np.concatenate([means[groups[j]] for j in range(n_cols)])
    A = np.diag(prior_prec) + alpha * sum(D.T @ D for D in design)
    b = prior_prec * prior_mean + alpha * sum(D.T @ (t - f @ x[u]) for u, (D, f, t)
                                             in enumerate(zip(design, feats, targets)))
    cov = np.linalg.inv(A)
    mean = cov @ b
    W = np.zeros((n_cols, k))
    S, gram, grad = _state(feats, targets, x, F, W)
    cols = _csc(F)
    draws = []
    for sweep in range(6000):
        kb.sample_columns(*cols, groups[:n_cols], gram, grad, W, S, means, precs, alpha, np.uint64(sweep + 1), True)
        if sweep >= 100:
            draws.append(W.ravel().copy())
    draws = np.array(draws)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.12 * sd.max())
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.15 * cov.diagonal().max())
    np.testing.assert_allclose(S, F @ W, atol=1e-9)  # the sums stay exact along the chain


def test_feature_sums_kernel():
    rng = np.random.default_rng(4)
    F = sp.random(30, 7, density=0.3, random_state=5, format="csr")
    W = rng.normal(size=(7, 3))
    S = np.ones((30, 3))
    kb.add_feature_sums(F.indptr.astype(np.int64), F.indices.astype(np.int32), F.data, W, S, 8)
    np.testing.assert_allclose(S, 1 + F @ W, rtol=1e-12)


# --- recovery of a known model -------------------------------------------------------------------------------
def _genre_world(seed=0, n_users=300, n_items=300, n_genres=6, n_ratings=9000, sparse_share=0.5):
    """Ratings from a model whose item biases and factors come from their genres (1 or 2 per item, each
    contributing 1/count); half of the items get very few ratings."""
    rng = np.random.default_rng(seed)
    genres = [rng.choice(n_genres, size=rng.integers(1, 3), replace=False) for _ in range(n_items)]
    genre_bias = rng.normal(0, 0.8, n_genres)
    genre_emb = rng.normal(0, 0.8, (n_genres, 2))
    item_bias = np.array([genre_bias[g].mean() for g in genres]) + rng.normal(0, 0.1, n_items)
    item_fac = np.array([genre_emb[g].mean(axis=0) for g in genres]) + rng.normal(0, 0.1, (n_items, 2))
    user_fac = rng.normal(0, 1, (n_users, 2))
    user_bias = rng.normal(0, 0.3, n_users)
    sparse = rng.random(n_items) < sparse_share
    weight = np.where(sparse, 0.08, 1.0)
    users = rng.integers(0, n_users, n_ratings)
    items = rng.choice(n_items, size=n_ratings, p=weight / weight.sum())
    truth = lambda u, i: 3.5 + user_bias[u] + item_bias[i] + np.einsum("ij,ij->i", user_fac[u], item_fac[i])  # noqa
    values = truth(users, items) + rng.normal(0, 0.5, n_ratings)
    F = np.zeros((n_items, n_genres))
    for i, g in enumerate(genres):
        F[i, g] = 1.0 / len(g)
    return dict(users=users, items=items, values=values, truth=truth, F=F, genre_bias=genre_bias,
                genre_emb=genre_emb, user_fac=user_fac, sparse=sparse, genres=genres, n_users=n_users,
                n_items=n_items)


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_genre_effects_are_recovered_and_help_sparse_items():
    w = _genre_world()
    n = len(w["values"])
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(1).permutation(n)[:n // 5]] = True
    tr = ~test
    common = dict(k=2, n_samples=40, burn_in=15, implicit="none", seed=0)
    fit = gibbs_fit(w["users"][tr], w["items"][tr], w["values"][tr], w["n_users"], w["n_items"],
                    item_features=(sp.csr_matrix(w["F"]), np.zeros(6, dtype=np.int32)), **common)
    plain = gibbs_fit(w["users"][tr], w["items"][tr], w["values"][tr], w["n_users"], w["n_items"], **common)
    weights = fit.item_feature_weights
    assert weights.shape == (6, 3)
    # the genre biases (the FM linear terms) and the genre embeddings, seen through the users' factors
    assert np.corrcoef(weights[:, 0], w["genre_bias"])[0, 1] > 0.9
    fitted = fit.user_factor_mean @ weights[:, 1:].T  # users × genres, rotation-free
    true = w["user_fac"] @ w["genre_emb"].T
    assert np.corrcoef(fitted.ravel(), true.ravel())[0, 1] > 0.8
    # test RMSE on the sparsely rated items: the features carry what their few ratings cannot
    sparse_test = test & w["sparse"][w["items"]]
    u, i = w["users"][sparse_test], w["items"][sparse_test]
    with_f = _rmse(fit.predict(u, i), w["values"][sparse_test])
    without = _rmse(plain.predict(u, i), w["values"][sparse_test])
    assert with_f < without - 0.05, (with_f, without)


# --- cold start through the model -------------------------------------------------------------------------------
def _genre_frame(w):
    names = np.array([f"g{g}" for g in range(6)])
    return pd.DataFrame({"item": np.arange(w["n_items"]), "genre": ["|".join(names[g]) for g in w["genres"]]})


@pytest.fixture(scope="module")
def cold_world():
    w = _genre_world(seed=3, n_items=200, n_ratings=7000, sparse_share=0.0)
    cold = np.arange(180, 200)  # items with features but no ratings
    keep = ~np.isin(w["items"], cold)
    w["X"] = np.column_stack([w["users"][keep], w["items"][keep]])
    w["y"] = w["values"][keep]
    w["cold"] = cold
    return w


def test_cold_start_items_get_the_prediction_their_genres_imply(cold_world, tmp_path):
    w = cold_world
    params = dict(solver="bayes", k=2, n_samples=30, burn_in=10, implicit="none", seed=0)
    model = LatentFactorModel(**params).fit(w["X"], w["y"], item_features=_genre_frame(w))
    assert len(model.item_ids_) == w["n_items"] and set(w["cold"]) <= set(model.item_ids_.tolist())
    rng = np.random.default_rng(0)
    u = rng.integers(0, w["n_users"], 2000)
    i = rng.choice(w["cold"], 2000)
    truth = w["truth"](u, i)
    pred, std = model.predict(np.column_stack([u, i]), clip=False, return_std=True)
    assert np.all(np.isfinite(std)) and np.all(std > 0)
    # an item known only by its features is less certain than a rated one (its own vector's prior spread)
    warm = np.column_stack([u, rng.choice(np.arange(0, 180), 2000)])
    assert std.mean() > model.predict(warm, return_std=True)[1].mean()
    plain = LatentFactorModel(**params).fit(w["X"], w["y"])
    base = plain.predict(np.column_stack([u, i]), clip=False)
    # without features an unknown item gets the global mean (plus the user's bias)
    np.testing.assert_allclose(base, plain.mu_ + plain.user_bias_[np.searchsorted(plain.user_ids_, u)])
    spread = _rmse(truth, truth.mean())
    assert _rmse(pred, truth) < 0.5 * _rmse(base, truth), (_rmse(pred, truth), _rmse(base, truth), spread)
    # per item, the mean prediction follows the mean truth
    per_item_pred = np.array([pred[i == c].mean() for c in w["cold"]])
    per_item_true = np.array([truth[i == c].mean() for c in w["cold"]])
    assert np.corrcoef(per_item_pred, per_item_true)[0, 1] > 0.9
    # recommend and similar_items know the cold items; save/load keeps them
    ids, _ = model.recommend(int(u[0]), n=model.n_items_ - 1)
    assert set(w["cold"]) & set(ids.tolist())
    assert len(model.similar_items(int(w["cold"][0]), n=3)[0]) == 3
    path = model.save(tmp_path / "cold.npz")
    back = LatentFactorModel.load(path)
    p2, s2 = back.predict(np.column_stack([u, i]), clip=False, return_std=True)
    np.testing.assert_allclose(p2, pred, rtol=1e-6)
    np.testing.assert_allclose(s2, std, rtol=1e-6)
    assert back.bayes_.item_feature_columns == model.bayes_.item_feature_columns
    assert back.bayes_.item_feature_columns[0].startswith("genre=")


def test_user_features_categorical_and_numeric_and_cold_users():
    rng = np.random.default_rng(5)
    n_users, n_items = 240, 60
    group = rng.integers(0, 3, n_users)
    age = rng.normal(35, 10, n_users)
    effect = np.array([-0.8, 0.0, 0.8])[group] + 0.04 * (age - 35)
    users = rng.integers(0, 200, 6000)  # users 200.. have features only
    items = rng.integers(0, n_items, 6000)
    values = 3.5 + effect[users] + rng.normal(0, 0.4, 6000)
    frame = pd.DataFrame({"user": np.arange(n_users), "occupation": np.array(["a", "b", "c"])[group], "age": age})
    model = LatentFactorModel(solver="bayes", k=2, n_samples=20, burn_in=8, seed=1)
    model.fit(np.column_stack([users, items]), values, user_features=frame)
    assert model.n_users_ == n_users
    cold = np.arange(200, n_users)
    pred = model.predict(np.column_stack([cold, np.zeros(len(cold), dtype=int)]), clip=False)
    assert np.corrcoef(pred, effect[cold])[0, 1] > 0.9
    assert set(model.bayes_.user_feature_groups) == {"occupation", "age"}


def test_features_through_the_recommender(cold_world, tmp_path):
    from latentatlas.ratings.recommender import Recommender

    w = cold_world
    rec = Recommender(ranker="rating", rating_model=LatentFactorModel(solver="bayes", k=2, n_samples=8, burn_in=4))
    rec.fit(w["X"], w["y"], item_features=_genre_frame(w))
    assert rec.n_items_ == w["n_items"]
    pair = [[0, int(w["cold"][0])]]
    back = Recommender.load(rec.save(tmp_path / "rec"))
    np.testing.assert_allclose(back.predict(pair), rec.predict(pair))


def test_feature_arguments_are_checked(cold_world):
    w = cold_world
    with pytest.raises(LatentAtlasError, match="solver='bayes'"):
        LatentFactorModel(solver="als").fit(w["X"], w["y"], item_features=_genre_frame(w))
    wrong = _genre_frame(w).assign(item=lambda d: d["item"] + 10_000)
    with pytest.raises(LatentAtlasError, match="item_features: none of its"):
        LatentFactorModel(solver="bayes", n_samples=2, burn_in=0).fit(w["X"], w["y"], item_features=wrong)
    with pytest.raises(LatentAtlasError, match="item_features"):
        LatentFactorModel(solver="bayes", n_samples=2, burn_in=0).fit(w["X"], w["y"], item_features=[1, 2])
    u, i, v = w["X"][:, 0], w["X"][:, 1], w["y"]
    with pytest.raises(LatentAtlasError, match="user_features: the matrix needs one row per index"):
        gibbs_fit(u, i, v, w["n_users"], w["n_items"], user_features=(sp.csr_matrix((3, 2)), [0, 0]))
    with pytest.raises(LatentAtlasError, match="item_features: groups"):
        gibbs_fit(u, i, v, w["n_users"], w["n_items"], item_features=(sp.csr_matrix(w["F"]), [0]))
    with pytest.raises(LatentAtlasError, match="time_bias=True needs times"):
        gibbs_fit(u, i, v, w["n_users"], w["n_items"], time_bias=True)


# --- time biases -----------------------------------------------------------------------------------------------
def _drifting(seed=0, n_users=200, n_items=100, n=10_000):
    """Item biases that change over the year: half the items gain 1.2 stars in its second half."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    times = 1.6e9 + rng.uniform(0, 365 * 86400, n)
    late = times > 1.6e9 + 182 * 86400
    rising = np.arange(n_items) < n_items // 2
    item_bias = rng.normal(0, 0.5, n_items)
    values = 3.5 + item_bias[items] + np.where(late & rising[items], 0.6, np.where(rising[items], -0.6, 0.0)) \
        + rng.normal(0, 0.5, n)
    return users, items, values, times


def test_time_biases_fit_a_drifting_item_bias_and_round_trip_with_return_std(tmp_path):
    users, items, values, times = _drifting()
    held = np.random.default_rng(2).random(len(values)) < 0.2
    train = Ratings.from_arrays(users[~held], items[~held], values[~held], timestamps=times[~held])
    test = Ratings.from_arrays(users[held], items[held], values[held], timestamps=times[held])
    params = dict(solver="bayes", k=2, n_samples=25, burn_in=8, implicit="none", seed=0)
    timed = LatentFactorModel(time_bias=True, **params).fit(train, item_features=pd.DataFrame(
        {"item": np.arange(100), "half": np.where(np.arange(100) < 50, "rising", "flat")}))
    plain = LatentFactorModel(**params).fit(train)
    assert timed.bayes_.time_biases is not None and plain.bayes_.time_biases is None
    r_timed = _rmse(timed.predict(test, clip=False), test.values)
    r_plain = _rmse(plain.predict(test, clip=False), test.values)
    assert r_timed < r_plain - 0.06, (r_timed, r_plain)  # noise 0.5: about 0.55 against 0.66
    # predict(Ratings) uses its timestamps, the same as times=; without times the time terms add nothing
    pairs = np.column_stack([test.user_ids[test.users], test.item_ids[test.items]])
    np.testing.assert_allclose(timed.predict(pairs, times=test.timestamps, clip=False),
                               timed.predict(test, clip=False))
    no_time = timed.predict(pairs, clip=False)
    offsets = timed.bayes_.time_biases.predict(np.searchsorted(timed.user_ids_, pairs[:, 0]),
                                               np.searchsorted(timed.item_ids_, pairs[:, 1]), test.timestamps)
    np.testing.assert_allclose(timed.predict(test, clip=False) - no_time, offsets, atol=1e-9)
    # the model file keeps the time biases, the feature weights and what return_std needs
    pred, std = timed.predict(test, return_std=True)
    back = LatentFactorModel.load(timed.save(tmp_path / "timed.npz"))
    assert back.time_bias and back.bayes_.time_biases is not None
    p2, s2 = back.predict(test, return_std=True)
    np.testing.assert_allclose(p2, pred, rtol=1e-6)
    np.testing.assert_allclose(s2, std, rtol=1e-6)
    np.testing.assert_allclose(back.bayes_.item_feature_weights, timed.bayes_.item_feature_weights)
    # metrics.evaluate scores a time-bias model with the test ratings' times, as predict(Ratings) does
    from latentatlas.ratings.base import to_space
    from latentatlas.ratings.metrics import evaluate

    known, _ = to_space(test, timed.user_ids_, timed.item_ids_)
    assert evaluate(timed, known)["rmse"] == pytest.approx(_rmse(timed.predict(known), known.values), rel=1e-9)


def test_time_bias_without_timestamps_is_said_and_off():
    users, items, values, _ = _drifting(n=2000)
    lines = []
    model = LatentFactorModel(solver="bayes", k=2, n_samples=3, burn_in=1, time_bias=True, progress=lines.append)
    model.fit(np.column_stack([users, items]), values)
    assert model.bayes_.time_biases is None
    assert any("no timestamps" in line for line in lines)


def test_validation_times_enter_the_history_curve():
    users, items, values, times = _drifting(n=6000)
    val = np.arange(len(values)) % 5 == 0
    fit = gibbs_fit(users[~val], items[~val], values[~val], 200, 100, k=2, n_samples=10, burn_in=3,
                    implicit="none", times=times[~val], time_bias=True,
                    validation=(users[val], items[val], values[val], times[val]))
    pred = fit.predict(users[val], items[val], times[val])
    assert abs(_rmse(pred, values[val]) - fit.history["validation_rmse"][-1]) < 1e-6


# --- the coordinate-wise sweep (sweep="coordinate") ------------------------------------------------------------
@pytest.mark.parametrize("implicit, by_col, k, update", [(False, False, 2, "own"), (True, False, 2, "own"),
                                                         (True, True, 2, "own"), (False, False, 3, "own"),
                                                         (True, True, 3, "own"), (True, False, 2, "effective"),
                                                         (True, True, 3, "effective")])
def test_coordinate_sweeps_sample_the_dense_joint_posterior_of_rows_and_features(implicit, by_col, k, update):
    # rows' own vectors X and feature vectors W, everything else fixed: a linear Gaussian model whose joint
    # posterior is dense; coordinate-wise Gibbs sweeps over both must reproduce its mean and covariance. With
    # implicit=True every non-zero of row u is the row's weight s_u (the implicit columns' form, one group), which
    # the sampler keeps in units of s_u (sweep_implicit_state); with by_col=True the row passes go through the
    # ratings grouped by the other side (sample_rows_coordinate_by_col; here each rating has its own column).
    # Coordinates go two per pass over the ratings (draw_second_coordinate); k = 3 also has one going alone.
    # update="effective": the implicit vectors drawn whole given the rows' effective vectors, after the rows
    # (sweep_implicit_given_effective), a different blocking of the same posterior.
    feats, targets, x0, F, groups, means, precs = _tiny_problem(seed=7, n_rows=4, n_cols=3, k=k)
    groups = groups[:3]
    alpha, n_rows, n_cols = 1.5, 4, 3
    weight = None
    if implicit:
        weight = np.array([0.5, 0.9, 0.7, 1.3])
        F = (F != 0) * weight[:, None]
        groups = np.zeros(3, dtype=np.int32)
    row_mean, row_prec = np.array([0.3, -0.2, 0.1])[:k], np.array([1.5, 0.8, 1.1])[:k]
    row_w = np.array([1.0, 0.5, 2.0, 1.0])  # per-row noise factors
    dim = (n_rows + n_cols) * k
    A = np.zeros((dim, dim))
    b = np.zeros(dim)
    for u, (f, t) in enumerate(zip(feats, targets)):
        D = np.zeros((len(t), dim))
        D[:, u * k:(u + 1) * k] = f
        for j in range(n_cols):
            D[:, (n_rows + j) * k:(n_rows + j + 1) * k] = F[u, j] * f
        A += alpha * row_w[u] * D.T @ D
        b += alpha * row_w[u] * D.T @ t
    prior_prec = np.concatenate([np.tile(row_prec, n_rows)] + [precs[groups[j]] for j in range(n_cols)])
    prior_mean = np.concatenate([np.tile(row_mean, n_rows)] + [means[groups[j]] for j in range(n_cols)])
    A += np.diag(prior_prec)
    b += prior_prec * prior_mean
    cov = np.linalg.inv(A)
    mean = cov @ b
    r_indptr = np.cumsum([0] + [len(t) for t in targets]).astype(np.int64)
    r_indices = np.arange(r_indptr[-1], dtype=np.int32)
    Y, tg = np.vstack(feats), np.concatenate(targets)
    X, W = np.zeros((n_rows, k)), np.zeros((n_cols, k))
    S = F @ W
    cols = (*_csc(F), groups)
    row_of = np.repeat(np.arange(n_rows), np.diff(r_indptr))
    other = (np.arange(len(tg) + 1, dtype=np.int64), row_of.astype(np.int32)) if by_col else None
    draws = []
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # thousands of tiny parallel calls: no thread pool wake-ups
    try:
        resid = None
        for sweep in range(6000 if k == 2 else 24000):
            if sweep % 50 == 0:  # as the sampler does every few samples: from scratch, else carried over
                S = F @ W
                resid = tg - np.einsum("pk,pk->p", Y, X[row_of] + S[row_of]) if by_col else None
            resid = kb.sample_side_by_coordinate(r_indptr, r_indices, tg, Y, X, S, row_mean, row_prec, alpha, row_w,
                                                 np.ones(len(tg)), np.uint64(2 * sweep + 1), cols, W, means, precs,
                                                 np.uint64(2 * sweep + 2), 4, resid, weight, other, update)
            if sweep >= 100:
                draws.append(np.concatenate([X.ravel(), W.ravel()]))
    finally:
        numba.set_num_threads(threads)
    # the sums and residuals the sampler keeps by adding changes are the ones the new values give
    np.testing.assert_allclose(S, F @ W, atol=1e-10)
    np.testing.assert_allclose(resid, tg - np.einsum("pk,pk->p", Y, X[row_of] + S[row_of]), atol=1e-10)
    draws = np.array(draws)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.1 * sd.max())
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.1 * cov.diagonal().max())


@pytest.mark.parametrize("n_users, n_items, update", [(60, 150, "own"), (150, 60, "own"), (60, 150, "effective"),
                                                     (150, 60, "alternate")])
def test_coordinate_sampler_carries_residuals_and_sums_exactly(monkeypatch, n_users, n_items, update):
    # sweep="coordinate" carries every rating's residual from side to side and from sample to sample (in the order
    # of the side with more rows: the other side's passes go through them by_col), takes the μ/τ/κ/α sums from
    # them, and keeps the feature sums by their changes, recomputing both every _REFRESH samples; recomputing
    # them every sample must give the same chain up to rounding
    from latentatlas.ratings import bayes as bayes_module

    monkeypatch.setattr(bayes_module, "_IMPLICIT_UPDATE", update)
    rng = np.random.default_rng(5)
    n = 3000
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    values = rng.normal(3.0, 1.0, n)
    kw = dict(k=3, n_samples=6, burn_in=0, implicit="both", noise="both", seed=1, sweep="coordinate")
    carried = gibbs_fit(users, items, values, n_users, n_items, **kw)
    monkeypatch.setattr(bayes_module, "_REFRESH", 1)
    fresh = gibbs_fit(users, items, values, n_users, n_items, **kw)
    np.testing.assert_allclose(carried.history["train_rmse"], fresh.history["train_rmse"], rtol=1e-9)
    np.testing.assert_allclose(carried.history["alpha"], fresh.history["alpha"], rtol=1e-9)
    np.testing.assert_allclose(carried.predict(users, items), fresh.predict(users, items), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("update", ["own", "effective"])
def test_coordinate_sampler_gives_the_same_chain_with_one_and_two_threads(monkeypatch, update):
    # the row passes run in parallel (by_col: over fixed chunks of the other side, summed chunk after chunk); a
    # seed must give the same samples whatever the number of threads, and the same seed the same samples again
    from latentatlas.ratings import bayes as bayes_module

    monkeypatch.setattr(bayes_module, "_IMPLICIT_UPDATE", update)
    rng = np.random.default_rng(6)
    n_users, n_items, n = 80, 200, 4000  # the user side goes through the ratings by item
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    values = rng.normal(3.0, 1.0, n)
    kw = dict(k=3, n_samples=4, burn_in=1, implicit="both", seed=2, sweep="coordinate")
    one = gibbs_fit(users, items, values, n_users, n_items, n_threads=1, **kw)
    two = gibbs_fit(users, items, values, n_users, n_items, n_threads=2, **kw)
    again = gibbs_fit(users, items, values, n_users, n_items, n_threads=2, **kw)
    other = gibbs_fit(users, items, values, n_users, n_items, n_threads=2, **{**kw, "seed": 3})
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "implicit_user"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name), err_msg=name)
        np.testing.assert_array_equal(getattr(two, name), getattr(again, name), err_msg=name)
        assert not np.array_equal(getattr(two, name), getattr(other, name)), name
    assert one.history["train_rmse"] == two.history["train_rmse"]


@pytest.mark.parametrize("attributes", [False, True])
def test_coordinate_sampler_scratch_arrays_kept_between_samples_change_nothing(monkeypatch, attributes):
    # the coordinate sweep keeps its large scratch arrays (transposes, normals, per-row state) in one dict per
    # side between calls, each side's call using the other side's dict for its columns: nothing may carry over,
    # so the chain must be the one that fresh arrays give, bit for bit (implicit columns: the paired sweep;
    # with item attributes: one coordinate at a time, sweep_factor_state)
    from latentatlas.ratings.kernels import bayes as kernels

    rng = np.random.default_rng(9)
    n_users, n_items, n = 70, 50, 2500  # the user side by item, the item side by its own rows
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    values = rng.normal(3.0, 1.0, n)
    kw = dict(k=4, n_samples=4, burn_in=1, implicit="both", noise="both", seed=4, sweep="coordinate")
    if attributes:
        genres = sp.csr_matrix((rng.random((n_items, 3)) < 0.4).astype(float))
        kw["item_features"] = (genres, np.zeros(3, dtype=np.int32))
    kept = gibbs_fit(users, items, values, n_users, n_items, **kw)
    scratch = kernels._scratch
    monkeypatch.setattr(kernels, "_scratch", lambda work, name, shape, make=np.empty: scratch(None, name, shape, make))
    fresh = gibbs_fit(users, items, values, n_users, n_items, **kw)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "implicit_user"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name), err_msg=name)


def test_implicit_vectors_given_the_effective_vectors_by_hand():
    # sweep_implicit_given_effective against its conditional written out for a tiny case: rows u with weights
    # s_u, implicit columns l with row sets N(l); given x_u = X[u] + s_u Σ_{l∋u} W[l], column l's coordinate f has
    # precision λY_f + λ_f Σ_u s_u² and mean (λY_f mY_f + λ_f Σ_u s_u (x_uf − s_u Σ_{l'≠l} W[l'f] − m_f)) / precision
    # (the priors X[u,f] ~ N(m_f, 1/λ_f), W[l,f] ~ N(mY_f, 1/λY_f)); columns in order, each seeing the ones before
    rng = np.random.default_rng(11)
    n_rows, n_cols, k = 5, 3, 4
    members = [np.array([0, 2, 3]), np.array([1, 2]), np.array([0, 1, 3, 4])]
    s = np.array([0.8, 0.6, 1.1, 0.5, 1.3])
    X, W = rng.normal(size=(n_rows, k)), rng.normal(size=(n_cols, k))
    m, lam = rng.normal(size=k), rng.uniform(0.5, 2.0, k)
    mY, lamY = rng.normal(size=k), rng.uniform(0.5, 2.0, k)
    Z = rng.normal(size=(n_cols, k))
    F = np.zeros((n_rows, n_cols))
    for l, rows in enumerate(members):
        F[rows, l] = s[rows]
    x = X + F @ W
    expected = W.copy()
    for l, rows in enumerate(members):
        prec = lamY + lam * (s[rows] ** 2).sum()
        rest = x - F @ expected + F[:, [l]] * expected[l]  # X with column l's part added back
        mean = (lamY * mY + lam * (s[rows, None] * (rest[rows] - m)).sum(axis=0)) / prec
        expected[l] = mean + Z[l] / np.sqrt(prec)
    indptr = np.cumsum([0] + [len(r) for r in members]).astype(np.int64)
    indices = np.concatenate(members).astype(np.int32)
    kb.sweep_implicit_given_effective(indptr, indices, s, X, W, m, lam, mY, lamY, Z)
    np.testing.assert_allclose(W, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(X + F @ W, x, rtol=1e-12, atol=1e-12)  # the effective vectors stay


def test_row_sums_from_residuals_in_either_order():
    # μ/τ/κ take per-row sums of kept residuals; read in the other side's order (row_moments_by_col) they must be
    # the sums row_moments gives in the row's own order, and the brute-force ones
    from latentatlas.ratings.kernels.als import compressed

    rng = np.random.default_rng(8)
    n_rows, n_other, n = 30, 50, 700
    rows, other = rng.integers(0, n_rows, n).astype(np.int32), rng.integers(0, n_other, n).astype(np.int32)
    e, w, shift = rng.normal(size=n), rng.uniform(0.5, 2.0, n_other), 0.3
    r_indptr, r_indices, r_e = compressed(rows, other, e, n_rows, np.float64)
    o_indptr, o_indices, o_e = compressed(other, rows, e, n_other, np.float64)
    own = [np.empty(n_rows) for _ in range(3)]
    by_col = [np.empty(n_rows) for _ in range(3)]
    kb.row_moments(r_indptr, r_indices, r_e, shift, w, *own)
    kb.row_moments_by_col(o_indptr, o_indices, o_e, shift, w, np.empty((3, n_rows, 3)), *by_col)
    weight = w[other]
    brute = [np.bincount(rows, weight * (e - shift) ** 2, n_rows), np.bincount(rows, weight * (e - shift), n_rows),
             np.bincount(rows, weight, n_rows)]
    for a, b, c in zip(own, by_col, brute):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-12)


def test_coordinate_sweep_fits_like_the_block_sweep():
    w = _genre_world(seed=4, sparse_share=0.3)
    n = len(w["values"])
    test = np.arange(n) % 5 == 0
    kw = dict(k=2, n_samples=40, burn_in=15, implicit="both", seed=0,
              item_features=(sp.csr_matrix(w["F"]), np.zeros(6, dtype=np.int32)))
    args = (w["users"][~test], w["items"][~test], w["values"][~test], w["n_users"], w["n_items"])
    block = gibbs_fit(*args, sweep="block", **kw)
    coord = gibbs_fit(*args, sweep="coordinate", **kw)
    r_block = _rmse(block.predict(w["users"][test], w["items"][test]), w["values"][test])
    r_coord = _rmse(coord.predict(w["users"][test], w["items"][test]), w["values"][test])
    assert abs(r_block - r_coord) < 0.02, (r_block, r_coord)
    assert np.corrcoef(coord.item_feature_weights[:, 0], w["genre_bias"])[0, 1] > 0.9
    with pytest.raises(LatentAtlasError, match="sweep"):
        gibbs_fit(*args, sweep="diagonal")


def test_model_switches_to_the_coordinate_sweep_above_the_block_limit(cold_world, monkeypatch):
    from latentatlas.ratings import model as model_module

    w = cold_world
    lines = []
    monkeypatch.setattr(model_module, "BLOCK_SWEEP_MAX", 1000)
    m = LatentFactorModel(solver="bayes", k=2, n_samples=4, burn_in=1, implicit="both", progress=lines.append)
    m.fit(w["X"], w["y"], item_features=_genre_frame(w))
    assert any("sweep='coordinate'" in line for line in lines)
    assert m.bayes_.implicit == "both"  # implicit features stay on above the block limit
    assert np.all(np.isfinite(m.predict(w["X"][:50], return_std=True)[1]))


def test_a_cold_user_gets_the_rating_models_list_from_their_features():
    """Users known only by their features: the Recommender's ranking model has no ratings of theirs (EASE
    would score every item 0), so their list is the rating model's, which follows their group's taste."""
    from latentatlas.ratings.recommender import Recommender

    rng = np.random.default_rng(7)
    n_users, n_items, n = 260, 40, 9000
    group = rng.integers(0, 2, n_users)
    users = rng.integers(0, 220, n)  # users 220.. have features only
    items = rng.integers(0, n_items, n)
    likes = (items < 20) == (group[users] == 0)  # group 0 likes items 0-19, group 1 items 20-39
    values = np.clip(np.round(3 + np.where(likes, 1.2, -1.2) + rng.normal(0, 0.5, n)), 1, 5)
    frame = pd.DataFrame({"user": np.arange(n_users), "group": np.array(["a", "b"])[group]})
    rec = Recommender(ranker="ease", rating_model=LatentFactorModel(solver="bayes", k=4, n_samples=20, burn_in=8,
                                                                  implicit="none", seed=0))
    rec.fit(np.column_stack([users, items]), values, user_features=frame)
    for user in range(220, n_users):
        ids, scores = rec.recommend(user, n=10)
        np.testing.assert_array_equal(ids, rec.rating_model_.recommend(user, n=10)[0])
        assert np.all(np.isfinite(scores))
        liked = (ids < 20) if group[user] == 0 else (ids >= 20)
        assert liked.mean() >= 0.9, (user, group[user], ids)
    warm = int(users[0])
    np.testing.assert_array_equal(rec.recommend(warm, n=10)[0], rec.ranking_model_.recommend(warm, n=10)[0])


def test_implicit_auto_reads_the_shape_of_the_training_ratings():
    from latentatlas.ratings.bayes import auto_implicit

    def ratings(users, items):
        return Ratings.from_arrays(np.asarray(users), np.asarray(items), np.ones(len(users)))

    # 10 users, each 6 ratings of 60 items: density 60 / (10 x 60) = 0.1, at the limit -> on
    assert auto_implicit(ratings(np.repeat(np.arange(10), 6), np.arange(60))) == "both"
    # 10 users, 7 ratings each of 50 items: density 0.14 -> off
    assert auto_implicit(ratings(np.repeat(np.arange(10), 7), np.arange(70) % 50)) == "none"
    # dense: 10 users x 10 items, all rated (density 1) -> off
    assert auto_implicit(ratings(np.repeat(np.arange(10), 10), np.tile(np.arange(10), 10))) == "none"
