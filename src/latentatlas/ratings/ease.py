"""EASE: a closed-form item–item ranking model (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019).

With ``X`` the users × items matrix of who rated what (weights from the ratings, see ``weighting``),
``G = XᵀX + λI``, ``P = G⁻¹``, the item weights are ``B = I − P·diag(1/diag(P))`` (so ``diag(B) = 0``) and a
user's scores are ``x_u·B``. One dense item × item matrix is solved once: no iterations, no seeds. Its memory
grows with the square of the number of items, so it is checked before anything is allocated.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.base import FoldedUser, RecommenderBase
from latentatlas.ratings.data import Ratings

#: λ candidates tried on validation data when ``reg=None``: a wide, coarse grid (the best λ grows with the
#: number of ratings per item).
REG_GRID = (20.0, 50.0, 150.0, 400.0, 1000.0, 2500.0)
#: λ without validation data to choose it (MovieLens-100K validation choice, RESULTS-ranking.md).
DEFAULT_REG = 400.0
#: With ``reg=None`` and no validation ratings, at least this many training ratings make EASE hold out 10 % of
#: them to choose λ (fewer: ``DEFAULT_REG``).
MIN_SELF_VALIDATION = 1000
WEIGHTINGS = ("binary", "rating")
#: Bytes of peak memory per item² entry: G and P in float64 (P overwrites G), B in float32.
BYTES_PER_ENTRY = 12


def default_memory_limit() -> int:
    """Half the memory available now (MemAvailable), or 8 GiB where that cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError):
        pass
    return 8 << 30


def needed_bytes(n_items: int) -> int:
    return BYTES_PER_ENTRY * n_items * n_items


def check_memory(n_items: int, limit: int | None = None) -> None:
    """One-line error, before any allocation, when the item × item matrices would not fit."""
    limit = default_memory_limit() if limit is None else int(limit)
    need = needed_bytes(n_items)
    if need > limit:
        raise LatentAtlasError(f"EASE needs dense item × item matrices: {n_items:,} items need {need / 2**30:.1f} GiB, "
                               f"over the limit of {limit / 2**30:.1f} GiB (max_memory); use the implicit ALS "
                               "ranker instead (ranker='ials'), whose memory grows linearly with the items")


def interaction_matrix(r: Ratings, weighting: str = "binary", scale: tuple[float, float] | None = None) -> sp.csr_matrix:
    """Users × items CSR of who rated what: 1 per rating (``binary``), or the rating mapped onto (0, 1]
    (``rating``: the lowest rating counts 1/(levels), the highest 1)."""
    if weighting == "binary":
        w = np.ones(len(r), dtype=np.float64)
    else:
        lo, hi = scale if scale is not None else (float(r.values.min()), float(r.values.max()))
        span = max(hi - lo, 1e-9)
        w = 0.2 + 0.8 * (r.values - lo) / span
    m = sp.csr_matrix((w, (r.users, r.items)), shape=r.shape)
    m.sum_duplicates()
    return m


