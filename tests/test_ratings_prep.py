import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.prep import Split, center, fit_biases, kcore, split, user_means
from latentatlas.ratings.synthetic import synthetic


def random_ratings(rng, n_users=30, n_items=25, density=0.15):
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 6, (n_users, n_items))
    u, i = np.nonzero(dense)
    return Ratings(u, i, dense[u, i], np.arange(n_users) * 10, np.arange(n_items) + 100), dense


def brute_force_kcore(dense, m):
    """Remove rows and columns with m or fewer entries, one at a time, until none is left."""
    known = dense != 0
    rows, cols = np.ones(known.shape[0], bool), np.ones(known.shape[1], bool)
    changed = True
    while changed:
        changed = False
        sub = known & rows[:, None] & cols[None, :]
        for r in np.flatnonzero(rows):
            if sub[r].sum() <= m:
                rows[r] = False
                changed = True
                sub = known & rows[:, None] & cols[None, :]
        for c in np.flatnonzero(cols):
            if sub[:, c].sum() <= m:
                cols[c] = False
                changed = True
                sub = known & rows[:, None] & cols[None, :]
    return {(r, c) for r, c in zip(*np.nonzero(known & rows[:, None] & cols[None, :]))}


def as_original(r):
    return {(int(r.user_ids[u]) // 10, int(r.item_ids[i]) - 100) for u, i in zip(r.users, r.items)}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("m", [0, 1, 2, 3])
def test_kcore_matches_brute_force(seed, m):
    rng = np.random.default_rng(seed)
    ratings, dense = random_ratings(rng, density=rng.uniform(0.08, 0.3))
    expected = brute_force_kcore(dense, m)
    if not expected:
        with pytest.raises(LatentAtlasError, match="no ratings left"):
            kcore(ratings, m)
        return
    out = kcore(ratings, m)
    assert as_original(out) == expected
    assert out.user_counts().min() > m and out.item_counts().min() > m
    # ratings travel with their pair
    lookup = {(int(ratings.user_ids[u]), int(ratings.item_ids[i])): v
              for u, i, v in zip(ratings.users, ratings.items, ratings.values)}
    assert all(lookup[(int(out.user_ids[u]), int(out.item_ids[i]))] == v
               for u, i, v in zip(out.users, out.items, out.values))


def test_kcore_is_recursive_and_leaves_input_alone():
    # item 2 has one rating; once it is gone user 2 has one rating left and must go in a second round
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 0, 1, 1, 2])
    r = Ratings(users, items, np.arange(6.0), np.arange(3), np.arange(3))
    first_round = (r.user_counts()[users] > 1) & (r.item_counts()[items] > 1)
    assert first_round.sum() == 5  # one round alone would keep user 2
    before = r.users.copy()
    out = kcore(r, 1)
    assert out.user_ids.tolist() == [0, 1] and out.item_ids.tolist() == [0, 1]
    assert out.values.tolist() == [0, 1, 2, 3]
    assert np.array_equal(r.users, before)


def test_split_sizes_disjoint_seeded():
    r = synthetic(200, 150, 5000, seed=3)
    s = split(r, 400, 300, seed=7)
    assert s.sizes() == {"train": 4300, "validation": 400, "test": 300}
    keys = [set(zip(p.users.tolist(), p.items.tolist())) for p in (s.train, s.validation, s.test)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert keys[0] | keys[1] | keys[2] == set(zip(r.users.tolist(), r.items.tolist()))
    again = split(r, 400, 300, seed=7)
    assert np.array_equal(again.test.users, s.test.users) and np.array_equal(again.test.items, s.test.items)
    other = split(r, 400, 300, seed=8)
    assert not np.array_equal(other.test.items, s.test.items)


def test_split_fractions_and_errors():
    r = synthetic(100, 80, 2000, seed=0)
    s = split(r, validation_fraction=0.1, test_fraction=0.2, seed=0)
    assert s.sizes() == {"train": 1400, "validation": 200, "test": 400}
    with pytest.raises(LatentAtlasError, match="leave nothing to train"):
        split(r, 1000, 1000)
    with pytest.raises(LatentAtlasError, match="either n_validation or validation_fraction"):
        split(r, 10, validation_fraction=0.1)
    with pytest.raises(LatentAtlasError, match="test_fraction must be in"):
        split(r, test_fraction=1.5)


def test_leave_k_out_per_user():
    r = synthetic(100, 80, 2000, seed=1)
    s = split(r, leave_k_out=2, seed=0)
    counts = r.user_counts()
    eligible = counts > 4
    assert np.array_equal(s.test.user_counts(), np.where(eligible, 2, 0))
    assert np.array_equal(s.validation.user_counts(), np.where(eligible, 2, 0))
    assert np.all(s.train.user_counts() >= 1)


def test_centring_zeroes_user_means_and_keeps_them():
    r = synthetic(60, 50, 800, seed=2)
    centred, means = center(r)
    sums = np.bincount(centred.users, weights=centred.values, minlength=r.n_users)
    has = r.user_counts() > 0
    assert np.allclose(sums[has] / r.user_counts()[has], 0, atol=1e-5)
    assert np.allclose(centred.values + means[r.users], r.values, atol=1e-5)
    # a user with no ratings gets the global mean
    assert np.allclose(user_means(r.take(r.users != 0))[0], r.values[r.users != 0].mean())


def test_biases_recover_an_additive_matrix():
    rng = np.random.default_rng(0)
    bu, bi = rng.normal(0, 1, 20), rng.normal(0, 1, 15)
    u, i = np.meshgrid(np.arange(20), np.arange(15), indexing="ij")
    u, i = u.ravel(), i.ravel()
    r = Ratings(u, i, 3 + bu[u] + bi[i], np.arange(20), np.arange(15))
    b = fit_biases(r, reg_user=0, reg_item=0, n_iter=50)
    assert np.allclose(b.predict(u, i), r.values, atol=1e-4)


def test_synthetic_is_seeded_skewed_and_on_scale():
    a, b = synthetic(500, 300, 10_000, seed=5), synthetic(500, 300, 10_000, seed=5)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.items, b.items)
    assert len(set(zip(a.users.tolist(), a.items.tolist()))) == 10_000
    assert set(np.unique(a.values)) <= {1, 2, 3, 4, 5}
    top = np.sort(a.item_counts())[::-1]
    assert top[:30].sum() > 0.3 * len(a)  # 10 % of the items hold a large share of ratings


def test_split_file_round_trip(tmp_path):
    r = synthetic(50, 40, 600, seed=0)
    s = split(r, 50, 50, seed=0)
    path = s.save(tmp_path / "p.npz", meta={"note": "x"})
    back = Split.load(path)
    for part in Split.PARTS:
        a, b = getattr(s, part), getattr(back, part)
        assert np.array_equal(a.users, b.users) and np.array_equal(a.values, b.values)
    assert back.train.meta["note"] == "x" and Split.is_split_file(path)
    with np.load(path, allow_pickle=False) as z:
        assert "meta" in z.files
