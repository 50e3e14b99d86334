"""Readers: rating files of every common shape to one :class:`~latentatlas.ratings.data.Ratings`.

Parsing is pyarrow's (multithreaded C++); only the three needed columns are kept, so memory follows the
number of ratings, not the size of the file (a Yelp review file is mostly review text). A clean file is read
once. When pyarrow flags or rejects something, a second, slower pass finds which lines are bad: Arrow tells
which rows, a Python scan of the raw lines tells their numbers. That slow path runs only for files with bad
lines, to name them (``on_bad_lines="error"``) or to drop and count them (``"skip"``).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import logging
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.ratings.data import Ratings

FORMATS = ("npy", "csv", "tsv", "parquet", "movielens", "yelp", "jsonl")
DUPLICATE_POLICIES = ("last", "first", "mean")
BAD_LINE_POLICIES = ("error", "skip")

USER_NAMES = ("user", "user_id", "userid", "userId", "uid", "reviewerID", "customer_id")
ITEM_NAMES = ("item", "item_id", "itemid", "itemId", "movie_id", "movieId", "movieid", "business_id",
              "iid", "asin", "product_id", "isbn", "ISBN", "book_id")
RATING_NAMES = ("rating", "ratings", "stars", "score", "overall", "value", "Book-Rating")
#: Columns (or JSON fields) read as the time of each rating when present; ``time_col=`` names another.
TIME_NAMES = ("timestamp", "time", "date", "datetime", "unixReviewTime")
TIME_HELP = "a column named timestamp, time, date or datetime gives them, or name one with time_col="

# Every rating scale in use (1–5 stars, 0–10, Jester's ±10, 0–100) stays far inside this; Unix timestamps
# and large ids do not, and factorising them "succeeds" with meaningless numbers.
RATING_LIMIT = 1e6
# A column taken by position whose values are all different over more rows than this is an id or a time.
DISTINCT_ROWS = 500
SHOWN_BAD_LINES = 10
# pyarrow's block size for CSV and JSON (and the slow JSON path's unit of work).
BLOCK_SIZE = 1 << 24
# What a rating may look like in a text file; Arrow and the Python scan judge by the same pattern so that
# the rows Arrow drops and the lines the scan names are the same ones.
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_NUMBER_RE = re.compile(_NUMBER)
# Library messages name arguments (``rating_col=``); the command line puts its options in their place.
HOW_TO_CHOOSE = "choose it with rating_col= (a column name or 0-based index)"

log = logging.getLogger("latentatlas")


def _shown(text, limit: int | None = 80) -> str:
    """``text`` fit for a one-line message: cut to ``limit``, control characters escaped.

    Every piece of a file's content (and its name) that goes into a message passes through here, so that a
    crafted file cannot put newlines, terminal escapes or bidi overrides into what the user sees.
    """
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return printable(text)


def _name(path) -> str:
    return _shown(path, limit=None)


@dataclass
class _Report:
    """What a reader met on the way: bad lines (dropped or fatal), and how the rating column was chosen."""

    path: Path
    policy: str
    count: int = 0
    numbers: list = field(default_factory=list)
    rating_label: str = "2"
    rating_guessed: bool = False
    unit: str = "line"  # what the numbers count: "row" in Parquet, "row index" (from 0) in .npy
    time_label: str | None = None  # the column the times came from

    def bad(self, number: int, message: str) -> None:
        """One bad line or row, met in file order: fatal under "error", counted under "skip"."""
        if self.policy == "error":
            raise LatentAtlasError(f"{_name(self.path)}: {self.unit} {number}: {message}")
        self.count += 1
        if len(self.numbers) < SHOWN_BAD_LINES:
            self.numbers.append(number)


@dataclass(frozen=True)
class _Columns:
    user: str | int | None = None
    item: str | int | None = None
    rating: str | int | None = None
    time: str | int | bool | None = None  # None: found by name (TIME_NAMES); False: not read


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
                 sep: str | None = None, header: bool | None = None, duplicates: str = "last",
                 on_bad_lines: str = "error", time_col: str | int | bool | None = None) -> Ratings:
    """Read a ratings file into :class:`Ratings`, mapping arbitrary user and item ids to indices.

    ``format`` is one of :data:`FORMATS` (default: from the file name and content; gzip and bzip2 are
    recognised by their first bytes). Columns are found by name (``user_id``, ``movieId``, ``stars``…) or
    given as a name or 0-based index; the rating is taken by position only in files without names (u.data,
    ratings.dat, headerless tables, .npy), and then only when its values look like ratings. Repeated
    (user, item) pairs keep the last rating by default (``duplicates="first"`` or ``"mean"`` otherwise);
    their count is ``meta["duplicates"]``. Integer ids are numbered in sorted order, string ids in order of
    first appearance.

    The time of each rating, when the file has one, becomes :attr:`Ratings.timestamps` (seconds since the
    epoch): the 4th field of MovieLens ``u.data``/``ratings.dat``, a column or JSON field named ``timestamp``,
    ``time``, ``date`` or ``datetime`` (Yelp's ``date``), or the column ``time_col`` names (``False``: none).
    Numbers are Unix seconds; text is read as an ISO date (``2016-03-09 00:44:15``, UTC unless it names a
    zone). A column found by its name whose first value is not a time is left out (logged); after that, a
    line whose time cannot be read is a bad line like any other.

    ``on_bad_lines="error"`` (default) stops at the first bad line with a :class:`LatentAtlasError` naming it;
    ``"skip"`` drops bad lines, counts them in ``meta["bad_lines"]``, keeps the first few 1-based line numbers
    (row numbers for Parquet and .npy) in ``meta["bad_line_numbers"]`` and logs a warning on the
    ``"latentatlas"`` logger. Blank and whitespace-only lines are never bad: they are skipped.
    """
    path = Path(path)
    if duplicates not in DUPLICATE_POLICIES:
        raise LatentAtlasError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if on_bad_lines not in BAD_LINE_POLICIES:
        raise LatentAtlasError(f"on_bad_lines must be one of {', '.join(BAD_LINE_POLICIES)}, "
                               f"got {_shown(repr(on_bad_lines))}")
    if not path.exists():
        raise LatentAtlasError(f"{_name(path)}: no such file")
    if path.is_dir():
        raise LatentAtlasError(f"{_name(path)}: is a directory, not a ratings file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LatentAtlasError(f"{_name(path)}: cannot read file ({_shown(exc.strerror or exc)})") from None
    if size == 0:
        raise LatentAtlasError(f"{_name(path)}: file is empty")
    if sep == "\\t":  # typed on a command line as backslash-t
        sep = "\t"
    if sep is not None and sep != "::" and (len(sep) != 1 or not sep.isascii()):
        raise LatentAtlasError(f"sep must be one ASCII character (or '::'), got {_shown(repr(sep))}")
    report = _Report(path, on_bad_lines)
    cols = _Columns(user_col, item_col, rating_col, time_col)
    try:
        fmt = (format or detect_format(path)).lower()
        if fmt == "yelp":
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise LatentAtlasError(f"unknown format {_shown(repr(format))}; choose one of {', '.join(FORMATS)}")
        if fmt == "npy":
            users, items, values, times = _read_npy(path, cols, report)
        elif fmt == "parquet":
            users, items, values, times = _read_parquet(path, cols, report)
        elif fmt == "jsonl":
            users, items, values, times = _read_jsonl(path, cols, report)
        elif fmt == "movielens":
            users, items, values, times = _read_movielens(path, cols, report)
        elif sep == "::":
            users, items, values, times = _read_double_colon(path, cols, report)
        else:
            delimiter = sep or ("\t" if fmt == "tsv" else None)
            users, items, values, times = _read_delimited(path, cols, delimiter, header, report)
        if len(values) == 0:
            raise LatentAtlasError(f"{_name(path)}: no ratings in file")
        if times is not None and len(times) != len(values):  # never a silently shifted time column
            raise LatentAtlasError(f"{_name(path)}: read {len(times):,} times for {len(values):,} ratings")
        _check_scale(path, np.asarray(values, dtype=np.float64), report)
        ratings = _assemble(path, fmt, users, items, values, duplicates, report, times=times)
        if times is not None:
            ratings.meta["time_column"] = report.time_label
    except LatentAtlasError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise LatentAtlasError(f"{_name(path)}: compressed data is truncated or corrupt "
                               f"({_shown(exc)})") from None
    except OSError as exc:
        # pyarrow reports a cut-off gzip stream as an OSError too ("Truncated compressed stream").
        what = "compressed data is truncated or corrupt" if _compression(path) else "cannot read file"
        raise LatentAtlasError(f"{_name(path)}: {what} ({_shown(exc.strerror or exc)})") from None
    except UnicodeDecodeError as exc:
        raise LatentAtlasError(f"{_name(path)}: not valid UTF-8 text ({_shown(exc.reason)})") from None
    except Exception as exc:  # noqa: BLE001 - any Arrow error left is about the file's content
        import pyarrow as pa

        if not isinstance(exc, pa.ArrowException):
            raise
        raise LatentAtlasError(f"{_name(path)}: cannot parse file: {_detail(exc)}") from None
    if report.count:
        log.warning("%s: skipped %d bad %s%s (first: %s %s)", _name(path), report.count, report.unit.split()[0],
                    "s" if report.count > 1 else "", report.unit, ", ".join(map(str, report.numbers)))
    return ratings


def _detail(exc) -> str:
    return _shown(re.sub(r"\s+", " ", str(exc)).strip(), limit=200)


def _check_scale(path: Path, values: np.ndarray, report: _Report) -> None:
    """Refuse a rating column that holds timestamps, ids or anything else no rating scale produces."""
    lo, hi = float(values.min()), float(values.max())
    label = _shown(report.rating_label)
    if report.rating_guessed:
        why = None
        if max(abs(lo), abs(hi)) > RATING_LIMIT:
            why = f"values up to {max(abs(lo), abs(hi)):.6g}, a timestamp or an id?"
        elif hi - lo >= RATING_LIMIT:
            why = f"a span of {hi - lo:.6g}"
        elif len(values) > DISTINCT_ROWS and _all_distinct(values):
            why = f"all {len(values):,} values are different"
        if why:
            raise LatentAtlasError(f"{_name(path)}: column {label}, taken as the rating by its position, does not "
                                   f"look like ratings ({why}); if it is the rating, {HOW_TO_CHOOSE}")
    if max(abs(lo), abs(hi)) > RATING_LIMIT:
        raise LatentAtlasError(f"{_name(path)}: ratings in column {label} reach {max(abs(lo), abs(hi)):.6g}, far "
                               f"outside any rating scale (limit ±{RATING_LIMIT:.0e}); rescale them, or if "
                               f"another column holds the rating, {HOW_TO_CHOOSE}")


def _all_distinct(values: np.ndarray) -> bool:
    # Ratings repeat within a few rows; look at a prefix first so the full sort runs only for suspects.
    head = values[:10_000]
    if len(np.unique(head)) < len(head):
        return False
    return len(np.unique(values)) == len(values)


# --- assembling ids and duplicates ------------------------------------------------------------------------
#: An integer id as a text file writes it: no sign but '-', no leading zeros, surrounding spaces allowed.
CANONICAL_INT = r"^\s*(0|-?[1-9][0-9]*)\s*$"


class TextIds:
    """An id column read as text from a text file (CSV, TSV, u.data, ratings.dat).

    :func:`_encode` makes its ids integers only when every distinct id is an integer written canonically
    (``17``, ``-3``, not ``017``, ``+3``, ``1e3``) and fits int64, so that ids that differ as text stay
    distinct: ``001`` and ``1`` are two ids, and an id above 2**63 keeps all its digits (as text).
    """

    def __init__(self, column):
        self.column = column


def typed_ids(column):
    """A text id column (Arrow) as int64 when every value is a canonical integer in int64 range (see
    :class:`TextIds`), else unchanged. For small columns (pairs, a new user's ratings)."""
    import pyarrow as pa

    ints = _canonical_ints(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    return column if ints is None else pa.array(ints)


def _canonical_ints(text) -> np.ndarray | None:
    """``text`` (an Arrow string array) as int64, or None if any value is not a canonical int64 integer."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(text) == 0 or text.null_count:
        return None
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return None
    if not pc.all(pc.match_substring_regex(text, CANONICAL_INT)).as_py():
        return None
    try:
        return pc.cast(pc.utf8_trim_whitespace(text), pa.int64()).to_numpy()
    except (pa.ArrowInvalid, OverflowError):  # beyond int64: the ids stay text, every digit kept
        return None


def _encode(column, what: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32, original ids) for one id column (an Arrow array, numpy array or :class:`TextIds`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, TextIds):
        indices, ids = _encode(column.column, what, path)
        if ids.dtype.kind != "U":
            return indices, ids
        ints = _canonical_ints(pa.array(ids))  # judged on the distinct ids only
        if ints is None:
            return indices, ids
        order = np.argsort(ints, kind="stable")  # integer ids are numbered in sorted order
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        return rank[indices], ints[order]
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        if column.null_count:
            row = int(np.flatnonzero(np.asarray(column.is_null()))[0])
            raise LatentAtlasError(f"{_name(path)}: row {row + 1}: missing {what} id")
        if pa.types.is_integer(column.type):
            column = column.to_numpy()
        elif pa.types.is_floating(column.type):
            arr = column.to_numpy()
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise LatentAtlasError(f"{_name(path)}: {what} ids must be integers or strings, "
                                       f"found non-integral numbers")
            if len(arr) and np.abs(arr).max() >= 2.0 ** 63:  # astype would wrap them
                raise LatentAtlasError(f"{_name(path)}: {what} ids beyond the int64 range are stored as floating-point "
                                       f"numbers, which cannot hold them exactly; store them as integers or text")
            column = arr.astype(np.int64)
        else:
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = pc.cast(column, pa.string())
            encoded = column.dictionary_encode()
            if isinstance(encoded, pa.ChunkedArray):
                # Chunk by chunk, one growing memo table: every chunk's indices are valid in the last
                # chunk's dictionary, and no copy of the strings into one array is needed.
                dictionary = encoded.chunks[-1].dictionary if encoded.num_chunks else pa.array([], pa.string())
                indices = np.concatenate([np.asarray(c.indices, dtype=np.int32) for c in encoded.chunks]) \
                    if encoded.num_chunks else np.zeros(0, np.int32)
                return indices, _string_ids(dictionary)
            return np.asarray(encoded.indices, dtype=np.int32), _string_ids(encoded.dictionary)
    arr = np.asarray(column)
    ids, index = np.unique(arr, return_inverse=True)
    return index.astype(np.int32), ids


def _string_ids(dictionary) -> np.ndarray:
    """An Arrow string array as a numpy unicode array, straight from its buffers when all of it is ASCII.

    Going through Python ``str`` objects costs about a second per million ids; ASCII ids (Yelp's, Amazon's,
    most others) are copied byte for byte into a fixed-width array instead, and numpy widens them to unicode.
    """
    import pyarrow as pa

    n = len(dictionary)
    if n == 0:
        return np.array([], dtype="U1")
    offset_type = np.int64 if pa.types.is_large_string(dictionary.type) else np.int32
    buffers = dictionary.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[dictionary.offset: dictionary.offset + n + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0]: offsets[-1]] if buffers[2] is not None \
        else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    # Non-ASCII needs real UTF-8 decoding; a NUL would be eaten by numpy's fixed-width bytes.
    if width == 0 or (len(data) and (data.max() >= 128 or not data.all())):
        return np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=str)
    if np.all(lengths == width):
        fixed = data.view(f"S{width}")
    else:
        out = np.zeros(n * width, dtype=np.uint8)
        starts = np.arange(n, dtype=np.int64) * width - (offsets[:-1] - offsets[0])
        out[np.arange(len(data), dtype=np.int64) + np.repeat(starts, lengths)] = data
        fixed = out.view(f"S{width}")
    return fixed.astype(f"U{width}")


def _first_occurrences(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(group of each key, mask of each group's first occurrence, number of groups), by hashing.

    ``dictionary_encode`` numbers groups in order of first appearance, so an occurrence is the first of its
    group exactly when its number exceeds every number before it: no sort needed.
    """
    import pyarrow as pa

    encoded = pa.array(keys).dictionary_encode()
    groups = np.asarray(encoded.indices)
    n_groups = len(encoded.dictionary)
    if n_groups == len(keys):
        return groups, np.ones(len(keys), dtype=bool), n_groups
    seen = np.maximum.accumulate(groups)
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    first[1:] = groups[1:] > seen[:-1]
    return groups, first, n_groups


def _assemble(path: Path, fmt: str, users, items, values: np.ndarray, duplicates: str,
              report: _Report | None = None, times: np.ndarray | None = None) -> Ratings:
    """Ratings from id columns, values and optional times (one per value), duplicates resolved: a repeated
    pair keeps the kept rating's time, and with ``"mean"`` the latest of its times."""
    u, user_ids = _encode(users, "user", path)
    i, item_ids = _encode(items, "item", path)
    values = np.asarray(values, dtype=np.float64)
    times = None if times is None else np.asarray(times, dtype=np.float64)
    n = len(values)
    keys = u.astype(np.int64) * len(item_ids) + i
    if duplicates == "last":
        _, first, n_groups = _first_occurrences(keys[::-1])
        keep = None if n_groups == n else (n - 1 - np.flatnonzero(first))[::-1]
    else:
        groups, first, n_groups = _first_occurrences(keys)
        keep = None if n_groups == n else np.flatnonzero(first)
    if keep is None:
        vals = values
    else:
        if duplicates == "mean":
            vals = np.bincount(groups, weights=values, minlength=n_groups) / np.bincount(groups, minlength=n_groups)
            if times is not None:  # groups are numbered in order of first appearance, as ``keep`` is
                latest = np.full(n_groups, -np.inf)
                np.maximum.at(latest, groups, times)
                times = latest
        else:
            vals = values[keep]
            times = None if times is None else times[keep]
        u, i = u[keep], i[keep]
    meta = {"source": str(path), "format": fmt, "lines_read": n, "duplicates": int(n - len(vals)),
            "duplicate_policy": duplicates}
    if report is not None:
        meta.update({"on_bad_lines": report.policy, "bad_lines": int(report.count),
                     "bad_line_numbers": [int(k) for k in report.numbers]})
    return Ratings(u, i, vals, user_ids, item_ids, meta, times)


# --- times ---------------------------------------------------------------------------------------------------
#: An ISO date as files write it: a date, a time (seconds and their fraction optional), a zone (optional).
#: ASCII digits only, judged alike by Arrow (RE2) and Python.
_ISO_DATE = (r"^[ \t]*([0-9]{4})-([0-9]{2})-([0-9]{2})"
             r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?[ \t]*$")
_ISO_DATE_RE = re.compile(_ISO_DATE)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (any year, 0 included)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _time_value(value) -> float | None:
    """Seconds since the epoch from one field (text, or a JSON number); None when it is not a time.

    The reference judgement of what a time is: :func:`parse_times` and the line scans agree with it."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    if _NUMBER_RE.match(value):
        number = float(value)
        return number if math.isfinite(number) else None
    m = _ISO_DATE_RE.match(value)
    if m is None:
        return None
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    h, mi, sec = (int(g) if g else 0 for g in (m[4], m[5], m[6]))
    if not 1 <= mo <= 12:
        return None
    leap = mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (1 <= d <= _MONTH_DAYS[mo - 1] + leap and h < 24 and mi < 60 and sec < 60):
        return None
    offset = 0
    zone = m[8]
    if zone and zone != "Z":
        zh, zm = int(zone[1:3]), int(zone[-2:])
        if zh >= 24 or zm >= 60:
            return None
        offset = (zh * 3600 + zm * 60) * (1 if zone[0] == "+" else -1)
    return _days_from_civil(y, mo, d) * 86400.0 + h * 3600 + mi * 60 + sec + (float(m[7]) if m[7] else 0.0) - offset


def _time_problem(text, what: str = "time") -> str | None:
    if _time_value(text) is not None:
        return None
    if text is None or (isinstance(text, str) and not text.strip()):
        return f"{what} is missing"
    return (f"{what} '{_shown(str(text).strip(), 40)}' is not a time (Unix seconds or an ISO date such as "
            f"2016-03-09 00:44:15)")


def parse_times(column) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since the epoch as float64, bad-row mask) from a column of times: numbers (Unix seconds),
    Arrow timestamps or dates, or text (numbers, or ISO dates as :func:`_time_value` reads them). Missing
    values and text that is not a time are bad rows (their seconds are NaN)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(column, (pa.Array, pa.ChunkedArray)):
        column = pa.array(list(column), pa.string())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    kind = column.type
    n = len(column)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = _values(pc.cast(column, pa.float64()))
        return values, ~np.isfinite(values)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        micros = pc.cast(pc.cast(column, pa.timestamp("us", getattr(kind, "tz", None))), pa.int64())
        values = micros.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
        values[np.asarray(column.is_null())] = np.nan
        return values, ~np.isfinite(values)
    if pa.types.is_large_string(kind):
        column = column.cast(pa.string())
    elif not pa.types.is_string(kind):
        return np.full(n, np.nan), np.ones(n, dtype=bool)
    step = 1 << 20
    if n > 2 * step and (os.cpu_count() or 1) > 1:  # Arrow's kernels let go of the GIL: parse slices at once
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(os.cpu_count() or 1, 8)) as pool:
            done = list(pool.map(parse_times, (column.slice(k, step) for k in range(0, n, step))))
        values = np.concatenate([v for v, _ in done])
        return values, ~np.isfinite(values)
    dated = np.asarray(pc.fill_null(pc.match_substring_regex(column, _ISO_DATE), False))
    if dated.all():  # dates only (Yelp's): no numbers to look for
        values = np.full(n, np.nan)
    else:
        numeric = pc.fill_null(pc.match_substring_regex(column, _NUMBER), False)
        values = _values(pc.cast(pc.utf8_trim_whitespace(pc.if_else(numeric, column,
                                                                    pa.scalar(None, pa.string()))), pa.float64()))
    if dated.any():
        text = column.filter(pa.array(dated))
        try:  # Arrow's ISO-8601 cast agrees with _time_value on every date it accepts; zones it leaves to Python
            micros = pc.cast(pc.cast(pc.utf8_trim_whitespace(text), pa.timestamp("us")), pa.int64())
            seconds = micros.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            encoded = text.dictionary_encode()
            parsed = np.array([np.nan if v is None else v
                               for v in map(_time_value, encoded.dictionary.to_pylist())], dtype=np.float64)
            seconds = parsed[np.asarray(encoded.indices)]
        values[dated] = seconds
    return values, ~np.isfinite(values)


def _time_column(names: list[str], wanted, taken, path: Path, default: int | None = None) -> str | None:
    """The column of the times: given (name or index), else by name (TIME_NAMES), else ``default``."""
    if wanted is False:
        return None
    if wanted is not None:
        return _pick(names, wanted, (), None, "time", path)
    lower = {n.lower(): n for n in names if n not in taken}
    for cand in TIME_NAMES:
        if cand.lower() in lower:
            return lower[cand.lower()]
    if default is not None and default < len(names) and names[default] not in taken:
        return names[default]
    return None


def _first_time_ok(path: Path, label, value, wanted) -> bool:
    """Whether a column found by name (``wanted`` None) holds times, judged by its first value."""
    if wanted is not None or _time_value(value) is not None:
        return True
    log.info("%s: column %s does not hold times (first value %s); the ratings are read without timestamps",
             _name(path), _shown(repr(label)), _shown(repr(value), 40))
    return False


# --- .npy triplets ---------------------------------------------------------------------------------------
def _read_npy(path: Path, cols: _Columns, report: _Report):
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise LatentAtlasError(f"{_name(path)}: not a plain numeric .npy array ({_shown(exc)})") from None
    except (OSError, EOFError) as exc:
        raise LatentAtlasError(f"{_name(path)}: cannot read .npy file ({_shown(exc)})") from None
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise LatentAtlasError(f"{_name(path)}: expected an N×3 array of (user, item, rating) rows, "
                               f"got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise LatentAtlasError(f"{_name(path)}: expected a numeric array, got dtype {arr.dtype}")
    u, i, r = (_position(c, d, arr.shape[1], path) for c, d in ((cols.user, 0), (cols.item, 1), (cols.rating, 2)))
    report.rating_label, report.rating_guessed = str(r), cols.rating is None
    values = arr[:, r].astype(np.float64)
    bad = ~np.isfinite(values)
    times = t = None
    if cols.time is not None and cols.time is not False:  # no names here: times only from a given column
        t = _position(cols.time, 3, arr.shape[1], path)
        times = arr[:, t].astype(np.float64)
        report.time_label = str(t)
        bad |= ~np.isfinite(times)
    for c in (u, i):
        col = arr[:, c]
        if col.dtype.kind == "f":
            bad |= ~np.isfinite(col) | (col != np.round(col)) | (np.abs(col) >= 2.0 ** 63)  # no int64 wraps
    if bad.any():
        report.unit = "row index"  # from 0, as numpy indexes rows
        for row in np.flatnonzero(bad)[:SHOWN_BAD_LINES]:
            report.bad(int(row), _npy_row_problem(arr, int(row), u, i, r, t))
        report.count = int(bad.sum())
        arr, values = arr[~bad], values[~bad]
        times = None if times is None else times[~bad]
    ids = [arr[:, c].astype(np.int64) if arr[:, c].dtype.kind == "f" else arr[:, c] for c in (u, i)]
    return ids[0], ids[1], values, times


def _npy_row_problem(arr, row: int, u: int, i: int, r: int, t: int | None = None) -> str:
    for c, what in ((u, "user id"), (i, "item id")):
        v = arr[row, c]
        if arr.dtype.kind == "f" and (not np.isfinite(v) or v != np.round(v)):
            return f"{what} {v!r} is not an integer"
        if arr.dtype.kind == "f" and abs(v) >= 2.0 ** 63:
            return f"{what} {float(v)!r} is beyond the int64 range"
    if t is not None and np.isfinite(float(arr[row, r])):
        return "time is missing or not a number"
    return "rating is missing or not a number"


def _position(col, default: int, width: int, path: Path) -> int:
    if col is None:
        return default
    try:
        k = int(col)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{_name(path)}: columns are chosen by 0-based index here, "
                               f"got {_shown(repr(col))}") from None
    if not 0 <= k < width:
        raise LatentAtlasError(f"{_name(path)}: column index {k} is out of range (the file has {width} columns)")
    return k


# --- tables: CSV/TSV, MovieLens, Parquet ------------------------------------------------------------------
def _pick(names: list[str], wanted, candidates: tuple[str, ...], default: int | None, what: str,
          path: Path) -> str:
    """The column for ``what``: given (name or index), else by name among ``candidates``, else ``default``.

    The file readers pass no ``default`` for the rating of a file with column names: the third column of
    ``userId,movieId,timestamp`` is a time, and training on it "works" with meaningless results.
    """
    shown = ", ".join(_shown(n, 40) for n in names)
    if wanted is not None:
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
            k = int(wanted)
            if not 0 <= k < len(names):
                raise LatentAtlasError(f"{_name(path)}: {what} column index {k} is out of range "
                                       f"(the file has {len(names)} columns)")
            return names[k]
        if wanted not in names:
            raise LatentAtlasError(f"{_name(path)}: missing column {_shown(repr(wanted))} for the {what} "
                                   f"(columns are: {shown})")
        return wanted
    lower = {n.lower(): n for n in names}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    if default is not None and default < len(names):
        return names[default]
    if what == "rating":
        raise LatentAtlasError(f"{_name(path)}: no rating column (columns are: {shown}; looked for "
                               f"{', '.join(RATING_NAMES[:4])}…); {HOW_TO_CHOOSE}")
    raise LatentAtlasError(f"{_name(path)}: cannot find the {what} column (columns are: {shown}); "
                           f"choose it with {what}_col=")


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


def _read_delimited(path: Path, cols: _Columns, delimiter: str | None, header: bool | None, report: _Report,
                    default_time: int | None = None):
    head = _head(path, 2)
    if not head:
        raise LatentAtlasError(f"{_name(path)}: file is empty")
    first_number, first = head[0]
    delimiter = delimiter or _sniff_delimiter(first)
    fields = first.split(delimiter)
    if header is None:
        header = _looks_like_header(fields, head[1][1].split(delimiter) if len(head) > 1 else None)
    if header:
        names = [f.strip().strip('"') for f in fields]
    else:
        names = [f"column{k}" for k in range(len(fields))]
    user = _pick(names, cols.user, USER_NAMES if header else (), 0, "user", path)
    item = _pick(names, cols.item, ITEM_NAMES if header else (), 1, "item", path)
    rating = _pick(names, cols.rating, RATING_NAMES if header else (), None if header else 2, "rating", path)
    if len({user, item, rating}) < 3:
        raise LatentAtlasError(f"{_name(path)}: the user, item and rating columns must differ "
                               f"(got {_shown(user)}, {_shown(item)}, {_shown(rating)})")
    report.rating_label = repr(rating) if header else str(names.index(rating))
    report.rating_guessed = not header and cols.rating is None
    time = _time_column(names, cols.time, (user, item, rating), path, None if header else default_time)
    if time in (user, item, rating):
        raise LatentAtlasError(f"{_name(path)}: the time column must differ from the user, item and rating "
                               f"columns (got {_shown(time)})")
    data_row = head[1][1] if header and len(head) > 1 else (None if header else first)
    first_time = None
    if time is not None and data_row is not None:
        row = _split_fields(data_row, delimiter)
        first_time = row[names.index(time)] if len(row) == len(names) else None
        if first_time is not None and not _first_time_ok(path, time, first_time, cols.time):
            time = None
    if time is not None:
        report.time_label = repr(time) if header else str(names.index(time))
    # Blank lines before the header are skipped with it, so the data starts after the first non-blank line.
    skip = first_number if header else first_number - 1
    at = {c: names.index(c) for c in (user, item, rating)}
    time_at = None if time is None else names.index(time)

    def problem(raw: bytes):
        return _delimited_line_problem(raw, delimiter, len(names), at[user], at[item], at[rating], time_at)

    return _read_csv_like(path, report, names=names, skip_rows=skip, delimiter=delimiter, quote_char='"',
                          picked=(user, item, rating), problem=problem, time=time,
                          time_numeric=first_time is None or bool(_NUMBER_RE.match(first_time)))


def _split_fields(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter, quotechar='"'))
    except (csv.Error, TypeError, StopIteration):
        return line.split(delimiter)


def _read_csv_like(path: Path, report: _Report, *, names, skip_rows: int, delimiter: str, quote_char,
                   picked: tuple[str, str, str], problem, time: str | None = None, time_numeric: bool = True):
    """(user, item, rating, times) columns of a delimited file, clean or with its bad lines named or dropped.

    ``time`` names the column of the times (None: no times); ``time_numeric`` says whether its first value
    is a number, so that the fast read parses it as one (text times are parsed by :func:`parse_times`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    user, item, rating = picked
    if time is not None:
        picked = (user, item, rating, time)
    invalid = [0]  # rows with the wrong number of fields (pyarrow's threaded reader knows no line numbers)

    def on_invalid(row):
        if not row.text.strip():
            return "skip"  # whitespace-only lines: skipped, as pandas does
        invalid[0] += 1
        return "skip" if report.policy == "skip" else "error"

    def read(types, columns=picked):
        return pcsv.read_csv(
            _source(path),
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=skip_rows, block_size=BLOCK_SIZE),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=quote_char,
                                            invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(include_columns=list(columns), column_types=types,
                                                strings_can_be_null=False),
        )

    failure = None
    try:
        # Ids as text, typed later from their distinct values (TextIds): Arrow's inference would read 001
        # as 1 and ids beyond int64 as rounded floats.
        types = {user: pa.string(), item: pa.string(), rating: pa.float64()}
        if time is not None:
            types[time] = pa.float64() if time_numeric else pa.string()
        table = read(types)
    except pa.ArrowInvalid as exc:
        table, failure = None, exc
    if table is not None and not invalid[0] and _clean_table(table, user, item, rating):
        times, times_bad = parse_times(table.column(time)) if time is not None else (None, None)
        if times is None or not times_bad.any():
            return TextIds(table.column(user)), TextIds(table.column(item)), _values(table.column(rating)), times
    if report.policy == "error":
        found = _scan(path, skip_rows, problem, 1)
        if found:
            report.bad(*found[0])
    # Read again with everything as text, judge each row in Arrow and drop the bad ones; ids are typed after
    # that, so that one bad line does not turn integer ids into text.
    invalid[0] = 0
    # With a tab or space delimiter a whitespace-only line can have the right number of (empty) fields;
    # all columns are read to tell it from a line with only its ids missing.
    columns = names if delimiter.isspace() else picked
    try:
        table = read({c: pa.binary() for c in columns} | {rating: pa.string()}, columns)
    except pa.ArrowInvalid as exc:
        _raise_first_bad(path, skip_rows, problem, exc)
    values, bad = _parse_ratings(table.column(rating))
    users, bad_u = _text_ids(table.column(user))
    items, bad_i = _text_ids(table.column(item))
    bad |= bad_u | bad_i
    times = None
    if time is not None:  # as text (invalid UTF-8 is bad), then judged like the line scan judges it
        text, bad_t = _text_ids(table.column(time))
        times, bad_p = parse_times(pc.if_else(pa.array(bad_t), pa.scalar(None, pa.string()), text))
        bad |= bad_t | bad_p
    keep = ~bad
    if delimiter.isspace():
        blank = np.ones(table.num_rows, dtype=bool)
        for c in columns:
            blank &= np.asarray(pc.fill_null(pc.match_substring_regex(table.column(c), r"^\s*$"), True))
        bad &= ~blank
        keep &= ~blank
    n_bad = int(bad.sum())
    if invalid[0] + n_bad:
        if report.policy == "error":  # bad for Arrow, yet the line scan found nothing: say what Arrow saw
            detail = _detail(failure) if failure is not None else f"{invalid[0] + n_bad} unreadable rows"
            raise LatentAtlasError(f"{_name(path)}: cannot parse file: {detail}")
        report.count = invalid[0] + n_bad
        report.numbers = [n for n, _ in _scan(path, skip_rows, problem, SHOWN_BAD_LINES)]
    if not keep.all():
        users, items, values = users.filter(pa.array(keep)), items.filter(pa.array(keep)), values[keep]
        times = None if times is None else times[keep]
    return TextIds(users), TextIds(items), values, times


def _check_values(path, values: np.ndarray, what: str = "rating", line_of=lambda row: row + 1) -> None:
    """Refuse a missing or non-finite value, naming its line (``line_of`` maps a 0-based row to its name)."""
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LatentAtlasError(f"{_name(path)}: line {line_of(row)}: {what} is missing or not a number")


def _values(column) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _clean_table(table, user: str, item: str, rating: str) -> bool:
    """Whether a fast read left nothing to look at: ids present and valid text, ratings finite numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in (user, item):
        col = table.column(name)
        if col.null_count or pa.types.is_binary(col.type):  # binary: pyarrow found invalid UTF-8
            return False
        if pa.types.is_string(col.type) and pc.any(pc.equal(col, "")).as_py():
            return False
    return bool(np.all(np.isfinite(_values(table.column(rating)))))


def _parse_ratings(column) -> tuple[np.ndarray, np.ndarray]:
    """(ratings, bad-row mask) from a text column, judged by :data:`_NUMBER` like the line scan."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ok = pc.fill_null(pc.match_substring_regex(column, _NUMBER), False)
    text = pc.utf8_trim_whitespace(pc.if_else(ok, column, pa.scalar(None, pa.string())))
    values = _values(pc.cast(text, pa.float64()))
    return values, ~np.isfinite(values)


def _text_ids(column):
    """(ids as an Arrow string array, bad-row mask) from a binary column: missing or invalid UTF-8 is bad."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    bad = np.zeros(len(column), dtype=bool)
    try:
        text = column.cast(pa.string())
    except pa.ArrowInvalid:
        step = 1 << 16
        for start in range(0, len(column), step):
            part = column.slice(start, step)
            try:
                part.cast(pa.string())
            except pa.ArrowInvalid:
                for k, v in enumerate(part.to_pylist()):
                    try:
                        v is None or v.decode("utf-8")
                    except UnicodeDecodeError:
                        bad[start + k] = True
        column = pc.if_else(pa.array(bad), pa.scalar(None, pa.binary()), column)
        text = column.cast(pa.string())
    bad |= np.asarray(pc.fill_null(pc.equal(text, ""), True))
    return text, bad


def _delimited_line_problem(raw: bytes, delimiter: str, width: int, user: int, item: int, rating: int,
                            time: int | None = None):
    line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
    if not line.strip():
        return None
    fields = _split_fields(line, delimiter)
    if len(fields) != width:
        return f"expected {width} fields separated by {_shown(repr(delimiter))}, found {len(fields)}"
    for k, what in ((user, "user id"), (item, "item id")):
        problem = _id_problem(fields[k], what)
        if problem:
            return problem
    return _rating_problem(fields[rating]) or (None if time is None else _text_time_problem(fields[time]))


def _text_time_problem(text: str) -> str | None:
    if any("\udc80" <= c <= "\udcff" for c in text):
        return f"time {_shown(repr(text), 60)} is not valid UTF-8"
    return _time_problem(text)


def _id_problem(text: str, what: str):
    if text == "":
        return f"missing {what}"
    if any("\udc80" <= c <= "\udcff" for c in text):
        return f"{what} {_shown(repr(text), 60)} is not valid UTF-8"
    return None


def _rating_problem(text) -> str | None:
    """Why a rating (text from a file, or a value from JSON or a database) is unusable; None if it is fine."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return "rating is missing"
    if isinstance(text, bool):
        return f"rating {text!r} is not a number"
    if isinstance(text, str):
        shown = _shown(text.strip())
        if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            return f"rating '{shown}' is not a finite number"
        if not _NUMBER_RE.match(text):
            return f"rating '{shown}' is not a number"
    try:
        value = float(text)
    except (TypeError, ValueError):
        return f"rating '{_shown(text)}' is not a number"
    if not math.isfinite(value):
        return f"rating '{_shown(str(text).strip())}' is not a finite number"
    return None


def _read_movielens(path: Path, cols: _Columns, report: _Report):
    first = _first_line(path)
    if "::" in first:  # ratings.dat: user::item::rating::timestamp
        return _read_double_colon(path, cols, report)
    if "\t" in first:  # u.data: user item rating timestamp, no header
        return _read_delimited(path, cols, "\t", False, report, default_time=3)
    return _read_delimited(path, cols, ",", None, report)  # ratings.csv: header userId,movieId,rating,timestamp


def _read_double_colon(path: Path, cols: _Columns, report: _Report):
    # pyarrow takes one-character delimiters: split on ':' and keep the fields between the '::' pairs.
    head = _head(path, 1)
    n_fields = len(head[0][1].split("::"))
    names = []
    for k in range(n_fields):
        names += [f"f{k}", f"gap{k}"]
    names = names[: 2 * n_fields - 1]
    positions = [_position(c, d, n_fields, path) for c, d in ((cols.user, 0), (cols.item, 1), (cols.rating, 2))]
    picked = tuple(f"f{k}" for k in positions)
    report.rating_label, report.rating_guessed = str(positions[2]), cols.rating is None
    # ratings.dat: user::item::rating::timestamp; the 4th field is the time unless told otherwise.
    time = None
    if cols.time is not False and (cols.time is not None or n_fields > 3):
        time = _position(cols.time, 3, n_fields, path)
        if time in positions:
            if cols.time is not None:
                raise LatentAtlasError(f"{_name(path)}: the time column must differ from the user, item and "
                                       f"rating columns (got {time})")
            time = None
    first_time = None
    if time is not None:
        fields = head[0][1].split("::")
        first_time = fields[time] if len(fields) == n_fields else None
        if first_time is not None and not _first_time_ok(path, time, first_time, cols.time):
            time = None
    if time is not None:
        report.time_label = str(time)

    def problem(raw: bytes):
        return _colon_line_problem(raw, n_fields, positions, time)

    return _read_csv_like(path, report, names=names, skip_rows=head[0][0] - 1, delimiter=":", quote_char=False,
                          picked=picked, problem=problem, time=None if time is None else f"f{time}",
                          time_numeric=first_time is None or bool(_NUMBER_RE.match(first_time)))


def _colon_line_problem(raw: bytes, n_fields: int, positions, time: int | None = None) -> str | None:
    line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
    if not line.strip():
        return None
    fields = line.split("::")
    if len(fields) != n_fields or any(":" in f for f in fields):
        return f"expected {n_fields} fields separated by '::', found {len(fields)}"
    for k, what in zip(positions[:2], ("user id", "item id")):
        problem = _id_problem(fields[k], what)
        if problem:
            return problem
    return _rating_problem(fields[positions[2]]) or (None if time is None else _text_time_problem(fields[time]))


def _read_parquet(path: Path, cols: _Columns, report: _Report):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LatentAtlasError(f"{_name(path)}: not a readable Parquet file ({_detail(exc)})") from None
    names = list(schema.names)
    user = _pick(names, cols.user, USER_NAMES, 0, "user", path)
    item = _pick(names, cols.item, ITEM_NAMES, 1, "item", path)
    rating = _pick(names, cols.rating, RATING_NAMES, None, "rating", path)
    report.rating_label = repr(rating)
    time = _time_column(names, cols.time, (user, item, rating), path)
    if time in (user, item, rating):
        raise LatentAtlasError(f"{_name(path)}: the time column must differ from the user, item and rating "
                               f"columns (got {_shown(time)})")
    table = pq.read_table(path, columns=[user, item, rating] + ([time] if time is not None else []))
    try:
        values = _values(table.column(rating).cast(pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LatentAtlasError(f"{_name(path)}: column {_shown(repr(rating))} is not numeric "
                               f"({_detail(exc)})") from None
    times = None
    if time is not None:
        times, bad_t = parse_times(table.column(time))
        if len(times) and cols.time is None and bad_t[0] and table.column(time)[0].is_valid:
            _first_time_ok(path, time, table.column(time)[0].as_py(), None)  # logs why
            times = None
        else:
            report.time_label = repr(time)
    bad = ~np.isfinite(values)
    for name in (user, item):
        bad |= np.asarray(table.column(name).is_null())
    if times is not None:
        bad |= ~np.isfinite(times)
    if bad.any():
        report.unit = "row"
        for row in np.flatnonzero(bad)[:SHOWN_BAD_LINES]:
            report.bad(int(row) + 1, "user id, item id or rating is missing, or the rating is not a number"
                       if times is None or np.isfinite(times[row]) else
                       _time_problem(table.column(time)[int(row)].as_py()) or "time is not a time")
        report.count = int(bad.sum())
        keep = pa.array(~bad)
        table, values = table.filter(keep), values[~bad]
        times = None if times is None else times[~bad]
    return table.column(user), table.column(item), values, times


# --- JSON lines (Yelp reviews and the like) -----------------------------------------------------------------
def _read_jsonl(path: Path, cols: _Columns, report: _Report):
    import pyarrow as pa
    import pyarrow.json as pjson

    user = cols.user if cols.user is not None else _json_key(path, USER_NAMES, "user")
    item = cols.item if cols.item is not None else _json_key(path, ITEM_NAMES, "item")
    rating = cols.rating if cols.rating is not None else _json_key(path, RATING_NAMES, "rating")
    names = [str(user), str(item), str(rating)]
    if len(set(names)) < 3:
        raise LatentAtlasError(f"{_name(path)}: the user, item and rating fields must differ "
                               f"(got {', '.join(_shown(n) for n in names)})")
    report.rating_label = repr(names[2])
    time, time_type = _json_time_field(path, cols.time, names)
    # Only these fields are materialised; the review text is parsed and dropped block by block.
    fields = [(names[0], pa.string()), (names[1], pa.string()), (names[2], pa.float64())]
    if time is not None:
        names.append(time)
        fields.append((time, time_type))
        report.time_label = repr(time)
    parse_options = pjson.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore",
                                       newlines_in_values=False)
    try:
        table = _parse_jsonl(path, parse_options)
    except pa.ArrowInvalid:
        table = None
    # A time field found by its name may be absent from some records (JSON records vary): then the file has
    # no usable times and is read without them. A time that is there but unreadable makes a bad line.
    optional = cols.time is None
    if table is not None and table.num_rows:
        values = _values(table.column(names[2]))
        if _clean_json(table, names[:3], values):
            times, bad = _json_times(table.column(time), optional, path) if time is not None else (None, None)
            if bad is None or not bad.any():
                return table.column(names[0]), table.column(names[1]), values, times
    table = _read_jsonl_blocks(path, names, parse_options, report, optional)
    if table.num_rows == 0:
        raise LatentAtlasError(f"{_name(path)}: no JSON records in file")
    times = _json_times(table.column(time), optional, path)[0] if time is not None else None
    return table.column(names[0]), table.column(names[1]), _values(table.column(names[2])), times


def _json_times(column, optional: bool, path: Path | None = None):
    """(times, bad rows) of a JSON time field; an optional field missing from some records gives no times
    (None, logged when ``path`` is given) and no bad rows for that."""
    times, bad = parse_times(column)
    if optional and column.null_count:
        if path is not None:
            log.info("%s: some records have no time field; the ratings are read without timestamps", _name(path))
        return None, bad & np.asarray(column.is_valid())
    return times, bad


def _json_time_field(path: Path, wanted, taken: list[str]):
    """(field, Arrow type) of the times in a JSON-lines file, from its first record; (None, None) if none."""
    import pyarrow as pa

    if wanted is False:
        return None, None
    record = first_json_record(path, _first_line(path))
    if wanted is not None:
        name = str(wanted)
    else:
        name = next((c for c in TIME_NAMES if c in record and c not in taken), None)
        if name is None:
            return None, None
    if name in taken:
        raise LatentAtlasError(f"{_name(path)}: the time field must differ from the user, item and rating "
                               f"fields (got {_shown(name)})")
    value = record.get(name)
    if wanted is None and not _first_time_ok(path, name, value, None):
        return None, None
    # Unix seconds as JSON numbers, dates as JSON strings: the first record says which this file has.
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return name, pa.float64() if number else pa.string()


def _parse_jsonl(path: Path, parse_options):
    """The whole file parsed by pyarrow: a plain file as byte ranges cut at line ends, one thread each.

    pyarrow's own threading splits the work finer and spends more CPU on it (measured on the 4 M-line Yelp
    benchmark file on 2 busy cores: 4.3 s CPU against 3.5–4.1 s for one thread per range), which is what counts
    on a busy machine; on an idle one the ranges finish sooner too. Each range is streamed block by block
    (not memory-mapped), so memory still follows the ratings, not the file.
    """
    import pyarrow as pa
    import pyarrow.json as pjson
    from concurrent.futures import ThreadPoolExecutor

    if _compression(path):  # a compressed stream cannot be cut without decompressing it first
        return pjson.read_json(_source(path), read_options=pjson.ReadOptions(block_size=BLOCK_SIZE),
                               parse_options=parse_options)
    size = path.stat().st_size
    n_ranges = max(1, min(os.cpu_count() or 1, size // BLOCK_SIZE))
    cuts = [0]
    with open(path, "rb") as fh:
        for k in range(1, n_ranges):
            cut = _line_start(fh, max(size * k // n_ranges, cuts[-1]))
            if cut >= size:
                break
            cuts.append(cut)
    cuts.append(size)
    options = pjson.ReadOptions(use_threads=False, block_size=BLOCK_SIZE)

    def parse(start: int, stop: int):
        with _ByteRange(path, start, stop) as stream:
            return pjson.read_json(stream, read_options=options, parse_options=parse_options)

    if len(cuts) == 2:
        return pjson.read_json(_source(path), read_options=options, parse_options=parse_options)
    with ThreadPoolExecutor(len(cuts) - 1) as pool:
        return pa.concat_tables(list(pool.map(parse, cuts[:-1], cuts[1:])))


def _line_start(fh, pos: int) -> int:
    """The offset just past the first newline at or after ``pos`` (the end of the file if there is none)."""
    fh.seek(pos)
    while chunk := fh.read(1 << 16):
        found = chunk.find(b"\n")
        if found >= 0:
            return pos + found + 1
        pos += len(chunk)
    return pos


class _ByteRange(io.RawIOBase):
    """Bytes ``start:stop`` of a file as a stream of their own."""

    def __init__(self, path: Path, start: int, stop: int):
        super().__init__()
        self._fh = open(path, "rb")
        self._fh.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._fh.readinto(memoryview(b)[: min(len(b), self._left)]) if self._left > 0 else 0
        self._left -= n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _clean_json(table, names, values: np.ndarray) -> bool:
    import pyarrow as pa

    if any(table.column(n).null_count for n in names):
        return False
    if not np.all(np.isfinite(values)):
        return False
    # pyarrow's JSON reader copies invalid UTF-8 into string columns unchecked.
    try:
        for n in names[:2]:
            table.column(n).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _read_jsonl_blocks(path: Path, names, parse_options, report: _Report, time_optional: bool = False):
    """The slow path: parse ~16 MB blocks with pyarrow and judge the lines of a block only when it fails."""
    import pyarrow as pa
    import pyarrow.json as pjson

    tables = []
    line_no = 0
    time_type = None
    if len(names) > 3:
        time_type = "string" if pa.types.is_string(parse_options.explicit_schema.field(names[3]).type) else "number"
    for block in _line_blocks(path, BLOCK_SIZE):
        table = None
        try:
            table = pjson.read_json(pa.BufferReader(block), parse_options=parse_options)
        except pa.ArrowInvalid:
            pass
        if table is not None and (table.num_rows == 0
                                  or (_clean_json(table, names[:3], _values(table.column(names[2])))
                                      and (len(names) < 4
                                           or not _json_times(table.column(names[3]), time_optional)[1].any()))):
            tables.append(table)
            line_no += block.count(b"\n")
            continue
        good = []
        for raw in block.splitlines(keepends=True):
            line_no += 1
            problem = _json_line_problem(raw, names, time_type, time_optional)
            if problem:
                report.bad(line_no, problem)
            else:
                good.append(raw)
        if good:
            try:
                tables.append(pjson.read_json(pa.BufferReader(b"".join(good)), parse_options=parse_options))
            except pa.ArrowInvalid as exc:
                raise LatentAtlasError(f"{_name(path)}: lines {line_no - len(block.splitlines()) + 1}–{line_no}: "
                                       f"cannot parse ({_detail(exc)})") from None
    if not tables:
        return pa.table({f.name: pa.array([], f.type) for f in parse_options.explicit_schema})
    return pa.concat_tables(tables)


def _line_blocks(path: Path, size: int):
    """The file's (decompressed) bytes in blocks of about ``size`` that end at line ends."""
    rest = b""
    with _open_binary(path) as fh:
        while True:
            data = fh.read(size)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            rest = data[cut:]
            yield data[:cut]
    if rest:
        yield rest + b"\n"


def first_json_record(path: Path, line: str) -> dict:
    """The first line of a JSON-lines file as an object; one-line errors naming the file otherwise."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LatentAtlasError(f"{_name(path)}: line 1: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise LatentAtlasError(f"{_name(path)}: line 1: expected one JSON object per line")
    return record


def _json_key(path: Path, candidates: tuple[str, ...], what: str) -> str:
    record = first_json_record(path, _first_line(path))
    for cand in candidates:
        if cand in record:
            return cand
    fields = ", ".join(_shown(k, 40) for k in record)
    raise LatentAtlasError(f"{_name(path)}: line 1: no {what} field (looked for {', '.join(candidates[:4])}…; "
                           f"fields are: {fields}); choose it with {what}_col=")


def _json_line_problem(raw: bytes, names: list[str], time_type: str | None = None,
                       time_optional: bool = False) -> str | None:
    if not raw.strip():
        return None
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict):
        return "expected a JSON object"
    for name, what in zip(names, ("user id", "item id", "rating", "time")):
        if what == "time" and time_optional:
            continue
        if name not in record or record[name] is None:
            return f"missing field {_shown(repr(name))} ({what})"
    for name, what in zip(names[:2], ("user id", "item id")):
        if not isinstance(record[name], str):
            return f"{what} {_shown(repr(record[name]), 40)} is not a JSON string"
    value = record[names[2]]
    if isinstance(value, str):
        return f"rating '{_shown(value)}' is not a number"
    problem = _rating_problem(value)
    if problem or len(names) < 4 or record.get(names[3]) is None:  # a missing optional time: no times at all
        return problem
    when = record[names[3]]
    if time_type is not None and (isinstance(when, str) != (time_type == "string")
                                  or isinstance(when, (bool, dict, list))):
        kind = "a JSON string" if time_type == "string" else "a JSON number"
        return f"time {_shown(repr(when), 40)} is not {kind} like the first record's"
    return _time_problem(when)


# --- raw access: compression by magic bytes, and naming lines ----------------------------------------------
def _compression(path: Path) -> str | None:
    """The codec of ``path`` from its first bytes, whatever its name says."""
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"BZh":
        return "bz2"
    return None


def _source(path: Path):
    import pyarrow as pa

    return pa.input_stream(str(path), compression=_compression(path))


def _open_binary(path: Path):
    codec = _compression(path)
    if codec == "gzip":
        return gzip.open(path, "rb")
    if codec == "bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def _open_text(path: Path):
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors="replace")  # Excel writes a BOM


def _head(path: Path, n: int) -> list[tuple[int, str]]:
    """The first ``n`` non-blank lines as (1-based line number, text)."""
    out = []
    try:
        with _open_text(path) as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    out.append((number, line.rstrip("\r\n")))
                    if len(out) == n:
                        break
    except (OSError, EOFError, zlib.error) as exc:
        raise LatentAtlasError(f"{_name(path)}: cannot read file ({_shown(exc)})") from None
    return out


def _first_line(path: Path, skip: int = 0) -> str | None:
    """The first non-blank line (after ``skip`` such lines); an error for an empty file, None past the end."""
    head = _head(path, skip + 1)
    if not head:
        raise LatentAtlasError(f"{_name(path)}: file is empty")
    return head[skip][1] if len(head) > skip else None


def _scan(path: Path, skip_rows: int, problem, limit: int) -> list[tuple[int, str]]:
    """The first ``limit`` bad lines after the first ``skip_rows``, as (line number, message)."""
    found = []
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if number <= skip_rows:
                continue
            msg = problem(raw)
            if msg:
                found.append((number, msg))
                if len(found) >= limit:
                    break
    return found


def _raise_first_bad(path: Path, skip_rows: int, problem, exc: Exception | None):
    found = _scan(path, skip_rows, problem, 1)
    if found:
        raise LatentAtlasError(f"{_name(path)}: line {found[0][0]}: {found[0][1]}") from None
    detail = _detail(exc) if exc is not None else "unreadable values"
    raise LatentAtlasError(f"{_name(path)}: cannot parse file: {detail}") from None
