"""LatentFactorModel and its kernels against closed forms, brute force and plain-Python references."""

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import metrics, prep
from latentatlas.ratings.kernels import als, sgd
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.model import FORMAT_VERSION, map_ids
from latentatlas.ratings.model import LatentFactorModel as _LatentFactorModel
from latentatlas.ratings.synthetic import synthetic


def LatentFactorModel(**kw):
    """The model as these tests knew it: no inner hold-out, no refit (tests of those say so)."""
    return _LatentFactorModel(**{"validation_fraction": 0, "refit": False, **kw})


@pytest.fixture(scope="module")
def small_split():
    r = synthetic(120, 80, 3000, rank=3, noise=0.3, seed=3)
    return prep.split(r, validation_fraction=0.15, test_fraction=0.15, seed=1)


def _random_sparse(rng, n_rows, n_cols, density):
    mask = rng.random((n_rows, n_cols)) < density
    mask[0] = False  # a row without entries
    mask[1, :2] = True  # a row with fewer entries than k
    mask[1, 2:] = False
    rows, cols = np.nonzero(mask)
    vals = rng.normal(size=len(rows))
    return rows.astype(np.int32), cols.astype(np.int32), vals


# --- ALS half-step -------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_als_half_step_equals_ridge_per_row(weighted):
    rng = np.random.default_rng(0)
    k, lam = 5, 0.3
    rows, cols, vals = _random_sparse(rng, 12, 30, 0.3)
    Y = rng.normal(size=(30, k))
    X = rng.normal(size=(12, k))  # overwritten, including the empty row
    indptr, indices, data = als.compressed(rows, cols, vals, 12, np.float64)
    als.ridge_rows(indptr, indices, data, Y, X, lam, weighted, 4)
    assert np.all(X[0] == 0)
    for r in range(1, 12):
        sel = rows == r
        alpha = lam * sel.sum() if weighted else lam
        ref = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(Y[cols[sel]], vals[sel]).coef_
        np.testing.assert_allclose(X[r], ref, atol=1e-6, rtol=0)


def test_cg_half_step_converges_to_the_exact_solution():
    rng = np.random.default_rng(1)
    k, lam = 6, 0.2
    rows, cols, vals = _random_sparse(rng, 10, 25, 0.4)
    Y = rng.normal(size=(25, k))
    csr = als.compressed(rows, cols, vals, 10, np.float64)
    exact = np.zeros((10, k))
    als.ridge_rows(*csr, Y, exact, lam, True, 2)
    approx = rng.normal(size=(10, k))
    als.cg_rows(*csr, Y, approx, lam, True, 3 * k, 2)  # CG is exact after k steps in exact arithmetic
    np.testing.assert_allclose(approx, exact, atol=1e-6)


def test_singular_rows_take_the_minimum_norm_solution():
    rng = np.random.default_rng(2)
    k = 4
    rows = np.array([0, 0, 1], dtype=np.int32)  # row 0: two entries for four unknowns; λ = 0
    cols = np.array([1, 3, 2], dtype=np.int32)
    vals = np.array([1.0, -2.0, 0.5])
    Y = rng.normal(size=(5, k))
    X = np.zeros((2, k))
    fallbacks = als.ridge_rows(*als.compressed(rows, cols, vals, 2, np.float64), Y, X, 0.0, False, 1)
    assert fallbacks == 2
    np.testing.assert_allclose(X[0], np.linalg.pinv(Y[[1, 3]]) @ vals[:2], atol=1e-9)
    np.testing.assert_allclose(X[1], np.linalg.pinv(Y[[2]]) @ vals[2:], atol=1e-9)


def test_model_ends_each_als_iteration_with_the_user_ridge_solution(small_split):
    train = small_split.train
    m = LatentFactorModel(k=4, reg=0.5, solver="als", als_method="cholesky", center="none", dtype="float64",
                          reg_weighting="none", max_steps=2).fit(train)
    P = m.item_factors_
    for u in range(0, train.n_users, 7):
        sel = train.users == u
        if not sel.any():
            assert np.all(m.user_factors_[u] == 0)
            continue
        ref = Ridge(alpha=0.5, fit_intercept=False).fit(P[train.items[sel]], train.values[sel]).coef_
        np.testing.assert_allclose(m.user_factors_[u], ref, atol=1e-6)


# --- SGD -------------------------------------------------------------------------------------------------
def _python_sgd(users, items, values, order, Q, P, lr, reg):
    Q, P = Q.copy(), P.copy()
    for j in order:
        u, i = users[j], items[j]
        e = values[j] - sum(Q[u, a] * P[i, a] for a in range(Q.shape[1]))
        q_old = Q[u].copy()
        Q[u] = Q[u] + lr * (e * P[i] - reg * Q[u])
        P[i] = P[i] + lr * (e * q_old - reg * P[i])
    return Q, P


