"""Readers: rating files of every common shape to one :class:`~latentatlas.ratings.data.Ratings`.

Parsing is pyarrow's (multithreaded C++); only the three needed columns are kept, so memory follows the
number of ratings, not the size of the file (a Yelp review file is mostly review text). When pyarrow
rejects a file, or a value is missing or not a number, the file is scanned once more in Python to name the
first bad line: that slow path runs only on the way to an error.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.data import Ratings

FORMATS = ("npy", "csv", "tsv", "parquet", "movielens", "yelp", "jsonl")
DUPLICATE_POLICIES = ("last", "first", "mean")

USER_NAMES = ("user", "user_id", "userid", "userId", "uid", "reviewerID", "customer_id")
ITEM_NAMES = ("item", "item_id", "itemid", "itemId", "movie_id", "movieId", "movieid", "business_id",
              "iid", "asin", "product_id", "isbn", "ISBN", "book_id")
RATING_NAMES = ("rating", "ratings", "stars", "score", "overall", "value", "Book-Rating")


@dataclass(frozen=True)
class _Columns:
    user: str | int | None = None
    item: str | int | None = None
    rating: str | int | None = None


def detect_format(path: Path) -> str:
    """The reader for ``path`` from its name, and from its first line where the name is not enough."""
    name = path.name.lower()
    for ext in (".gz", ".bz2"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(".npy"):
        return "npy"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "jsonl"
    if name in ("u.data", "ratings.dat") or name.endswith(".dat"):
        return "movielens"
    if name.endswith((".tsv", ".tab", ".data")):
        return "tsv"
    if name.endswith(".csv"):
        return "csv"
    first = _first_line(path)
    if first.lstrip().startswith("{"):
        return "jsonl"
    if "::" in first:
        return "movielens"
    return "tsv" if "\t" in first else "csv"


def read_ratings(path: str | os.PathLike, format: str | None = None, *, user_col: str | int | None = None,
                 item_col: str | int | None = None, rating_col: str | int | None = None,
                 sep: str | None = None, header: bool | None = None, duplicates: str = "last") -> Ratings:
    """Read a ratings file into :class:`Ratings`, mapping arbitrary user and item ids to indices.

    ``format`` is one of :data:`FORMATS` (default: from the file name and content). Columns are found by
    name (``user_id``, ``movieId``, ``stars``…) or position, or given as a name or 0-based index. Repeated
    (user, item) pairs keep the last rating by default (``duplicates="first"`` or ``"mean"`` otherwise);
    their count is ``meta["duplicates"]``. Integer ids are numbered in sorted order, string ids in order of
    first appearance.
    """
    path = Path(path)
    if duplicates not in DUPLICATE_POLICIES:
        raise LatentAtlasError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if not path.exists():
        raise LatentAtlasError(f"{path}: no such file")
    if path.is_dir():
        raise LatentAtlasError(f"{path}: is a directory, not a ratings file")
    if path.stat().st_size == 0:
        raise LatentAtlasError(f"{path}: file is empty")
    fmt = (format or detect_format(path)).lower()
    if fmt == "yelp":
        fmt = "jsonl"
    if fmt not in FORMATS:
        raise LatentAtlasError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    cols = _Columns(user_col, item_col, rating_col)
    if fmt == "npy":
        users, items, values = _read_npy(path, cols)
    elif fmt == "parquet":
        users, items, values = _read_parquet(path, cols)
    elif fmt == "jsonl":
        users, items, values = _read_jsonl(path, cols)
    elif fmt == "movielens":
        users, items, values = _read_movielens(path, cols)
    else:
        delimiter = sep or ("\t" if fmt == "tsv" else None)
        users, items, values = _read_delimited(path, cols, delimiter, header)
    if len(values) == 0:
        raise LatentAtlasError(f"{path}: no ratings in file")
    return _assemble(path, fmt, users, items, values, duplicates)


# --- assembling ids and duplicates ------------------------------------------------------------------------
def _encode(column, what: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32, original ids) for one id column (an Arrow array or numpy array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        if column.null_count:
            row = int(np.flatnonzero(np.asarray(column.is_null()))[0])
            raise LatentAtlasError(f"{path}: row {row + 1}: missing {what} id")
        if pa.types.is_integer(column.type):
            column = column.to_numpy()
        elif pa.types.is_floating(column.type):
            arr = column.to_numpy()
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise LatentAtlasError(f"{path}: {what} ids must be integers or strings, found non-integral numbers")
            column = arr.astype(np.int64)
        else:
            column = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            encoded = column.dictionary_encode()
            return (np.asarray(encoded.indices, dtype=np.int32),
                    np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=str))
    arr = np.asarray(column)
    ids, index = np.unique(arr, return_inverse=True)
    return index.astype(np.int32), ids


def _assemble(path: Path, fmt: str, users, items, values: np.ndarray, duplicates: str) -> Ratings:
    u, user_ids = _encode(users, "user", path)
    i, item_ids = _encode(items, "item", path)
    values = np.asarray(values, dtype=np.float64)
    keys = u.astype(np.int64) * len(item_ids) + i
    n = len(keys)
    if duplicates == "mean":
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        sums = np.bincount(inverse, weights=values)
        counts = np.bincount(inverse)
        keep = np.sort(first)
        vals = (sums / counts)[inverse[keep]]
    else:
        order = np.arange(n)[::-1] if duplicates == "last" else np.arange(n)
        _, pos = np.unique(keys[order], return_index=True)
        keep = np.sort(order[pos])
        vals = values[keep]
    n_dup = n - len(keep)
    if n_dup:
        u, i = u[keep], i[keep]
    else:
        vals = values
    meta = {"source": str(path), "format": fmt, "lines_read": n, "duplicates": int(n_dup),
            "duplicate_policy": duplicates}
    return Ratings(u, i, vals, user_ids, item_ids, meta)


def _check_values(path: Path, values: np.ndarray, what: str = "rating", line_of=lambda row: row + 1) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LatentAtlasError(f"{path}: line {line_of(row)}: {what} is missing or not a number")


# --- .npy triplets ---------------------------------------------------------------------------------------
def _read_npy(path: Path, cols: _Columns):
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise LatentAtlasError(f"{path}: not a plain numeric .npy array ({exc})") from None
    except OSError as exc:
        raise LatentAtlasError(f"{path}: cannot read .npy file ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise LatentAtlasError(f"{path}: expected an N×3 array of (user, item, rating) rows, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise LatentAtlasError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    u, i, r = (_position(c, d, 3, path) for c, d in ((cols.user, 0), (cols.item, 1), (cols.rating, 2)))
    values = arr[:, r].astype(np.float64)
    _check_values(path, values, line_of=lambda row: f"{row} (row index)")
    ids = []
    for c, what in ((u, "user"), (i, "item")):
        col = arr[:, c]
        if col.dtype.kind == "f":
            if not np.all(np.isfinite(col)) or np.any(col != np.round(col)):
                row = int(np.flatnonzero(~np.isfinite(col) | (col != np.round(col)))[0])
                raise LatentAtlasError(f"{path}: row {row}: {what} id {col[row]!r} is not an integer")
            col = col.astype(np.int64)
        ids.append(col)
    return ids[0], ids[1], values


def _position(col, default: int, width: int, path: Path) -> int:
    if col is None:
        return default
    try:
        k = int(col)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{path}: columns of a .npy file are chosen by 0-based index, got {col!r}") from None
    if not 0 <= k < width:
        raise LatentAtlasError(f"{path}: column index {k} is out of range (the array has {width} columns)")
    return k


# --- tables: CSV/TSV, MovieLens, Parquet ------------------------------------------------------------------
def _pick(names: list[str], wanted, candidates: tuple[str, ...], default: int | None, what: str,
          path: Path) -> str:
    if wanted is not None:
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
            k = int(wanted)
            if not 0 <= k < len(names):
                raise LatentAtlasError(f"{path}: {what} column index {k} is out of range "
                                       f"(the file has {len(names)} columns)")
            return names[k]
        if wanted not in names:
            raise LatentAtlasError(f"{path}: missing column {wanted!r} for the {what} "
                                   f"(columns are: {', '.join(names)})")
        return wanted
    lower = {n.lower(): n for n in names}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    if default is not None and default < len(names):
        return names[default]
    raise LatentAtlasError(f"{path}: cannot find the {what} column (columns are: {', '.join(names)}); "
                           f"name it with --{what}-col")


def _sniff_delimiter(line: str) -> str:
    for d in ("\t", ",", ";", "|"):
        if d in line:
            return d
    return " " if " " in line.strip() else ","


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
        return True
    except ValueError:
        return False


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """A first line is a header when a column that holds numbers below it holds text in it."""
    if second is None or len(second) != len(first):
        return not all(_is_number(f) for f in first if f.strip())
    return any(_is_number(b) and not _is_number(a) for a, b in zip(first, second))


def _read_delimited(path: Path, cols: _Columns, delimiter: str | None, header: bool | None,
                    skip_columns: tuple[int, ...] = ()):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    first = _first_line(path)
    if not first.strip():
        raise LatentAtlasError(f"{path}: line 1 is empty; expected a header or a first rating")
    delimiter = delimiter or _sniff_delimiter(first)
    fields = first.split(delimiter)
    if header is None:
        second = _first_line(path, skip=1)
        header = _looks_like_header(fields, second.split(delimiter) if second is not None else None)
    if header:
        names = [f.strip().strip('"') for f in fields]
    else:
        names = [f"column{k}" for k in range(len(fields))]
    user = _pick(names, cols.user, USER_NAMES if header else (), 0, "user", path)
    item = _pick(names, cols.item, ITEM_NAMES if header else (), 1, "item", path)
    rating = _pick(names, cols.rating, RATING_NAMES if header else (), 2, "rating", path)
    if len({user, item, rating}) < 3:
        raise LatentAtlasError(f"{path}: the user, item and rating columns must differ (got {user}, {item}, {rating})")
    col_types = {rating: pa.float64()}
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1 if header else 0, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=pcsv.ConvertOptions(include_columns=[user, item, rating], column_types=col_types,
                                                strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _raise_located(path, exc, lambda line: _delimited_line_problem(line, delimiter, names, user, item, rating),
                       header=header)
    values = table.column(rating).to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.isfinite(values)):
        _raise_located(path, None, lambda line: _delimited_line_problem(line, delimiter, names, user, item, rating),
                       header=header)
    return table.column(user), table.column(item), values


def _delimited_line_problem(line: str, delimiter: str, names, user, item, rating) -> str | None:
    if not line.strip():
        return None
    fields = line.rstrip("\r\n").split(delimiter)
    if len(fields) != len(names):
        return f"expected {len(names)} fields separated by {delimiter!r}, found {len(fields)}"
    for col, what in ((user, "user id"), (item, "item id")):
        if not fields[names.index(col)].strip():
            return f"missing {what}"
    return _rating_problem(fields[names.index(rating)].strip().strip('"'))


def _rating_problem(text) -> str | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return "rating is missing"
    if isinstance(text, bool):
        return f"rating {text!r} is not a number"
    try:
        value = float(text)
    except (TypeError, ValueError):
        return f"rating {text!r} is not a number"
    if not math.isfinite(value):
        return f"rating {text!r} is not a finite number"
    return None


def _read_movielens(path: Path, cols: _Columns):
    first = _first_line(path)
    if "::" in first:  # ratings.dat: user::item::rating::timestamp
        return _read_double_colon(path, cols)
    if "\t" in first:  # u.data: user item rating timestamp, no header
        return _read_delimited(path, cols, "\t", False)
    return _read_delimited(path, cols, ",", None)  # ratings.csv: header userId,movieId,rating,timestamp


def _read_double_colon(path: Path, cols: _Columns):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    # pyarrow takes one-character delimiters: split on ':' and keep the fields between the '::' pairs.
    n_fields = len(_first_line(path).split("::"))
    names = []
    for k in range(n_fields):
        names += [f"f{k}", f"gap{k}"]
    names = names[: 2 * n_fields - 1]
    picked = [f"f{_position(c, d, n_fields, path)}" for c, d in ((cols.user, 0), (cols.item, 1), (cols.rating, 2))]
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=":", quote_char=False),
            convert_options=pcsv.ConvertOptions(include_columns=picked, column_types={picked[2]: pa.float64()}),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _raise_located(path, exc, lambda line: _colon_line_problem(line, n_fields, int(picked[2][1:])))
    values = table.column(picked[2]).to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.isfinite(values)):
        _raise_located(path, None, lambda line: _colon_line_problem(line, n_fields, int(picked[2][1:])))
    return table.column(picked[0]), table.column(picked[1]), values


def _colon_line_problem(line: str, n_fields: int, rating_pos: int) -> str | None:
    if not line.strip():
        return None
    fields = line.rstrip("\r\n").split("::")
    if len(fields) != n_fields:
        return f"expected {n_fields} fields separated by '::', found {len(fields)}"
    return _rating_problem(fields[rating_pos])


def _read_parquet(path: Path, cols: _Columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LatentAtlasError(f"{path}: not a readable Parquet file ({exc})") from None
    names = list(schema.names)
    user = _pick(names, cols.user, USER_NAMES, 0, "user", path)
    item = _pick(names, cols.item, ITEM_NAMES, 1, "item", path)
    rating = _pick(names, cols.rating, RATING_NAMES, 2, "rating", path)
    table = pq.read_table(path, columns=[user, item, rating])
    try:
        values = table.column(rating).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LatentAtlasError(f"{path}: column {rating!r} is not numeric ({exc})") from None
    values = values.astype(np.float64)
    _check_values(path, values, line_of=lambda row: f"{row + 1} (row)")
    return table.column(user), table.column(item), values


# --- JSON lines (Yelp reviews and the like) -----------------------------------------------------------------
def _read_jsonl(path: Path, cols: _Columns):
    import pyarrow as pa
    import pyarrow.json as pjson

    user = cols.user if cols.user is not None else _json_key(path, USER_NAMES, "user")
    item = cols.item if cols.item is not None else _json_key(path, ITEM_NAMES, "item")
    rating = cols.rating if cols.rating is not None else _json_key(path, RATING_NAMES, "rating")
    names = [str(user), str(item), str(rating)]
    if len(set(names)) < 3:
        raise LatentAtlasError(f"{path}: the user, item and rating fields must differ (got {', '.join(names)})")
    # Only these three fields are materialised; the review text is parsed and dropped block by block.
    schema = pa.schema([(names[0], pa.string()), (names[1], pa.string()), (names[2], pa.float64())])
    try:
        table = pjson.read_json(
            path,
            read_options=pjson.ReadOptions(block_size=1 << 24),
            parse_options=pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                              newlines_in_values=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _raise_located(path, exc, lambda line: _json_line_problem(line, names))
    if table.num_rows == 0:
        raise LatentAtlasError(f"{path}: no JSON records in file")
    for name in names:
        if table.column(name).null_count:
            _raise_located(path, None, lambda line: _json_line_problem(line, names))
    values = table.column(names[2]).to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.isfinite(values)):
        _raise_located(path, None, lambda line: _json_line_problem(line, names))
    return table.column(names[0]), table.column(names[1]), values


def _json_key(path: Path, candidates: tuple[str, ...], what: str) -> str:
    line = _first_line(path)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LatentAtlasError(f"{path}: line 1: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise LatentAtlasError(f"{path}: line 1: expected a JSON object per line")
    for cand in candidates:
        if cand in record:
            return cand
    raise LatentAtlasError(f"{path}: line 1: no {what} field (looked for {', '.join(candidates[:4])}…; "
                           f"fields are: {', '.join(record)}); name it with --{what}-col")


def _json_line_problem(line: str, names: list[str]) -> str | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict):
        return "expected a JSON object"
    for name, what in zip(names, ("user id", "item id", "rating")):
        if name not in record or record[name] is None:
            return f"missing field {name!r} ({what})"
    return _rating_problem(record[names[2]])


# --- error location --------------------------------------------------------------------------------------
def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    if path.name.endswith(".bz2"):
        import bz2

        return io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _first_line(path: Path, skip: int = 0) -> str | None:
    """The first non-blank line (after ``skip`` such lines); an error for an empty file, None past the end."""
    try:
        with _open_text(path) as fh:
            for line in fh:
                if line.strip():
                    if skip == 0:
                        return line.rstrip("\r\n")
                    skip -= 1
    except (OSError, EOFError) as exc:
        raise LatentAtlasError(f"{path}: cannot read file ({exc})") from None
    if skip == 0 and not _has_text(path):
        raise LatentAtlasError(f"{path}: file is empty")
    return None


def _has_text(path: Path) -> bool:
    with _open_text(path) as fh:
        return any(line.strip() for line in fh)


def _raise_located(path: Path, exc: Exception | None, problem, header: bool = False):
    """Find the first bad line with ``problem(line) -> message | None`` and raise naming it."""
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if header and number == 1:
                continue
            msg = problem(line)
            if msg:
                raise LatentAtlasError(f"{path}: line {number}: {msg}") from None
    detail = re.sub(r"\s+", " ", str(exc)).strip() if exc is not None else "unreadable values"
    raise LatentAtlasError(f"{path}: cannot parse file: {detail}") from None
