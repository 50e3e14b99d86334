"""The implicit-ALS solver against dense numpy references (ratings/ials_solver.py, kernels/ials.py)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import ials_solver as S


def tiny(n_users=7, n_items=9, density=0.35, seed=0):
    """A users × items CSR with targets in {0, 1} and weights in [0, 4), one empty user row and one empty item."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[0, :3] = True  # some entries in row 0 …
    mask[2] = False  # … an empty user …
    mask[:, 4] = False  # … and an empty item
    m = sp.csr_matrix(mask.astype(float))
    m.sort_indices()
    nnz = m.nnz
    targets = (rng.random(nnz) < 0.8).astype(float)
    weights = rng.uniform(0, 4, nnz)
    return m.indptr, m.indices, targets, weights


def dense(indptr, indices, targets, weights, n_users, n_items, alpha0):
    """Dense confidence C (α0 + w observed, α0 elsewhere) and preference P (p observed, 0 elsewhere)."""
    C = np.full((n_users, n_items), alpha0)
    P = np.zeros((n_users, n_items))
    t = np.ones(len(indices)) if targets is None else targets
    w = np.zeros(len(indices)) if weights is None else weights
    for u in range(n_users):
        for j in range(indptr[u], indptr[u + 1]):
            C[u, indices[j]] += w[j]
            P[u, indices[j]] = t[j]
    return C, P


def dense_half_step(Y, C, P, lam):
    """x_u = (Yᵀ C_u Y + λ_u I)⁻¹ Yᵀ C_u p_u for every row u, by numpy."""
    k = Y.shape[1]
    return np.stack([np.linalg.solve(Y.T @ (C[u][:, None] * Y) + lam[u] * np.eye(k), Y.T @ (C[u] * P[u]))
                     for u in range(len(C))])


def dense_objective(X, Y, C, P, lam_u, lam_i):
    return float(np.sum(C * (P - X @ Y.T) ** 2) + lam_u @ np.sum(X ** 2, 1) + lam_i @ np.sum(Y ** 2, 1))


def lambdas(indptr, indices, n_users, n_items, reg, alpha0, nu):
    n_u = np.diff(indptr)
    n_i = np.bincount(indices, minlength=n_items)
    return reg * (n_u + alpha0 * n_items) ** nu, reg * (n_i + alpha0 * n_users) ** nu


@pytest.mark.parametrize("alpha0,nu,unit", [(1.0, 0.0, False), (0.3, 0.5, False), (2.0, 1.0, True)])
def test_cholesky_half_steps_equal_dense_reference(alpha0, nu, unit):
    n_users, n_items, k, reg = 7, 9, 4, 0.05
    indptr, indices, targets, weights = tiny()
    if unit:
        targets = None
    C, P = dense(indptr, indices, targets, weights, n_users, n_items, alpha0)
    lam_u, lam_i = lambdas(indptr, indices, n_users, n_items, reg, alpha0, nu)
    rng = np.random.default_rng(3)
    X0, Y0 = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))

    # one user half-step through the public building block
    X = X0.copy()
    S.solve_rows(Y0, S.gramian(Y0, alpha0), indptr, indices, targets, weights,
                 S.row_regularization(np.diff(indptr), reg, alpha0, nu, n_items), alpha0, X, 3, "cholesky")
    want_X = dense_half_step(Y0, C, P, lam_u)
    np.testing.assert_allclose(X, want_X, rtol=1e-9, atol=1e-12)
    assert not X[2].any()  # the empty user: zero factors, the exact minimiser of α0‖Yx‖² + λ‖x‖²

    # one whole iteration of fit_ials: users from Y0, then items from the new users
    X1, Y1 = S.fit_ials(indptr, indices, targets, weights, n_users, n_items, k=k, reg=reg, alpha0=alpha0, nu=nu,
                        iterations=1, solver="cholesky", dtype="float64", user_factors=X0, item_factors=Y0)
    np.testing.assert_allclose(X1, want_X, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Y1, dense_half_step(X1, C.T, P.T, lam_i), rtol=1e-9, atol=1e-12)
    assert not Y1[4].any()


