"""The solvers' compact layouts (issue 16, speed and memory): the blocked SGD layout grouped by user and walked
in place, uint16 column indices where they fit. Checked against plain-Python references and the int32 path."""

import numpy as np
import pytest

from latentatlas.ratings.data import Ratings
from latentatlas.ratings.kernels import als, sgd
from latentatlas.ratings.model import LatentFactorModel
from latentatlas.ratings.synthetic import synthetic


def _python_update(Q, P, u, i, v, lr, reg):
    e = v - float(Q[u] @ P[i])
    q_old = Q[u].copy()
    Q[u] = Q[u] + lr * (e * P[i] - reg * Q[u])
    P[i] = P[i] + lr * (e * q_old - reg * P[i])


def test_block_layout_groups_each_block_by_user_and_loses_nothing():
    r = synthetic(70, 50, 1500, seed=5)
    u, i, v, offsets = sgd.block_layout(r.users, r.items, r.values.astype(np.float64), r.n_users, r.n_items,
                                        4, np.random.default_rng(0))
    assert sorted(zip(u.tolist(), i.tolist(), v.tolist())) == sorted(
        zip(r.users.tolist(), r.items.tolist(), r.values.astype(np.float64).tolist()))
    assert offsets[0] == 0 and offsets[-1] == len(r) and np.all(np.diff(offsets) >= 0)
    for c in range(16):
        bu = u[offsets[c]:offsets[c + 1]]
        runs = bu[np.r_[True, bu[1:] != bu[:-1]]]
        assert len(runs) == len(set(runs.tolist())), "a user's ratings in a block are consecutive"
        # a user's ratings keep their input order within the block
        for user in set(bu.tolist()):
            block_items = i[offsets[c]:offsets[c + 1]][bu == user].tolist()
            mine = r.items[r.users == user].tolist()
            assert block_items == [x for x in mine if x in set(block_items)]


def test_block_layout_is_seeded_and_the_user_order_is_random():
    r = synthetic(200, 40, 3000, seed=6)
    a = sgd.block_layout(r.users, r.items, r.values, r.n_users, r.n_items, 2, np.random.default_rng(1))
    b = sgd.block_layout(r.users, r.items, r.values, r.n_users, r.n_items, 2, np.random.default_rng(1))
    c = sgd.block_layout(r.users, r.items, r.values, r.n_users, r.n_items, 2, np.random.default_rng(2))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    first = a[0][a[3][0]:a[3][1]]
    runs = first[np.r_[True, first[1:] != first[:-1]]]
    assert not np.all(np.diff(runs) > 0), "users are not simply in index order"


def test_epoch_blocks_equals_the_python_loop_over_strata_in_layout_order():
    rng = np.random.default_rng(3)
    r = synthetic(40, 30, 400, seed=7)
    values = rng.normal(size=len(r))
    u, i, v, offsets = sgd.block_layout(r.users, r.items, values, r.n_users, r.n_items, 3, rng)
    Q0, P0 = rng.random((r.n_users, 4)), rng.random((r.n_items, 4))
    strata = np.array([2, 0, 1])
    Q, P = Q0.copy(), P0.copy()
    sgd.epoch_blocks(u, i, v, offsets, 3, strata, Q, P, 0.05, 0.1)
    Qr, Pr = Q0.copy(), P0.copy()
    for s in strata:
        for a in range(3):
            cell = a * 3 + (a + s) % 3
            for j in range(offsets[cell], offsets[cell + 1]):
                _python_update(Qr, Pr, u[j], i[j], v[j], 0.05, 0.1)
    np.testing.assert_allclose(Q, Qr, atol=1e-12)
    np.testing.assert_allclose(P, Pr, atol=1e-12)
    # the epoch reads the layout and never moves it
    u0, i0, v0 = u.copy(), i.copy(), v.copy()
    sgd.epoch_blocks(u, i, v, offsets, 3, strata, Q, P, 0.05, 0.1)
    assert np.array_equal(u, u0) and np.array_equal(i, i0) and np.array_equal(v, v0)


@pytest.mark.parametrize("n_cols, expected", [(None, np.int32), (65536, np.uint16), (65537, np.int32),
                                              (300, np.uint16)])
def test_index_dtype(n_cols, expected):
    assert als.index_dtype(n_cols) == np.dtype(expected)


