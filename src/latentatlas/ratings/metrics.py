"""Error and ranking metrics for rating predictions and top-N lists.

Rating error: :func:`loss` (the course's penalised sum of squares), :func:`rmse`, :func:`mae`.
Ranking: :func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k` compare a top-N list with the
user's *relevant* held-out items, those rated at or above a threshold (by default three quarters of the
way up the rating scale: 4 on a 1–5 scale); :func:`evaluate` computes them all for a model and test set.
"""

from __future__ import annotations

import math

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.data import Ratings


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64).ravel()
    b = np.asarray(y_pred, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise LatentAtlasError(f"y_true and y_pred must have the same length, got {a.size} and {b.size}")
    if a.size == 0:
        raise LatentAtlasError("no ratings to score")
    return a, b


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def loss(ratings: Ratings, Q: np.ndarray, P: np.ndarray, reg: float, weighting: str = "none") -> float:
    """``Σ_(u,i)∈S (R_ui − q_u·p_i)² + λ(Σ_i ‖p_i‖² + Σ_u ‖q_u‖²)`` with Q users × k and P k × items.

    ``weighting="count"`` multiplies each ‖q_u‖² and ‖p_i‖² by that row's number of ratings in
    ``ratings`` (the ALS-WR objective the model minimises by default). Float64 throughout; plain numpy,
    so it is an independent check of the training kernels.
    """
    Q = np.asarray(Q, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    if Q.shape[0] != ratings.n_users or P.shape[1] != ratings.n_items or Q.shape[1] != P.shape[0]:
        raise LatentAtlasError(f"Q {Q.shape} and P {P.shape} do not fit {ratings.n_users} users x "
                               f"{ratings.n_items} items (Q must be users x k, P k x items)")
    if weighting not in ("none", "count"):
        raise LatentAtlasError(f"weighting must be 'none' or 'count', got {weighting!r}")
    pred = np.einsum("ij,ji->i", Q[ratings.users], P[:, ratings.items])
    sse = float(np.sum((ratings.values - pred) ** 2))
    qn = np.sum(Q ** 2, axis=1)
    pn = np.sum(P ** 2, axis=0)
    if weighting == "count":
        qn = qn * ratings.user_counts()
        pn = pn * ratings.item_counts()
    return sse + reg * float(qn.sum() + pn.sum())


# --- ranking ----------------------------------------------------------------------------------------------
def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise LatentAtlasError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def precision_at_k(recommended, relevant, k: int) -> float:
    """Share of the first ``k`` recommended items that are relevant (a list shorter than ``k`` still
    divides by ``k``)."""
    k = _check_k(k)
    rel = set(np.asarray(list(relevant)).tolist())
    top = np.asarray(recommended)[:k].tolist()
    return sum(1 for x in top if x in rel) / k


def recall_at_k(recommended, relevant, k: int) -> float:
    """Share of the relevant items found in the first ``k`` recommended; NaN when nothing is relevant."""
    k = _check_k(k)
    rel = set(np.asarray(list(relevant)).tolist())
    if not rel:
        return float("nan")
    top = np.asarray(recommended)[:k].tolist()
    return sum(1 for x in top if x in rel) / len(rel)


def ndcg_at_k(recommended, relevant, k: int) -> float:
    """Binary-relevance NDCG: ``Σ_{hits at rank r} 1/log2(r+1)`` over the ideal value
    ``Σ_{r ≤ min(k, |relevant|)} 1/log2(r+1)``; NaN when nothing is relevant."""
    k = _check_k(k)
    rel = set(np.asarray(list(relevant)).tolist())
    if not rel:
        return float("nan")
    top = np.asarray(recommended)[:k].tolist()
    dcg = sum(1 / math.log2(r + 2) for r, x in enumerate(top) if x in rel)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
    return dcg / ideal


def default_threshold(scale: tuple[float, float]) -> float:
    """Relevance threshold three quarters up the rating scale (4 on 1–5, 7.75 on 1–10)."""
    lo, hi = scale
    return lo + 0.75 * (hi - lo)


def evaluate(model, test: Ratings, k: int = 10, threshold: float | None = None,
             max_users: int | None = None, seed: int = 0) -> dict:
    """RMSE and MAE on every test rating, and mean precision/recall/NDCG@k over users with at least one
    relevant test item (rating ≥ ``threshold``), recommending among items not rated in training.

    ``test`` must share the model's index space (as from ``prep.split``). ``max_users`` evaluates the
    ranking metrics on a seeded random subset of users (scoring every item is O(users × items × k)).
    """
    k = _check_k(k)
    from latentatlas.ratings.model import _same_ids

    if not (_same_ids(test.user_ids, model.user_ids_) and _same_ids(test.item_ids, model.item_ids_)):
        raise LatentAtlasError(f"test ratings cover {test.n_users} users x {test.n_items} items, the model "
                               f"{model.n_users_} x {model.n_items_}; map them to the model's ids first")
    if len(test) == 0:
        raise LatentAtlasError("test has no ratings")
    pred = model.predict_indices(test.users, test.items)
    out = {"rmse": rmse(test.values, pred), "mae": mae(test.values, pred), "n_ratings": len(test)}
    if threshold is None:
        threshold = default_threshold(model.scale_)
    relevant_mask = test.values >= threshold
    users = np.unique(test.users[relevant_mask])
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    order = np.argsort(test.users[relevant_mask], kind="stable")
    rel_users = test.users[relevant_mask][order]
    rel_items = test.items[relevant_mask][order]
    starts = np.searchsorted(rel_users, users)
    ends = np.searchsorted(rel_users, users, side="right")
    p, r, n = [], [], []
    for u, s, e in zip(users, starts, ends):
        relevant = rel_items[s:e]
        top, _ = model.recommend_indices(int(u), k, exclude_seen=True)
        p.append(precision_at_k(top, relevant, k))
        r.append(recall_at_k(top, relevant, k))
        n.append(ndcg_at_k(top, relevant, k))
    out.update({f"precision@{k}": float(np.mean(p)) if p else float("nan"),
                f"recall@{k}": float(np.mean(r)) if r else float("nan"),
                f"ndcg@{k}": float(np.mean(n)) if n else float("nan"),
                "ranking_users": len(users), "relevance_threshold": float(threshold)})
    return out
