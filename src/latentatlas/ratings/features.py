"""Side attributes of users or items (genres, age, occupation, city…) as grouped sparse feature columns.

A :class:`Features` table has one row per entity id and columns grouped by the source field they came from
(``"genre"``, ``"age"``, ``"occupation"``); the Bayesian model gives each group its own hyper-prior, as
Bayesian factorisation machines (myFM, libFM) do.

Encoding (:meth:`Features.from_frame`):

* a categorical field -> one column per value, ``"field=value"``, value 1; a missing value -> no entry;
* a multi-valued field (strings split on ``sep``, lists, or several 0/1 indicator columns given as one group,
  such as MovieLens ``u.item`` genres) -> value ``1/count`` over the row's values in that group;
* a numeric field -> one column named after the field, standardised (mean 0, sd 1 over the rows that have a
  value), missing -> 0.

Files (MovieLens ``u.item``/``u.user``/``movies.csv``, Yelp ``business.json``, any CSV/TSV/Parquet/JSON-lines
table) are read by :func:`latentatlas.ratings.io.features.read_features`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from latentatlas.errors import LatentAtlasError, printable

#: Column names recognised as the entity id when ``id_column`` is not given (the ratings readers' names).
from latentatlas.ratings.io.readers import ITEM_NAMES, USER_NAMES

ID_NAMES = ITEM_NAMES + USER_NAMES + ("id",)
KINDS = ("numeric", "categorical", "multi")

__all__ = ["Features", "as_features", "ID_NAMES", "KINDS"]


def _typed_ids(values, where: str) -> np.ndarray:
    """Ids as the ratings keep them: int64 when all integral (or all canonical integer text), else str."""
    import pandas as pd

    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise LatentAtlasError(f"{where}: an id is missing (row {int(np.flatnonzero(np.isnan(arr))[0]) + 1})")
        if np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        return arr.astype(str)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            return arr.astype(str)
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise LatentAtlasError(f"{where}: the id column holds true/false values, not ids")
    series = pd.Series(arr, dtype=object)
    missing = pd.isna(series).to_numpy()
    if missing.any():
        raise LatentAtlasError(f"{where}: an id is missing (row {int(np.flatnonzero(missing)[0]) + 1})")
    if len(series) and pd.api.types.infer_dtype(series) == "string":
        import pyarrow as pa
        import pyarrow.compute as pc

        from latentatlas.ratings.io.readers import _canonical_ints

        text = pa.array(series.to_numpy(dtype=object))
        ints = _canonical_ints(text)
        if ints is not None:
            return np.asarray(ints, dtype=np.int64)
        return np.asarray(pc.utf8_trim_whitespace(text).to_numpy(zero_copy_only=False)).astype(str)
    text = series.astype(str).str.strip()
    if len(text) and text.str.fullmatch(r"0|-?[1-9][0-9]*").all():
        try:
            return text.to_numpy().astype(str).astype(np.int64)
        except (OverflowError, ValueError):  # beyond int64: the ids stay text, every digit kept
            pass
    return text.to_numpy().astype(str)


def shown_id(value) -> str:
    """An id for a message: integers bare, text quoted (``1``, ``'b1'``)."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(printable(str(value)))