def test_serial_sgd_epoch_equals_plain_python_loop():
    rng = np.random.default_rng(4)
    users = rng.integers(0, 6, 40).astype(np.int32)
    items = rng.integers(0, 9, 40).astype(np.int32)
    values = rng.normal(size=40)
    Q0, P0 = rng.random((6, 3)), rng.random((9, 3))
    order = rng.permutation(40)
    Q, P = Q0.copy(), P0.copy()
    sgd.epoch_serial(users, items, values, order, Q, P, 0.05, 0.1)
    Qr, Pr = _python_sgd(users, items, values, order, Q0, P0, 0.05, 0.1)
    np.testing.assert_allclose(Q, Qr, atol=1e-12)
    np.testing.assert_allclose(P, Pr, atol=1e-12)


def test_sgd_block_strata_touch_disjoint_rows_and_columns():
    r = synthetic(60, 50, 900, seed=5)
    u, i, v, offsets = sgd.block_layout(r.users, r.items, r.values, r.n_users, r.n_items, 4,
                                        np.random.default_rng(0))
    assert sorted(zip(u, i)) == sorted(zip(r.users, r.items))  # a regrouping, nothing lost
    for s in range(4):
        seen_u, seen_i = set(), set()
        for a in range(4):
            cell = a * 4 + (a + s) % 4
            bu, bi = set(u[offsets[cell]:offsets[cell + 1]]), set(i[offsets[cell]:offsets[cell + 1]])
            assert not (bu & seen_u) and not (bi & seen_i)
            seen_u |= bu
            seen_i |= bi


def test_blocked_sgd_is_reproducible_for_any_thread_count(small_split):
    kw = dict(k=5, solver="sgd", max_steps=3, dtype="float64", seed=7)
    a = LatentFactorModel(n_threads=1, **kw).fit(small_split.train, small_split.validation)
    b = LatentFactorModel(n_threads=2, **kw).fit(small_split.train, small_split.validation)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    c = LatentFactorModel(n_threads=2, **{**kw, "seed": 8}).fit(small_split.train, small_split.validation)
    assert not np.array_equal(a.user_factors_, c.user_factors_)


# --- loss and early stopping -----------------------------------------------------------------------------
@pytest.mark.parametrize("weighting", ["none", "count"])
def test_reported_training_loss_is_the_formula(small_split, weighting):
    train = small_split.train
    m = LatentFactorModel(k=3, reg=0.2, center="none", reg_weighting=weighting, dtype="float64",
                          max_steps=1).fit(train)
    expected = metrics.loss(train, m.Q_, m.P_, 0.2, weighting=weighting)
    assert m.history_.train_loss == [pytest.approx(expected, rel=1e-9)]


def test_early_stopping_returns_best_factors_and_converged_after(small_split):
    # Tiny λ and many factors overfit this small set, so the validation error turns up again.
    train, val = small_split.train, small_split.validation
    kw = dict(k=20, reg=1e-4, solver="sgd", lr=0.05, sgd_schedule="serial", dtype="float64", tol=0.0,
              eval_every=2, seed=0)
    full = LatentFactorModel(max_steps=60, patience=100, **kw).fit(train, val)
    h = full.history_.validation_rmse
    steps = full.history_.steps
    patience = 3
    best, bad, stop = 0, 0, None
    for j in range(1, len(h)):
        if h[j] < h[best]:
            best, bad = j, 0
        else:
            bad += 1
            if bad >= patience:
                stop = j
                break
    assert stop is not None and steps[best] < 40, "the construction must overfit"
    m = LatentFactorModel(max_steps=60, patience=patience, **kw).fit(train, val)
    assert m.history_.stopped_at == steps[stop]
    assert m.history_.converged_after == steps[stop] - patience * 2 == steps[best]
    assert m.history_.best_step == steps[best]
    assert m.history_.validation_rmse == h[:stop + 1]
    at_best = LatentFactorModel(max_steps=steps[best], patience=100, **kw).fit(train, val)
    np.testing.assert_array_equal(m.user_factors_, at_best.user_factors_)
    np.testing.assert_array_equal(m.item_factors_, at_best.item_factors_)
    # the history holds the unclipped error
    assert metrics.rmse(val.values, m.predict_indices(val.users, val.items, clip=False)) == pytest.approx(min(h), abs=1e-9)


