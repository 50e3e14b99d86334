"""Preparation of a ratings table: cold-start (k-core) filtering, splits and centring.

Every function returns new objects and leaves its input untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import save_npz, to_json
from latentatlas.ratings.data import FORMAT_VERSION, Ratings
from latentatlas.ratings.names import Names


# --- cold-start filtering ----------------------------------------------------------------------------------
def kcore_mask(users: np.ndarray, items: np.ndarray, min_entries: int, n_users: int | None = None,
               n_items: int | None = None) -> np.ndarray:
    """Boolean mask of the ratings that survive recursive removal of users and items with ``min_entries``
    or fewer ratings. At the end every kept user and item has more than ``min_entries`` kept ratings."""
    n_users = int(users.max()) + 1 if n_users is None and len(users) else (n_users or 0)
    n_items = int(items.max()) + 1 if n_items is None and len(items) else (n_items or 0)
    alive = np.arange(len(users))
    u, i = users, items
    while len(alive):
        bad_u = np.bincount(u, minlength=n_users) <= min_entries
        bad_i = np.bincount(i, minlength=n_items) <= min_entries
        drop = bad_u[u] | bad_i[i]
        if not drop.any():
            break
        keep = ~drop
        alive, u, i = alive[keep], u[keep], i[keep]
    mask = np.zeros(len(users), dtype=bool)
    mask[alive] = True
    return mask


def kcore(ratings: Ratings, min_entries: int) -> Ratings:
    """Recursive cold-start filter (see :func:`kcore_mask`), renumbered to contiguous indices."""
    if min_entries < 0:
        raise LatentAtlasError(f"min_entries must be >= 0, got {min_entries}")
    mask = kcore_mask(ratings.users, ratings.items, min_entries, ratings.n_users, ratings.n_items)
    out = ratings.take(mask).compact()
    if len(out) == 0:
        raise LatentAtlasError(f"no ratings left after removing users and items with {min_entries} or fewer "
                               f"ratings; lower min_entries")
    return out


# --- splits ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Split:
    """Disjoint train / validation / test ratings over one shared index space."""

    train: Ratings
    validation: Ratings
    test: Ratings
    item_names: "Names | None" = None
    user_names: "Names | None" = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def _named(self) -> str:
        named = [w for w in ("item", "user") if getattr(self, f"{w}_names") is not None]
        return " and ".join(named) + " names" if named else ""

    def __repr__(self) -> str:
        parts = [", ".join(f"{k} {v:,}" for k, v in self.sizes().items()) + " ratings",
                 f"{self.train.n_users:,} users × {self.train.n_items:,} items"]
        if self._named():
            parts.append(self._named())
        return f"Split({'; '.join(parts)})"

    def _repr_html_(self) -> str:
        from latentatlas.display import html_table

        rows = [(k, f"{v:,} ratings") for k, v in self.sizes().items()]
        rows.append(("shape", f"{self.train.n_users:,} users × {self.train.n_items:,} items"))
        if self._named():
            rows.append(("names", self._named()))
        return html_table("Split", rows)

    PARTS = ("train", "validation", "test")

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """One ``.npz`` with ``<part>_users/items/values`` arrays (and ``<part>_timestamps`` when the ratings
        have times), the id maps and JSON metadata (no pickle)."""
        info = {"format": "latentatlas.split", "version": FORMAT_VERSION, **(meta or {}), "sizes": self.sizes()}
        arrays = {}
        for part in self.PARTS:
            arrays.update(getattr(self, part).arrays(prefix=f"{part}_"))
        for what in ("item", "user"):
            names = getattr(self, f"{what}_names")
            if names is not None:
                arrays.update(names.to_arrays(prefix=f"{what}_names_"))
        return save_npz(path, **arrays, user_ids=self.train.user_ids, item_ids=self.train.item_ids,
                        meta=np.array(to_json(info, indent=None)))

    @classmethod
    def load(cls, path: str | Path) -> "Split":
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != "latentatlas.split":
                    raise LatentAtlasError(f"{path}: not a prepared ratings file (latentatlas ratings prepare)")
                if meta.get("version", 0) > FORMAT_VERSION:
                    raise LatentAtlasError(f"{path}: prepared file format version {meta['version']} is newer than "
                                           f"this latentatlas understands ({FORMAT_VERSION}); upgrade latentatlas")
                # Files written before timestamps existed, or from data without times, have none.
                parts = [Ratings(z[f"{p}_users"], z[f"{p}_items"], z[f"{p}_values"], z["user_ids"], z["item_ids"],
                                 dict(meta), z[f"{p}_timestamps"] if f"{p}_timestamps" in z.files else None)
                         for p in cls.PARTS]
                names = [Names.from_arrays(z, prefix=f"{what}_names_") for what in ("item", "user")]
        except LatentAtlasError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise LatentAtlasError(f"{path}: cannot read prepared ratings file ({exc})") from None
        return cls(*parts, *names)

    @staticmethod
    def is_split_file(path: str | Path) -> bool:
        """Whether ``path`` is an ``.npz`` written by :meth:`save`."""
        path = Path(path)
        if path.suffix != ".npz" or not path.is_file():
            return False
        try:
            with np.load(path, allow_pickle=False) as z:
                return "meta" in z.files and json.loads(str(z["meta"])).get("format") == "latentatlas.split"
        except (OSError, ValueError):
            return False


def _count(n: int | None, fraction: float | None, total: int, name: str) -> int:
    if n is not None and fraction is not None:
        raise LatentAtlasError(f"give either n_{name} or {name}_fraction, not both")
    if fraction is not None:
        if not 0 <= fraction < 1:
            raise LatentAtlasError(f"{name}_fraction must be in [0, 1), got {fraction}")
        return int(round(fraction * total))
    n = int(n or 0)
    if n < 0:
        raise LatentAtlasError(f"n_{name} must be >= 0, got {n}")
    return n


def split(ratings: Ratings, n_validation: int | None = None, n_test: int | None = None, *,
          validation_fraction: float | None = None, test_fraction: float | None = None,
          leave_k_out: int | None = None, leave_last_out: int | None = None, seed: int = 0) -> Split:
    """Split known entries into train, validation and test.

    * ``n_validation`` / ``n_test``: that many random known entries each (the classic protocol);
    * ``validation_fraction`` / ``test_fraction``: the same as fractions of all ratings;
    * ``leave_k_out``: per user, ``k`` random ratings to test and ``k`` to validation, for users who keep at
      least one training rating;
    * ``leave_last_out``: by time, per user, the ``k`` latest ratings to test and the ``k`` before them to
      validation, for users who keep at least one training rating (needs :attr:`Ratings.timestamps`; equal
      times are ordered as the ratings are, the later one counting as later).
    Validation and test entries are removed from train. The same seed gives the same split.
    """
    rng = np.random.default_rng(seed)
    total = len(ratings)
    if leave_last_out is not None:
        if leave_k_out is not None or any(v is not None for v in (n_validation, n_test, validation_fraction,
                                                                   test_fraction)):
            raise LatentAtlasError("leave_last_out cannot be combined with leave_k_out, n_validation/n_test or "
                                   "fractions")
        if isinstance(leave_last_out, bool) or int(leave_last_out) != leave_last_out or leave_last_out < 1:
            raise LatentAtlasError(f"leave_last_out must be an integer >= 1, got {leave_last_out!r}")
        if ratings.timestamps is None:
            from latentatlas.ratings.io import TIME_HELP

            source = ratings.meta.get("source")
            origin = f" from {source}" if source else ""
            raise LatentAtlasError(f"leave_last_out splits by time, but the ratings{origin} have no timestamps "
                                   f"({TIME_HELP}); use leave_k_out or fractions instead")
        role = _leave_last_out_roles(ratings.users, ratings.timestamps, int(leave_last_out))
    elif leave_k_out is not None:
        if leave_k_out < 1:
            raise LatentAtlasError(f"leave_k_out must be >= 1, got {leave_k_out}")
        role = _leave_k_out_roles(ratings.users, leave_k_out, rng)
    else:
        n_val = _count(n_validation, validation_fraction, total, "validation")
        n_tst = _count(n_test, test_fraction, total, "test")
        if n_val + n_tst >= total:
            raise LatentAtlasError(f"validation ({n_val}) + test ({n_tst}) ratings leave nothing to train on "
                                   f"(only {total} ratings)")
        perm = rng.permutation(total)
        role = np.zeros(total, dtype=np.int8)
        role[perm[:n_val]] = 1
        role[perm[n_val:n_val + n_tst]] = 2
    return Split(ratings.take(role == 0), ratings.take(role == 1), ratings.take(role == 2))


def _leave_k_out_roles(users: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    # Random order within each user: sort by (user, random key), then rank inside the user's run.
    order = np.lexsort((rng.random(len(users)), users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(users)]))
    rank = np.arange(len(users)) - run_start
    count = np.bincount(users)[sorted_users]
    role_sorted = np.zeros(len(users), dtype=np.int8)
    eligible = count > 2 * k  # keep at least one training rating per user
    role_sorted[eligible & (rank < k)] = 2
    role_sorted[eligible & (rank >= k) & (rank < 2 * k)] = 1
    role = np.empty_like(role_sorted)
    role[order] = role_sorted
    return role


def _leave_last_out_roles(users: np.ndarray, times: np.ndarray, k: int) -> np.ndarray:
    # Each user's ratings in time order (equal times: in the ratings' order); the last k go to test.
    n = len(users)
    order = np.lexsort((np.arange(n), times, users))
    sorted_users = users[order]
    ends = np.flatnonzero(np.r_[sorted_users[1:] != sorted_users[:-1], True]) + 1 if n else np.zeros(0, np.int64)
    counts = np.diff(np.r_[0, ends])
    from_end = np.repeat(ends, counts) - 1 - np.arange(n)  # 0 for a user's latest rating
    eligible = np.repeat(counts, counts) > 2 * k  # keep at least one training rating per user
    role_sorted = np.zeros(n, dtype=np.int8)
    role_sorted[eligible & (from_end < k)] = 2
    role_sorted[eligible & (from_end >= k) & (from_end < 2 * k)] = 1
    role = np.empty_like(role_sorted)
    role[order] = role_sorted
    return role


# --- centring and biases -----------------------------------------------------------------------------------
def user_means(ratings: Ratings, fill: float | None = None) -> np.ndarray:
    """Each user's mean rating over known entries; users without ratings get ``fill`` (the global mean)."""
    counts = ratings.user_counts()
    sums = np.bincount(ratings.users, weights=ratings.values, minlength=ratings.n_users)
    if fill is None:
        fill = float(ratings.values.mean()) if len(ratings) else 0.0
    means = np.full(ratings.n_users, fill, dtype=np.float64)
    np.divide(sums, counts, out=means, where=counts > 0)
    return means


