"""Error and ranking metrics for rating predictions and top-N lists.

Ranking is always evaluated with *full ranking* (every item the user did not rate in training is a
candidate; no sampled negatives, which mis-rank models: Krichene & Rendle 2020): :func:`ranking_metrics`
gives NDCG, recall, precision, MAP and catalogue coverage at k for any recommender, and
:func:`ranking_report` puts a model beside the popularity baseline on the same split.

Rating error: :func:`loss` (the course's penalised sum of squares), :func:`rmse`, :func:`mae`.
Ranking: :func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k` compare a top-N list with the
user's *relevant* held-out items, those rated at or above a threshold (by default three quarters of the
way up the rating scale: 4 on a 1–5 scale); :func:`evaluate` computes them all for a model and test set.
"""

from __future__ import annotations

import math

import numpy as np

from latentatlas import checks
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
    return checks.integer("k", k, 1)


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
    """RMSE and MAE on every test rating, and the full-ranking metrics of :func:`ranking_metrics` (users with
    at least one relevant test item, rating ≥ ``threshold``, ranking every item not rated in training).

    ``test`` must share the model's index space (as from ``prep.split``). ``max_users`` evaluates the
    ranking metrics on a seeded random subset of users (scoring every item is O(users × items × k)).
    """
    k = _check_k(k)
    from latentatlas.ratings.base import same_ids

    if not (same_ids(test.user_ids, model.user_ids_) and same_ids(test.item_ids, model.item_ids_)):
        raise LatentAtlasError(f"test ratings cover {test.n_users} users x {test.n_items} items, the model "
                               f"{model.n_users_} x {model.n_items_}; map them to the model's ids first")
    if len(test) == 0:
        raise LatentAtlasError("test has no ratings")
    pred = model.predict_indices(test.users, test.items, times=test.timestamps)  # time biases need them
    out = {"rmse": rmse(test.values, pred), "mae": mae(test.values, pred), "n_ratings": len(test)}
    out.update(ranking_metrics(model, test, k=k, threshold=threshold, max_users=max_users, seed=seed))
    return out


def average_precision_at_k(recommended, relevant, k: int) -> float:
    """``Σ_{hits at rank r ≤ k} precision@r / min(k, |relevant|)``; NaN when nothing is relevant."""
    k = _check_k(k)
    rel = set(np.asarray(list(relevant)).tolist())
    if not rel:
        return float("nan")
    hits, total = 0, 0.0
    for r, x in enumerate(np.asarray(recommended)[:k].tolist(), start=1):
        if x in rel:
            hits += 1
            total += hits / r
    return total / min(k, len(rel))


def relevant_lists(test: Ratings, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users (indices) with at least one test rating ≥ ``threshold``, and their relevant items as CSR
    (indptr, items)."""
    mask = test.values >= threshold
    users, items = test.users[mask], test.items[mask]
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    uniq, starts = np.unique(users, return_index=True)
    indptr = np.append(starts, len(users)).astype(np.int64)
    return uniq.astype(np.int64), indptr, items.astype(np.int64)


def list_metrics(top: np.ndarray, indptr: np.ndarray, relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user NDCG, recall, precision and average precision at ``k`` of the lists ``top`` (users × ≥k item
    indices, best first; negative entries are empty slots) against CSR relevant items. Vectorised; the
    per-list functions above are the reference."""
    top = np.asarray(top)[:, :k]
    n_users = len(top)
    counts = np.diff(indptr)
    owner = np.repeat(np.arange(n_users), counts)
    # hit[u, r]: whether the item at rank r of user u is relevant (membership via sorted keys).
    n_items = int(max(relevant.max(initial=-1), top.max(initial=-1))) + 1
    keys = owner.astype(np.int64) * n_items + relevant
    query = np.arange(n_users)[:, None].astype(np.int64) * n_items + top
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    hit = (keys[pos] == query) & (top >= 0) if len(keys) else np.zeros(top.shape, dtype=bool)
    ranks = np.arange(1, top.shape[1] + 1)
    discount = 1.0 / np.log2(ranks + 1)
    ideal_n = np.minimum(counts, k)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1))])[ideal_n]
    dcg = (hit * discount).sum(axis=1)
    n_hits = hit.sum(axis=1)
    prec_at_r = np.cumsum(hit, axis=1) / ranks
    ap = (prec_at_r * hit).sum(axis=1) / np.maximum(ideal_n, 1)
    return {"ndcg": dcg / np.maximum(ideal, 1e-12), "recall": n_hits / np.maximum(counts, 1),
            "precision": n_hits / k, "map": ap}