def test_uint16_indices_give_bitwise_the_same_als_steps_and_losses():
    rng = np.random.default_rng(11)
    n_rows, n_cols, n = 40, 30, 600
    rows = rng.integers(0, n_rows, n).astype(np.int32)
    cols = rng.integers(0, n_cols, n).astype(np.int32)
    vals = rng.normal(size=n).astype(np.float32)
    wide = als.compressed(rows, cols, vals, n_rows, np.float32)
    narrow = als.compressed(rows, cols, vals, n_rows, np.float32, n_cols=n_cols)
    assert wide[1].dtype == np.int32 and narrow[1].dtype == np.uint16
    np.testing.assert_array_equal(wide[0], narrow[0])
    np.testing.assert_array_equal(wide[1], narrow[1])
    np.testing.assert_array_equal(wide[2], narrow[2])
    Y = rng.random((n_cols, 5), dtype=np.float32)
    for solve in ("cg", "cholesky"):
        X1 = rng.random((n_rows, 5), dtype=np.float32)
        X2 = X1.copy()
        if solve == "cg":
            als.cg_rows(*wide, Y, X1, 0.1, True, 2, 4)
            als.cg_rows(*narrow, Y, X2, 0.1, True, 2, 4)
        else:
            als.ridge_rows(*wide, Y, X1, 0.1, True, 4)
            als.ridge_rows(*narrow, Y, X2, 0.1, True, 4)
        np.testing.assert_array_equal(X1, X2)
    assert als.csr_sse(*wide, X1, Y, 4) == als.csr_sse(*narrow, X1, Y, 4)
    # the data term equals the brute-force sum
    sse = float(np.sum((vals.astype(np.float64) - np.einsum("ij,ij->i", X1[rows], Y[cols]).astype(np.float64)) ** 2))
    assert als.csr_sse(*narrow, X1, Y, 4) == pytest.approx(sse, rel=1e-5)


@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_fit_keeps_int32_seen_items_and_matches_a_wide_item_space(solver):
    """The same ratings over 70 000 item ids (int32 indices) and over their 40 used ids (uint16) give the same
    factors for the shared users and items."""
    r = synthetic(50, 40, 900, seed=8)
    wide_ids = np.arange(70_000)
    wide = Ratings(r.users, r.items, r.values, r.user_ids, wide_ids, {})
    kw = dict(k=3, solver=solver, max_steps=4, dtype="float64", seed=4, validation_fraction=0, refit=False)
    a = LatentFactorModel(**kw).fit(r)
    b = LatentFactorModel(**kw).fit(wide)
    assert a.seen_items_.dtype == np.int32 and b.seen_items_.dtype == np.int32
    np.testing.assert_array_equal(a.seen_items_, b.seen_items_)
    if solver == "als":  # ALS: the same sums in the same order
        np.testing.assert_allclose(a.user_factors_, b.user_factors_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.item_factors_, b.item_factors_[:40], rtol=1e-12, atol=1e-12)
    else:  # SGD: another item count changes the seeded block grouping, so only the quality is compared
        assert abs(a.history_.train_rmse[-1] - b.history_.train_rmse[-1]) < 0.05


# --- rating codes: 1 byte a rating in the SGD layout -------------------------------------------------------
def test_rating_codes_round_trip_and_refuse_too_many_levels():
    values = np.array([4, 3.5, 4, 1, 5, 3.5, 1], dtype=np.float32)
    table, codes = sgd.rating_codes(values)
    assert codes.dtype == np.uint8 and table.tolist() == [4.0, 3.5, 1.0, 5.0]
    np.testing.assert_array_equal(table[codes], values)
    assert sgd.rating_codes(np.arange(300, dtype=np.float32)) is None
    assert sgd.rating_codes(np.arange(256, dtype=np.float32)) is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_coded_epoch_and_loss_equal_the_float_layout_bit_for_bit(dtype):
    """float32 (where the solver uses codes): bit for bit; float64: to rounding (the compiler may order the
    dot product's vector sums differently in the two kernels)."""
    exact = dtype == np.float32
    rng = np.random.default_rng(5)
    r = synthetic(60, 45, 1200, seed=9)
    mu, bu, bi = 3.3, rng.normal(size=r.n_users), rng.normal(size=r.n_items)
    resid = np.empty(len(r), dtype=dtype)
    als.residuals(r.users, r.items, r.values, mu, bu, bi, resid)
    table, codes = sgd.rating_codes(r.values)
    assert sgd.codes_match(r.users, r.items, codes, table, mu, bu, bi, resid)
    assert not sgd.codes_match(r.users, r.items, codes, table, mu + 1e-3, bu, bi, resid)
    lay_f = sgd.block_layout(r.users, r.items, resid, r.n_users, r.n_items, 3, np.random.default_rng(2))
    lay_c = sgd.block_layout(r.users, r.items, codes, r.n_users, r.n_items, 3, np.random.default_rng(2))
    np.testing.assert_array_equal(lay_f[0], lay_c[0])
    decoded = np.empty(len(r), dtype=dtype)
    sgd.decode(lay_c[0], lay_c[1], lay_c[2], table, mu, bu, bi, decoded)
    np.testing.assert_array_equal(decoded, lay_f[2])
    Q0, P0 = rng.random((r.n_users, 6)).astype(dtype), rng.random((r.n_items, 6)).astype(dtype)
    Qf, Pf, Qc, Pc = Q0.copy(), P0.copy(), Q0.copy(), P0.copy()
    for strata in (np.array([1, 0, 2]), np.array([2, 1, 0])):
        sgd.epoch_blocks(*lay_f[:3], lay_f[3], 3, strata, Qf, Pf, 0.03, 0.05)
        sgd.epoch_blocks_coded(*lay_c[:3], table, mu, bu, bi, lay_c[3], 3, strata, Qc, Pc, 0.03, 0.05)
    tol = 0 if exact else 1e-12
    np.testing.assert_allclose(Qf, Qc, rtol=tol, atol=tol)
    np.testing.assert_allclose(Pf, Pc, rtol=tol, atol=tol)
    assert sgd.triplet_sse_coded(*lay_c[:3], table, mu, bu, bi, Qc, Pc, 4) == pytest.approx(
        als.triplet_sse(*lay_f[:3], Qf, Pf, 4), rel=tol, abs=tol)


