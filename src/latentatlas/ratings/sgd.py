"""The stochastic-gradient solver of :class:`~latentatlas.ratings.model.LatentFactorModel` (see
:mod:`latentatlas.ratings.als` for what a solver owns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from latentatlas.ratings.als import CHUNKS, warm_up_data
from latentatlas.ratings.kernels import als, sgd

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

#: Blocks per side in the parallel SGD schedule. Fixed, so results do not depend on the number of threads.
SGD_BLOCKS = 8


class SGDSolver:
    """Each step (epoch) walks every known residual once in a seeded order: ``blocks`` runs the strata of
    an 8 × 8 block grid in parallel, lock-free (DSGD); ``serial`` is the classic single-thread loop.

    The ``blocks`` layout keeps, per rating, its user (int32), its item (uint16 up to 65 536 items) and,
    when the ratings take at most 256 distinct values and the factors are float32, a 1-byte code of the
    rating whose residual the kernels form as they go (bit for bit the stored residual's value, and the
    same epochs): 7 bytes a rating instead of 12.
    """

    def __init__(self, model, train, resid: np.ndarray, dt: np.dtype, rng: np.random.Generator,
                 keep: np.ndarray | None = None):
        """``resid``: the residual of every rating of ``train``; ``keep``: a bool mask of those to train on
        (None: all; the ``serial`` schedule walks ``train`` as given and takes no mask)."""
        n_users, n_items = train.shape
        self.model, self.shape, self.dt = model, train.shape, dt
        self.decoding = None  # (table, μ, user biases, item biases) when the layout holds rating codes
        if model.sgd_schedule == "blocks":
            # float32 only: there the coded kernels are tested to give bit for bit the float layout's epoch
            coded = sgd.rating_codes(train.values) if dt == np.float32 else None
            values = resid
            if coded is not None:
                table, codes = coded
                decoding = (table, float(model.mu_), np.asarray(model.user_bias_, dtype=np.float64),
                            np.asarray(model.item_bias_, dtype=np.float64))
                # the codes stand in for ``resid`` only where they give it back exactly (a baseline with
                # more terms than μ + b_u + b_i keeps the float layout)
                if sgd.codes_match(train.users, train.items, codes, *decoding, resid):
                    values, self.decoding = codes, decoding
            self.triplets = sgd.block_layout(train.users, train.items, values, n_users, n_items, SGD_BLOCKS, rng,
                                             keep)
        else:
            if keep is not None:
                raise ValueError("the serial schedule trains on the ratings as given, without a mask")
            self.triplets = (train.users, train.items, resid)
        self.fallback_rows = 0

    def residuals(self) -> np.ndarray:
        """The layout's residuals in the training precision (decoded when the layout holds codes)."""
        users, items, values = self.triplets[:3]
        if self.decoding is None:
            return values
        out = np.empty(len(values), dtype=self.dt)
        sgd.decode(users, items, values, *self.decoding, out)
        return out

    def matrix(self) -> "sp.csr_matrix":
        import scipy.sparse as sp  # here only: the import is 23 MB of a fit's memory

        users, items = self.triplets[:2]
        return sp.coo_matrix((self.residuals().astype(np.float64), (users, items)), shape=self.shape).tocsr()

    def step(self, t: int, Q: np.ndarray, P: np.ndarray, reg: float, weighted: bool) -> None:
        m = self.model
        epoch_rng = np.random.default_rng([m.seed, t])
        if m.sgd_schedule == "serial":
            sgd.epoch_serial(*self.triplets, epoch_rng.permutation(len(self.triplets[2])), Q, P, m.lr, reg)
        else:
            users, items, values, offsets = self.triplets
            strata = epoch_rng.permutation(SGD_BLOCKS)
            if self.decoding is None:
                sgd.epoch_blocks(users, items, values, offsets, SGD_BLOCKS, strata, Q, P, m.lr, reg)
            else:
                sgd.epoch_blocks_coded(users, items, values, *self.decoding, offsets, SGD_BLOCKS, strata, Q, P,
                                       m.lr, reg)

    def sse(self, Q: np.ndarray, P: np.ndarray) -> float:
        if self.decoding is not None:
            return sgd.triplet_sse_coded(*self.triplets[:3], *self.decoding, Q, P, CHUNKS)
        return als.triplet_sse(*self.triplets[:3], Q, P, CHUNKS)

    def seen(self, train, keep=None) -> tuple[np.ndarray, np.ndarray]:
        """The per-user layout for ``recommend``, built at the end (SGD trains on triplets) from ``train``'s
        ratings where ``keep()`` (a callable giving a bool mask, made once the triplets are let go) is True."""
        self.triplets = None
        return als.compressed(train.users, train.items, None, train.shape[0], keep=keep and keep())[:2]

    def warm_up(self, model, dt: np.dtype) -> None:
        """Compile (or load from the cache) the kernels a fit calls, for this layout's index types."""
        u, v, X, Y, _ = warm_up_data(model.k_value, dt)
        if model.sgd_schedule == "serial":
            sgd.epoch_serial(u, u, v, np.arange(2), X, Y, 0.01, 0.1)
        else:
            i = u.astype(self.triplets[1].dtype)
            offsets = np.array([0, 1, 1, 1, 2])
            if self.decoding is None:
                sgd.epoch_blocks(u, i, v, offsets, 2, np.arange(2), X, Y, 0.01, 0.1)
                als.triplet_sse(u, i, v, X, Y, 2)
            else:
                codes, table, bias = np.array([0, 1], dtype=np.uint8), np.array([1.0, 2.0]), np.zeros(2)
                sgd.epoch_blocks_coded(u, i, codes, table, 0.5, bias, bias, offsets, 2, np.arange(2), X, Y, 0.01, 0.1)
                sgd.triplet_sse_coded(u, i, codes, table, 0.5, bias, bias, X, Y, 2)
