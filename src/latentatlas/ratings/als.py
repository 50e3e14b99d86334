"""The alternating-least-squares solver of :class:`~latentatlas.ratings.model.LatentFactorModel`.

The model owns the loop (evaluation, early stopping, Ctrl-C, refit); a solver owns what differs between
ALS and SGD: how the training residuals are laid out, one training step, the data term of the loss, the
kernels to compile first and the "seen" layout left for ``recommend``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from latentatlas.ratings.kernels import als

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

#: Row chunks of the parallel kernels; fixed, so sums do not depend on the number of threads.
CHUNKS = 64


class ALSSolver:
    """Each step solves every item's row, then every user's, as a ridge regression over its known
    residuals: ``cg_steps`` warm-started conjugate-gradient steps, or the exact Cholesky solve.

    The two layouts (by user, by item) hold per rating its column index (uint16 where it fits: up to
    65 536 items, or users) and, when the ratings take at most 256 distinct values and the factors are
    float32, a 1-byte code of the rating whose residual the kernels form as they go (bit for bit the stored
    residual's value, and the same steps): at 10 M ratings 80 MB for both instead of 160 MB.
    """

    def __init__(self, model, train, resid: np.ndarray, dt: np.dtype, rng: np.random.Generator,
                 keep: np.ndarray | None = None):
        """``resid``: the residual of every rating of ``train``; ``keep``: a bool mask of those to train on
        (None: all)."""
        n_users, n_items = train.shape
        self.model, self.shape, self.dt = model, train.shape, dt
        self.decoding = None  # (table, μ, user biases, item biases) when the layouts hold rating codes
        values, data_dtype = resid, dt
        # float32 only: there the coded kernels are tested to give bit for bit the float layout's steps
        coded = als.rating_codes(train.values) if dt == np.float32 else None
        if coded is not None:
            table, codes = coded
            decoding = (table, float(model.mu_), np.asarray(model.user_bias_, dtype=np.float64),
                        np.asarray(model.item_bias_, dtype=np.float64))
            # the codes stand in for ``resid`` only where they give it back exactly
            if als.codes_match(train.users, train.items, codes, *decoding, resid):
                values, data_dtype, self.decoding = codes, np.uint8, decoding
        # column indices as uint16 where they fit (items: up to 65 536 of them): 2 bytes a rating less
        self.user_csr = als.compressed(train.users, train.items, values, n_users, data_dtype, n_cols=n_items,
                                       keep=keep)
        self.item_csr = als.compressed(train.items, train.users, values, n_items, data_dtype, n_cols=n_users,
                                       keep=keep)
        del values
        if self.decoding is not None:
            table, mu, bu, bi = self.decoding
            self.user_args = (table, mu, bu, bi, True, _longest(self.user_csr[0]))
            self.item_args = (table, mu, bi, bu, False, _longest(self.item_csr[0]))
        self.fallback_rows = 0

    def matrix(self) -> "sp.csr_matrix":
        """The centred training matrix (for ``init="svd"``)."""
        import scipy.sparse as sp  # here only: the import is 23 MB of a fit's memory

        indptr, indices, data = self.user_csr
        if self.decoding is not None:
            resid = np.empty(len(data), dtype=self.dt)
            als.decode_csr(indptr, indices, data, *self.user_args[:5], resid)
            data = resid
        return sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=self.shape)

    def step(self, t: int, Q: np.ndarray, P: np.ndarray, reg: float, weighted: bool) -> None:
        m = self.model
        if self.decoding is not None:
            if m.als_method == "cholesky":
                fb = als.ridge_rows_coded(*self.item_csr, *self.item_args, Q, P, reg, weighted, CHUNKS)
                fb += als.ridge_rows_coded(*self.user_csr, *self.user_args, P, Q, reg, weighted, CHUNKS)
                self.fallback_rows += int(fb)
            else:
                als.cg_rows_coded(*self.item_csr, *self.item_args, Q, P, reg, weighted, m.cg_steps, CHUNKS)
                als.cg_rows_coded(*self.user_csr, *self.user_args, P, Q, reg, weighted, m.cg_steps, CHUNKS)
        elif m.als_method == "cholesky":
            fb = als.ridge_rows(*self.item_csr, Q, P, reg, weighted, CHUNKS)
            fb += als.ridge_rows(*self.user_csr, P, Q, reg, weighted, CHUNKS)
            self.fallback_rows += int(fb)
        else:
            als.cg_rows(*self.item_csr, Q, P, reg, weighted, m.cg_steps, CHUNKS)
            als.cg_rows(*self.user_csr, P, Q, reg, weighted, m.cg_steps, CHUNKS)

    def sse(self, Q: np.ndarray, P: np.ndarray) -> float:
        if self.decoding is not None:
            return als.csr_sse_coded(*self.user_csr, *self.user_args[:5], Q, P, CHUNKS)
        return als.csr_sse(*self.user_csr, Q, P, CHUNKS)

    def seen(self, train, keep=None) -> tuple[np.ndarray, np.ndarray]:
        """The user layout's pattern, int32 as every model keeps it (the item layout is let go first); the
        layout holds only the trained-on ratings already, so ``keep`` is not needed."""
        self.item_csr = None
        indptr, indices = self.user_csr[:2]
        self.user_csr = None
        return indptr, indices.astype(np.int32, copy=False)

    def warm_up(self, model, dt: np.dtype) -> None:
        """Compile (or load from the cache) the kernels a fit calls, for the index types of this layout, so
        step times exclude it."""
        for index_dtype in {self.user_csr[1].dtype, self.item_csr[1].dtype}:
            u, v, X, Y, (ip, ix, d) = warm_up_data(model.k_value, dt, index_dtype)
            if self.decoding is not None:
                codes, table, bias = np.array([0, 1], dtype=np.uint8), np.array([1.0, 2.0]), np.zeros(2)
                coded = (ip, ix, codes, table, 0.5, bias, bias, True, 1)
                if model.als_method == "cholesky":
                    als.ridge_rows_coded(*coded, Y, X, 0.1, True, 2)
                else:
                    als.cg_rows_coded(*coded, Y, X, 0.1, True, 1, 2)
                als.csr_sse_coded(*coded[:8], X, Y, 2)
            elif model.als_method == "cholesky":
                als.ridge_rows(ip, ix, d, Y, X, 0.1, True, 2)
            else:
                als.cg_rows(ip, ix, d, Y, X, 0.1, True, 1, 2)


def _longest(indptr: np.ndarray) -> int:
    return int(np.diff(indptr).max()) if len(indptr) > 1 else 0


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
    als.indexed_sse(u, u, u, v, X, Y, 2)
    als.row_sq_norms(X)
    return u, v, X, Y, csr
