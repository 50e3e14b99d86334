"""Names for ids: the files that come with real ratings (MovieLens ``movies.csv`` and ``u.item``, Yelp's
``yelp_academic_dataset_business.json``, any CSV/TSV/JSON-lines table of id and name), so that
recommendations, tables and explorers show "Toy Story (1995)" rather than 1.

Parsing is pyarrow's; when pyarrow rejects a file, or an id is missing, the file is read once more in Python
only to name the first bad line (the same approach as :mod:`latentatlas.ratings.io`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.ratings.io.readers import ITEM_NAMES, USER_NAMES, _looks_like_header, _pick, first_json_record, typed_ids

ID_NAMES = ITEM_NAMES + USER_NAMES + ("id",)
NAME_NAMES = ("name", "title", "movie_title", "item_name", "business_name", "product_name", "user_name",
              "book_title", "Book-Title", "display_name", "label")
#: Columns kept as metadata when ``extra_cols`` is not given (MovieLens genres, Yelp city and categories…).
METADATA_NAMES = ("genres", "genre", "city", "state", "categories", "category", "year", "release_date")

#: MovieLens 100K ``u.genre``: the 19 0/1 flags that end each ``u.item`` line, in order.
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")

FORMAT_TAG = "latentatlas.names"
_DELIMITERS = ("\t", ",", "|", ";")


@dataclass(frozen=True, eq=False, repr=False)
class Names:
    """``names[k]`` is the name of ``ids[k]``; ``metadata[col][k]`` its value of another column (genres,
    city…). Ids are int64 when all integral, else str — as :class:`~latentatlas.ratings.data.Ratings` keeps
    them — so that the two compare directly. ``meta`` says where they came from (``source``, ``format``,
    ``id_col``, ``name_col``, ``rows``, ``duplicates``: repeated ids, of which the first was kept)."""

    ids: np.ndarray
    names: np.ndarray
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        ids = np.asarray(self.ids)
        ids = ids.astype(np.int64) if ids.dtype.kind in "iu" else ids.astype(str)
        names = np.asarray(self.names).astype(str)
        if ids.ndim != 1 or names.shape != ids.shape:
            raise ValueError("ids and names must be 1-D arrays of the same length")
        metadata = {str(k): np.asarray(v) for k, v in dict(self.metadata).items()}
        for key, col in metadata.items():
            if col.shape != ids.shape:
                raise ValueError(f"metadata column {key!r} has {len(col)} values for {len(ids)} ids")
            if col.dtype == object:
                metadata[key] = col.astype(str)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "meta", dict(self.meta))
        order = np.argsort(ids, kind="stable")
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_sorted", ids[order])

    def __len__(self) -> int:
        return len(self.ids)

    # --- display --------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from latentatlas.display import shorten

        parts = [f"{len(self):,} names"]
        if len(self):
            parts[0] += f", e.g. {shorten(self.ids[0], 20)}: {shorten(self.names[0], 40)!r}"
        if self.meta.get("source"):
            parts.append(f"from {shorten(Path(str(self.meta['source'])).name, 40)}")
        if self.metadata:
            parts.append(f"columns {shorten(', '.join(self.metadata), 50)}")
        return f"Names({'; '.join(parts)})"

    def _repr_html_(self) -> str:
        from latentatlas.display import html_table, shorten

        rows = [(shorten(i, 20), shorten(n, 80)) for i, n in zip(self.ids[:5], self.names[:5])]
        if len(self) > 5:
            rows.append(("…", f"{len(self) - 5:,} more"))
        caption = f"{len(self):,} ids" + (f" from {self.meta['source']}" if self.meta.get("source") else "")
        if self.metadata:
            caption += f"; columns {', '.join(self.metadata)}"
        return html_table("Names", rows, caption)

    # --- by name --------------------------------------------------------------------------------------------
    def _folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Each name folded for matching (case, spacing), and its short form: a trailing article put
        first and a trailing "(1995)" dropped ("Shawshank Redemption, The (1994)" → "the shawshank
        redemption")."""
        cached = self.__dict__.get("_folded_cache")
        if cached is None:
            full = np.array([_fold(n) for n in self.names.tolist()], dtype=str)
            short = np.array([_short_form(n) for n in full.tolist()], dtype=str)
            cached = (full, short)
            object.__setattr__(self, "_folded_cache", cached)
        return cached

    def _matches(self, text) -> tuple[np.ndarray, np.ndarray]:
        """Positions whose name is ``text`` (ignoring case, spacing, a moved article and the year), and
        positions whose name contains it but is not it; each in file order."""
        if not isinstance(text, str):
            raise LatentAtlasError(f"a name to search for must be a string, got {type(text).__name__} {text!r}")
        query = _fold(text)
        if not query:
            raise LatentAtlasError("a name to search for must not be empty")
        full, short = self._folded()
        if not len(full):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        query_short = _short_form(query)
        exact = (full == query) | (short == query) | (short == query_short)
        contains = ((np.char.find(full, query) >= 0) | (np.char.find(short, query_short) >= 0)) & ~exact
        return np.flatnonzero(exact), np.flatnonzero(contains)

    def search(self, text: str, limit: int | None = None) -> np.ndarray:
        """The ids whose name contains ``text``, ignoring case (``"toy story"`` finds ``Toy Story (1995)``
        and ``Toy Story 2 (1999)``): names equal to it first, then the others, each in file order. Ids that
        share a name are all returned; :meth:`label` shows them with their names.

        Examples
        --------
        >>> names = Names([1, 2, 3, 4], ["Toy Story (1995)", "Heat (1995)", "Toy Story 2 (1999)", "Heat (1995)"])
        >>> names.search("toy story").tolist(), names.search("HEAT").tolist()
        ([1, 3], [2, 4])
        """
        exact, contains = self._matches(text)
        found = self.ids[np.concatenate([exact, contains])]
        return found if limit is None else found[:limit]

    def find(self, name: str):
        """The one id whose name is ``name`` (ignoring case, spacing, a trailing article and the year:
        ``"toy story"`` is ``Toy Story (1995)``), or else whose name contains it; a
        :class:`~latentatlas.errors.LatentAtlasError` naming the candidates when no name or several fit.

        Examples
        --------
        >>> names = Names([1, 3, 6], ["Toy Story (1995)", "Toy Story 2 (1999)", "Heat (1995)"])
        >>> names.find("Toy Story"), names.find("toy story 2"), names.find("heat")
        (1, 3, 6)
        """
        exact, contains = self._matches(name)
        for hits in (exact, contains):
            if len(hits) == 1:
                return self.ids[hits[0]].item()
            if len(hits) > 1:
                shown = ", ".join(f"{printable(str(self.ids[k]))} {printable(self.names[k])[:60]!r}"
                                  for k in hits[:8])
                more = f" and {len(hits) - 8:,} more" if len(hits) > 8 else ""
                kind = "that name" if hits is exact else "names containing it"
                raise LatentAtlasError(f"{printable(name)[:80]!r} is ambiguous: {len(hits):,} ids have {kind} "
                                       f"({shown}{more}); pass one of the ids")
        raise LatentAtlasError(f"no name matches {printable(name)[:80]!r} ({len(self):,} names searched; "
                               "search() lists partial matches)")

    # --- look-ups -------------------------------------------------------------------------------------------
    def index(self, ids) -> np.ndarray:
        """Positions of ``ids`` in :attr:`ids` (int64), ``-1`` where an id has no name. Integer ids match
        their decimal text ("42" finds 42) when either side holds strings."""
        query = np.atleast_1d(np.asarray(ids))
        keys = self._sorted
        if keys.dtype.kind in "iu" and query.dtype.kind not in "iu":
            if query.dtype.kind == "f" and np.all(np.isfinite(query)) and np.all(query == np.round(query)):
                query = query.astype(np.int64)
            else:
                keys, query = keys.astype(str), query.astype(str)
        elif keys.dtype.kind not in "iu":
            query = query.astype(str)
        if keys is not self._sorted:  # re-sort: the decimal text of ints does not sort like the ints
            order = np.argsort(keys, kind="stable")
            keys, positions = keys[order], self._order[order]
        else:
            positions = self._order
        out = np.full(query.shape, -1, dtype=np.int64)
        if len(keys) == 0 or query.size == 0:
            return out
        at = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        hit = keys[at] == query
        out[hit] = positions[at[hit]]
        return out

    def lookup(self, ids, missing: str | None = None) -> np.ndarray:
        """The names of ``ids`` (any array-like), vectorised. An id without a name gets ``missing``: with the
        default None the result is an object array holding None there; with a string (``""``, or
        ``missing="?"``) it is a str array."""
        pos = self.index(ids)
        return _take(self.names, pos, missing)

    def column(self, name: str, ids, missing=None) -> np.ndarray:
        """Metadata column ``name`` for ``ids``; ``missing`` where an id is unknown (as :meth:`lookup`)."""
        if name not in self.metadata:
            raise LatentAtlasError(f"no metadata column {name!r} (columns: {', '.join(self.metadata) or 'none'})")
        return _take(self.metadata[name], self.index(ids), missing)

    def label(self, ids) -> np.ndarray:
        """``"name (id)"`` for each id, or the id alone where it has no name (for tables and hover text)."""
        pos = self.index(ids)
        ids_text = np.atleast_1d(np.asarray(ids)).astype(str)
        named = pos >= 0
        out = ids_text.astype(object)
        out[named] = [f"{n} ({i})" for n, i in zip(self.names[pos[named]], ids_text[named])]
        return out.astype(str)

    # --- persistence (npz-friendly arrays, no pickle) ------------------------------------------------------
    def to_arrays(self, prefix: str = "names_") -> dict[str, np.ndarray]:
        """Plain arrays (no object dtype) for ``np.savez``/:func:`latentatlas.fsutil.save_npz`; metadata
        columns are stored by position, their names in the JSON ``{prefix}meta`` entry. Text (names, string
        ids and text columns) is stored as variable-length UTF-8: one ``uint8`` array of the encoded strings
        end to end (``<key>_utf8``) and their boundaries (``<key>_offsets``, one more than the strings; int32
        while the bytes stay below 2 GiB, else int64), not as fixed-width UTF-32, which takes four bytes per
        character of the longest name."""
        info = {**self.meta, "format": FORMAT_TAG, "columns": list(self.metadata)}
        out = {f"{prefix}meta": np.array(json.dumps(info, default=str))}
        _pack_text(out, f"{prefix}ids", self.ids)
        _pack_text(out, f"{prefix}names", self.names)
        for k, col in enumerate(self.metadata.values()):
            _pack_text(out, f"{prefix}col{k}", col)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "names_") -> "Names | None":
        """The inverse of :meth:`to_arrays` (``arrays`` may be an open ``np.load`` file); None when the
        arrays hold no names under ``prefix``. Files written before text was stored as UTF-8 (fixed-width
        string arrays) read the same."""
        files = set(arrays.files if hasattr(arrays, "files") else arrays)
        if f"{prefix}ids" not in files and f"{prefix}ids_utf8" not in files:
            return None
        try:
            info = json.loads(str(arrays[f"{prefix}meta"]))
            columns = info.pop("columns")
            info.pop("format", None)
            metadata = {c: _unpack_text(arrays, files, f"{prefix}col{k}") for k, c in enumerate(columns)}
            return cls(_unpack_text(arrays, files, f"{prefix}ids"), _unpack_text(arrays, files, f"{prefix}names"),
                       metadata, info)
        except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise LatentAtlasError(f"stored names under {prefix!r} are incomplete or damaged "
                                   f"({printable(str(exc))})") from None


