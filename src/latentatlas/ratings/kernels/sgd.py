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
  locks or races (Gemulla et al. 2011, "DSGD"). As in LIBMF, each block's ratings are laid out once,
  grouped by user (users in a seeded random order, a user's ratings in input order) and walked in that
  fixed order every epoch: consecutive updates then reuse the user's row of Q from the L1 cache instead
  of fetching a random row of a matrix far larger than the caches, and no per-epoch reshuffle is paid.
  The epochs differ by their random stratum order (and the user order is random), which is what keeps
  the walk stochastic. The result depends on the seed only, not on the number of threads or on
  scheduling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# rating_codes and codes_match are re-exported: the SGD solver (and its tests) reach them here
from latentatlas.ratings.kernels.als import NO_MASK, masked_counts  # the layout's mask and counts
from latentatlas.ratings.kernels.als import codes_match, index_dtype, rating_codes, residual  # noqa: F401


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


@njit(parallel=True, fastmath=True, cache=True)
def epoch_blocks(users, items, values, offsets, n_blocks, strata, Q, P, lr, reg):
    """One epoch of the ``blocks`` schedule over triplets grouped by block (see :func:`block_layout`).

    Block ``(a, b)`` holds positions ``offsets[a*B + b] : offsets[a*B + b + 1]``; stratum ``s`` is the
    blocks ``(a, (a + s) % B)``, visited in the order ``strata``. The triplets are read, never moved.
    """
    T = Q.dtype.type
    lr_, reg_ = T(lr), T(reg)
    B = n_blocks
    for s in strata:
        for a in prange(B):
            cell = a * B + (a + s) % B
            for j in range(offsets[cell], offsets[cell + 1]):
                _update(Q[users[j]], P[items[j]], values[j], lr_, reg_)


@njit(parallel=True, fastmath=True, cache=True)
def epoch_blocks_coded(users, items, codes, table, mu, bu, bi, offsets, n_blocks, strata, Q, P, lr, reg):
    """:func:`epoch_blocks` over rating codes: rating ``j`` is ``table[codes[j]]`` and its residual
    ``residual(table[codes[j]], μ, b_u, b_i)`` is formed in ``Q``'s precision as it is used, bit for bit
    the value the float layout stores, so the epoch is the same; the layout spends 1 byte a rating on its
    values instead of 4."""
    T = Q.dtype.type
    lr_, reg_ = T(lr), T(reg)
    B = n_blocks
    for s in strata:
        for a in prange(B):
            cell = a * B + (a + s) % B
            for j in range(offsets[cell], offsets[cell + 1]):
                u = users[j]
                i = items[j]
                v = T(residual(table[codes[j]], mu, bu[u], bi[i]))
                _update(Q[u], P[i], v, lr_, reg_)


@njit(parallel=True, fastmath=True, cache=True)
def triplet_sse_coded(users, items, codes, table, mu, bu, bi, Q, P, n_chunks):
    """:func:`latentatlas.ratings.kernels.als.triplet_sse` over rating codes (the same chunks and sums)."""
    T = Q.dtype.type
    n = len(codes)
    k = Q.shape[1]
    partial = np.zeros(n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = 0.0
        for j in range(c * step, min(n, (c + 1) * step)):
            u = users[j]
            i = items[j]
            q = Q[u]
            p = P[i]
            dot = 0.0
            for a in range(k):
                dot += q[a] * p[a]
            e = T(residual(table[codes[j]], mu, bu[u], bi[i])) - dot
            s += e * e
        partial[c] = s
    total = 0.0
    for c in range(n_chunks):
        total += partial[c]
    return total


@njit(parallel=True, cache=True)
def decode(users, items, codes, table, mu, bu, bi, out):
    """The residuals of coded ratings into ``out`` (its precision)."""
    for j in prange(len(codes)):
        out[j] = residual(table[codes[j]], mu, bu[users[j]], bi[items[j]])


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


def block_layout(users, items, values, n_users, n_items, n_blocks, rng, keep=None):
    """Triplets regrouped by (user group, item group) block, each block's grouped by user in a random user
    order (a user's ratings keep their input order): ``(users, items, values, offsets)``. The item indices
    are uint16 when there are at most 65 536 items (half the memory of int32). ``keep``: a bool mask of the
    triplets to take (the layout of ``users[keep], items[keep], values[keep]``, without those copies)."""
    keep = NO_MASK if keep is None else keep
    ug = balanced_groups(masked_counts(users, n_users, keep), n_blocks, rng)
    ig = balanced_groups(masked_counts(items, n_items, keep), n_blocks, rng)
    rank = np.empty(n_users, dtype=np.int32)
    rank[rng.permutation(n_users)] = np.arange(n_users, dtype=np.int32)
    offsets = np.zeros(n_blocks * n_blocks + 1, dtype=np.int64)
    n = int(keep.sum()) if len(keep) else len(users)
    out_u = np.empty(n, dtype=users.dtype)
    out_i = np.empty(n, dtype=index_dtype(n_items))
    out_v = np.empty(n, dtype=values.dtype)
    _scatter_blocks(users, items, values, ug.astype(np.int32), ig.astype(np.int32), n_blocks, offsets,
                    out_u, out_i, out_v, keep)
    _sort_blocks_by_user(out_u, out_i, out_v, offsets, rank)
    return out_u, out_i, out_v, offsets


@njit(parallel=True, cache=True)
def _sort_blocks_by_user(users, items, values, offsets, rank):
    # a stable sort of each block by the users' random rank; temporaries of one block's size per thread
    for c in prange(len(offsets) - 1):
        start, end = offsets[c], offsets[c + 1]
        if end - start < 2:
            continue
        keys = np.empty(end - start, dtype=np.int32)
        for j in range(start, end):
            keys[j - start] = rank[users[j]]
        order = np.argsort(keys, kind="mergesort")
        u = users[start:end].copy()
        i = items[start:end].copy()
        v = values[start:end].copy()
        for j in range(end - start):
            t = order[j]
            users[start + j] = u[t]
            items[start + j] = i[t]
            values[start + j] = v[t]


@njit(cache=True)
def _scatter_blocks(users, items, values, ug, ig, B, offsets, out_u, out_i, out_v, keep):
    # a counting sort by cell: no n-sized temporaries beyond the outputs
    masked = len(keep) > 0
    for j in range(len(users)):
        if masked and not keep[j]:
            continue
        offsets[ug[users[j]] * B + ig[items[j]] + 1] += 1
    for c in range(B * B):
        offsets[c + 1] += offsets[c]
    pos = offsets[:-1].copy()
    for j in range(len(users)):
        if masked and not keep[j]:
            continue
        c = ug[users[j]] * B + ig[items[j]]
        t = pos[c]
        out_u[t] = users[j]
        out_i[t] = items[j]
        out_v[t] = values[j]
        pos[c] = t + 1
