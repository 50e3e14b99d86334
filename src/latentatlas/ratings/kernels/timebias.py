"""Numba kernels of the time-bias Gibbs block (driver: :mod:`latentatlas.ratings.timebias`).

Each is one sequential pass over the training ratings (deterministic sums, no temporaries): per-cell and per-user
sufficient statistics of the Gaussian conditionals, and the offsets. The NumPy version they replaced
(``np.bincount`` with weights) cost 1.1–2.4× the CPU time per sweep at 10 M ratings, more with per-rating
precisions, and built several 80 MB temporaries per sweep (benchmarks/RESULTS-timebias.md).

``cell[j]`` is rating ``j``'s (item, bin) cell, ``users[j]`` its user, ``dev[j]`` its scaled deviation
``dev_u(t)``; ``precision`` holds one value (the same for every rating) or one per rating.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def cell_sums(cell, users, dev, residual, precision, a, n_cells):
    """``(Σ p_j, Σ p_j (r_j - a_u dev_j))`` over the ratings of each cell (two arrays of length ``n_cells``)."""
    sp = np.zeros(n_cells)
    spr = np.zeros(n_cells)
    per_rating = precision.shape[0] != 1
    p = precision[0]
    for j in range(cell.shape[0]):
        if per_rating:
            p = precision[j]
        c = cell[j]
        sp[c] += p
        spr[c] += p * (residual[j] - a[users[j]] * dev[j])
    return sp, spr


@njit(cache=True)
def user_sums(cell, users, dev, residual, precision, b, n_users):
    """``(Σ p_j dev_j², Σ p_j dev_j (r_j - b_cell))`` over the ratings of each user (length ``n_users``)."""
    sp = np.zeros(n_users)
    spr = np.zeros(n_users)
    per_rating = precision.shape[0] != 1
    p = precision[0]
    for j in range(cell.shape[0]):
        if per_rating:
            p = precision[j]
        u = users[j]
        pd = p * dev[j]
        sp[u] += pd * dev[j]
        spr[u] += pd * (residual[j] - b[cell[j]])
    return sp, spr


@njit(cache=True)
def offsets(cell, users, dev, b, a):
    """``b[cell_j] + a[u_j] dev_j`` for every rating."""
    n = cell.shape[0]
    out = np.empty(n)
    for j in range(n):
        out[j] = b[cell[j]] + a[users[j]] * dev[j]
    return out
