"""A seeded synthetic ratings generator: low-rank signal plus noise, skewed popularity, a rating scale.

It is the built-in default data set, and what tests and benchmarks use at any size up to ~100 M ratings.
"""

from __future__ import annotations

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.data import Ratings


def synthetic(n_users: int = 2000, n_items: int = 1500, n_ratings: int = 100_000, *, rank: int = 8,
              noise: float = 0.8, scale: tuple[float, float] = (1, 5), popularity: float = 1.0,
              activity: float = 0.7, integer: bool = True, seed: int = 0, chunk: int = 5_000_000) -> Ratings:
    """``n_ratings`` distinct (user, item) ratings drawn from a biased low-rank model.

    Items are drawn with Zipf-like probabilities ``~ 1/rank**popularity`` and users with exponent
    ``activity``, so a few items and users hold most ratings (as in real data). Ratings are
    ``mu + b_u + b_i + q_u.p_i + noise``, clipped to ``scale`` and rounded when ``integer``.
    """
    if min(n_users, n_items, n_ratings) <= 0:
        raise LatentAtlasError("n_users, n_items and n_ratings must be positive")
    if n_ratings > 0.5 * n_users * n_items:
        raise LatentAtlasError(f"n_ratings={n_ratings} is more than half of the {n_users}x{n_items} cells; "
                               "use more users or items")
    rng = np.random.default_rng(seed)
    pu = _zipf(n_users, activity, rng)
    pi = _zipf(n_items, popularity, rng)

    # Draw pairs in rounds until enough distinct ones exist; keys are user*n_items+item.
    # Popular pairs collide often, so each round oversamples by the yield of the round before.
    keys = np.empty(0, dtype=np.int64)
    yield_rate = 0.8
    while len(keys) < n_ratings:
        need = int((n_ratings - len(keys)) / yield_rate * 1.1) + 1000
        u = _draw(pu, need, rng)
        i = _draw(pi, need, rng)
        before = len(keys)
        keys = _sorted_unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
        yield_rate = max((len(keys) - before) / need, 0.05)
    keys = rng.permutation(keys)[:n_ratings]
    users = (keys // n_items).astype(np.int32)
    items = (keys % n_items).astype(np.int32)
    del keys

    lo, hi = scale
    mid, spread = (lo + hi) / 2, (hi - lo) / 4
    q = rng.normal(0, 1 / np.sqrt(rank), (n_users, rank)).astype(np.float32)
    p = rng.normal(0, 1 / np.sqrt(rank), (n_items, rank)).astype(np.float32)
    bu = rng.normal(0, 0.4, n_users).astype(np.float32)
    bi = rng.normal(0, 0.5, n_items).astype(np.float32)
    values = np.empty(n_ratings, dtype=np.float32)
    for s in range(0, n_ratings, chunk):
        uu, ii = users[s:s + chunk], items[s:s + chunk]
        signal = np.einsum("ij,ij->i", q[uu], p[ii]) + bu[uu] + bi[ii]
        values[s:s + chunk] = mid + 0.2 * spread + spread * signal + rng.normal(0, noise, len(uu))
    np.clip(values, lo, hi, out=values)
    if integer:
        np.rint(values, out=values)
    meta = {"source": "synthetic", "seed": seed, "rank": rank, "noise": noise, "scale": [lo, hi]}
    return Ratings(users, items, values, np.arange(n_users), np.arange(n_items), meta)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    # np.unique's hash path (numpy >= 2.3) is several times slower than a sort on large int64 arrays.
    a.sort()
    return a[np.r_[True, a[1:] != a[:-1]]]


def _zipf(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    w = w[rng.permutation(n)]
    return np.cumsum(w / w.sum())


def _draw(cdf: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(size)), len(cdf) - 1).astype(np.int32)
