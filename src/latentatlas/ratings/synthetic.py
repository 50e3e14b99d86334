"""A seeded synthetic ratings generator shaped like MovieLens-100K: skewed activity, a rank-16 signal, noise.

It is the built-in default data set, and what tests and benchmarks use at any size up to ~100 M ratings.
``benchmarks/bench_synthetic.py`` compares it with the real MovieLens-100K (``benchmarks/RESULTS-synthetic.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.data import Ratings

#: Share of 1★…5★ ratings in MovieLens-100K (u.data: 6,110 / 11,370 / 27,145 / 34,174 / 21,201 of 100,000).
MOVIELENS_HISTOGRAM = (0.0611, 0.1137, 0.27145, 0.34174, 0.21201)
#: MovieLens-100K's mean rating; the continuous (``integer=False``) ratings are centred there.
MOVIELENS_MEAN = 3.53


def synthetic(n_users: int = 2000, n_items: int = 1500, n_ratings: int = 100_000, *, rank: int = 16,
              noise: float = 0.66, scale: tuple[float, float] = (1, 5), popularity: float = 1.3,
              activity: float = 0.95, integer: bool = True, seed: int = 0, chunk: int = 2_000_000,
              factor_scale: float = 0.7, user_bias: float = 0.4, item_bias: float = 0.48,
              histogram: Sequence[float] | None = None) -> Ratings:
    """``n_ratings`` distinct (user, item) ratings drawn from a biased rank-``rank`` model.

    Who rates what: user ``u`` and item ``i`` are drawn with probabilities proportional to lognormal
    weights ``exp(activity·z_u)`` and ``exp(popularity·z_i)`` (``z`` standard normal; 0 means uniform), so a
    few users and items hold many ratings and many hold a few, as in real data.

    What they rate, on a 1–5 scale: ``x_ui = b_u + b_i + q_u·p_i + ε`` with ``b_u ~ N(0, user_bias²)``,
    ``b_i ~ N(0, item_bias²)``, ``q_u, p_i`` Gaussian vectors of length ``rank`` scaled so that ``q_u·p_i``
    has standard deviation ``factor_scale``, and ``ε ~ N(0, noise²)``. With ``integer`` (default) the
    ``x_ui`` are cut into the scale's integer levels at their own quantiles, so that the rating histogram is
    ``histogram`` (shares per level; default: MovieLens-100K's when the scale has 5 integer levels). Otherwise
    ``x`` is shifted to mean 3.53, stretched from 1–5 to ``scale``, clipped, and rounded when ``integer``.

    The defaults were fitted to MovieLens-100K as read (``benchmarks/bench_synthetic.py``, results in
    ``benchmarks/RESULTS-synthetic.md``):

    * histogram 6.1 / 11.4 / 27.1 / 34.2 / 21.2 % (mean 3.53): reproduced by the quantile cut;
    * skew: there the top 10 % of items hold 42.7 % of the ratings and the top 10 % of users 31.9 %, Gini
      coefficients of the counts 0.63 and 0.47; ``popularity=1.3``, ``activity=0.95`` give 42–46 % / 32–33 %
      and 0.58–0.61 / 0.45–0.46 at the built-in size (lognormal weights match both measures; Zipf weights, used
      before, could match only one);
    * ``user_bias``, ``item_bias``: the spread of MovieLens' damped biases (``prep.fit_biases``: 0.38 and
      0.44 per user and item, 0.42 and 0.48 per rating);
    * ``rank``, ``factor_scale``, ``noise``: what the factors add over biases. On MovieLens-100K (k-core,
      80/10/10 split) biases-only has test RMSE 0.950 and the default ALS and SGD 0.919 and 0.913, gains of
      0.031 and 0.037. A generated set of MovieLens' own shape (943 x 1,682, 100,000 ratings) shows those
      gains at ``factor_scale`` 0.5–0.55 with noise 0.7; on the built-in set (``pipeline.load_input``:
      2,000 users x 1,515 items, 100,000 ratings) that strength leaves the gain at the 0.03 mark (0.028–0.041
      over seeds at 0.6), so the default plants a stronger signal, 0.7: the built-in set's factors gain
      0.05–0.07 over biases-only and reach test RMSE 0.90–0.92, MovieLens' level, with early stopping at
      step 9–10 (ALS) and 20–23 (SGD). ``rank=16`` is a choice within the 10–20 range, not a fit (RMSE
      alone cannot tell rank from scale): at the same scale rank 12 gains 0.08 and rank 20 0.03–0.05.

    ``chunk`` ratings at a time bound the loop's temporary memory (about ``chunk·rank·8`` bytes). The same
    arguments and ``seed`` give the same ratings.
    """
    if min(n_users, n_items, n_ratings) <= 0:
        raise LatentAtlasError("n_users, n_items and n_ratings must be positive")
    if n_ratings > 0.5 * n_users * n_items:
        raise LatentAtlasError(f"n_ratings={n_ratings} is more than half of the {n_users}x{n_items} cells; "
                               "use more users or items")
    if rank < 1:
        raise LatentAtlasError(f"rank must be at least 1, got {rank}")
    if min(noise, factor_scale, user_bias, item_bias, popularity, activity) < 0:
        raise LatentAtlasError("noise, factor_scale, user_bias, item_bias, popularity and activity must be >= 0")
    lo, hi = scale
    if not hi > lo:
        raise LatentAtlasError(f"scale must be (low, high) with high > low, got {scale!r}")
    levels = int(round(hi - lo)) + 1
    if histogram is not None:
        histogram = np.asarray(histogram, dtype=np.float64)
        if not integer or float(hi - lo) != levels - 1 or len(histogram) != levels or (histogram < 0).any() \
                or histogram.sum() <= 0:
            raise LatentAtlasError(f"histogram needs integer ratings and one non-negative share per level of "
                                   f"the scale {scale!r}; got {len(histogram)} shares")
    elif integer and levels == len(MOVIELENS_HISTOGRAM) and float(hi - lo) == levels - 1:
        histogram = np.asarray(MOVIELENS_HISTOGRAM)

    rng = np.random.default_rng(seed)
    wu = _lognormal_weights(n_users, activity, rng)
    wi = _lognormal_weights(n_items, popularity, rng)

    # Draw pairs in rounds until enough distinct ones exist; keys are user*n_items+item.
    # Popular pairs collide often, so each round oversamples by the yield of the round before.
    keys = np.empty(0, dtype=np.int64)
    yield_rate = 0.8
    while len(keys) < n_ratings:
        need = int((n_ratings - len(keys)) / yield_rate * 1.1) + 1000
        # i.i.d. draws up to order: multinomial counts per user and per item, paired at random.
        u = np.repeat(np.arange(n_users, dtype=np.int64), rng.multinomial(need, wu))
        i = rng.permutation(np.repeat(np.arange(n_items, dtype=np.int32), rng.multinomial(need, wi)))
        before = len(keys)
        u *= n_items
        u += i
        del i
        keys = _sorted_unique(np.concatenate([keys, u]))
        del u
        yield_rate = max((len(keys) - before) / need, 0.05)
    keys = rng.permutation(keys)[:n_ratings]
    users = (keys // n_items).astype(np.int32)
    items = (keys % n_items).astype(np.int32)
    del keys

    # Entries N(0, s) with s = factor_scale**0.5 / rank**0.25 give q·p the variance rank·s⁴ = factor_scale².
    s = np.sqrt(factor_scale) / rank ** 0.25
    q = rng.normal(0, s, (n_users, rank)).astype(np.float32)
    p = rng.normal(0, s, (n_items, rank)).astype(np.float32)
    bu = rng.normal(0, user_bias, n_users).astype(np.float32)
    bi = rng.normal(0, item_bias, n_items).astype(np.float32)
    values = np.empty(n_ratings, dtype=np.float32)
    for start in range(0, n_ratings, chunk):
        uu, ii = users[start:start + chunk], items[start:start + chunk]
        x = np.einsum("ij,ij->i", q[uu], p[ii])
        x += bu[uu]
        x += bi[ii]
        x += rng.normal(0, noise, len(uu)).astype(np.float32)
        values[start:start + chunk] = x
    if histogram is not None:
        # Ordinal cut: the thresholds are the quantiles of x that give the target share to each level.
        shares = np.cumsum(histogram / histogram.sum())[:-1]
        cuts = np.quantile(values, shares).astype(np.float32)
        for start in range(0, n_ratings, chunk):
            part = values[start:start + chunk]
            part[:] = lo + np.searchsorted(cuts, part, side="right")
    else:
        # x is in 1–5 units: centre it on MovieLens' mean, then stretch it to the scale.
        stretch = (hi - lo) / 4
        values -= values.mean(dtype=np.float64)
        values *= stretch
        values += lo + (MOVIELENS_MEAN - 1) * stretch
        np.clip(values, lo, hi, out=values)
        if integer:
            np.rint(values, out=values)
    meta = {"source": "synthetic", "seed": seed, "rank": rank, "noise": noise, "factor_scale": factor_scale,
            "user_bias": user_bias, "item_bias": item_bias, "popularity": popularity, "activity": activity,
            "scale": [lo, hi]}
    return Ratings(users, items, values, np.arange(n_users), np.arange(n_items), meta)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    # np.unique's hash path (numpy >= 2.3) is several times slower than a sort on large int64 arrays.
    a.sort()
    return a[np.r_[True, a[1:] != a[:-1]]]


def _lognormal_weights(n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    w = np.exp(sigma * rng.standard_normal(n))
    return w / w.sum()
