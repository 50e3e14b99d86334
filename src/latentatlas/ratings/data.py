"""The in-memory ratings table shared by every step of the recommender pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import save_npz, to_json

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp  # imported where used: 23 MB that a fit on ratings does not need (issue 16)

FORMAT_VERSION = 1


def _id_array(ids) -> np.ndarray:
    """Ids as an array that ``np.savez`` writes without pickle: int64 when all integral, else unicode str."""
    arr = np.asarray(ids)
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        return arr.astype(str)  # ids beyond int64 would wrap negative: kept exactly, as text
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)  # a subset shares its parent's id maps
    if arr.dtype.kind == "U":
        return arr
    return arr.astype(str)


@dataclass(frozen=True, eq=False, repr=False)
class Ratings:
    """Explicit ratings as coordinate triplets over contiguous user and item indices.

    ``users[j], items[j], values[j]`` is one rating. ``user_ids[u]`` / ``item_ids[i]`` give the original ids
    of index ``u`` / ``i``. ``timestamps[j]``, when the source had a time column, is when rating ``j`` was
    given (float64 seconds since 1970-01-01 UTC); None otherwise. Every derived data set (filtered, split)
    gets new arrays; nothing is mutated.
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    meta: dict = field(default_factory=dict)
    timestamps: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "users", np.ascontiguousarray(self.users, dtype=np.int32))
        object.__setattr__(self, "items", np.ascontiguousarray(self.items, dtype=np.int32))
        object.__setattr__(self, "values", np.ascontiguousarray(self.values, dtype=np.float32))
        object.__setattr__(self, "user_ids", _id_array(self.user_ids))
        object.__setattr__(self, "item_ids", _id_array(self.item_ids))
        n = len(self.values)
        if len(self.users) != n or len(self.items) != n:
            raise ValueError("users, items and values must have the same length")
        if self.timestamps is not None:
            object.__setattr__(self, "timestamps", np.ascontiguousarray(self.timestamps, dtype=np.float64))
            if self.timestamps.shape != (n,):
                raise ValueError("timestamps must have one entry per rating")
        if n and (self.users.min() < 0 or self.users.max() >= self.n_users):
            raise ValueError("user index out of range of user_ids")
        if n and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError("item index out of range of item_ids")

    # --- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, users, items, ratings, *, duplicates: str = "last", timestamps=None) -> "Ratings":
        """Ratings from three equal-length arrays: user ids, item ids (any hashable ids: ints or strings)
        and ratings. Ids are mapped to contiguous indices and the maps kept; a repeated (user, item) pair
        keeps its last rating (``duplicates="first"`` or ``"mean"`` otherwise). ``timestamps`` (optional,
        same length): when each rating was given, as seconds since the epoch or datetime64 values; a repeated
        pair keeps the kept rating's time (the latest for ``"mean"``).

        Examples
        --------
        >>> from latentatlas import Ratings
        >>> r = Ratings.from_arrays(["ann", "bob", "ann"], [10, 10, 20], [4, 3, 5])
        >>> r.shape, r.user_ids.tolist()
        ((2, 2), ['ann', 'bob'])
        """
        from latentatlas.ratings.io.readers import DUPLICATE_POLICIES, _assemble

        if duplicates not in DUPLICATE_POLICIES:
            raise LatentAtlasError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}; got {duplicates!r}")
        users, items = _plain_ids(users, "users"), _plain_ids(items, "items")
        try:
            values = np.asarray(ratings, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise LatentAtlasError("ratings must be numbers") from None
        if not (len(users) == len(items) == len(values)):
            raise LatentAtlasError(f"users, items and ratings must have the same length, got {len(users)}, "
                                   f"{len(items)} and {len(values)}")
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise LatentAtlasError(f"ratings[{row}] is missing or not a finite number")
        times = None if timestamps is None else _seconds(timestamps, "timestamps")
        if times is not None and len(times) != len(values):
            raise LatentAtlasError(f"timestamps must have one entry per rating, got {len(times)} for {len(values)}")
        r = _assemble("arrays", "arrays", users, items, values, duplicates, times=times)
        return cls(r.users, r.items, r.values, r.user_ids, r.item_ids,
                   {k: v for k, v in r.meta.items() if k != "source"} | {"source": "arrays"}, r.timestamps)

    @classmethod
    def from_pandas(cls, df, user=None, item=None, rating=None, *, duplicates: str = "last",
                    time=None) -> "Ratings":
        """Ratings from a DataFrame's user, item and rating columns (found by their usual names —
        ``user_id``, ``movieId``, ``stars``… — when not given). A ``timestamp``, ``time``, ``date`` or
        ``datetime`` column (or the one named by ``time``) gives the :attr:`timestamps`: datetimes, Unix
        seconds or ISO date text.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": [4.0, 3.5, 5.0]})
        >>> Ratings.from_pandas(df).shape
        (2, 2)
        """
        from latentatlas.ratings.io import ITEM_NAMES, RATING_NAMES, TIME_NAMES, USER_NAMES

        columns = [str(c) for c in df.columns]

        def pick(given, candidates, what):
            if given is not None:
                if given not in df.columns:
                    raise LatentAtlasError(f"DataFrame has no {what} column {given!r}; columns: {', '.join(columns)}")
                return given
            lower = {c.lower(): c for c in df.columns if isinstance(c, str)}
            for cand in candidates:
                if cand.lower() in lower:
                    return lower[cand.lower()]
            raise LatentAtlasError(f"no {what} column found among {', '.join(columns)}; name it with {what}=")

        u, i, r = pick(user, USER_NAMES, "user"), pick(item, ITEM_NAMES, "item"), pick(rating, RATING_NAMES, "rating")
        if df[[u, i]].isna().to_numpy().any():
            row = int(np.flatnonzero(df[[u, i]].isna().to_numpy().any(axis=1))[0])
            raise LatentAtlasError(f"DataFrame row {row}: missing user or item id")
        try:
            values = df[r].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise LatentAtlasError(f"rating column {r!r} must hold numbers") from None
        t = pick(time, TIME_NAMES, "time") if time is not None or any(
            isinstance(c, str) and c.lower() in {n.lower() for n in TIME_NAMES} for c in df.columns) else None
        times = None if t is None or t in (u, i, r) else _seconds(df[t], f"time column {t!r}")
        return cls.from_arrays(df[u].to_numpy(), df[i].to_numpy(), values, duplicates=duplicates, timestamps=times)

    @classmethod
    def from_sparse(cls, matrix, user_ids=None, item_ids=None) -> "Ratings":
        """Ratings from a SciPy sparse users × items matrix: every stored entry is a rating (an explicitly
        stored 0 is a rating of 0). ``user_ids``/``item_ids`` name the rows and columns (default 0…n−1).

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> Ratings.from_sparse(sp.csr_matrix([[5, 0], [0, 3]])).values.tolist()
        [5.0, 3.0]
        """
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise LatentAtlasError(f"matrix must be a scipy.sparse matrix, got {type(matrix).__name__}")
        coo = matrix.tocoo()
        n_users, n_items = coo.shape
        user_ids = np.arange(n_users) if user_ids is None else _plain_ids(user_ids, "user_ids")
        item_ids = np.arange(n_items) if item_ids is None else _plain_ids(item_ids, "item_ids")
        if len(user_ids) != n_users or len(item_ids) != n_items:
            raise LatentAtlasError(f"matrix is {n_users} x {n_items} but {len(user_ids)} user ids and "
                                   f"{len(item_ids)} item ids were given")
        if len(np.unique(user_ids)) != n_users or len(np.unique(item_ids)) != n_items:
            raise LatentAtlasError("user_ids and item_ids must not repeat")
        coo.sum_duplicates()
        values = np.asarray(coo.data, dtype=np.float64)
        if not np.isfinite(values).all():
            raise LatentAtlasError("matrix holds NaN or infinite values")
        order = np.lexsort((coo.col, coo.row))
        return cls(coo.row[order], coo.col[order], values[order], user_ids, item_ids, {"source": "sparse matrix"})

    # --- shape -----------------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return len(self.values)

    # --- display ---------------------------------------------------------------------------------------
    def _scale(self) -> str:
        if not len(self):
            return ""
        lo, hi = float(self.values.min()), float(self.values.max())
        return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"

    def __repr__(self) -> str:
        scale = self._scale()
        return (f"Ratings({self.n_users:,} users × {self.n_items:,} items, {len(self):,} ratings"
                f"{', ' + scale if scale else ''})")

    def summary(self) -> dict:
        """A few numbers about the table, for people: sizes, density, the rating scale and its mean."""
        out = {"users": self.n_users, "items": self.n_items, "ratings": len(self), "density": self.density}
        if len(self):
            out |= {"rating_min": float(self.values.min()), "rating_max": float(self.values.max()),
                    "rating_mean": float(self.values.mean())}
        if self.meta.get("source"):
            out["source"] = str(self.meta["source"])
        return out

    def _repr_html_(self) -> str:
        from latentatlas.display import html_table

        rows = [("users", f"{self.n_users:,}"), ("items", f"{self.n_items:,}"), ("ratings", f"{len(self):,}"),
                ("density", f"{self.density:.4%}")]
        if len(self):
            rows.append(("scale", f"{self._scale()}, mean {float(self.values.mean()):.3f}"))
            histogram = self.rating_histogram()
            if len(histogram) <= 11:
                rows.append(("histogram", "  ".join(f"{k}: {v:,}" for k, v in histogram.items())))
        rows.append(("ids", f"users {_id_kind(self.user_ids)}, items {_id_kind(self.item_ids)}"))
        if self.meta.get("source"):
            rows.append(("source", str(self.meta["source"])))
        return html_table("Ratings", rows)

    # --- selection -------------------------------------------------------------------------------------
    def __getitem__(self, key):
        """``r[k]``: the ``(user id, item id, rating)`` of rating ``k``; ``r[index]`` with a slice, an
        integer array or a boolean mask: those ratings as a :class:`Ratings` over the same id maps (as
        :meth:`take`), e.g. ``r[r.values >= 4]``.

        scikit-learn's splitters count samples by ``shape[0]``, which for ratings is the number of users, so
        they cannot split a ``Ratings``: give them ``r.to_frame()[["user", "item"]]`` and ``r.values``."""
        if isinstance(key, tuple):  # scikit-learn's _safe_indexing asks X[index, ...]
            raise TypeError("Ratings are indexed by rating positions only (r[k], r[index], r[mask]); for "
                            "scikit-learn's tools pass X=ratings.to_frame()[['user', 'item']], y=ratings.values")
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"rating {key} out of range for {n:,} ratings")
            u, i = self.users[key], self.items[key]
            return self.user_ids[u].item(), self.item_ids[i].item(), float(self.values[key])
        if isinstance(key, slice):
            return self.take(key)
        index = np.asarray(key)
        if index.size == 0:
            index = index.astype(np.int64)
        if index.ndim != 1 or index.dtype.kind not in "iub":
            raise TypeError(f"Ratings are indexed by an integer, a slice, an integer array or a boolean mask; "
                            f"got {type(key).__name__}" + (f" of {index.dtype}" if hasattr(index, "dtype") else ""))
        if index.dtype.kind == "b" and len(index) != len(self):
            raise IndexError(f"boolean mask of length {len(index):,} for {len(self):,} ratings")
        return self.take(index)

    def to_frame(self):
        """The ratings as a pandas DataFrame with columns ``user``, ``item`` (original ids) and ``rating``
        — the ``X`` (``df[["user", "item"]]``) and ``y`` (``df["rating"]``) of scikit-learn's tools — and
        ``timestamp`` (seconds since the epoch) when the ratings have :attr:`timestamps`.

        Examples
        --------
        >>> Ratings.from_arrays(["ann", "bob"], [10, 10], [4, 3]).to_frame()
          user  item  rating
        0  ann    10     4.0
        1  bob    10     3.0
        """
        import pandas as pd

        frame = pd.DataFrame({"user": self.user_ids[self.users], "item": self.item_ids[self.items],
                              "rating": self.values})
        if self.timestamps is not None:
            frame["timestamp"] = self.timestamps
        return frame

    @property
    def density(self) -> float:
        cells = self.n_users * self.n_items
        return len(self) / cells if cells else 0.0

    # --- views -----------------------------------------------------------------------------------------
    def to_coo(self) -> "sp.coo_matrix":
        import scipy.sparse as sp

        return sp.coo_matrix((self.values, (self.users, self.items)), shape=self.shape)

    def to_csr(self) -> "sp.csr_matrix":
        """Users as rows. Duplicates must already be resolved (the readers do)."""
        return self.to_coo().tocsr()

    def to_csc(self) -> "sp.csc_matrix":
        return self.to_coo().tocsc()

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)

    # --- derivation ------------------------------------------------------------------------------------
    def take(self, index: np.ndarray) -> "Ratings":
        """The ratings at ``index`` (bool mask or positions), in the same index space."""
        return Ratings(self.users[index], self.items[index], self.values[index], self.user_ids, self.item_ids,
                       dict(self.meta), None if self.timestamps is None else self.timestamps[index])

    def with_values(self, values: np.ndarray) -> "Ratings":
        return Ratings(self.users, self.items, values, self.user_ids, self.item_ids, dict(self.meta), self.timestamps)

    def compact(self) -> "Ratings":
        """Drop users and items without ratings and renumber the rest contiguously (order kept)."""
        keep_u = np.flatnonzero(self.user_counts())
        keep_i = np.flatnonzero(self.item_counts())
        remap_u = np.full(self.n_users, -1, dtype=np.int64)
        remap_u[keep_u] = np.arange(len(keep_u))
        remap_i = np.full(self.n_items, -1, dtype=np.int64)
        remap_i[keep_i] = np.arange(len(keep_i))
        return Ratings(remap_u[self.users], remap_i[self.items], self.values, self.user_ids[keep_u],
                       self.item_ids[keep_i], dict(self.meta), self.timestamps)

    def user_index(self, user_id) -> int:
        """The index of an original user id; a clear error when it is unknown."""
        return _lookup(self.user_ids, user_id, "user")

    def item_index(self, item_id) -> int:
        return _lookup(self.item_ids, item_id, "item")

    def rating_histogram(self) -> dict[str, int]:
        vals, counts = np.unique(self.values, return_counts=True)
        if len(vals) > 20:  # continuous ratings: 10 equal-width bins
            counts, edges = np.histogram(self.values, bins=10)
            return {f"{edges[j]:.3g}-{edges[j + 1]:.3g}": int(c) for j, c in enumerate(counts)}
        return {f"{v:g}": int(c) for v, c in zip(vals, counts)}

    # --- persistence (npz + JSON metadata, no pickle) --------------------------------------------------
    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        out = {f"{prefix}users": self.users, f"{prefix}items": self.items, f"{prefix}values": self.values}
        if self.timestamps is not None:
            out[f"{prefix}timestamps"] = self.timestamps
        return out

    def save(self, path: str | Path) -> Path:
        meta = {**self.meta, "source_format": self.meta.get("format"), "format": "latentatlas.ratings",
                "version": FORMAT_VERSION}
        return save_npz(path, **self.arrays(), user_ids=self.user_ids, item_ids=self.item_ids,
                        meta=np.array(to_json(meta, indent=None)))

    @classmethod
    def load(cls, path: str | Path) -> "Ratings":
        import json

        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("format") != "latentatlas.ratings":
                    raise LatentAtlasError(f"{path}: not a latentatlas ratings file")
                if meta.get("version", 0) > FORMAT_VERSION:
                    raise LatentAtlasError(f"{path}: ratings file format version {meta['version']} is newer "
                                           f"than this latentatlas understands ({FORMAT_VERSION}); upgrade latentatlas")
                times = z["timestamps"] if "timestamps" in z.files else None  # files before timestamps have none
                return cls(z["users"], z["items"], z["values"], z["user_ids"], z["item_ids"], meta, times)
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, LatentAtlasError):
                raise
            raise LatentAtlasError(f"{path}: cannot read ratings file ({exc})") from None


