"""Implicit ALS: a ranking model of *which* items people rate, weighted by *how* they rate them.

Hu, Koren & Volinsky (2008) with the refinements of Rendle et al. (2022, "Revisiting the performance of
iALS"): every user × item cell has weight α0 and target 0, an observed cell has target ``p_ui`` and extra
confidence ``w_ui``, and each row's ridge penalty is ``reg·(n + α0·n_other)^ν``. The solver is
:func:`latentatlas.ratings.ials_solver.fit_ials` (our numba kernels: warm-started conjugate gradient over the
Gram matrix, as implicit does). Its memory grows linearly with users and items, so it serves where EASE's
item × item matrix does not fit.

How rating values become preferences (``preference``):

* ``"all"``: every rated item is a positive (``p = 1``) with confidence ``alpha``;
* ``"graded"``: every rated item is a positive, with confidence ``alpha`` scaled from 0.2 (lowest rating) to
  1 (highest): a 5-star rating counts five times a 1-star one;
* ``"threshold"``: ratings at or above three quarters of the scale are positives, lower ones observed
  dislikes (``p = 0``) with the same confidence.
"""

from __future__ import annotations


import numpy as np

from latentatlas import checks
from latentatlas.ratings.base import FoldedUser, RecommenderBase
from latentatlas.ratings.data import Ratings

PREFERENCES = ("all", "graded", "threshold")


def preferences(values: np.ndarray, preference: str, alpha: float, scale: tuple[float, float]
                ) -> tuple[np.ndarray, np.ndarray]:
    """(targets, extra confidences) of observed ratings (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = scale
    if preference == "all":
        return np.ones(len(values)), np.full(len(values), float(alpha))
    if preference == "graded":
        return np.ones(len(values)), alpha * (0.2 + 0.8 * (values - lo) / max(hi - lo, 1e-9))
    from latentatlas.ratings.metrics import default_threshold

    return (values >= default_threshold(scale)).astype(np.float64), np.full(len(values), float(alpha))


class ImplicitALS(RecommenderBase):
    """Implicit-feedback matrix factorisation for ranking (see the module docstring).

    Parameters
    ----------
    k : int
        Latent factors.
    reg : float
        Ridge penalty (scaled per row by ``(n + alpha0·n_other)^nu``).
    alpha : float
        Confidence of an observed rating beyond the α0 every cell has.
    alpha0 : float
        Weight of every user × item cell (the unobserved ones pull scores towards 0).
    nu : float
        Exponent of the per-row penalty scaling (0: the same λ for every row).
    preference : {"all", "graded", "threshold"}
        How rating values become targets and confidences.
    iterations, cg_steps : int
        Alternations, and conjugate-gradient steps per row in each.
    seed : int
    n_threads : int or None
    dtype : {"float32", "float64"}

    Examples
    --------
    >>> from latentatlas import prepare_ratings
    >>> from latentatlas.ratings.ials import ImplicitALS
    >>> train = prepare_ratings(builtin_size=5000).split.train
    >>> model = ImplicitALS(k=8, iterations=3).fit(train)
    >>> model.item_embeddings_.shape[1]
    8
    """

    model_name = "ials"
    _SAVED_ARRAYS = ("user_factors_", "item_factors_")

    def __init__(self, k: int = 64, reg: float = 0.03, alpha: float = 1.0, alpha0: float = 0.1, nu: float = 1.0,
                 preference: str = "graded", iterations: int = 15, cg_steps: int = 3, seed: int = 0,
                 n_threads: int | None = None, dtype: str = "float32"):
        self.k = k
        self.reg = reg
        self.alpha = alpha
        self.alpha0 = alpha0
        self.nu = nu
        self.preference = preference
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.seed = seed
        self.n_threads = n_threads
        self.dtype = dtype

    def _validate(self) -> None:
        for name, strict in (("reg", False), ("alpha", False), ("alpha0", True), ("nu", False)):
            checks.number(name, getattr(self, name), 0.0, strict=strict)
        for name, low in (("k", 1), ("iterations", 1), ("cg_steps", 1), ("seed", 0)):
            checks.integer(name, getattr(self, name), low)
        checks.choice("preference", self.preference, PREFERENCES)
        checks.choice("dtype", self.dtype, ("float32", "float64"))

    def _fit(self, train: Ratings, validation: Ratings | None) -> None:
        from latentatlas.ratings.ials_solver import fit_ials

        targets, weights = preferences(train.values, self.preference, self.alpha, self.scale_)
        indptr, indices, order = _csr_order(train)
        self.user_factors_, self.item_factors_ = fit_ials(
            indptr, indices, targets[order], weights[order], train.n_users, train.n_items, k=int(self.k),
            reg=float(self.reg), alpha0=float(self.alpha0), nu=float(self.nu), iterations=int(self.iterations),
            cg_steps=int(self.cg_steps), seed=int(self.seed), n_threads=self.n_threads, dtype=self.dtype)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return (self.user_factors_[rows] @ self.item_factors_.T).astype(np.float64)

    def _score_folded(self, user: FoldedUser) -> np.ndarray:
        return (self.item_factors_ @ user.factors).astype(np.float64)

    def _fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldedUser:
        from latentatlas.ratings.ials_solver import fold_in_user

        targets, weights = preferences(values, self.preference, self.alpha, self.scale_)
        if len(items) == 0:
            return FoldedUser(np.zeros(self.item_factors_.shape[1], dtype=self.item_factors_.dtype), 0.0, items)
        x = fold_in_user(self.item_factors_, None, items, targets, weights, float(self.reg), float(self.alpha0),
                         float(self.nu), self.n_items_)
        return FoldedUser(x, 0.0, items)

    @property
    def user_embeddings_(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    @property
    def item_embeddings_(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def _shape_problem(self) -> str | None:
        nu, ni = len(self.user_ids_), len(self.item_ids_)
        U, V = self.user_factors_, self.item_factors_
        if U.ndim != 2 or V.ndim != 2 or U.shape != (nu, V.shape[1]) or V.shape[0] != ni:
            return f"factor shapes {U.shape} and {V.shape} do not match {nu} users and {ni} items"
        if not (np.isfinite(U).all() and np.isfinite(V).all()):
            return "factors contain NaN or infinity"
        return super()._shape_problem()


def _csr_order(r: Ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, item indices, order of the ratings) of the users × items CSR, items sorted within rows."""
    order = np.lexsort((r.items, r.users))
    counts = np.bincount(r.users, minlength=r.n_users)
    indptr = np.zeros(r.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, r.items[order].astype(np.int32), order