def ease_weights(X: sp.csr_matrix, reg: float, dtype=np.float32) -> np.ndarray:
    """The EASE item weights ``B`` for interaction matrix ``X`` and ridge ``reg`` (float64 solve)."""
    from scipy.linalg import lapack

    G = (X.T @ X).toarray().astype(np.float64, copy=False)
    G[np.diag_indices_from(G)] += reg
    c, info = lapack.dpotrf(G, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise LatentAtlasError(f"EASE: the item Gram matrix is not positive definite (reg={reg:g}); use a larger reg")
    P, info = lapack.dpotri(c, lower=0, overwrite_c=1)
    del c
    if info != 0:
        raise LatentAtlasError(f"EASE: inverting the item Gram matrix failed (reg={reg:g})")
    P = np.triu(P) + np.triu(P, 1).T  # dpotri fills the upper triangle only
    d = np.diag(P).copy()
    P /= -d[None, :]
    P[np.diag_indices_from(P)] = 0.0
    return P.astype(dtype, copy=False)


class EASE(RecommenderBase):
    """EASE ranking model (closed form; see the module docstring).

    Parameters
    ----------
    reg : float or None
        λ, the ridge penalty. None: chosen from ``REG_GRID`` (and past its upper edge when the best is there)
        by NDCG@10 on the validation ratings given to ``fit``, or on a seeded 10 % of the training ratings
        when none are given, then refitted on all of them; ``DEFAULT_REG`` on tiny data.
    weighting : {"binary", "rating"}
        What ``X`` holds for a rated item: 1, or the rating mapped onto (0, 1] (so a 1-star rating counts less
        than a 5-star one).
    max_memory : int or None
        Bytes the item × item matrices may take; None means half the memory available at fit time.

    Examples
    --------
    >>> from latentatlas import prepare_ratings
    >>> from latentatlas.ratings.ease import EASE
    >>> split = prepare_ratings(builtin_size=5000).split
    >>> model = EASE(reg=100.0).fit(split.train)
    >>> ids, scores = model.recommend(split.train.user_ids[0], n=5)
    """

    model_name = "ease"
    _SAVED_ARRAYS = ("weights_", "user_matrix_data_", "user_matrix_indices_", "user_matrix_indptr_")
    _SAVED_SCALARS = ("reg_",)

    def __init__(self, reg: float | None = None, weighting: str = "binary", max_memory: int | None = None):
        self.reg = reg
        self.weighting = weighting
        self.max_memory = max_memory

    def _validate(self) -> None:
        checks.number("reg", self.reg, 0.0, strict=True, none_ok=True)
        checks.choice("weighting", self.weighting, WEIGHTINGS)
        checks.integer("max_memory", self.max_memory, 1, none_ok=True)

    def _fit(self, train: Ratings, validation: Ratings | None) -> None:
        from latentatlas.ratings.metrics import choose_on_validation

        from latentatlas.ratings import prep

        check_memory(train.n_items, self.max_memory)
        scale = self.scale_
        whole = train
        if self.reg is None and validation is None and len(train) >= MIN_SELF_VALIDATION:
            # No validation ratings given: hold out a seeded 10 % to choose λ on, then fit on everything.
            inner = prep.split(train, int(round(0.1 * len(train))), 0, seed=0)
            train, validation = inner.train, inner.validation
        if self.reg is not None:
            reg = float(self.reg)
        elif validation is not None:
            X = interaction_matrix(train, self.weighting, scale)
            grid = list(REG_GRID)
            reg, self.validation_scores_ = choose_on_validation(
                grid, lambda lam: _Scorer(X, ease_weights(X, lam)), train, validation, scale)
            for _ in range(2):  # the best λ on the grid's upper edge: try larger ones
                if reg != max(grid):
                    break
                grid.append(reg * 2.5)
                more, scores = choose_on_validation(
                    [grid[-1]], lambda lam: _Scorer(X, ease_weights(X, lam)), train, validation, scale)
                self.validation_scores_.update(scores)
                if scores[str(grid[-1])] > self.validation_scores_[str(reg)]:
                    reg = more
            train = whole if whole is not train else _merged(train, validation)
            self.seen_indptr_, self.seen_items_ = _seen(train)
        else:
            reg = DEFAULT_REG
        X = interaction_matrix(train, self.weighting, scale)
        self.weights_ = ease_weights(X, reg)
        self.reg_ = reg
        self._set_user_matrix(X)

    def _set_user_matrix(self, X: sp.csr_matrix) -> None:
        X = X.astype(np.float32)
        self.user_matrix_data_, self.user_matrix_indices_, self.user_matrix_indptr_ = X.data, X.indices, X.indptr

    @property
    def user_matrix_(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.user_matrix_data_, self.user_matrix_indices_, self.user_matrix_indptr_),
                             shape=(self.n_users_, self.n_items_))

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_matrix_[rows] @ self.weights_, dtype=np.float64)

    def _score_folded(self, user: FoldedUser) -> np.ndarray:
        x = np.zeros(self.n_items_, dtype=np.float32)
        x[user.items] = _weights(user.values, self.weighting, self.scale_)
        return (x @ self.weights_).astype(np.float64)

    def _fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldedUser:
        return FoldedUser(None, 0.0, items, values)

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """A rank-64 factorisation ``B ≈ U·S·Vᵀ``: users ``X·U·S``, items ``V``, so their dot products
        approximate the EASE scores (computed once, seeded)."""
        cached = getattr(self, "_embedding_cache", None)
        if cached is None:
            from sklearn.utils.extmath import randomized_svd

            k = max(1, min(64, self.n_items_ - 1))
            U, S, Vt = randomized_svd(self.weights_.astype(np.float64), k, random_state=0)
            cached = (np.asarray(self.user_matrix_ @ (U * S)), Vt.T)
            self._embedding_cache = cached
        return cached

    @property
    def user_embeddings_(self) -> np.ndarray:
        self._check_fitted()
        return self._embeddings()[0]

    @property
    def item_embeddings_(self) -> np.ndarray:
        self._check_fitted()
        return self._embeddings()[1]

    def _shape_problem(self) -> str | None:
        ni = len(self.item_ids_)
        if self.weights_.shape != (ni, ni) or self.weights_.dtype.kind != "f":
            return f"weights have shape {self.weights_.shape}, not ({ni}, {ni})"
        if len(self.user_matrix_indptr_) != len(self.user_ids_) + 1:
            return "the user matrix does not match the user ids"
        if not np.isfinite(self.weights_).all():
            return "weights contain NaN or infinity"
        return super()._shape_problem()


def _weights(values: np.ndarray, weighting: str, scale: tuple[float, float]) -> np.ndarray:
    """A folded-in user's row of ``X``, weighted as in :func:`interaction_matrix`."""
    values = np.asarray(values, dtype=np.float64)
    if weighting == "binary":
        return np.ones(len(values), dtype=np.float32)
    lo, hi = scale
    return (0.2 + 0.8 * (values - lo) / max(hi - lo, 1e-9)).astype(np.float32)


class _Scorer:
    """Scores for validation users, for :func:`~latentatlas.ratings.metrics.choose_on_validation`."""

    def __init__(self, X: sp.csr_matrix, B: np.ndarray):
        self.X, self.B = X, B

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.X[rows] @ self.B, dtype=np.float64)


def _merged(a: Ratings, b: Ratings) -> Ratings:
    return Ratings(np.concatenate([a.users, b.users]), np.concatenate([a.items, b.items]),
                   np.concatenate([a.values, b.values]), a.user_ids, a.item_ids, dict(a.meta))


def _seen(r: Ratings) -> tuple[np.ndarray, np.ndarray]:
    from latentatlas.ratings.kernels import als

    return als.compressed(r.users, r.items, None, r.n_users)[:2]