def test_objective_equals_dense_loss():
    n_users, n_items, k, reg, alpha0, nu = 7, 9, 3, 0.2, 0.7, 0.5
    indptr, indices, targets, weights = tiny(seed=1)
    C, P = dense(indptr, indices, targets, weights, n_users, n_items, alpha0)
    lam_u, lam_i = lambdas(indptr, indices, n_users, n_items, reg, alpha0, nu)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    got = S.objective(indptr, indices, targets, weights, X, Y, reg=reg, alpha0=alpha0, nu=nu)
    assert got == pytest.approx(dense_objective(X, Y, C, P, lam_u, lam_i), rel=1e-12)


def test_cg_converges_to_cholesky():
    n_users, n_items, k, alpha0, reg = 40, 30, 6, 0.5, 0.1
    m = sp.random(n_users, n_items, density=0.3, random_state=2, format="csr")
    rng = np.random.default_rng(2)
    weights = rng.uniform(0, 5, m.nnz)
    targets = (rng.random(m.nnz) < 0.9).astype(float)
    Y = rng.normal(size=(n_items, k))
    G = S.gramian(Y, alpha0)
    lam = S.row_regularization(np.diff(m.indptr), reg, alpha0, 0.3, n_items)
    exact = np.zeros((n_users, k))
    S.solve_rows(Y, G, m.indptr, m.indices, targets, weights, lam, alpha0, exact, 1, "cholesky")
    few = rng.normal(size=(n_users, k))
    many = few.copy()
    S.solve_rows(Y, G, m.indptr, m.indices, targets, weights, lam, alpha0, few, 2, "cg")
    S.solve_rows(Y, G, m.indptr, m.indices, targets, weights, lam, alpha0, many, 3 * k, "cg")
    np.testing.assert_allclose(many, exact, rtol=1e-7, atol=1e-9)
    assert np.abs(few - exact).max() > 1e-6  # two steps are not yet the answer: the test can see a difference


@pytest.mark.parametrize("solver,dtype", [("cg", "float64"), ("cholesky", "float64"), ("cg", "float32")])
def test_objective_decreases_monotonically(solver, dtype):
    n_users, n_items, k, reg, alpha0, nu = 60, 45, 8, 0.05, 0.4, 0.5
    m = sp.random(n_users, n_items, density=0.15, random_state=5, format="csr")
    rng = np.random.default_rng(5)
    weights = rng.uniform(0, 10, m.nnz)
    targets = (rng.random(m.nnz) < 0.85).astype(float)
    C, P = dense(m.indptr, m.indices, targets, weights, n_users, n_items, alpha0)
    lam_u, lam_i = lambdas(m.indptr, m.indices, n_users, n_items, reg, alpha0, nu)
    X0, Y0 = S.fit_ials(m.indptr, m.indices, targets, weights, n_users, n_items, k=k, iterations=0, seed=1,
                        dtype=dtype)
    losses = [dense_objective(X0.astype(float), Y0.astype(float), C, P, lam_u, lam_i)]

    def record(it, X, Y):
        assert it == len(losses)
        losses.append(dense_objective(X.astype(float), Y.astype(float), C, P, lam_u, lam_i))

    S.fit_ials(m.indptr, m.indices, targets, weights, n_users, n_items, k=k, reg=reg, alpha0=alpha0, nu=nu,
               iterations=12, solver=solver, seed=1, dtype=dtype, callback=record)
    losses = np.array(losses)
    tol = 1e-10 if dtype == "float64" else 1e-5
    assert len(losses) == 13
    assert (np.diff(losses) <= tol * losses[:-1]).all(), losses
    assert losses[-1] < 0.6 * losses[0]


def _problem(seed=0, n_users=300, n_items=120, density=0.05):
    m = sp.random(n_users, n_items, density=density, random_state=seed, format="csr")
    m.data = np.random.default_rng(seed).uniform(0, 4, m.nnz)
    return m