def test_reaching_max_steps_reports_minus_one(small_split):
    m = LatentFactorModel(k=3, max_steps=2, patience=5).fit(small_split.train, small_split.validation)
    assert m.history_.converged_after == -1 and m.history_.stopped_at == 2
    assert len(m.history_.seconds) == 2 and m.history_.seconds_per_iteration > 0


# --- cold users and items --------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_users_and_items_without_training_ratings_are_predicted_by_the_biases(solver):
    r = synthetic(40, 30, 500, seed=2)
    keep = (r.users != 5) & (r.items != 7)
    train = r.take(keep)
    m = LatentFactorModel(k=4, solver=solver, max_steps=3).fit(train)
    assert np.all(m.user_factors_[5] == 0) and np.all(m.item_factors_[7] == 0)
    b = prep.fit_biases(train, 5.0, 5.0)
    items = np.arange(30)
    np.testing.assert_allclose(m.predict_indices(np.full(30, 5), items),
                               np.clip(b.predict(np.full(30, 5), items), 1, 5), atol=1e-6)


# --- prediction, recommendation, fold-in ------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(small_split):
    return LatentFactorModel(k=6, reg=0.05, max_steps=8, dtype="float64").fit(small_split.train,
                                                                            small_split.validation)


def test_predict_adds_baseline_and_clips(fitted, small_split):
    t = small_split.test
    raw = fitted.mu_ + fitted.user_bias_[t.users] + fitted.item_bias_[t.items] + np.sum(
        fitted.Q_[t.users] * fitted.P_[:, t.items].T, axis=1)
    np.testing.assert_allclose(fitted.predict_indices(t.users, t.items, clip=False), raw, atol=1e-9)
    np.testing.assert_allclose(fitted.predict_indices(t.users, t.items), np.clip(raw, 1, 5), atol=1e-9)


def test_recommend_is_the_brute_force_top_n_without_seen_items(fitted, small_split):
    train = small_split.train
    u = int(np.argmax(train.user_counts()))
    items, scores = fitted.recommend_indices(u, n=5)
    all_scores = fitted.predict_indices(np.full(train.n_items, u), np.arange(train.n_items), clip=False)
    all_scores[train.items[train.users == u]] = -np.inf
    np.testing.assert_array_equal(items, np.argsort(-all_scores, kind="stable")[:5])
    np.testing.assert_allclose(scores, all_scores[items])
    with_seen, _ = fitted.recommend_indices(u, n=train.n_items, exclude_seen=False)
    assert len(with_seen) == train.n_items


def test_similar_items_is_cosine_brute_force(fitted):
    F = fitted.item_factors_
    cos = F @ F[3] / (np.linalg.norm(F, axis=1) * np.linalg.norm(F[3]) + 1e-300)
    cos[3] = -np.inf
    items, sims = fitted.similar_items(3, n=4)
    np.testing.assert_array_equal(items, np.argsort(-cos)[:4])
    np.testing.assert_allclose(sims, cos[items], atol=1e-9)


def test_fold_in_of_a_training_user_reproduces_their_als_row(small_split):
    train = small_split.train
    m = LatentFactorModel(k=4, reg=0.3, als_method="cholesky", center="none", dtype="float64",
                          max_steps=3).fit(train)
    u = int(np.argmax(train.user_counts()))
    sel = train.users == u
    folded = m.fold_in_indices(train.items[sel], train.values[sel])
    np.testing.assert_allclose(folded.factors, m.user_factors_[u], atol=1e-8)
    items, _ = m.recommend(folded, n=5)
    assert not set(items) & set(train.items[sel])


def test_id_helpers_use_original_ids():
    r = synthetic(30, 20, 300, seed=9)
    r = Ratings(r.users, r.items, r.values, np.array([f"u{j}" for j in range(30)]), np.arange(20) * 10 + 100)
    m = LatentFactorModel(k=3, max_steps=2).fit(r)
    ids, scores = m.recommend("u4", n=3, clip=False)
    idx, _ = m.recommend_indices(4, n=3)
    np.testing.assert_array_equal(ids, idx * 10 + 100)
    np.testing.assert_array_equal(map_ids(m.item_ids_, [110, 999, 100]), [1, -1, 0])
    pred = m.predict(np.array([["u4", 110], ["nobody", 110]], dtype=object))
    assert pred[0] == pytest.approx(m.predict_indices([4], [1])[0])
    assert pred[1] == pytest.approx(np.clip(m.mu_ + m.item_bias_[1], 1, 5))
    with pytest.raises(LatentAtlasError, match="unknown user id 'nobody'"):
        m.recommend("nobody")


