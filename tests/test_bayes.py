"""Bayesian matrix factorisation by Gibbs sampling: kernels and driver (latentatlas.ratings.bayes)."""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import prep
from latentatlas.ratings.bayes import BayesFit, GibbsInterrupted, gibbs_fit
from latentatlas.ratings.kernels import als
from latentatlas.ratings.kernels import bayes as kb
from latentatlas.ratings.synthetic import synthetic


def _random_csr(rng, n_rows, n_cols, density=0.3):
    mask = rng.random((n_rows, n_cols)) < density
    rows, cols = np.nonzero(mask)
    values = rng.normal(size=len(rows))
    indptr, indices, data = als.compressed(rows.astype(np.int32), cols.astype(np.int32), values, n_rows,
                                           np.float64)
    return indptr, indices, data


def _sample_rows(indptr, indices, data, Y, offsets, mean, prec, alpha, draw=False, key=1, row_w=None,
                 col_w=None):
    n_rows, K = len(indptr) - 1, Y.shape[1]
    X = np.zeros((n_rows, K))
    gram = np.zeros((n_rows, K, K))
    grad = np.zeros((n_rows, K))
    row_w = np.ones(n_rows) if row_w is None else row_w
    col_w = np.ones(Y.shape[0]) if col_w is None else col_w
    kb.sample_rows(indptr, indices, data, Y, offsets, mean, prec, alpha, row_w, col_w, X, np.uint64(key), draw,
                   gram, grad, True, 8)
    return X, gram, grad


def test_conditional_mean_is_the_als_ridge_solution():
    rng = np.random.default_rng(0)
    indptr, indices, data = _random_csr(rng, 40, 30)
    k, reg, alpha = 5, 0.7, 2.5
    Y = rng.normal(size=(30, k))
    # the same precisions: ALS's λ is the prior precision over the noise precision
    X, _, _ = _sample_rows(indptr, indices, data, Y, np.zeros((40, k)), np.zeros(k), np.full(k, reg * alpha),
                           alpha)
    X_als = np.zeros((40, k))
    als.ridge_rows(indptr, indices, data, Y, X_als, reg, False, 8)
    nonempty = np.diff(indptr) > 0
    np.testing.assert_allclose(X[nonempty], X_als[nonempty], rtol=1e-8, atol=1e-10)


