"""Small two-column files: (user, item) pairs to score, and a new user's (item, rating) list to fold in.

Both are CSV/TSV (delimiter sniffed, header optional) or Parquet; columns are found by name as in the
ratings readers, or taken in order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.ratings.io.readers import ITEM_NAMES, RATING_NAMES, USER_NAMES, typed_ids


def _read_table(path: Path, sep: str | None, header: bool | None):
    """The file as a table; in CSV/TSV every column is text (ids are typed by :func:`_column`, so that
    ``001`` stays an id of its own, as in the ratings readers)."""
    import csv

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    shown = printable(str(path))
    if not path.is_file():
        raise LatentAtlasError(f"{shown}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8", errors="replace").splitlines()
        lines = [line for line in head if line.strip()]
        if not lines:
            raise LatentAtlasError(f"{shown}: the file is empty")
        if sep is None:
            sep = next((d for d in ("\t", ",", ";", "|") if d in lines[0]), " ")
        try:
            fields = next(csv.reader([lines[0]], delimiter=sep, quotechar='"'))
        except (csv.Error, TypeError, StopIteration):
            fields = lines[0].split(sep)
        first = [f.strip() for f in fields]
        if header is None:  # a first line of known column names is a header, even with no line below it
            header = not all(_numeric(f) for f in first) and \
                any(f in USER_NAMES + ITEM_NAMES + RATING_NAMES for f in first)
        generated = [f"f{k}" for k in range(len(first))]
        skip = next(k for k, line in enumerate(head) if line.strip()) + (1 if header else 0)
        read = pacsv.ReadOptions(column_names=generated, skip_rows=skip)
        parse = pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=True)
        convert = pacsv.ConvertOptions(strings_can_be_null=False,
                                       column_types={g: pa.string() for g in generated})
        table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        if header and len(set(first)) == len(first):
            table = table.rename_columns(first)
        return table
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise LatentAtlasError(f"{shown}: cannot read it as a table ({printable(str(exc).splitlines()[0])})") from None
    except OSError as exc:
        raise LatentAtlasError(f"{shown}: {printable(exc.strerror or str(exc))}") from None


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column(table, path: Path, given, candidates, position: int, what: str) -> np.ndarray:
    names = table.column_names
    if given is not None:
        if given in names:
            name = given
        elif str(given).isdigit() and int(given) < len(names):
            name = names[int(given)]
        else:
            raise LatentAtlasError(f"{printable(str(path))}: no {what} column {printable(repr(given))} "
                                   f"(columns: {printable(', '.join(names))})")
    else:
        name = next((n for n in names if n in candidates), None)
        if name is None:
            if position >= len(names):
                raise LatentAtlasError(f"{printable(str(path))}: needs at least {position + 1} columns, found {len(names)}")
            name = names[position]
    col = table.column(name)
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise LatentAtlasError(f"{printable(str(path))}: row {row + 1}: missing {what}")
    if what != "rating":
        col = typed_ids(col)
    return col.to_numpy(zero_copy_only=False)


def read_pairs(path, *, user_col=None, item_col=None, sep=None, header=None) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, item ids) from a file of pairs (first two columns unless named)."""
    path = Path(path)
    table = _read_table(path, sep, header)
    users = _column(table, path, user_col, USER_NAMES, 0, "user")
    items = _column(table, path, item_col, ITEM_NAMES, 1, "item")
    if len(users) == 0:
        raise LatentAtlasError(f"{printable(str(path))}: no pairs in file")
    return users, items


def read_item_ratings(path, *, item_col=None, rating_col=None, sep=None, header=None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, ratings) of one user, from a two-column file (item, rating)."""
    path = Path(path)
    table = _read_table(path, sep, header)
    items = _column(table, path, item_col, ITEM_NAMES, 0, "item")
    raw = _column(table, path, rating_col, RATING_NAMES, 1, "rating")
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(i for i, v in enumerate(raw) if not _numeric(str(v)))
        raise LatentAtlasError(f"{printable(str(path))}: row {bad + 1}: rating {printable(str(raw[bad]))!r} is not a number") from None
    if not np.isfinite(values).all():
        raise LatentAtlasError(f"{printable(str(path))}: ratings must be finite numbers")
    if len(items) == 0:
        raise LatentAtlasError(f"{printable(str(path))}: no ratings in file")
    return items, values