def _seconds(values, name: str) -> np.ndarray:
    """Times as float64 seconds since the epoch: numbers are taken as Unix seconds, datetimes (numpy or
    pandas) are converted, text is parsed as ISO dates (``2016-03-09 00:44:15``); one-line errors."""
    from latentatlas.ratings.io import parse_times

    arr = values.to_numpy() if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray) else values
    arr = np.asarray(arr)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind == "M":
        bad = np.isnat(arr)
        seconds = arr.astype("datetime64[us]").astype(np.int64) / 1e6
    elif arr.dtype.kind in "iuf":
        seconds = arr.astype(np.float64)
        bad = ~np.isfinite(seconds)
    elif arr.dtype.kind == "b":
        raise LatentAtlasError(f"{name}: expected times (seconds since the epoch, datetimes or ISO dates), "
                               f"found booleans")
    else:
        from datetime import datetime

        import pandas as pd

        objects = arr.astype(object)
        if len(objects) and all(isinstance(x, (datetime, np.datetime64)) or x is None for x in objects):
            return _seconds(pd.to_datetime(pd.Series(objects), utc=True).dt.tz_localize(None).to_numpy(), name)
        seconds, bad = parse_times([None if x is None or (isinstance(x, float) and x != x) else str(x)
                                    for x in objects])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LatentAtlasError(f"{name}[{row}] is missing or not a time (seconds since the epoch, a datetime "
                               f"or an ISO date such as 2016-03-09 00:44:15)")
    return seconds