def test_seeded_and_independent_of_threads():
    m = _problem()
    kw = dict(k=16, reg=0.05, alpha0=0.5, nu=0.5, iterations=4)
    a = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, seed=3, n_threads=1, **kw)
    b = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, seed=3, n_threads=1, **kw)
    c = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, seed=4, n_threads=1, **kw)
    assert a[0].dtype == np.float32 and a[0].shape == (300, 16) and a[1].shape == (120, 16)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    before = numba.get_num_threads()
    d = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, seed=3, n_threads=2, **kw)
    assert numba.get_num_threads() == before  # restored
    assert np.array_equal(a[0], d[0]) and np.array_equal(a[1], d[1])
    G1 = S.gramian(d[1])
    numba.set_num_threads(1)
    try:
        assert np.array_equal(S.gramian(d[1]), G1)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("sorted_rows", [True, False])
def test_item_groups_give_the_same_factors(monkeypatch, sorted_rows):
    """The item-side CSR built a group of items at a time (large data) gives the same bits as built whole."""
    m = _problem(4, 200, 90, 0.1)
    indices = m.indices.copy()
    data = m.data.copy()
    targets = (np.random.default_rng(1).random(m.nnz) < 0.9).astype(float)
    if not sorted_rows:  # reverse every row: a valid CSR with unsorted rows
        for u in range(200):
            s = slice(m.indptr[u], m.indptr[u + 1])
            indices[s], data[s], targets[s] = indices[s][::-1], data[s][::-1], targets[s][::-1]
    kw = dict(k=6, reg=0.05, nu=0.5, alpha0=0.7, iterations=3)
    whole = S.fit_ials(m.indptr, indices, targets, data, 200, 90, **kw)
    monkeypatch.setattr(S, "_GROUP_ENTRIES", 97)
    assert len(S._item_groups(np.bincount(indices, minlength=90), 97)) > 10
    grouped = S.fit_ials(m.indptr, indices, targets, data, 200, 90, **kw)
    assert np.array_equal(whole[0], grouped[0]) and np.array_equal(whole[1], grouped[1])