def _pack_text(out: dict, key: str, values: np.ndarray) -> None:
    """``values`` into ``out``: a text array as ``key_utf8`` (the UTF-8 bytes end to end) and ``key_offsets``
    (where each string starts, and the end), anything else as it is under ``key``."""
    values = np.asarray(values)
    if values.dtype.kind != "U":
        out[key] = values
        return
    encoded = [s.encode("utf-8") for s in values.tolist()]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    out[f"{key}_utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    out[f"{key}_offsets"] = offsets.astype(np.int32) if offsets[-1] < 2**31 else offsets


def _unpack_text(arrays, files: set, key: str) -> np.ndarray:
    """The inverse of :func:`_pack_text` (or the plain array of an older file)."""
    if f"{key}_utf8" not in files:
        return np.asarray(arrays[key])
    data = np.asarray(arrays[f"{key}_utf8"])
    offsets = np.asarray(arrays[f"{key}_offsets"])
    if data.dtype != np.uint8 or data.ndim != 1 or offsets.ndim != 1 or offsets.dtype.kind not in "iu" \
            or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any():
        raise ValueError(f"{key}: text offsets do not match its bytes")
    raw = data.tobytes()
    bounds = offsets.tolist()
    return np.array([raw[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:])], dtype=str)


_ARTICLE = re.compile(r"^(?P<body>.+?),\s*(?P<article>the|a|an|les|la|le|l'|il|el|los|las|das|der|die)"
                      r"(?P<tail>\s*\(\s*\d{4}\s*\))?$")