def _comparable(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two id arrays in one comparable type (text when one side is text and the other integer)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return a.astype(np.int64), b.astype(np.int64)
    return a.astype(str), b.astype(str)


@dataclass(frozen=True, eq=False, repr=False)
class Features:
    """Side attributes of users or of items, one row per entity id, columns grouped (a group = one source
    field: ``"genre"``, ``"age"``, ``"occupation"``, ``"city"``); each group gets its own hyper-prior in the
    Bayesian model.

    ``matrix[r, c]`` is the value of column ``columns[c]`` for entity ``ids[r]``; ``groups[c]`` indexes
    ``group_names``. ``meta`` says where the table came from (``source``, ``format``, ``id_column``, ``kinds``:
    the encoding of each group)."""

    ids: np.ndarray
    matrix: sp.csr_matrix
    columns: tuple[str, ...]
    groups: np.ndarray
    group_names: tuple[str, ...]
    meta: dict | None = None

    def __post_init__(self):
        ids = np.asarray(self.ids)
        ids = ids.astype(np.int64) if ids.dtype.kind in "iu" else ids.astype(str)
        matrix = sp.csr_matrix(self.matrix, dtype=np.float64)
        matrix.sort_indices()
        columns = tuple(str(c) for c in self.columns)
        groups = np.ascontiguousarray(self.groups, dtype=np.int32)
        group_names = tuple(str(g) for g in self.group_names)
        if ids.ndim != 1:
            raise ValueError("ids must be a 1-D array")
        if matrix.shape != (len(ids), len(columns)):
            raise ValueError(f"matrix is {matrix.shape[0]} x {matrix.shape[1]}, expected {len(ids)} ids x "
                             f"{len(columns)} columns")
        if groups.shape != (len(columns),):
            raise ValueError("groups must have one entry per column")
        if len(groups) and (groups.min() < 0 or groups.max() >= len(group_names)):
            raise ValueError("groups must index group_names")
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        if len(ids) > 1:
            same = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
            if len(same):
                first = min(order[same + 1])  # the first row (in file order) that repeats an earlier id
                raise LatentAtlasError(f"{self._where()}: duplicate id {shown_id(ids[first])} "
                                       f"(row {int(first) + 1} repeats an earlier row)")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "group_names", group_names)
        object.__setattr__(self, "meta", dict(self.meta or {}))
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_sorted", sorted_ids)

    def _where(self) -> str:
        meta = self.meta or {}
        return str(meta.get("source") or "features")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"Features({len(self.ids)} ids, {len(self.columns)} columns in {len(self.group_names)} groups: "
                f"{', '.join(self.group_names)})")

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def group_sizes(self) -> dict[str, int]:
        """Number of columns in each group, in group order."""
        counts = np.bincount(self.groups, minlength=len(self.group_names))
        return {name: int(n) for name, n in zip(self.group_names, counts)}

    def describe(self) -> str:
        """One line: the groups and their column counts, e.g. ``genre (19), year (1) — 20 columns``."""
        parts = [f"{name} ({n})" for name, n in self.group_sizes().items()]
        return f"{', '.join(parts) or 'no groups'} — {self.n_columns} columns, {len(self)} ids"

    # --- alignment -------------------------------------------------------------------------------------------
    def positions(self, ids) -> np.ndarray:
        """Row of each of ``ids`` in this table (int64), -1 for an id not in it."""
        ids = np.asarray(ids)
        if ids.ndim != 1:
            ids = ids.reshape(-1)
        if len(ids) == 0 or len(self.ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        mine, theirs = _comparable(self._sorted, ids)
        at = np.searchsorted(mine, theirs)
        at = np.minimum(at, len(mine) - 1)
        found = mine[at] == theirs
        return np.where(found, self._order[at], -1).astype(np.int64)

    def aligned(self, ids) -> sp.csr_matrix:
        """The feature matrix with its rows in the order of ``ids``: a zero row for an id not in this table."""
        pos = self.positions(ids)
        have = pos >= 0
        select = sp.csr_matrix((np.ones(int(have.sum())), (np.flatnonzero(have), pos[have])),
                               shape=(len(pos), len(self.ids)))
        out = sp.csr_matrix(select @ self.matrix, dtype=np.float64)
        out.sort_indices()
        return out

    def overlap(self, ids) -> int:
        """How many of ``ids`` have a row here."""
        return int((self.positions(ids) >= 0).sum())

    def extra_ids(self, ids) -> np.ndarray:
        """The ids of this table that are not in ``ids`` (cold-start candidates), in table order."""
        other = np.asarray(ids)
        if len(other) == 0:
            return self.ids.copy()
        theirs, mine = _comparable(other, self.ids)
        return self.ids[~np.isin(mine, theirs)]

    def select(self, groups: Sequence[str]) -> "Features":
        """Only the columns of the named groups (in the order given)."""
        wanted = list(groups)
        unknown = [g for g in wanted if g not in self.group_names]
        if unknown:
            raise LatentAtlasError(f"{self._where()}: no feature group {unknown[0]!r}; the groups are "
                                   f"{', '.join(self.group_names)}")
        keep, new_groups = [], []
        for g_new, name in enumerate(wanted):
            cols = np.flatnonzero(self.groups == self.group_names.index(name))
            keep.extend(cols.tolist())
            new_groups.extend([g_new] * len(cols))
        return Features(self.ids, self.matrix[:, keep], tuple(self.columns[c] for c in keep),
                        np.array(new_groups, dtype=np.int32), tuple(wanted), meta=self.meta)

    # --- persistence (no pickle) -------------------------------------------------------------------------------
    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        m = self.matrix
        return {f"{prefix}ids": self.ids, f"{prefix}data": m.data, f"{prefix}indices": m.indices,
                f"{prefix}indptr": m.indptr, f"{prefix}columns": np.array(self.columns, dtype=str),
                f"{prefix}groups": self.groups, f"{prefix}group_names": np.array(self.group_names, dtype=str)}

    @classmethod
    def from_arrays(cls, arrays: Mapping, prefix: str = "") -> "Features":
        ids = np.asarray(arrays[f"{prefix}ids"])
        columns = tuple(np.asarray(arrays[f"{prefix}columns"]).astype(str).tolist())
        matrix = sp.csr_matrix((arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]),
                               shape=(len(ids), len(columns)))
        return cls(ids, matrix, columns, np.asarray(arrays[f"{prefix}groups"]),
                   tuple(np.asarray(arrays[f"{prefix}group_names"]).astype(str).tolist()))

    # --- construction --------------------------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, frame, id_column: str | None = None, columns=None, *, sep: str = "|",
                   kinds: Mapping[str, str] | None = None, source: str | None = None) -> "Features":
        """Features from a pandas DataFrame, one row per entity.

        ``id_column``: the column of entity ids; by default the first column named like an id (``item``,
        ``movieId``, ``business_id``, ``user_id``… or ``id``), else a named index. ``columns``: the feature
        fields, by default every other column; a list of column names, or a mapping ``{group: column or list
        of columns}`` where a list of 0/1 indicator columns makes one multi-valued group (MovieLens genres).
        ``sep``: the separator of multi-valued text fields (``"Action|Comedy"``); values are stripped of
        spaces. ``kinds``: ``{group: "numeric" | "categorical" | "multi"}`` overrides the detection (numbers
        -> numeric; text -> categorical, or multi-valued when a value holds ``sep`` or is a list).
        ``source`` names the table in error messages."""
        import pandas as pd

        where = source or "features"
        if not isinstance(frame, pd.DataFrame):
            raise LatentAtlasError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
        if not sep:
            raise LatentAtlasError("sep: the multi-valued separator must not be empty")
        frame = frame.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        names = list(frame.columns)
        if id_column is None:
            found = next((n for n in ID_NAMES if n in names), None)
            if found is None:
                lowered = {n.lower(): n for n in names}
                found = next((lowered[n.lower()] for n in ID_NAMES if n.lower() in lowered), None)
            if found is None and frame.index.name is not None:
                frame = frame.reset_index()
                found = str(frame.columns[0])
                frame.columns = [str(c) for c in frame.columns]
                names = list(frame.columns)
            if found is None:
                raise LatentAtlasError(f"{where}: no id column (looked for {', '.join(ID_NAMES[:9])}, id…); "
                                       f"name one with id_column= (--*-feature-id); the columns are "
                                       f"{', '.join(printable(n) for n in names[:20])}")
            id_column = found
        elif str(id_column) not in names:
            if frame.index.name is not None and str(frame.index.name) == str(id_column):
                frame = frame.reset_index()
                frame.columns = [str(c) for c in frame.columns]
                names = list(frame.columns)
            else:
                raise LatentAtlasError(f"{where}: id column {printable(id_column)!r} not found; the columns are "
                                       f"{', '.join(printable(n) for n in names[:20])}")
        id_column = str(id_column)
        if len(frame) == 0:
            raise LatentAtlasError(f"{where}: the table has no rows, only the columns "
                                   f"{', '.join(printable(n) for n in names[:20])}")
        ids = _typed_ids(frame[id_column].to_numpy(), where)

        if columns is None:
            spec = {n: n for n in names if n != id_column}
        elif isinstance(columns, str):
            spec = {c.strip(): c.strip() for c in columns.split(",") if c.strip()}
        elif isinstance(columns, Mapping):
            spec = {str(g): v for g, v in columns.items()}
        else:
            spec = {str(c): str(c) for c in columns}
        for group, cols in spec.items():
            for col in ([cols] if isinstance(cols, str) else list(cols)):
                if str(col) not in names:
                    raise LatentAtlasError(f"{where}: unknown feature column {printable(col)!r}; the columns are "
                                           f"{', '.join(printable(n) for n in names[:30])}")
                if str(col) == id_column:
                    raise LatentAtlasError(f"{where}: {printable(col)!r} is the id column, not a feature")
        kinds = {str(k): str(v) for k, v in dict(kinds or {}).items()}
        for group, kind in kinds.items():
            if kind not in KINDS:
                raise LatentAtlasError(f"kinds: {kind!r} for {group!r} is not one of {', '.join(KINDS)}")

        n = len(ids)
        rows, cols_out, vals = [], [], []
        out_columns: list[str] = []
        out_groups: list[int] = []
        group_names: list[str] = []
        used_kinds: dict[str, str] = {}
        for group, cols in spec.items():
            g = len(group_names)
            if not isinstance(cols, str):  # several indicator columns -> one multi-valued group
                cols = [str(c) for c in cols]
                block = frame[cols].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(dtype=np.float64)
                if not np.isfinite(block).all():
                    row, col = np.argwhere(~np.isfinite(block))[0]
                    raise LatentAtlasError(f"{where}: field {printable(cols[col])!r} row {int(row) + 1}: "
                                           f"{block[row, col]} is not a finite number")
                on = block != 0
                count = on.sum(axis=1)
                r, c = np.nonzero(on)
                rows.append(r)
                cols_out.append(c + len(out_columns))
                vals.append(1.0 / count[r])
                out_columns.extend(f"{group}={c}" for c in cols)
                out_groups.extend([g] * len(cols))
                group_names.append(group)
                used_kinds[group] = "multi"
                continue
            series = frame[cols]
            kind = kinds.get(group) or _detect(series, sep)
            used_kinds[group] = kind
            if kind == "numeric":
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
                bad = np.flatnonzero(~np.isfinite(values) & ~pd.isna(series).to_numpy())
                if len(bad):
                    raise LatentAtlasError(f"{where}: field {printable(cols)!r} row {int(bad[0]) + 1}: "
                                           f"{printable(series.iloc[bad[0]])!r} is not a "
                                           f"{'number' if np.isnan(values[bad[0]]) else 'finite number'}")
                have = ~np.isnan(values)
                out = np.zeros(n)
                if have.any():
                    mean = values[have].mean()
                    sd = values[have].std()
                    out[have] = (values[have] - mean) / sd if sd > 0 else 0.0
                r = np.flatnonzero(out != 0)
                rows.append(r)
                cols_out.append(np.full(len(r), len(out_columns)))
                vals.append(out[r])
                out_columns.append(group)
                out_groups.append(g)
            else:
                r, c, x, vocabulary = _encode_values(series, sep if kind == "multi" else None)
                rows.append(r)
                cols_out.append(c + len(out_columns))
                vals.append(x)
                out_columns.extend(f"{group}={v}" for v in vocabulary)
                out_groups.extend([g] * len(vocabulary))
            group_names.append(group)
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
        x = np.concatenate(vals) if vals else np.zeros(0)
        matrix = sp.csr_matrix((x, (r, c)), shape=(n, len(out_columns)))
        meta = {"source": where, "id_column": id_column, "kinds": used_kinds}
        return cls(ids, matrix, tuple(out_columns), np.array(out_groups, dtype=np.int32), tuple(group_names),
                   meta=meta)