# --- initialisation -------------------------------------------------------------------------------------
def test_svd_init_is_the_truncated_svd_of_the_centred_matrix(small_split):
    train = small_split.train
    m = LatentFactorModel(k=3, init="svd", dtype="float64")
    m.mu_, m.user_bias_, m.item_bias_ = m._fit_baseline(train)
    resid = train.values - m._baseline(train.users, train.items)
    import scipy.sparse as sp

    matrix = sp.coo_matrix((resid, (train.users, train.items)), shape=train.shape).tocsr
    Q, P = m._initial_factors(matrix, np.dtype("float64"), np.random.default_rng(0), train.shape)
    dense = np.zeros(train.shape)
    dense[train.users, train.items] = resid
    u, s, vt = np.linalg.svd(dense, full_matrices=False)
    np.testing.assert_allclose(Q @ P.T, (u[:, :3] * s[:3]) @ vt[:3], atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(Q, axis=0), s[:3], rtol=1e-8)  # Q = U·diag(σ)


def test_random_init_is_seeded():
    r = synthetic(30, 20, 300, seed=1)
    a = LatentFactorModel(k=3, max_steps=1, seed=4).fit(r)
    b = LatentFactorModel(k=3, max_steps=1, seed=4).fit(r)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


# --- persistence -----------------------------------------------------------------------------------------
def test_save_load_round_trip(fitted, small_split, tmp_path):
    path = fitted.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert z["item_factors"].shape == (small_split.train.n_items, 6)
    assert meta["params"]["k"] == 6 and meta["version"] == FORMAT_VERSION
    back = _LatentFactorModel.load(path)
    t = small_split.test
    np.testing.assert_array_equal(back.predict_indices(t.users, t.items), fitted.predict_indices(t.users, t.items))
    np.testing.assert_array_equal(back.recommend_indices(2, 5)[0], fitted.recommend_indices(2, 5)[0])
    assert back.history_.validation_rmse == fitted.history_.validation_rmse
    assert back.get_params()["reg"] == 0.05 and back.reg_value == 0.05


def test_newer_format_version_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = FORMAT_VERSION + 1
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "new.npz", **arrays)
    with pytest.raises(LatentAtlasError, match="newer"):
        _LatentFactorModel.load(tmp_path / "new.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(LatentAtlasError, match="junk.npz"):
        _LatentFactorModel.load(tmp_path / "junk.npz")


# --- argument errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"k": 0}, "k"), ({"k": 2.5}, "k"), ({"reg": -0.1}, "reg"), ({"solver": "newton"}, "solver"),
    ({"init": "zeros"}, "init"), ({"lr": 0}, "lr"), ({"patience": 0}, "patience"),
    ({"center": "median"}, "center"), ({"max_steps": 0}, "max_steps"), ({"reg": float("nan")}, "reg"),
])
def test_bad_arguments_name_the_argument(kwargs, name, small_split):
    model = LatentFactorModel(**kwargs)  # scikit-learn convention: __init__ only stores, fit validates
    with pytest.raises(LatentAtlasError, match=rf"^{name} must"):
        model.fit(small_split.train)