_YEAR = re.compile(r"\s*\(\s*\d{4}\s*\)$")


def _fold(text: str) -> str:
    """Casefolded, spacing collapsed: how names are compared."""
    return " ".join(str(text).casefold().split())


def _short_form(folded: str) -> str:
    """A folded name with a trailing article moved to the front and a trailing (year) removed."""
    m = _ARTICLE.match(folded)
    if m:
        article = m["article"]
        folded = f"{article}{'' if article.endswith(chr(39)) else ' '}{m['body']}{m['tail'] or ''}"
    return _YEAR.sub("", folded)


def _take(values: np.ndarray, pos: np.ndarray, missing) -> np.ndarray:
    found = pos >= 0
    if missing is not None and values.dtype.kind in "iuf" and not isinstance(missing, str):
        out = np.full(pos.shape, missing, dtype=np.result_type(values.dtype, np.asarray(missing).dtype))
        out[found] = values[pos[found]]
        return out
    out = np.full(pos.shape, missing, dtype=object)
    out[found] = values[pos[found]]
    return out if missing is None else out.astype(str)


# --- reading --------------------------------------------------------------------------------------------------
def read_names(path: str | os.PathLike, *, id_col: str | int | None = None, name_col: str | int | None = None,
               extra_cols: list[str | int] | tuple | None = None) -> Names:
    """Read a file that maps ids to names: CSV/TSV (header or not; delimiter sniffed; UTF-8, else Latin-1)
    or JSON lines.

    Columns are found by name — id: ``movieId``, ``business_id``, ``item_id``, ``user_id``, ``id``…;
    name: ``title``, ``name``… — or given by name or 0-based index. ``extra_cols`` are kept as metadata
    (default: any of :data:`METADATA_NAMES` present, e.g. MovieLens ``genres``, Yelp ``city`` and
    ``categories``). MovieLens 100K ``u.item`` (pipe-separated, Latin-1, no header) is recognised, its genre
    flags turned into one ``genres`` column ("Action|Comedy"). Repeated ids keep their first name; their
    count is ``meta["duplicates"]``.
    """
    path = Path(path)
    if not path.exists():
        raise LatentAtlasError(f"{path}: no such file")
    if path.is_dir():
        raise LatentAtlasError(f"{path}: is a directory, not a names file")
    lines = _head(path)
    if not lines:
        raise LatentAtlasError(f"{path}: file is empty")
    base = path.name.lower().removesuffix(".gz")
    if base.endswith((".json", ".jsonl", ".ndjson")) or lines[0].lstrip().startswith("{"):
        return _read_json(path, lines[0], id_col, name_col, extra_cols)
    if "::" in lines[0]:
        return _read_double_colon(path, lines[0], id_col, name_col, extra_cols)
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, 1 << 24))  # a long title or description: Python's csv stops at 128 KiB
    try:
        return _read_delimited(path, lines, id_col, name_col, extra_cols)
    except csv.Error as exc:
        raise LatentAtlasError(f"{printable(str(path))}: cannot parse file ({printable(str(exc))})") from None
    finally:
        csv.field_size_limit(limit)


