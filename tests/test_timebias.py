"""TimeBiases (timeSVD++ item-bin biases and user drift as a Gibbs block) against known answers: the
conditionals of a dense Gaussian posterior, the Monte Carlo moments of the chain, recovery of a known model,
hand-computed bins and deviations, and array round trips."""

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.timebias import DAY, TimeBiases, equal_frequency_edges

T0 = 1.2e9


def tiny(seed=0, n=60, n_users=5, n_items=4, n_bins=3, **kw):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    times = T0 + rng.uniform(0, 100, n) * DAY
    return users, items, times, TimeBiases.setup(users, items, times, n_users, n_items, n_bins=n_bins, **kw)


def design(tb, users, items, times):
    """The dense design matrix of the offsets: one column per (item, bin) cell, then one per user's drift."""
    n_cells = tb.n_items * tb.n_bins
    X = np.zeros((len(users), n_cells + tb.n_users))
    rows = np.arange(len(users))
    X[rows, items * tb.n_bins + tb.bins(times)] = 1.0
    X[rows, n_cells + users] = tb.deviation(users, times)
    return X


def dense_posterior(X, r, p, lam_bin, lam_drift, n_cells):
    """Precision matrix and linear term of the Gaussian posterior of (b, a) given fixed prior precisions."""
    prior = np.r_[np.full(n_cells, lam_bin), np.full(X.shape[1] - n_cells, lam_drift)]
    Q = X.T @ (p[:, None] * X) + np.diag(prior)
    h = X.T @ (p * r)
    return Q, h


def test_bins_are_equal_frequency_and_clip_at_both_ends():
    times = np.arange(12, dtype=float)  # 12 distinct times, 4 bins of 3
    edges = equal_frequency_edges(times, 4)
    assert edges.tolist() == [3.0, 6.0, 9.0]
    tb = TimeBiases.setup(np.zeros(12, int), np.zeros(12, int), times, 1, 1, n_bins=4)
    assert np.bincount(tb.bins(times)).tolist() == [3, 3, 3, 3]
    assert tb.bins(np.array([-100.0, 2.5, 3.0, 11.0, 1e6])).tolist() == [0, 0, 1, 3, 3]
    # tied times never straddle an edge: fewer bins than asked
    assert equal_frequency_edges(np.array([1.0, 2, 3, 5, 5, 5, 5, 5, 5, 5, 8, 9]), 4).tolist() == [5.0]
    tied = TimeBiases.setup(np.zeros(6, int), np.zeros(6, int), np.full(6, 5.0), 1, 1, n_bins=3)
    assert tied.n_bins == 1


def test_deviation_by_hand():
    # user 0: times 0, 1 and 4 days (mean 5/3 day); user 1: one time; user 2: no ratings
    users = np.array([0, 0, 0, 1])
    times = T0 + np.array([0.0, 1.0, 4.0, 2.0]) * DAY
    tb = TimeBiases.setup(users, np.zeros(4, int), times, 3, 1, exponent=0.5)
    d = np.array([0, 1, 4]) - 5 / 3
    raw = np.r_[np.sign(d) * np.abs(d) ** 0.5, 0.0]
    assert tb.dev_scale == pytest.approx(raw.std())
    assert tb.deviation(users, times) == pytest.approx(raw / raw.std())
    assert np.std(tb.deviation(users, times)) == pytest.approx(1.0)
    # a later time, a user without training times, a user beyond the fitted ones, a missing time
    later = tb.deviation(np.array([0, 2, 7, 0]), np.array([T0 + 10 * DAY, T0, T0, np.nan]))
    assert later[0] == pytest.approx((10 - 5 / 3) ** 0.5 / raw.std())
    assert later[1:].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("per_rating", [False, True])
def test_conditionals_equal_those_of_the_dense_gaussian_posterior(per_rating):
    users, items, times, tb = tiny(lam_bin=3.0, lam_drift=2.0)
    rng = np.random.default_rng(5)
    r = rng.normal(0, 1, len(users))
    p = rng.uniform(0.5, 2.0, len(users)) if per_rating else np.full(len(users), 1.7)
    prec = p if per_rating else 1.7
    n_cells = tb.n_items * tb.n_bins
    X = design(tb, users, items, times)
    Q, h = dense_posterior(X, r, p, 3.0, 2.0, n_cells)
    # an arbitrary current state: the conditional of one block given the other
    tb.a = rng.normal(0, 1, tb.n_users)
    tb.b = rng.normal(0, 1, (tb.n_items, tb.n_bins))
    bi, ai = slice(0, n_cells), slice(n_cells, None)
    Qbb = Q[bi, bi]
    assert np.allclose(Qbb, np.diag(np.diag(Qbb)))  # the cells are independent given the drifts
    mean_b = (h[bi] - Q[bi, ai] @ tb.a) / np.diag(Qbb)
    mb, vb = tb.bin_conditional(r, prec)
    assert mb.ravel() == pytest.approx(mean_b)
    assert vb.ravel() == pytest.approx(1 / np.diag(Qbb))
    Qaa = Q[ai, ai]
    assert np.allclose(Qaa, np.diag(np.diag(Qaa)))
    mean_a = (h[ai] - Q[ai, bi] @ tb.b.ravel()) / np.diag(Qaa)
    ma, va = tb.drift_conditional(r, prec)
    assert ma == pytest.approx(mean_a)
    assert va == pytest.approx(1 / np.diag(Qaa))