def test_bad_fit_and_predict_inputs(fitted, small_split):
    with pytest.raises(LatentAtlasError, match="not fitted"):
        LatentFactorModel().predict([[0, 0]])
    with pytest.raises(LatentAtlasError, match="users index 999"):
        fitted.predict_indices([999], [0])
    with pytest.raises(LatentAtlasError, match="same length"):
        fitted.predict_indices([0, 1], [0])
    with pytest.raises(LatentAtlasError, match="n must be"):
        fitted.recommend(fitted.user_ids_[0], n=0)
    with pytest.raises(LatentAtlasError, match=r"X must have shape \(n, 2\)"):
        LatentFactorModel(k=2).fit(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(LatentAtlasError, match="requires y to be passed"):
        LatentFactorModel(k=2).fit(np.zeros((3, 2)))
    with pytest.raises(LatentAtlasError, match="3 pairs but y has 2"):
        LatentFactorModel(k=2).fit(np.zeros((3, 2)), [1, 2])
    other = synthetic(10, 10, 30, seed=0)
    with pytest.raises(LatentAtlasError, match="init='svd' needs k"):
        LatentFactorModel(k=10, init="svd").fit(other)
    with pytest.raises(LatentAtlasError, match="k=64 latent factors is more than the data allow"):
        LatentFactorModel(k=64).fit(other)
    assert LatentFactorModel(max_steps=2).fit(other).k_value == 9  # the default k is capped to fit the data
    huge = other.with_values(np.full(len(other), 1e12))
    with pytest.raises(LatentAtlasError, match="far outside any rating scale"):
        LatentFactorModel(k=2).fit(huge)


def test_validation_ratings_are_matched_to_training_ratings_by_id(small_split):
    """Validation ratings over other ids in another order are mapped by id; unknown pairs are dropped."""
    v = small_split.validation
    order = np.arange(v.n_users)[::-1]
    shuffled = Ratings(order.argsort()[v.users], v.items, v.values, v.user_ids[order], v.item_ids)
    kw = dict(k=3, max_steps=4, patience=10, dtype="float64")
    a = LatentFactorModel(**kw).fit(small_split.train, v)
    b = LatentFactorModel(**kw).fit(small_split.train, shuffled)
    np.testing.assert_allclose(a.history_.validation_rmse, b.history_.validation_rmse)
    strangers = Ratings(v.users, v.items, v.values, v.user_ids + 10_000, v.item_ids)
    c = LatentFactorModel(**kw).fit(small_split.train, strangers)
    assert c.history_.validation_rmse == [] and c.history_.criterion == "train_rmse"


def test_refit_trains_on_train_and_validation_for_the_chosen_steps(small_split):
    train, val = small_split.train, small_split.validation
    kw = dict(k=4, solver="sgd", sgd_schedule="serial", dtype="float64", seed=2)
    m = LatentFactorModel(**kw).set_params(refit=True).fit(train, val)
    steps = m.history_.best_step
    assert m.history_.refit_steps == steps > 0
    both = Ratings(np.r_[train.users, val.users], np.r_[train.items, val.items], np.r_[train.values, val.values],
                   train.user_ids, train.item_ids)
    ref = LatentFactorModel(max_steps=steps, eval_every=steps, **kw).fit(both)
    np.testing.assert_array_equal(m.user_factors_, ref.user_factors_)
    u = int(val.users[0])
    assert val.items[0] in m.seen_items_[m.seen_indptr_[u]:m.seen_indptr_[u + 1]]


def test_default_reg_depends_on_the_solver():
    assert LatentFactorModel(solver="als").reg_value == 0.12
    assert LatentFactorModel(solver="sgd").reg_value == 0.065
    assert LatentFactorModel(solver="sgd", reg=0.3).reg_value == 0.3


def test_lean_biases_equal_prep_fit_biases(small_split):
    train = small_split.train
    ref = prep.fit_biases(train, reg_user=3.0, reg_item=7.0)
    mu, bu, bi = als.damped_biases(train.users, train.items, train.values, train.n_users, train.n_items, 3.0, 7.0, 10)
    assert mu == pytest.approx(ref.mu)  # prep averages in float32, hence 1e-6 below
    np.testing.assert_allclose(bu, ref.user, atol=1e-6)
    np.testing.assert_allclose(bi, ref.item, atol=1e-6)
    out = np.empty(len(train))
    als.residuals(train.users, train.items, train.values, mu, bu, bi, out)
    np.testing.assert_allclose(out, train.values - ref.predict(train.users, train.items), atol=1e-6)


def test_resuming_continues_training_where_it_stopped(small_split):
    train = small_split.train
    kw = dict(k=4, dtype="float64", patience=100)
    four = LatentFactorModel(max_steps=4, **kw).fit(train)
    two = LatentFactorModel(max_steps=2, **kw).fit(train)
    resumed = LatentFactorModel(max_steps=2, **kw).fit(train, init_from=two)
    np.testing.assert_allclose(resumed.user_factors_, four.user_factors_, atol=1e-12)
    with pytest.raises(LatentAtlasError, match="k=4, not 5"):
        LatentFactorModel(k=5, max_steps=1).fit(train, init_from=two)
    other = synthetic(30, 20, 300, seed=1)
    with pytest.raises(LatentAtlasError, match="other user ids"):
        LatentFactorModel(max_steps=1, **kw).fit(other, init_from=two)


def test_ctrl_c_keeps_the_best_factors_so_far(small_split):
    train, val = small_split.train, small_split.validation
    kw = dict(k=4, dtype="float64", patience=100, tol=0.0)

    def interrupt(line):
        if line.startswith("als step 4/"):
            raise KeyboardInterrupt

    m = LatentFactorModel(max_steps=10, progress=interrupt, **kw)
    with pytest.raises(KeyboardInterrupt):
        m.fit(train, val)
    assert m.history_.interrupted and m.history_.stopped_at == 4
    best = m.history_.steps[int(np.argmin(m.history_.validation_rmse))]
    ref = LatentFactorModel(max_steps=best, **kw).fit(train, val)
    np.testing.assert_allclose(m.user_factors_, ref.user_factors_, rtol=0, atol=1e-12)