def _open(path: Path, encoding: str = "utf-8"):
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


def _head(path: Path, n: int = 20, encoding: str = "utf-8") -> list[str]:
    """The first ``n`` non-blank lines."""
    out = []
    try:
        with _open(path, encoding) as fh:
            for line in fh:
                if line.strip():
                    out.append(line.rstrip("\r\n"))
                    if len(out) == n:
                        break
    except (OSError, EOFError) as exc:
        raise LatentAtlasError(f"{path}: cannot read file ({exc})") from None
    return out


def _sniff(lines: list[str]) -> str:
    """The delimiter that splits every sampled line (quote-aware) into the same number of fields, >1."""
    best, best_fields = None, 0
    for d in _DELIMITERS:
        counts = {len(rec) for rec in csv.reader(lines, delimiter=d)}
        if len(counts) == 1 and (n := counts.pop()) > 1:
            return d
        mean = sum(len(rec) for rec in csv.reader(lines, delimiter=d)) / max(len(lines), 1)
        if mean > best_fields:
            best, best_fields = d, mean
    return best if best and best_fields > 1 else ","


def _is_ml100k_item(path: Path, fields: int, delimiter: str, header: bool) -> bool:
    return delimiter == "|" and not header and (path.name == "u.item" or fields == 5 + len(ML100K_GENRES))