def test_chain_moments_match_the_dense_posterior():
    users, items, times, tb = tiny(seed=1, n=40, lam_bin=2.0, lam_drift=1.5)
    rng = np.random.default_rng(2)
    r = rng.normal(0, 1, len(users))
    n_cells = tb.n_items * tb.n_bins
    X = design(tb, users, items, times)
    Q, h = dense_posterior(X, r, np.full(len(r), 2.5), 2.0, 1.5, n_cells)
    active = (X != 0).any(axis=0)
    # drifts of users whose deviations are all 0 are held at 0 (their posterior is the prior)
    Qa = Q[np.ix_(active, active)]
    cov = np.linalg.inv(Qa)
    mean = cov @ h[active]
    draws = []
    g = np.random.default_rng(3)
    for s in range(6000):
        tb.sample(r, 2.5, g)
        if s >= 100:
            draws.append(np.r_[tb.b.ravel(), tb.a][active])
    draws = np.array(draws)
    sd = np.sqrt(np.diag(cov))
    assert np.abs(draws.mean(axis=0) - mean).max() < 0.1 * sd.max()
    emp = np.cov(draws.T)
    assert np.abs(emp - cov).max() < 0.1 * np.abs(cov).max()
    assert np.all(np.r_[tb.b.ravel(), tb.a][~active] == 0)


def test_precision_conditionals_count_only_coefficients_with_data():
    users = np.array([0, 0, 1])
    items = np.array([0, 1, 0])
    times = T0 + np.array([0.0, 2.0, 1.0]) * DAY
    tb = TimeBiases.setup(users, items, times, 3, 3, n_bins=1)
    tb.b = np.array([[0.5], [-1.0], [7.0]])  # item 2 has no ratings: its cell is not counted
    tb.a = np.array([2.0, 9.0, 9.0])  # user 1 has one rating (no deviation), user 2 none
    c = tb.precision_conditionals()
    assert c["lam_bin"] == pytest.approx((1 + 2 / 2, 1 + (0.25 + 1.0) / 2))
    assert c["lam_drift"] == pytest.approx((1 + 1 / 2, 1 + 4.0 / 2))
    # sample() draws them from these conditionals: with the data pinning b and a (a huge noise precision),
    # the draws of lam_bin and lam_drift average shape/rate of the pinned values
    r = np.array([0.5, -1.0, 0.5]) + np.array([2.0, 2.0, 0.0]) * tb.deviation(users, times)
    g = np.random.default_rng(0)
    lam = np.array([(tb.sample(r, 1e10, g), tb.lam_bin, tb.lam_drift)[1:] for _ in range(4000)])
    assert tb.b.ravel() == pytest.approx([0.5, -1.0, 0.0], abs=1e-3)
    assert tb.a == pytest.approx([2.0, 0.0, 0.0], abs=1e-3)
    assert lam[:, 0].mean() == pytest.approx(2 / 1.625, rel=0.05)
    assert lam[:, 1].mean() == pytest.approx(1.5 / 3.0, rel=0.05)


def test_posterior_means_recover_known_bin_biases_and_drifts():
    rng = np.random.default_rng(0)
    n_users, n_items, n = 300, 80, 30000
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    start = rng.uniform(0, 400, n_users) * DAY
    times = T0 + start[users] + rng.uniform(0, 200, n) * DAY
    tb = TimeBiases.setup(users, items, times, n_users, n_items, n_bins=6)
    b_true = rng.normal(0, 0.3, (n_items, tb.n_bins))
    a_true = rng.normal(0, 0.3, n_users)
    y = b_true[items, tb.bins(times)] + a_true[users] * tb.deviation(users, times) + rng.normal(0, 0.5, n)
    g = np.random.default_rng(1)
    for s in range(120):
        tb.sample(y, 4.0, g)
        if s >= 20:
            tb.keep()
    assert np.corrcoef(tb.item_bin_bias.ravel(), b_true.ravel())[0, 1] > 0.9
    assert np.corrcoef(tb.user_drift, a_true)[0, 1] > 0.9
    # the sampled prior precisions find the spread of the true coefficients (1/0.3² ≈ 11)
    lam = tb.to_arrays()["precisions"]
    assert 6 < lam[0] < 20 and 6 < lam[1] < 20
    # the posterior-mean prediction explains the offsets
    pred = tb.predict(users, items, times)
    truth = b_true[items, tb.bins(times)] + a_true[users] * tb.deviation(users, times)
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 0.15