def test_callback_stops_and_warm_start_continues():
    m = _problem(1)
    kw = dict(k=8, reg=0.05, solver="cholesky", dtype="float64")
    seen = []
    X2, Y2 = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, iterations=10, **kw,
                        callback=lambda it, X, Y: seen.append(it) or it == 2)
    assert seen == [1, 2]
    X4, Y4 = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, iterations=4, **kw)
    Xw, Yw = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, iterations=2, user_factors=X2,
                        item_factors=Y2, **kw)
    np.testing.assert_allclose(Xw, X4, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(Yw, Y4, rtol=1e-10, atol=1e-13)
    X0, _ = S.fit_ials(m.indptr, m.indices, None, m.data, *m.shape, iterations=0, user_factors=X2, **kw)
    assert np.array_equal(X0, X2) and X0 is not X2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fold_in_user_equals_user_half_step(dtype):
    m = _problem(2)
    rng = np.random.default_rng(0)
    targets = (rng.random(m.nnz) < 0.8).astype(float)
    reg, alpha0, nu = 0.1, 0.6, 0.7
    X, Y = S.fit_ials(m.indptr, m.indices, targets, m.data, *m.shape, k=10, reg=reg, alpha0=alpha0, nu=nu,
                      iterations=3, dtype=dtype)
    G = S.gramian(Y, alpha0)
    half = X.copy()
    S.solve_rows(Y, G, m.indptr, m.indices, targets, m.data,
                 S.row_regularization(np.diff(m.indptr), reg, alpha0, nu, m.shape[1]), alpha0, half, 1, "cholesky")
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for u in (0, 5, int(np.argmax(np.diff(m.indptr)))):
        s = slice(m.indptr[u], m.indptr[u + 1])
        got = S.fold_in_user(Y, G, m.indices[s], targets[s], m.data[s], reg, alpha0, nu, m.shape[1])
        assert got.dtype == np.dtype(dtype) and got.shape == (10,)
        np.testing.assert_allclose(got, half[u], rtol=rtol, atol=rtol * np.abs(half[u]).max())
        again = S.fold_in_user(Y, None, m.indices[s], targets[s], m.data[s], reg, alpha0, nu, m.shape[1])
        np.testing.assert_allclose(again, got, rtol=rtol, atol=rtol * np.abs(got).max())
    assert not S.fold_in_user(Y, G, [], None, None, reg, alpha0, nu, m.shape[1]).any()


def test_matches_implicit_als():
    """implicit's ALS is α0 = 1, p = 1, w = confidence − 1, ν = 0: from the same start, the same CG steps."""
    pytest.importorskip("implicit")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from implicit.cpu.als import AlternatingLeastSquares

    m = _problem(3, 200, 80, 0.08).astype(np.float32)
    m.data = 1 + 4 * m.data  # confidences
    k = 12
    rng = np.random.default_rng(0)
    X0 = rng.random((200, k), dtype=np.float32) * 0.1
    Y0 = rng.random((80, k), dtype=np.float32) * 0.1
    with threadpoolctl.threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=k, regularization=0.05, iterations=2, num_threads=1,
                                        random_state=0)
        model.user_factors, model.item_factors = X0.copy(), Y0.copy()
        model.fit(m, show_progress=False)
    X, Y = S.fit_ials(m.indptr, m.indices, None, m.data - 1, 200, 80, k=k, reg=0.05, iterations=2, cg_steps=3,
                      user_factors=X0, item_factors=Y0)
    np.testing.assert_allclose(X, model.user_factors, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(Y, model.item_factors, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("change,message", [
    (dict(alpha0=0), "alpha0 must be > 0.0, got 0"),
    (dict(nu=1.5), "nu must be in [0.0, 1.0], got 1.5"),
    (dict(k=0), "k must be an integer >= 1, got 0"),
    (dict(solver="lu"), "solver must be one of cg, cholesky, got 'lu'"),
    (dict(dtype="int8"), "dtype must be 'float32' or 'float64', got 'int8'"),
    (dict(weights=-1), "weights must be >= 0, got -1.0"),
    (dict(indices="out"), "indices[0] = 9 is outside [0, 9) (row 0)"),
    (dict(indices="twice"), "indices: column 0 appears twice in row 0; sum duplicate entries first"),
    (dict(user_factors=np.zeros((3, 4))), "user_factors must have shape (7, 4), got (3, 4)"),
])
def test_bad_arguments_name_themselves(change, message):
    indptr, indices, targets, weights = tiny()
    indices = indices.copy()
    weights = weights.copy()
    if change.pop("indices", None) == "out":
        indices[0] = 9
    elif "indices" in change or message.startswith("indices: column"):
        indices[1] = indices[0]
    if "weights" in change:
        weights[0] = change.pop("weights")
    kw = dict(k=4, iterations=1)
    kw.update(change)
    with pytest.raises(LatentAtlasError) as err:
        S.fit_ials(indptr, indices, targets, weights, 7, 9, **kw)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_solve_rows_needs_a_writeable_float_matrix():
    indptr, indices, targets, weights = tiny()
    Y = np.ones((9, 4))
    with pytest.raises(LatentAtlasError, match="X must be a writeable C-contiguous 2-D float32/float64 array"):
        S.solve_rows(Y, S.gramian(Y), indptr, indices, targets, weights, np.ones(7), 1.0,
                     np.zeros((4, 7)).T, 3, "cg")


def test_fold_in_user_names_bad_items():
    Y = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(LatentAtlasError, match=r"items: index 7 is outside \[0, 5\)"):
        S.fold_in_user(Y, None, [1, 7], None, None, 0.1, 1.0, 0.0, 5)
    with pytest.raises(LatentAtlasError, match="items: an item appears twice"):
        S.fold_in_user(Y, None, [1, 1], None, None, 0.1, 1.0, 0.0, 5)