def _read_delimited(path: Path, lines: list[str], id_col, name_col, extra_cols) -> Names:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    delimiter = _sniff(lines)
    first = next(csv.reader(lines[:1], delimiter=delimiter))
    second = next(csv.reader(lines[1:2], delimiter=delimiter), None)
    known = {n.lower() for n in ID_NAMES + NAME_NAMES + METADATA_NAMES}
    header = _looks_like_header(first, second) or any(f.strip().lower() in known for f in first)
    ml100k = _is_ml100k_item(path, len(first), delimiter, header)
    if header:
        names = [f.strip() for f in first]
    elif ml100k:
        names = ["movie_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
    else:
        names = [f"column{k}" for k in range(len(first))]
    id_name = _pick(names, id_col, ID_NAMES if header or ml100k else (), None if header else 0, "id", path)
    name_name = _pick(names, name_col, NAME_NAMES if header or ml100k else (), None if header else 1, "name",
                      path)
    if id_name == name_name:
        raise LatentAtlasError(f"{path}: the id and name columns must differ (both are {id_name!r})")
    extras = _extras(names, extra_cols, (id_name, name_name), path)
    wanted = [id_name, name_name, *extras]
    if ml100k and extra_cols is None:
        wanted += [g for g in ML100K_GENRES if g not in wanted]
    quote = False if ml100k else '"'  # u.item quotes nothing, and a title may hold a lone '"'
    table = None
    for encoding in ("utf8", "latin-1"):
        try:
            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(column_names=names, skip_rows=1 if header else 0, encoding=encoding,
                                              block_size=1 << 24),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char=quote, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(include_columns=wanted, strings_can_be_null=False,
                                                    column_types={name_name: pa.string(), id_name: pa.string()}))
            break
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if encoding == "utf8" and "utf" in str(exc).lower():
                continue  # not UTF-8: MovieLens 100K and other old files are Latin-1
            _locate_csv(path, delimiter, quote, len(names), names.index(id_name), header, encoding, exc)
    encoding = encoding if table is not None else "utf8"
    ids_col = table.column(id_name)
    if ids_col.null_count or (pa.types.is_string(ids_col.type) and _any_blank(ids_col)):
        _locate_csv(path, delimiter, quote, len(names), names.index(id_name), header, encoding, None)
    metadata = {c: _meta_array(table.column(c)) for c in extras}
    if ml100k and extra_cols is None:
        flags = np.stack([table.column(g).to_numpy(zero_copy_only=False) for g in ML100K_GENRES], axis=1)
        metadata["genres"] = np.array(["|".join(g for g, f in zip(ML100K_GENRES, row) if f) for row in flags],
                                      dtype=str)
        if "release_date" not in metadata:
            metadata["release_date"] = _meta_array(table.column("release_date"))
    fmt = "movielens-100k" if ml100k else ("tsv" if delimiter == "\t" else "csv")
    # Ids read as text, integers only when all are written canonically: 001 and 1 stay two ids (as in ratings).
    return _build(path, fmt, typed_ids(ids_col), table.column(name_name), metadata, id_name, name_name, encoding)