def test_conditional_mean_with_prior_mean_and_offsets_matches_numpy():
    rng = np.random.default_rng(1)
    indptr, indices, data = _random_csr(rng, 12, 20)
    k, alpha = 4, 1.7
    Y = rng.normal(size=(20, k))
    offsets = rng.normal(size=(12, k))
    mean, prec = rng.normal(size=k), rng.uniform(0.5, 3, size=k)
    row_w, col_w = rng.uniform(0.3, 2, size=12), rng.uniform(0.3, 2, size=20)  # per-user/item noise factors
    X, gram, grad = _sample_rows(indptr, indices, data, Y, offsets, mean, prec, alpha, row_w=row_w, col_w=col_w)
    for r in range(12):
        cols, v = indices[indptr[r]:indptr[r + 1]], data[indptr[r]:indptr[r + 1]]
        Ys = Y[cols]
        W = np.diag(row_w[r] * col_w[cols])  # each entry's noise precision, over α
        A = alpha * Ys.T @ W @ Ys + np.diag(prec)
        b = alpha * Ys.T @ W @ (v - Ys @ offsets[r]) + prec * mean
        np.testing.assert_allclose(X[r], np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(gram[r], Ys.T @ W @ Ys, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grad[r], Ys.T @ W @ (v - Ys @ (X[r] + offsets[r])), rtol=1e-8, atol=1e-9)


def test_normals_are_standard_normal_independent_and_a_function_of_key_and_row():
    # the sampler's own generator (splitmix64, ziggurat): each row's stream depends on (key, row) alone,
    # so threads can draw rows in any order; the draws must be N(0, 1) and uncorrelated within and across rows
    from scipy import stats

    z = np.array([kb.normals(np.uint64(7), row, 9) for row in range(40_000)])
    flat = z.ravel()
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    assert abs(flat.mean()) < 0.005 and abs(flat.std() - 1.0) < 0.005
    assert abs(stats.kurtosis(flat)) < 0.03
    corr = np.corrcoef(z.T)  # within a row: the two of a pair, and pair after pair
    assert np.abs(corr - np.eye(9)).max() < 0.02
    assert abs(np.corrcoef(z[:-1, 0], z[1:, 0])[0, 1]) < 0.02  # next row
    np.testing.assert_array_equal(kb.normals(np.uint64(7), 123, 9), z[123])
    assert not np.array_equal(kb.normals(np.uint64(8), 123, 9), z[123])
    np.testing.assert_array_equal(kb.coordinate_normals(np.uint64(7), 50, 9, 4), z[:50].T)
    np.testing.assert_array_equal(kb.column_normals(np.uint64(7), 50, 9), z[:50])

    # the ziggurat's three ways out (a layer's inner part, its wedge, the tail beyond 3.654) in bins that
    # separate them: 4 M draws, about 1,000 of them in the tail
    many = kb.column_normals(np.uint64(9), 100_000, 40).ravel()
    edges = np.array([-np.inf, -4.0, -3.6541528853610088, -3.0, -2.0, -1.0, -0.2, 0.0, 0.2, 1.0, 2.0, 3.0,
                      3.6541528853610088, 4.0, np.inf])
    expected = len(many) * np.diff(stats.norm.cdf(edges))
    chi2 = ((np.histogram(many, edges)[0] - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, len(expected) - 1) > 1e-3


def test_one_pass_bookkeeping_kernels_match_numpy():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(301, 5))
    S = rng.normal(size=(301, 5))
    mean = rng.normal(size=5)
    dev, tot = kb.column_moments(X, mean, 7)  # 301 rows in 7 chunks: the last one short
    np.testing.assert_allclose(dev, ((X - mean) ** 2).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(tot, X.sum(axis=0), rtol=1e-12)

    total, squares = np.ones((301, 5)), np.full((301, 5), 2.0)
    kb.accumulate_moments(X, total, squares)
    np.testing.assert_array_equal(total, 1.0 + X)
    np.testing.assert_array_equal(squares, 2.0 + X * X)

    eff, aug = np.empty((301, 5)), np.empty((301, 5))
    kb.effective_and_augmented(X, S, eff, aug)
    np.testing.assert_array_equal(eff, X + S)
    np.testing.assert_array_equal(aug[:, 1:], (X + S)[:, 1:])
    assert (aug[:, 0] == 1.0).all()

    Yt, w = rng.normal(size=(6, 40)), rng.random(40)
    yy = np.full((40, 6), np.nan)
    kb.fill_pass_table(Yt, w, 0, 1, 2, 3, yy)
    np.testing.assert_array_equal(yy, np.column_stack([Yt[0], Yt[1], Yt[2], Yt[3], w * Yt[2], w * Yt[3]]))
    kb.fill_pass_table(Yt, w, -1, 4, 5, -1, yy)  # no coordinate before last, no second coordinate
    zero = np.zeros(40)
    np.testing.assert_array_equal(yy, np.column_stack([zero, Yt[4], Yt[5], zero, w * Yt[5], zero]))


def test_draws_have_the_conditional_covariance():
    rng = np.random.default_rng(2)
    k, alpha = 3, 1.3
    Y = rng.normal(size=(6, k))
    indptr = np.array([0, 6], dtype=np.int64)
    indices = np.arange(6, dtype=np.int32)
    data = rng.normal(size=6)
    prec = np.array([0.5, 1.0, 2.0])
    A = alpha * Y.T @ Y + np.diag(prec)
    draws = np.array([_sample_rows(indptr, indices, data, Y, np.zeros((1, k)), np.zeros(k), prec, alpha, True,
                                   key)[0][0] for key in range(1, 4001)])
    mean = np.linalg.solve(A, alpha * Y.T @ data)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.06)
    np.testing.assert_allclose(np.cov(draws.T), np.linalg.inv(A), atol=0.06)


def test_implicit_conditional_mean_matches_numpy():
    # one column's implicit vector w enters rows u (weight a_u) of a linear model; its Gibbs conditional
    # given the rows' Gram matrices and residual gradients is a small ridge regression
    rng = np.random.default_rng(3)
    n_rows, n_cols, k, alpha = 5, 3, 3, 2.0
    feats = [rng.normal(size=(4 + u, k)) for u in range(n_rows)]
    targets = [rng.normal(size=4 + u) for u in range(n_rows)]
    x = rng.normal(size=(n_rows, k))  # the rows' own vectors
    W = rng.normal(size=(n_cols, k))
    members = [[0, 1, 2], [1, 3], [0, 4, 2]]  # column j -> rows
    rows_of = [[j for j in range(n_cols) if u in members[j]] for u in range(n_rows)]
    weight = np.array([1 / np.sqrt(len(r)) if r else 0.0 for r in rows_of])
    S = np.array([weight[u] * W[rows_of[u]].sum(axis=0) for u in range(n_rows)])
    gram = np.array([f.T @ f for f in feats])
    grad = np.array([f.T @ (t - f @ (x[u] + S[u])) for u, (f, t) in enumerate(zip(feats, targets))])
    mean, prec = rng.normal(size=k), rng.uniform(0.5, 2, size=k)
    indptr = np.cumsum([0] + [len(m) for m in members]).astype(np.int64)
    indices = np.concatenate(members).astype(np.int32)
    W_out, S_out, grad_out = W.copy(), S.copy(), grad.copy()
    kb.sample_implicit(indptr, indices, weight, gram, grad_out, W_out, S_out, mean, prec, alpha, np.uint64(5),
                       False)
    # reference: sequential exact solves
    Wr = W.copy()
    for j in range(n_cols):
        A = np.diag(prec).astype(float)
        b = prec * mean
        for u in members[j]:
            others = Wr[[c for c in rows_of[u] if c != j]].sum(axis=0) * weight[u] if len(rows_of[u]) > 1 else 0
            f, t = feats[u], targets[u]
            A = A + alpha * weight[u] ** 2 * f.T @ f
            b = b + alpha * weight[u] * f.T @ (t - f @ (x[u] + others))
        Wr[j] = np.linalg.solve(A, b)
    np.testing.assert_allclose(W_out, Wr, rtol=1e-8, atol=1e-10)
    S_ref = np.array([weight[u] * Wr[rows_of[u]].sum(axis=0) for u in range(n_rows)])
    np.testing.assert_allclose(S_out, S_ref, rtol=1e-8, atol=1e-10)


def _planted(seed=0, noise=0.8, integer=True, n_ratings=15_000):
    r = synthetic(n_users=400, n_items=300, n_ratings=n_ratings, rank=4, noise=noise, integer=integer, seed=seed)
    return prep.split(r, validation_fraction=0.1, test_fraction=0.2, seed=seed)


def _fit(train, validation=None, **kw):
    kw.setdefault("k", 4)
    kw.setdefault("n_samples", 60)
    kw.setdefault("burn_in", 10)
    val = None if validation is None else (validation.users, validation.items, validation.values)
    return gibbs_fit(train.users, train.items, train.values, train.n_users, train.n_items, validation=val, **kw)


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_beats_als_on_a_noisy_planted_low_rank_matrix():
    from latentatlas.ratings.model import LatentFactorModel

    split = _planted(noise=1.0)
    k = 4
    fit = _fit(split.train, split.validation, k=k, implicit=False)
    bayes_rmse = _rmse(fit.predict(split.test.users, split.test.items), split.test.values)
    model = LatentFactorModel(k=k, solver="als", seed=0)
    try:  # the model's API is being reworked: keyword validation and Ratings input, or the older positional one
        model.fit(split.train, validation=split.validation)
        pred = model.predict(split.test)
    except TypeError:
        model.fit(split.train, split.validation)
        pred = model.predict(split.test.users, split.test.items)
    als_rmse = _rmse(pred, split.test.values)
    assert bayes_rmse < als_rmse - 0.005, (bayes_rmse, als_rmse)
    # and it learnt the noise level: ratings are signal + N(0, 1) noise, rounded and clipped
    assert 0.8 < 1 / np.sqrt(fit.noise_precision) < 1.2


def test_same_seed_same_result_with_one_and_two_threads():
    split = _planted()
    a = _fit(split.train, split.validation, n_samples=5, burn_in=2, implicit=True, n_threads=1, seed=3)
    b = _fit(split.train, split.validation, n_samples=5, burn_in=2, implicit=True, n_threads=2, seed=3)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "user_var", "item_var"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.mu == b.mu and a.noise_precision == b.noise_precision
    assert a.history["validation_rmse"] == b.history["validation_rmse"]
    c = _fit(split.train, split.validation, n_samples=5, burn_in=2, implicit=True, n_threads=2, seed=4)
    assert not np.array_equal(a.user_factors, c.user_factors)


def test_predictive_std_is_calibrated():
    split = _planted(seed=1, noise=0.5, integer=False, n_ratings=20_000)
    fit = _fit(split.train, k=4, n_samples=60, burn_in=15, implicit=False, noise="global")  # one noise variance
    pred = fit.predict(split.test.users, split.test.items)
    std = fit.predict_std(split.test.users, split.test.items)
    inside = np.mean(np.abs(split.test.values - pred) <= std)
    assert 0.64 <= inside <= 0.72, inside
    assert np.all(std > np.sqrt(fit.noise_variance) - 1e-12)


def test_implicit_features_history_callback_and_fold_in():
    split = _planted(seed=2)
    seen = []
    fit = _fit(split.train, split.validation, n_samples=8, burn_in=2, implicit="both",
               callback=lambda t, rec: seen.append((t, rec["kept"])))
    assert isinstance(fit, BayesFit) and fit.implicit == "both" and fit.n_kept == 8
    assert seen == [(t, t >= 2) for t in range(10)]
    assert len(fit.history["validation_rmse"]) == 10 and np.isfinite(fit.history["validation_rmse"][-1])
    assert fit.implicit_user.shape == (split.train.n_items, 5)
    # folding in a training user's own ratings lands near the sampled posterior mean of that user
    u = int(np.bincount(split.train.users).argmax())
    mine = split.train.users == u
    bias, factors = fit.fold_in(split.train.items[mine], split.train.values[mine])
    ours = fit.predict(np.full(mine.sum(), u), split.train.items[mine])
    folded = fit.mu + bias + fit.item_bias[split.train.items[mine]] + fit.item_factors[split.train.items[mine]] @ factors
    assert _rmse(ours, folded) < 0.15


def test_predictions_average_the_stored_samples_and_match_the_history():
    split = _planted(seed=5)
    val = split.validation
    for n_stored, width in ((None, 12), (3, 3), (5, 4)):  # 12 kept samples; stride 4 keeps 3, stride 3 keeps 4
        fit = _fit(split.train, val, k=4, n_samples=12, burn_in=3, implicit="both", n_stored=n_stored)
        assert fit.n_stored == width and fit.user_factors.shape == (split.train.n_users, width * 4)
        assert fit.user_factor_mean.shape == (split.train.n_users, 4)
        rmse = _rmse(fit.predict(val.users, val.items), val.values)
        assert abs(rmse - fit.history["validation_rmse"][-1]) < 1e-5
    # the product of averaged factors is a different (and here no better) estimate
    mean_pred = (fit.mu + fit.user_bias[val.users] + fit.item_bias[val.items]
                 + np.einsum("ij,ij->i", fit.user_factor_mean[val.users], fit.item_factor_mean[val.items]))
    assert abs(_rmse(mean_pred, val.values) - fit.history["validation_rmse_factor_mean"][-1]) < 1e-5


def test_per_user_and_item_noise_precisions():
    split = _planted(seed=4)
    fit = _fit(split.train, split.validation, n_samples=10, burn_in=2, noise="both", implicit=False)
    assert fit.noise == "both"
    assert fit.user_noise.shape == (split.train.n_users,) and fit.item_noise.shape == (split.train.n_items,)
    assert np.all(fit.user_noise > 0) and np.all(fit.item_noise > 0) and fit.user_noise.std() > 0
    std = fit.predict_std(split.test.users, split.test.items)
    assert np.all(np.isfinite(std)) and np.all(std > 0)
    plain = _fit(split.train, n_samples=10, burn_in=2, implicit=False, noise="global")
    assert np.all(plain.user_noise == 1) and np.all(plain.item_noise == 1)


def test_implicit_extra_pairs_change_only_the_implicit_part():
    split = _planted(seed=2)
    base = _fit(split.train, n_samples=3, burn_in=1, implicit="user")
    extra = _fit(split.train, n_samples=3, burn_in=1, implicit="user",
                 implicit_extra=(split.test.users, split.test.items))
    assert not np.allclose(base.user_factors, extra.user_factors)
    none = _fit(split.train, n_samples=3, burn_in=1, implicit=False,
                implicit_extra=(split.test.users, split.test.items))
    none2 = _fit(split.train, n_samples=3, burn_in=1, implicit=False)
    np.testing.assert_array_equal(none.user_factors, none2.user_factors)


def test_ctrl_c_keeps_the_average_so_far():
    split = _planted(seed=3)

    def stop(t, record):
        if t == 4:
            raise KeyboardInterrupt

    with pytest.raises(GibbsInterrupted) as info:
        _fit(split.train, split.validation, n_samples=20, burn_in=2, callback=stop)
    fit = info.value.fit
    assert isinstance(info.value, KeyboardInterrupt)
    assert fit.interrupted and fit.n_kept == 3
    assert np.isfinite(fit.predict(split.test.users, split.test.items)).all()


def test_ctrl_c_during_burn_in_keeps_the_current_sample():
    split = _planted(seed=3)

    def stop(t, record):
        if t == 1:
            raise KeyboardInterrupt

    with pytest.raises(GibbsInterrupted) as info:
        _fit(split.train, n_samples=5, burn_in=4, implicit="both", callback=stop)
    fit = info.value.fit
    assert fit.interrupted and fit.n_kept == 0 and fit.n_stored == 1
    assert np.isfinite(fit.predict(split.test.users, split.test.items)).all()
    assert np.isfinite(fit.predict_std(split.test.users, split.test.items)).all()


@pytest.mark.parametrize("kw, name", [
    ({"k": 0}, "k"), ({"n_samples": 0}, "n_samples"), ({"burn_in": -1}, "burn_in"), ({"k": 2.5}, "k"),
    ({"implicit": "sideways"}, "implicit"), ({"seed": -1}, "seed"), ({"n_threads": 0}, "n_threads"),
    ({"validation": ([0], [0])}, "validation"), ({"implicit_extra": ([0], [10_000])}, "implicit_extra items"),
    ({"callback": 3}, "callback"), ({"init_std": -1.0}, "init_std"), ({"noise": "loud"}, "noise"),
    ({"noise_dof": 0}, "noise_dof"), ({"n_stored": 0}, "n_stored"),
])
def test_bad_arguments_name_the_argument(kw, name):
    users = np.array([0, 1, 2], dtype=np.int32)
    items = np.array([0, 1, 1], dtype=np.int32)
    values = np.array([1.0, 2.0, 3.0])
    with pytest.raises(LatentAtlasError, match=name):
        gibbs_fit(users, items, values, 3, 2, **kw)


def test_bad_data_name_the_array():
    users = np.array([0, 1, 5], dtype=np.int32)
    items = np.array([0, 1, 1], dtype=np.int32)
    with pytest.raises(LatentAtlasError, match="users"):
        gibbs_fit(users, items, [1.0, 2.0, 3.0], 3, 2)
    with pytest.raises(LatentAtlasError, match="values"):
        gibbs_fit(users[:2], items[:2], [1.0, np.nan], 3, 2)
    with pytest.raises(LatentAtlasError, match="values"):
        gibbs_fit(users[:2], items[:2], [1.0], 3, 2)


def test_init_factors_start_the_chain_from_given_factors():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 400), rng.integers(0, 20, 400)
    values = rng.normal(3, 1, 400)
    U, V = rng.normal(0, 0.3, (30, 3)), rng.normal(0, 0.3, (20, 3))
    a = gibbs_fit(users, items, values, 30, 20, k=3, n_samples=2, burn_in=0, implicit="none", init_factors=(U, V))
    b = gibbs_fit(users, items, values, 30, 20, k=3, n_samples=2, burn_in=0, implicit="none")
    assert not np.allclose(a.user_factor_mean, b.user_factor_mean)
    with pytest.raises(LatentAtlasError, match=r"init_factors: the item factors must be finite, of shape \(20, 3\)"):
        gibbs_fit(users, items, values, 30, 20, k=3, init_factors=(U, V[:5]))
