"""The alternating-least-squares solver of :class:`~latentatlas.ratings.model.LatentFactorModel`.

The model owns the loop (evaluation, early stopping, Ctrl-C, refit); a solver owns what differs between
ALS and SGD: how the training residuals are laid out, one training step, the data term of the loss, the
kernels to compile first and the "seen" layout left for ``recommend``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from latentatlas.ratings.kernels import als

#: Row chunks of the parallel kernels; fixed, so sums do not depend on the number of threads.
CHUNKS = 64


class ALSSolver:
    """Each step solves every item's row, then every user's, as a ridge regression over its known
    residuals: ``cg_steps`` warm-started conjugate-gradient steps, or the exact Cholesky solve."""

    def __init__(self, model, train, resid: np.ndarray, dt: np.dtype, rng: np.random.Generator):
        n_users, n_items = train.shape
        self.model, self.shape = model, train.shape
        # column indices as uint16 where they fit (items: up to 65 536 of them): 2 bytes a rating less
        self.user_csr = als.compressed(train.users, train.items, resid, n_users, dt, n_cols=n_items)
        self.item_csr = als.compressed(train.items, train.users, resid, n_items, dt, n_cols=n_users)
        self.fallback_rows = 0

    def matrix(self) -> sp.csr_matrix:
        """The centred training matrix (for ``init="svd"``)."""
        indptr, indices, data = self.user_csr
        return sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=self.shape)

    def step(self, t: int, Q: np.ndarray, P: np.ndarray, reg: float, weighted: bool) -> None:
        m = self.model
        if m.als_method == "cholesky":
            fb = als.ridge_rows(*self.item_csr, Q, P, reg, weighted, CHUNKS)
            fb += als.ridge_rows(*self.user_csr, P, Q, reg, weighted, CHUNKS)
            self.fallback_rows += int(fb)
        else:
            als.cg_rows(*self.item_csr, Q, P, reg, weighted, m.cg_steps, CHUNKS)
            als.cg_rows(*self.user_csr, P, Q, reg, weighted, m.cg_steps, CHUNKS)

    def sse(self, Q: np.ndarray, P: np.ndarray) -> float:
        return als.csr_sse(*self.user_csr, Q, P, CHUNKS)

    def seen(self, train) -> tuple[np.ndarray, np.ndarray]:
        """The user layout's pattern, int32 as every model keeps it (the item layout is let go first)."""
        self.item_csr = None
        indptr, indices = self.user_csr[:2]
        self.user_csr = None
        return indptr, indices.astype(np.int32, copy=False)

    def warm_up(self, model, dt: np.dtype) -> None:
        """Compile (or load from the cache) the kernels a fit calls, for the index types of this layout, so
        step times exclude it."""
        for index_dtype in {self.user_csr[1].dtype, self.item_csr[1].dtype}:
            u, v, X, Y, (ip, ix, d) = warm_up_data(model.k_value, dt, index_dtype)
            if model.als_method == "cholesky":
                als.ridge_rows(ip, ix, d, Y, X, 0.1, True, 2)
            else:
                als.cg_rows(ip, ix, d, Y, X, 0.1, True, 1, 2)


def warm_up_data(k: int, dt: np.dtype, index_dtype=np.int32):
    """Two-row arrays that compile the shared kernels (data term, norms) in ``dt`` with column indices of
    ``index_dtype``; returns them for the solver's own."""
    u = np.array([0, 1], dtype=np.int32)
    v = np.array([1.0, -1.0], dtype=dt)
    csr = als.compressed(u, u, v, 2, dt, n_cols=65536 if np.dtype(index_dtype) == np.uint16 else None)
    X = np.full((2, k), 0.1, dtype=dt)
    Y = np.full((2, k), 0.1, dtype=dt)
    als.csr_sse(*csr, X, Y, 2)
    als.triplet_sse(u, u, v, X, Y, 2)
    als.row_sq_norms(X)
    return u, v, X, Y, csr
