"""Numba kernels for stochastic gradient descent over known ratings.

Every rating ``(u, i, v)`` in turn applies the classic update, with both right-hand sides computed from the
factors *before* the step (a true gradient step on one rating's term; the course text lists the two
lines one after another, and using the new ``q_u`` in the second one would be a different method):

    e   = v − q_u·p_i
    q_u += lr·(e·p_i − λ·q_u)
    p_i += lr·(e·q_u − λ·p_i)

Per rating the penalty is applied once to each side, so this is the stochastic gradient of
``Σ e² + λ(Σ_u n_u‖q_u‖² + Σ_i n_i‖p_i‖²)`` (up to a factor 2 absorbed in ``lr``): the count-weighted
objective that ALS minimises with ``reg_weighting="count"``.

Two schedules:

* ``serial``: one thread walks the ratings in a given (shuffled) order; exactly the textbook loop.
* ``blocks``: users and items are cut into B groups of about equal rating counts, giving a B×B grid.
  An epoch visits B strata (a stratum is B blocks no two of which share a user group or an item group) in
  random order; the blocks of a stratum touch disjoint rows of Q and P, so they run in parallel without
  locks or races, each in its own shuffled order (Gemulla et al. 2011, "DSGD"; LIBMF's scheme). The
  shuffles come from a counter-based generator seeded by (seed, epoch, block), so the result depends on
  the seed only, not on the number of threads or on scheduling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(fastmath=True, cache=True, inline="always")
def _update(q, p, v, lr, reg):
    k = q.shape[0]
    dot = q[0] - q[0]
    for a in range(k):
        dot += q[a] * p[a]
    e = v - dot
    for a in range(k):
        qa = q[a]
        pa = p[a]
        q[a] = qa + lr * (e * pa - reg * qa)
        p[a] = pa + lr * (e * qa - reg * pa)


@njit(fastmath=True, cache=True)
def epoch_serial(users, items, values, order, Q, P, lr, reg):
    """One pass over ``order`` (positions into the triplets), single thread."""
    T = Q.dtype.type
    lr_, reg_ = T(lr), T(reg)
    for j in order:
        _update(Q[users[j]], P[items[j]], values[j], lr_, reg_)


@njit(cache=True, inline="always")
def _splitmix(state):
    state = (state + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = state
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def _shuffle_block(users, items, values, start, end, key):
    state = np.uint64(key)
    for j in range(end - 1, start, -1):
        state, z = _splitmix(state)
        t = start + np.int64(z % np.uint64(j - start + 1))
        users[j], users[t] = users[t], users[j]
        items[j], items[t] = items[t], items[j]
        values[j], values[t] = values[t], values[j]


@njit(parallel=True, fastmath=True, cache=True)
def epoch_blocks(users, items, values, offsets, n_blocks, strata, Q, P, lr, reg, key):
    """One epoch of the ``blocks`` schedule over triplets grouped by block.

    Block ``(a, b)`` holds positions ``offsets[a*B + b] : offsets[a*B + b + 1]``; stratum ``s`` is the
    blocks ``(a, (a + s) % B)``. The triplet arrays are reshuffled in place within each block.
    ``key`` (uint64) seeds this epoch's shuffles.
    """
    T = Q.dtype.type
    lr_, reg_ = T(lr), T(reg)
    B = n_blocks
    for s in strata:
        for a in prange(B):
            cell = a * B + (a + s) % B
            start, end = offsets[cell], offsets[cell + 1]
            _shuffle_block(users, items, values, start, end, key ^ np.uint64(cell * 0x51ED27 + 1))
            for j in range(start, end):
                _update(Q[users[j]], P[items[j]], values[j], lr_, reg_)


def balanced_groups(counts: np.ndarray, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Assign rows to ``n_groups`` groups of about equal total ``counts``, in a random order."""
    perm = rng.permutation(len(counts))
    cum = np.cumsum(counts[perm], dtype=np.float64)
    total = cum[-1] if len(cum) else 0.0
    group = np.empty(len(counts), dtype=np.int64)
    if total == 0:
        group[perm] = np.arange(len(counts)) % n_groups
    else:
        group[perm] = np.minimum(((cum - counts[perm] / 2) * n_groups / total).astype(np.int64), n_groups - 1)
    return group


def block_layout(users, items, values, n_users, n_items, n_blocks, rng):
    """Triplets regrouped by (user group, item group) block: ``(users, items, values, offsets)``."""
    ug = balanced_groups(np.bincount(users, minlength=n_users), n_blocks, rng)
    ig = balanced_groups(np.bincount(items, minlength=n_items), n_blocks, rng)
    offsets = np.zeros(n_blocks * n_blocks + 1, dtype=np.int64)
    out_u = np.empty_like(users)
    out_i = np.empty_like(items)
    out_v = np.empty_like(values)
    _scatter_blocks(users, items, values, ug.astype(np.int32), ig.astype(np.int32), n_blocks, offsets,
                    out_u, out_i, out_v)
    return out_u, out_i, out_v, offsets


@njit(cache=True)
def _scatter_blocks(users, items, values, ug, ig, B, offsets, out_u, out_i, out_v):
    # a counting sort by cell: no n-sized temporaries beyond the outputs
    for j in range(len(users)):
        offsets[ug[users[j]] * B + ig[items[j]] + 1] += 1
    for c in range(B * B):
        offsets[c + 1] += offsets[c]
    pos = offsets[:-1].copy()
    for j in range(len(users)):
        c = ug[users[j]] * B + ig[items[j]]
        t = pos[c]
        out_u[t] = users[j]
        out_i[t] = items[j]
        out_v[t] = values[j]
        pos[c] = t + 1