def ranking_metrics(model, test: Ratings, k: int = 10, threshold: float | None = None,
                    max_users: int | None = None, seed: int = 0, batch_size: int = 1024) -> dict:
    """Full-ranking metrics of a fitted recommender on held-out ratings in the model's index space.

    For every test user with at least one relevant item (test rating ≥ ``threshold``; default three quarters
    up the training scale), the model ranks every item the user did not rate in training; NDCG, recall,
    precision and MAP at ``k`` are averaged over those users, and ``coverage@k`` is the share of the
    catalogue that appears in any of their lists. ``max_users`` evaluates a seeded sample of users.
    """
    k = _check_k(k)
    if threshold is None:
        threshold = default_threshold(model.scale_)
    if not math.isfinite(threshold):
        raise LatentAtlasError(f"threshold must be a finite number, got {threshold!r}")
    users, indptr, relevant = relevant_lists(test, threshold)
    if max_users is not None and len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        counts = np.diff(indptr)
        relevant = np.concatenate([relevant[indptr[j]:indptr[j + 1]] for j in pick]) if len(pick) else relevant[:0]
        indptr = np.append(0, np.cumsum(counts[pick])).astype(np.int64)
        users = users[pick]
    out = {f"ndcg@{k}": float("nan"), f"recall@{k}": float("nan"), f"precision@{k}": float("nan"),
           f"map@{k}": float("nan"), f"coverage@{k}": float("nan"), "ranking_users": int(len(users)),
           "relevance_threshold": float(threshold)}
    if len(users) == 0:
        return out
    top, vals = model.top_indices(users, k, batch_size=batch_size)
    top = np.where(np.isfinite(vals), top, -1)
    per_user = list_metrics(top, indptr, relevant, k)
    for name, values in per_user.items():
        out[f"{name}@{k}"] = float(values.mean())
    out[f"coverage@{k}"] = len(np.unique(top[top >= 0])) / model.n_items_
    return out


def ranking_report(model, test: Ratings, k: int = 10, threshold: float | None = None,
                   max_users: int | None = None, seed: int = 0) -> list[dict]:
    """Rows of full-ranking metrics on ``test`` (in the model's index space): the model's lists, then — on the
    same users and candidates — the rating model's lists by predicted rating (for a
    :class:`~latentatlas.ratings.recommender.Recommender` whose ranking model is another) and the popularity
    baseline of the model's training data. Each row has ``model`` (a label) and ``key`` (``model``,
    ``rating_model`` or ``popular``)."""
    from latentatlas.ratings.popular import Popularity

    if threshold is None:
        threshold = default_threshold(model.scale_)
    entries = [("model", getattr(model, "display_name", None) or _label(model), model)]
    rating = getattr(model, "rating_model_", None)
    if rating is not None and getattr(model, "ranking_model_", None) is not rating:
        entries.append(("rating_model", f"{rating.solver.upper()} by predicted rating", rating))
    entries.append(("popular", "most popular (baseline)", Popularity.from_seen(model)))
    rows = []
    for key, label, m in entries:
        row = {"model": label, "key": key}
        row.update(ranking_metrics(m, test, k=k, threshold=threshold, max_users=max_users, seed=seed))
        rows.append(row)
    return rows


def _label(model) -> str:
    name = getattr(model, "ranker_name_", None) if hasattr(model, "ranking_model_") else None
    if name:
        return name
    solver = getattr(model, "solver", None)
    return f"{solver.upper()} by predicted rating" if solver else type(model).__name__


#: List length and users used when a model chooses its own settings on validation ratings.
CHOICE_K = 10
CHOICE_USERS = 5000


def validation_ndcg(scorer, train: Ratings, validation: Ratings, scale: tuple[float, float], k: int = CHOICE_K,
                    max_users: int = CHOICE_USERS, seed: int = 0) -> float:
    """NDCG@k on ``validation`` of ``scorer(rows) -> scores of every item``, ranking the items each user did
    not rate in ``train`` (full ranking, relevance as in :func:`ranking_metrics`)."""
    from latentatlas.ratings.base import top_n
    from latentatlas.ratings.kernels import als

    users, indptr, relevant = relevant_lists(validation, default_threshold(scale))
    if len(users) == 0:
        return float("nan")
    if len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        counts = np.diff(indptr)
        relevant = np.concatenate([relevant[indptr[j]:indptr[j + 1]] for j in pick])
        indptr = np.append(0, np.cumsum(counts[pick])).astype(np.int64)
        users = users[pick]
    seen_ptr, seen_items = als.compressed(train.users, train.items, None, train.n_users)[:2]
    tops = []
    for s in range(0, len(users), 1024):
        block = users[s:s + 1024]
        top, vals = top_n(scorer(block), k, [seen_items[seen_ptr[u]:seen_ptr[u + 1]] for u in block], None)
        tops.append(np.where(np.isfinite(vals), top, -1))
    return float(list_metrics(np.concatenate(tops), indptr, relevant, k)["ndcg"].mean())


def choose_on_validation(candidates, make_scorer, train: Ratings, validation: Ratings,
                         scale: tuple[float, float]):
    """The candidate whose scorer (``make_scorer(candidate)``) has the best validation NDCG@10, and every
    candidate's score as ``{str(candidate): ndcg}``. Ties keep the earlier candidate."""
    scores, best, best_value = {}, None, -math.inf
    for c in candidates:
        value = validation_ndcg(make_scorer(c), train, validation, scale)
        scores[str(c)] = value
        if math.isfinite(value) and value > best_value:
            best, best_value = c, value
    if best is None:
        best = candidates[0]
    return best, scores