def test_sgd_fit_with_and_without_rating_codes_is_the_same(monkeypatch):
    r = synthetic(80, 60, 2000, seed=10)
    kw = dict(k=4, solver="sgd", max_steps=3, seed=1, validation_fraction=0, refit=False)
    coded = LatentFactorModel(**kw).fit(r)
    monkeypatch.setattr(sgd, "rating_codes", lambda values: None)
    plain = LatentFactorModel(**kw).fit(r)
    np.testing.assert_array_equal(coded.user_factors_, plain.user_factors_)
    np.testing.assert_array_equal(coded.item_factors_, plain.item_factors_)
    assert coded.history_.train_loss == plain.history_.train_loss


@pytest.mark.parametrize("method", ["cg", "cholesky"])
def test_coded_als_half_steps_and_loss_equal_the_float_layout_bit_for_bit(method):
    rng = np.random.default_rng(12)
    r = synthetic(70, 50, 1500, seed=11)
    mu, bu, bi = 3.4, rng.normal(size=r.n_users), rng.normal(size=r.n_items)
    resid = np.empty(len(r), dtype=np.float32)
    als.residuals(r.users, r.items, r.values, mu, bu, bi, resid)
    table, codes = als.rating_codes(r.values)
    Q0 = rng.random((r.n_users, 5), dtype=np.float32)
    P0 = rng.random((r.n_items, 5), dtype=np.float32)
    for rows, cols, n_rows, n_cols, rb, cb, user_rows, X0, Y in (
            (r.users, r.items, r.n_users, r.n_items, bu, bi, True, Q0, P0),
            (r.items, r.users, r.n_items, r.n_users, bi, bu, False, P0, Q0)):
        flt = als.compressed(rows, cols, resid, n_rows, np.float32, n_cols=n_cols)
        cod = als.compressed(rows, cols, codes, n_rows, np.uint8, n_cols=n_cols)
        decoded = np.empty(len(r), dtype=np.float32)
        als.decode_csr(*cod, table, mu, rb, cb, user_rows, decoded)
        np.testing.assert_array_equal(decoded, flt[2])
        longest = int(np.diff(cod[0]).max())
        X1, X2 = X0.copy(), X0.copy()
        if method == "cg":
            als.cg_rows(*flt, Y, X1, 0.1, True, 3, 4)
            als.cg_rows_coded(*cod, table, mu, rb, cb, user_rows, longest, Y, X2, 0.1, True, 3, 4)
        else:
            assert als.ridge_rows(*flt, Y, X1, 0.1, True, 4) == als.ridge_rows_coded(
                *cod, table, mu, rb, cb, user_rows, longest, Y, X2, 0.1, True, 4)
        np.testing.assert_array_equal(X1, X2)
        assert als.csr_sse(*flt, X1, Y, 4) == als.csr_sse_coded(*cod, table, mu, rb, cb, user_rows, X2, Y, 4)


@pytest.mark.parametrize("method", ["cg", "cholesky"])
def test_als_fit_with_and_without_rating_codes_is_the_same(monkeypatch, method):
    r = synthetic(80, 60, 2000, seed=10)
    kw = dict(k=4, solver="als", als_method=method, max_steps=3, seed=1, validation_fraction=0, refit=False)
    coded = LatentFactorModel(**kw).fit(r)
    monkeypatch.setattr(als, "rating_codes", lambda values: None)
    plain = LatentFactorModel(**kw).fit(r)
    np.testing.assert_array_equal(coded.user_factors_, plain.user_factors_)
    np.testing.assert_array_equal(coded.item_factors_, plain.item_factors_)
    assert coded.history_.train_loss == plain.history_.train_loss
    np.testing.assert_array_equal(coded.seen_items_, plain.seen_items_)


def test_svd_init_decodes_the_coded_layout():
    r = synthetic(60, 40, 1200, seed=13)
    kw = dict(k=3, init="svd", max_steps=1, seed=0, validation_fraction=0, refit=False)
    for solver in ("als", "sgd"):
        coded = LatentFactorModel(solver=solver, **kw).fit(r)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(als, "rating_codes", lambda values: None)
            mp.setattr(sgd, "rating_codes", lambda values: None)
            plain = LatentFactorModel(solver=solver, **kw).fit(r)
        np.testing.assert_array_equal(coded.user_factors_, plain.user_factors_)