def _plain_ids(ids, name: str) -> np.ndarray:
    """Ids as int64 when all are integral numbers, else as strings (mixed types become strings)."""
    arr = np.asarray(ids)
    if arr.dtype.kind == "f" and not isinstance(ids, np.ndarray) and arr.size and np.abs(arr).max() >= 2.0 ** 53:
        arr = np.asarray(ids, dtype=object)  # big Python ints: numpy would round them to floats
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "iuU":
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise LatentAtlasError(f"{name}: ids must be integers or strings, found non-integral numbers")
        if arr.size and np.abs(arr).max() >= 2.0 ** 63:
            raise LatentAtlasError(f"{name}: ids beyond the int64 range cannot be held as numbers; give them "
                                   "as strings or uint64")
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise LatentAtlasError(f"{name}: ids must be integers or strings, found booleans")
    if any(x is None or (isinstance(x, float) and x != x) for x in arr):
        raise LatentAtlasError(f"{name}: missing id (None or NaN)")
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in arr):
        try:
            return arr.astype(np.int64)
        except OverflowError:  # ids beyond int64: kept exactly, as text
            return arr.astype(str)
    return arr.astype(str)


def _id_kind(ids: np.ndarray) -> str:
    return "integer" if ids.dtype.kind in "iu" else "text"


def _lookup(ids: np.ndarray, key, what: str) -> int:
    if ids.dtype.kind in "iu":
        try:
            key = int(key)
        except (TypeError, ValueError):
            raise LatentAtlasError(f"unknown {what} id {key!r} (ids are integers)") from None
    else:
        key = str(key)
    hits = np.flatnonzero(ids == key)
    if len(hits) == 0:
        raise LatentAtlasError(f"unknown {what} id {key!r}")
    return int(hits[0])