def _any_blank(column) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.equal(pc.utf8_trim_whitespace(column), "")).as_py())


def _extras(names: list[str], extra_cols, taken: tuple[str, ...], path: Path) -> list[str]:
    if extra_cols is None:
        lower = {n.lower(): n for n in names}
        return [lower[c] for c in METADATA_NAMES if c in lower and lower[c] not in taken]
    if isinstance(extra_cols, (str, int)):
        extra_cols = [extra_cols]
    out = []
    for c in extra_cols:
        col = _pick(names, c, (), None, "metadata", path)
        if col not in taken and col not in out:
            out.append(col)
    return out


def _meta_array(column) -> np.ndarray:
    """A metadata column as numbers when it holds numbers, else text (missing → "")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) and not column.null_count:
        return column.to_numpy().astype(np.int64)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(column.type):
        column = pc.cast(column, pa.string())
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return np.array([_text(v) for v in column.to_pylist()], dtype=str)
    return np.asarray(pc.fill_null(column, "").to_numpy(zero_copy_only=False), dtype=str)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(_text(v) for v in value)
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


def _build(path: Path, fmt: str, ids_col, names_col, metadata: dict, id_name: str, name_name: str,
           encoding: str = "utf8") -> Names:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(ids_col.type):
        arr = ids_col.to_numpy(zero_copy_only=False)
        ids = arr.astype(np.int64) if np.all(arr == np.round(arr)) else arr.astype(str)
    elif pa.types.is_integer(ids_col.type):
        ids = ids_col.to_numpy().astype(np.int64)
    else:
        text = pc.utf8_trim_whitespace(pc.cast(ids_col, pa.string()))
        ids = np.asarray(text.to_numpy(zero_copy_only=False), dtype=str)
    names = np.asarray(pc.fill_null(pc.cast(names_col, pa.string()), "").to_numpy(zero_copy_only=False), dtype=str)
    _, first = np.unique(ids, return_index=True)
    keep = np.sort(first)
    n_dup = len(ids) - len(keep)
    if n_dup:
        ids, names = ids[keep], names[keep]
        metadata = {k: v[keep] for k, v in metadata.items()}
    meta = {"source": str(path), "format": fmt, "id_col": id_name, "name_col": name_name, "rows": int(len(ids_col)),
            "duplicates": int(n_dup), "encoding": encoding}
    return Names(ids, names, metadata, meta)


# --- MovieLens 1M / 10M movies.dat: id::title::genres ---------------------------------------------------------
def _read_double_colon(path: Path, first: str, id_col, name_col, extra_cols) -> Names:
    """Python, not pyarrow: its delimiter is one character, and titles hold ':' ("Star Wars: Episode IV")."""
    import pyarrow as pa

    n_fields = len(first.split("::"))
    names = ["movie_id", "title", "genres", *[f"column{k}" for k in range(3, n_fields)]][:n_fields]
    id_name = _pick(names, id_col, (), 0, "id", path)
    name_name = _pick(names, name_col, (), 1, "name", path)
    extras = _extras(names, extra_cols, (id_name, name_name), path)
    for encoding in ("utf-8", "latin-1"):  # MovieLens 1M is Latin-1, 10M UTF-8
        try:
            with (gzip.open(path, "rt", encoding=encoding, newline="") if path.name.endswith(".gz")
                  else open(path, encoding=encoding, newline="")) as fh:
                rows = []
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    fields = line.rstrip("\r\n").split("::")
                    if len(fields) != n_fields:
                        raise LatentAtlasError(f"{path}: line {number}: expected {n_fields} fields separated by "
                                               f"'::', found {len(fields)}")
                    if not fields[names.index(id_name)].strip():
                        raise LatentAtlasError(f"{path}: line {number}: missing id")
                    rows.append(fields)
            break
        except UnicodeDecodeError:
            continue
    columns = {n: [r[k] for r in rows] for k, n in enumerate(names)}
    ids = pa.array(columns[id_name])
    ids = typed_ids(ids)
    metadata = {c: np.asarray(columns[c], dtype=str) for c in extras}
    return _build(path, "movielens-dat", ids, pa.array(columns[name_name]), metadata, id_name, name_name,
                  "utf8" if encoding == "utf-8" else encoding)


# --- JSON lines -----------------------------------------------------------------------------------------------
def _read_json(path: Path, first_line: str, id_col, name_col, extra_cols) -> Names:
    import pyarrow as pa
    import pyarrow.json as pjson

    record = first_json_record(path, first_line)
    keys = list(record)
    id_name = _pick(keys, id_col, ID_NAMES, None, "id", path)
    name_name = _pick(keys, name_col, NAME_NAMES, None, "name", path)
    if id_name == name_name:
        raise LatentAtlasError(f"{path}: the id and name fields must differ (both are {id_name!r})")
    extras = _extras(keys, extra_cols, (id_name, name_name), path)
    # An explicit schema of the wanted fields only: Yelp's nested 'attributes' differ from line to line and
    # would trip type inference, and are not needed.
    schema = pa.schema([(id_name, pa.int64() if _is_int(record[id_name]) else pa.string()),
                        (name_name, pa.string()), *[(c, _json_type(record.get(c))) for c in extras]])
    try:
        table = pjson.read_json(path, read_options=pjson.ReadOptions(block_size=1 << 24),
                                parse_options=pjson.ParseOptions(explicit_schema=schema,
                                                                 unexpected_field_behavior="ignore"))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        _locate_json(path, schema, exc)
    if table.column(id_name).null_count:
        _locate_json(path, schema, None)
    metadata = {c: _meta_array(table.column(c)) for c in extras}
    return _build(path, "jsonl", table.column(id_name), table.column(name_name), metadata, id_name, name_name)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value):
    import pyarrow as pa

    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, (int, float)):
        return pa.float64()
    if isinstance(value, list):
        return pa.list_(pa.string())
    return pa.string()


def _json_value_ok(value, typ) -> bool:
    import pyarrow as pa

    if value is None:
        return True
    if pa.types.is_int64(typ):
        return _is_int(value)
    if pa.types.is_floating(typ):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if pa.types.is_boolean(typ):
        return isinstance(value, bool)
    if pa.types.is_list(typ):
        return isinstance(value, list)
    return isinstance(value, str)


def _locate_json(path: Path, schema, exc: Exception | None):
    id_name = schema.names[0]
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise LatentAtlasError(f"{path}: line {number}: not valid JSON ({err.msg} at column "
                                       f"{err.colno})") from None
            if not isinstance(record, dict):
                raise LatentAtlasError(f"{path}: line {number}: expected a JSON object")
            if record.get(id_name) in (None, ""):
                raise LatentAtlasError(f"{path}: line {number}: missing id field {id_name!r}")
            for f in schema:
                if not _json_value_ok(record.get(f.name), f.type):
                    raise LatentAtlasError(f"{path}: line {number}: field {f.name!r} holds "
                                           f"{printable(repr(record[f.name]))[:60]}, unlike line 1 ({f.type})")
    _unlocated(path, exc)


def _locate_csv(path: Path, delimiter: str, quote, n_fields: int, id_index: int, header: bool, encoding: str,
                exc: Exception | None):
    py_encoding = "latin-1" if encoding == "latin-1" else "utf-8"
    with _open(path, py_encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=csv.QUOTE_NONE if quote is False else csv.QUOTE_MINIMAL)
        first = True
        for record in reader:
            if not record or not any(f.strip() for f in record):
                continue
            if first and header:
                first = False
                continue
            first = False
            line = reader.line_num
            if len(record) != n_fields:
                raise LatentAtlasError(f"{path}: line {line}: expected {n_fields} fields separated by "
                                       f"{delimiter!r}, found {len(record)}")
            if not record[id_index].strip():
                raise LatentAtlasError(f"{path}: line {line}: missing id")
    _unlocated(path, exc)


def _unlocated(path: Path, exc: Exception | None):
    detail = re.sub(r"\s+", " ", str(exc)).strip() if exc is not None else "unreadable values"
    raise LatentAtlasError(f"{path}: cannot parse file: {printable(detail)[:200]}") from None