def test_same_seed_same_chain():
    users, items, times, _ = tiny()
    r = np.random.default_rng(9).normal(size=len(users))

    def run(seed):
        tb = TimeBiases.setup(users, items, times, 5, 4, n_bins=3)
        g = np.random.default_rng(seed)
        for _ in range(5):
            tb.sample(r, 1.0, g)
            tb.keep()
        return tb.to_arrays()

    a, b, c = run(4), run(4), run(5)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    assert not np.array_equal(a["item_bin_bias"], c["item_bin_bias"])


def test_offsets_are_the_prediction_of_the_current_state_and_scalar_precision_equals_constant_array():
    users, items, times, tb = tiny()
    r = np.random.default_rng(1).normal(size=len(users))
    tb.sample(r, 2.0, np.random.default_rng(0))
    assert tb.offsets() == pytest.approx(tb.predict(users, items, times))
    m1 = tb.bin_conditional(r, 2.0)
    m2 = tb.bin_conditional(r, np.full(len(r), 2.0))
    assert m1[0] == pytest.approx(m2[0]) and m1[1] == pytest.approx(m2[1])
    d1, d2 = tb.drift_conditional(r, np.array([2.0])), tb.drift_conditional(r, np.full(len(r), 2.0))
    assert d1[0] == pytest.approx(d2[0]) and d1[1] == pytest.approx(d2[1])


def test_predict_new_times_unseen_users_and_items():
    users = np.array([0, 0, 1, 1, 0])
    items = np.array([0, 1, 0, 1, 0])
    times = T0 + np.array([0.0, 10.0, 20.0, 30.0, 40.0]) * DAY
    tb = TimeBiases.setup(users, items, times, 3, 2, n_bins=2)  # user 2 has no training ratings
    tb.b = np.array([[1.0, 2.0], [3.0, 4.0]])
    tb.a = np.array([0.5, -0.5, 9.0])
    q_users = np.array([0, 0, 2, 5, 0, 1])
    q_items = np.array([0, 0, 1, 1, 7, 1])
    q_times = T0 + np.array([-50.0, 500.0, 500.0, 500.0, 500.0, 25.0]) * DAY
    dev = tb.deviation(q_users, q_times)
    out = tb.predict(q_users, q_items, q_times)
    assert out[0] == pytest.approx(1.0 + 0.5 * dev[0])  # before the first time: first bin
    assert out[1] == pytest.approx(2.0 + 0.5 * dev[1])  # after the last: last bin
    assert out[2] == pytest.approx(4.0)  # a user without training times: no drift
    assert out[3] == pytest.approx(4.0)  # a user beyond the fitted ones: no drift
    assert out[4] == pytest.approx(0.5 * dev[4])  # an item beyond the fitted ones: no bin bias
    assert out[5] == pytest.approx(4.0 - 0.5 * dev[5])
    assert tb.predict(q_users, q_items, None).tolist() == [0.0] * 6
    assert tb.predict(np.array([0]), np.array([0]), np.array([np.nan])).tolist() == [0.0]


def test_ratings_without_a_time_get_no_offset():
    users = np.array([0, 0, 1, 1])
    items = np.array([0, 0, 1, 1])
    times = np.array([T0, np.nan, T0 + DAY, T0 + 3 * DAY])
    tb = TimeBiases.setup(users, items, times, 2, 2, n_bins=2)
    tb.sample(np.array([1.0, 5.0, -1.0, 2.0]), 1.0, np.random.default_rng(0))
    assert tb.offsets()[1] == 0.0
    # the untimed rating does not enter the conditional of the cell its item would have
    mean, var = tb.bin_conditional(np.array([1.0, 5.0, -1.0, 2.0]), 1.0)
    assert var[0, tb.bins(np.array([T0]))[0]] == pytest.approx(1 / (tb.lam_bin + 1))


