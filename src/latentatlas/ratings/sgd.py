"""The stochastic-gradient solver of :class:`~latentatlas.ratings.model.LatentFactorModel` (see
:mod:`latentatlas.ratings.als` for what a solver owns)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from latentatlas.ratings.als import CHUNKS, warm_up_data
from latentatlas.ratings.kernels import als, sgd

#: Blocks per side in the parallel SGD schedule. Fixed, so results do not depend on the number of threads.
SGD_BLOCKS = 8


class SGDSolver:
    """Each step (epoch) walks every known residual once in a seeded order: ``blocks`` runs the strata of
    an 8 × 8 block grid in parallel, lock-free (DSGD); ``serial`` is the classic single-thread loop."""

    def __init__(self, model, train, resid: np.ndarray, dt: np.dtype, rng: np.random.Generator):
        n_users, n_items = train.shape
        self.model, self.shape = model, train.shape
        if model.sgd_schedule == "blocks":
            self.triplets = sgd.block_layout(train.users, train.items, resid, n_users, n_items, SGD_BLOCKS, rng)
        else:
            self.triplets = (train.users, train.items, resid)
        self.fallback_rows = 0

    def matrix(self) -> sp.csr_matrix:
        users, items, values = self.triplets[:3]
        return sp.coo_matrix((values.astype(np.float64), (users, items)), shape=self.shape).tocsr()

    def step(self, t: int, Q: np.ndarray, P: np.ndarray, reg: float, weighted: bool) -> None:
        m = self.model
        epoch_rng = np.random.default_rng([m.seed, t])
        if m.sgd_schedule == "serial":
            sgd.epoch_serial(*self.triplets, epoch_rng.permutation(len(self.triplets[2])), Q, P, m.lr, reg)
        else:
            sgd.epoch_blocks(*self.triplets, SGD_BLOCKS, epoch_rng.permutation(SGD_BLOCKS), Q, P, m.lr, reg)

    def sse(self, Q: np.ndarray, P: np.ndarray) -> float:
        return als.triplet_sse(*self.triplets[:3], Q, P, CHUNKS)

    def seen(self, train) -> tuple[np.ndarray, np.ndarray]:
        """The per-user layout for ``recommend``, built at the end (SGD trains on triplets)."""
        self.triplets = None
        return als.compressed(train.users, train.items, None, train.shape[0])[:2]

    def warm_up(self, model, dt: np.dtype) -> None:
        """Compile (or load from the cache) the kernels a fit calls, for this layout's index types."""
        u, v, X, Y, _ = warm_up_data(model.k_value, dt)
        if model.sgd_schedule == "serial":
            sgd.epoch_serial(u, u, v, np.arange(2), X, Y, 0.01, 0.1)
        else:
            i = u.astype(self.triplets[1].dtype)
            sgd.epoch_blocks(u, i, v, np.array([0, 1, 1, 1, 2]), 2, np.arange(2), X, Y, 0.01, 0.1)
            als.triplet_sse(u, i, v, X, Y, 2)