def _texty(series) -> bool:
    """Object cells or pandas' string dtype (the default for text from pandas 3 on)."""
    import pandas as pd

    return series.dtype == object or isinstance(series.dtype, pd.StringDtype)


def _detect(series, sep: str) -> str:
    """numeric for number columns (bool included), multi when a value is a list or text holding ``sep``,
    else categorical."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.infer_dtype(series, skipna=True) == "string":
        return "multi" if series.str.contains(sep, regex=False).any() else "categorical"
    for v in series.tolist():
        if isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
            return "multi"
        if isinstance(v, str) and sep in v:
            return "multi"
    return "categorical"


def _cell_texts(values):
    """Non-missing cells (a pandas Series) as stripped text; integral floats without their ``.0``."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values):
        arr = values.to_numpy(dtype=np.float64)
        text = values.astype(str)
        whole = np.isfinite(arr) & (arr == np.round(arr)) & (np.abs(arr) < 2**62)
        if whole.any():
            text[whole] = arr[whole].astype(np.int64).astype(str)
        return text.str.strip()
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        return values.astype(str)
    text = values.astype(str)
    if len(text) and (text.str.match(r"\s") | text.str.contains(r"\s$", regex=True)).any():
        return text.str.strip()
    return text


def _encode_arrow(series, sep: str | None):
    """:func:`_encode_values` in Arrow's compute kernels for text cells (or lists of text); None for other
    cells (numbers, mixed types), which take the pandas path."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not _texty(series) or pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        if not (series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "mixed"):
            return None
    try:
        arr = pa.array(series.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None
    n = len(arr)
    if pa.types.is_null(arr.type):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), []
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        if sep is None:
            values, rows = arr, np.arange(n, dtype=np.int64)
        else:
            lists = pc.split_pattern(arr, sep)
            values, rows = pc.list_flatten(lists), pc.list_parent_indices(lists).to_numpy().astype(np.int64)
    elif pa.types.is_list(arr.type) and pa.types.is_string(arr.type.value_type):
        values, rows = pc.list_flatten(arr), pc.list_parent_indices(arr).to_numpy().astype(np.int64)
    else:
        return None
    values = pc.utf8_trim_whitespace(values)
    keep = pc.fill_null(pc.and_(pc.is_valid(values), pc.not_equal(values, "")), False)
    keep_np = keep.to_numpy(zero_copy_only=False)
    values, rows = values.filter(keep), rows[keep_np]
    encoded = pc.dictionary_encode(values)
    dictionary = encoded.dictionary.to_pylist()
    order = sorted(range(len(dictionary)), key=dictionary.__getitem__)
    rank = np.empty(len(dictionary), dtype=np.int64)
    rank[order] = np.arange(len(dictionary), dtype=np.int64)
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)] if len(dictionary) else \
        np.zeros(0, np.int64)
    vocabulary = [dictionary[k] for k in order]
    if sep is not None and len(rows):  # a value repeated in a row counts once
        width = len(vocabulary) + 1
        key = np.sort(rows * width + codes)
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        rows, codes = key // width, key % width
    count = np.bincount(rows, minlength=n) if len(rows) else np.zeros(n, dtype=np.int64)
    weights = 1.0 / count[rows] if len(rows) else np.zeros(0)
    return rows, codes, weights, vocabulary


def _encode_values(series, sep: str | None):
    """(rows, codes, weights, vocabulary) of a categorical (``sep`` None) or multi-valued field: the distinct
    non-empty values of each row, each worth 1/count of the row's values; the vocabulary sorted."""
    import pandas as pd

    fast = _encode_arrow(series, sep)
    if fast is not None:
        return fast
    s = pd.Series(series.to_numpy(), index=np.arange(len(series)))
    multi = sep is not None and _texty(s)
    if multi:
        split = s.str.split(sep, regex=False)
        s = split.where(split.notna(), s)  # strings split; lists and other cells as they are
        if any(isinstance(v, (set, frozenset)) for v in s.to_numpy()):
            s = s.map(lambda v: sorted(v, key=str) if isinstance(v, (set, frozenset)) else v)
        s = s.explode()
    s = s[s.notna().to_numpy()]
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) != "string":  # numbers among text
        s = s.map(lambda v: v if isinstance(v, str) else str(int(v)) if isinstance(v, float) and v.is_integer()
                  else str(v))
    text = _cell_texts(s)
    keep = (text != "").to_numpy()
    rows = s.index.to_numpy()[keep].astype(np.int64)
    codes, vocabulary = pd.factorize(text[keep], sort=True)
    codes = np.asarray(codes, dtype=np.int64)
    if multi and len(rows):  # a value repeated in a row counts once
        key = np.sort(rows * (len(vocabulary) + 1) + codes)
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        rows, codes = key // (len(vocabulary) + 1), key % (len(vocabulary) + 1)
    count = np.bincount(rows, minlength=len(series)) if len(rows) else np.zeros(len(series), dtype=np.int64)
    weights = 1.0 / count[rows] if len(rows) else np.zeros(0)
    return rows, codes, weights, [str(v) for v in vocabulary]


def as_features(obj, kind: str) -> Features | None:
    """``obj`` as :class:`Features`: a Features (as is), a pandas DataFrame (:meth:`Features.from_frame`), a
    path (:func:`~latentatlas.ratings.io.features.read_features`) or None (None). ``kind`` is ``"user"`` or
    ``"item"``; it names the argument (``user_features``/``item_features``) in the error for anything else."""
    if obj is None or isinstance(obj, Features):
        return obj
    arg = f"{kind}_features"
    try:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return Features.from_frame(obj, source=arg)
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if isinstance(obj, (str, os.PathLike)):
        from latentatlas.ratings.io.features import read_features

        return read_features(obj, kind=kind)
    raise LatentAtlasError(f"{arg}: expected a Features, a pandas DataFrame or a file path, got "
                           f"{type(obj).__name__}")