def test_arrays_round_trip_through_npz(tmp_path):
    users, items, times, tb = tiny()
    g = np.random.default_rng(0)
    r = g.normal(size=len(users))
    for _ in range(4):
        tb.sample(r, 1.0, g)
        tb.keep()
    arrays = tb.to_arrays()
    np.savez(tmp_path / "t.npz", **arrays)
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        back = TimeBiases.from_arrays(dict(z))
    q_users = np.r_[users, 9]
    q_items = np.r_[items, 0]
    q_times = np.r_[times + 3 * DAY, T0]
    assert back.predict(q_users, q_items, q_times) == pytest.approx(tb.predict(q_users, q_items, q_times))
    again = back.to_arrays()
    assert all(np.array_equal(arrays[k], again[k], equal_nan=True) for k in arrays)
    with pytest.raises(LatentAtlasError, match="needs the training ratings"):
        back.sample(r, 1.0, g)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("edges"), "missing edges"),
    (lambda a: a.update(item_bin_bias=a["item_bin_bias"][:, :-1]), "item_bin_bias must have shape"),
    (lambda a: a.update(user_drift=a["user_drift"][:-1]), "user_drift has shape"),
    (lambda a: a.update(edges=a["edges"][::-1]), "strictly increasing"),
    (lambda a: a.update(dev_scale=np.float64(-1.0)), "dev_scale must be one positive"),
    (lambda a: a.update(precisions=np.array([1.0])), "precisions must be two"),
    (lambda a: a.update(user_time=np.array(["x"] * len(a["user_time"]))), "user_time must be numbers"),
    (lambda a: a.update(item_bin_bias=a["item_bin_bias"] * np.nan), "must be finite"),
])
def test_inconsistent_arrays_are_refused(change, message):
    arrays = tiny()[3].to_arrays()
    change(arrays)
    with pytest.raises(LatentAtlasError, match=message):
        TimeBiases.from_arrays(arrays)


def test_bad_arguments_name_themselves():
    u = np.array([0, 1])
    i = np.array([0, 0])
    t = np.array([T0, T0 + DAY])
    with pytest.raises(LatentAtlasError, match="users must be indices in"):
        TimeBiases.setup(np.array([0, 3]), i, t, 2, 1)
    with pytest.raises(LatentAtlasError, match="items must have one entry per time"):
        TimeBiases.setup(u, np.array([0]), t, 2, 1)
    with pytest.raises(LatentAtlasError, match="times must be finite"):
        TimeBiases.setup(u, i, np.array([T0, np.inf]), 2, 1)
    with pytest.raises(LatentAtlasError, match="n_bins must be an integer >= 1"):
        TimeBiases.setup(u, i, t, 2, 1, n_bins=0)
    with pytest.raises(LatentAtlasError, match="exponent"):
        TimeBiases.setup(u, i, t, 2, 1, exponent=-1)
    tb = TimeBiases.setup(u, i, t, 2, 1)
    with pytest.raises(LatentAtlasError, match="residual must have one entry per training rating"):
        tb.sample(np.zeros(3), 1.0, np.random.default_rng(0))
    with pytest.raises(LatentAtlasError, match="precision must be a number or one per training rating"):
        tb.sample(np.zeros(2), np.ones(3), np.random.default_rng(0))
    with pytest.raises(LatentAtlasError, match="rng must be a numpy.random.Generator"):
        tb.sample(np.zeros(2), 1.0, 0)
    with pytest.raises(LatentAtlasError, match="times must have one entry per pair"):
        tb.predict(u, i, t[:1])


@pytest.mark.parametrize("per_rating, index", [(False, np.int32), (True, np.int32), (True, np.int64)])
def test_kernels_equal_their_bincount_references(per_rating, index):
    from latentatlas.ratings.kernels import timebias as kt

    rng = np.random.default_rng(0)
    n, n_cells, n_users = 500, 40, 12
    cell = rng.integers(0, n_cells, n).astype(index)  # int64 when the cells or users do not fit int32
    users = rng.integers(0, n_users, n).astype(index)
    dev, r = rng.normal(size=n), rng.normal(size=n)
    p = rng.uniform(0.5, 2, n) if per_rating else np.array([1.3])
    pw = p if per_rating else np.full(n, 1.3)
    a, b = rng.normal(size=n_users), rng.normal(size=n_cells)
    sp, spr = kt.cell_sums(cell, users, dev, r, p, a, n_cells)
    assert sp == pytest.approx(np.bincount(cell, weights=pw, minlength=n_cells))
    assert spr == pytest.approx(np.bincount(cell, weights=pw * (r - a[users] * dev), minlength=n_cells))
    sp, spr = kt.user_sums(cell, users, dev, r, p, b, n_users)
    assert sp == pytest.approx(np.bincount(users, weights=pw * dev**2, minlength=n_users))
    assert spr == pytest.approx(np.bincount(users, weights=pw * dev * (r - b[cell]), minlength=n_users))
    assert kt.offsets(cell, users, dev, b, a) == pytest.approx(b[cell] + a[users] * dev)