def center(ratings: Ratings, means: np.ndarray | None = None) -> tuple[Ratings, np.ndarray]:
    """Subtract each user's mean (computed from ``ratings`` unless given); returns (centred, means)."""
    if means is None:
        means = user_means(ratings)
    centred = ratings.values - means[ratings.users]
    return ratings.with_values(centred.astype(np.float32)), means


@dataclass(frozen=True, repr=False)
class Biases:
    """Baseline predictor ``mu + b_u + b_i`` fitted by regularised alternating means."""

    mu: float
    user: np.ndarray
    item: np.ndarray

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu + self.user[users] + self.item[items]

    def __repr__(self) -> str:
        return f"Biases(mu={self.mu:.4g}, {len(self.user):,} users, {len(self.item):,} items)"


def fit_biases(ratings: Ratings, reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = 10) -> Biases:
    """Global mean plus shrunken user and item offsets (the damped-means baseline).

    The regularisers act like pseudo-counts: an item with few ratings stays near the global mean.
    """
    mu = float(ratings.values.mean()) if len(ratings) else 0.0
    cu = ratings.user_counts()
    ci = ratings.item_counts()
    bu = np.zeros(ratings.n_users)
    bi = np.zeros(ratings.n_items)
    resid = ratings.values.astype(np.float64) - mu
    for _ in range(n_iter):
        bi = np.bincount(ratings.items, weights=resid - bu[ratings.users], minlength=ratings.n_items) / (ci + reg_item)
        bu = np.bincount(ratings.users, weights=resid - bi[ratings.items], minlength=ratings.n_users) / (cu + reg_user)
    return Biases(mu, bu, bi)
