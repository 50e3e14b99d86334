"""Side-feature files: user and item attributes read into :class:`~latentatlas.ratings.features.Features`.

Recognised with no options:

* MovieLens 100K ``u.item`` (pipe-separated, Latin-1): the 19 genre flags -> one multi-valued ``genre``
  group, the release date -> numeric ``year``;
* MovieLens 100K ``u.user``: ``age`` numeric, ``gender`` and ``occupation`` categorical, ``zip`` -> its first
  character, categorical;
* MovieLens ``movies.csv`` (ml-latest, ml-25m…): ``genre`` multi-valued (``A|B``), ``year`` from the title;
* Yelp ``business.json`` (JSON lines): ``categories`` multi-valued (``"A, B"``), ``city`` and ``state``
  categorical, ``stars`` and ``review_count`` numeric;
* RecBole atomic files (``ml-100k.item``, ``ml-100k.user``: a ``name:type`` header): ``token`` categorical,
  ``token_seq`` multi-valued, ``float`` numeric (titles left out; ``age``/``year`` numeric, zip codes cut);
* any CSV/TSV/Parquet/JSON-lines table with a header: the id column found by name (``item``, ``movieId``,
  ``business_id``, ``user_id``… or ``id``) or given, every other column a feature unless ``columns`` chooses
  (text columns whose every value differs, such as names and titles, are left out unless chosen).

``columns`` picks the groups (``"genre,year"``); a ``name:kind`` entry forces a kind (``zip:categorical``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.ratings.features import KINDS, Features, _texty, shown_id
from latentatlas.ratings.io.names import _head as _names_head
from latentatlas.ratings.io.names import _open as _open_text
from latentatlas.ratings.io.readers import ITEM_NAMES, USER_NAMES

log = logging.getLogger("latentatlas")

FEATURE_FORMATS = ("auto", "ml100k-item", "ml100k-user", "movielens-movies", "yelp-business", "recbole", "csv",
                   "tsv", "parquet", "jsonl")
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
ZIP_NAMES = ("zip", "zip_code", "zipcode", "postal_code", "postcode")
TITLE_NAMES = ("title", "name", "movie_title", "item_name", "business_name", "address", "url", "imdb_url")
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")

__all__ = ["read_features", "check_overlap", "FEATURE_FORMATS"]


def _head(path: Path, n: int = 5) -> list[str]:
    return _names_head(path, n, "latin-1")  # MovieLens' u.item is latin-1; any byte decodes for sniffing


def _base(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def detect_feature_format(path: Path) -> str:
    """The feature-file format of ``path`` (one of :data:`FEATURE_FORMATS` but ``auto``)."""
    base = _base(path)
    if base.endswith(".parquet") or base.endswith(".pq"):
        return "parquet"
    lines = _head(path)
    if not lines:
        raise LatentAtlasError(f"{path}: the file is empty")
    first = lines[0].lstrip("\ufeff").strip()
    if first.startswith("{") or base.endswith((".json", ".jsonl", ".ndjson")):
        try:
            record = json.loads(first)
        except ValueError:
            raise LatentAtlasError(f"{path} line 1: not a JSON object") from None
        if isinstance(record, dict) and "business_id" in record and "categories" in record:
            return "yelp-business"
        return "jsonl"
    fields = first.split("|")
    if base == "u.item" or (len(fields) == 5 + len(ML100K_GENRES) and all(f in ("0", "1") for f in fields[5:])):
        return "ml100k-item"
    if base == "u.user" or (len(fields) == 5 and fields[1].isdigit() and fields[2] in ("M", "F")):
        return "ml100k-user"
    if "\t" in first and all(":" in f for f in first.split("\t")):
        return "recbole"
    header = [h.strip().strip('"') for h in next(csv.reader([first]))]
    if header[:3] == ["movieId", "title", "genres"]:
        return "movielens-movies"
    return "tsv" if "\t" in first else "csv"


def read_features(path: str | os.PathLike, *, kind: str | None = None, id_column: str | None = None,
                  columns=None, sep: str | None = None, format: str | None = None) -> Features:
    """Features of users or items from a file (see the module doc for the formats recognised).

    ``kind`` (``"user"``/``"item"``) prefers user or item id names when a table has both. ``id_column``: the
    id column of a generic table. ``columns``: the groups to keep (a list, or ``"genre,year"``); a
    ``name:kind`` entry forces ``numeric``, ``categorical`` or ``multi``. ``sep``: the separator of
    multi-valued text fields (default ``|``; Yelp categories use ``,``). ``format`` forces a format."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise LatentAtlasError(f"{path}: no such feature file")
    if path.is_dir():
        raise LatentAtlasError(f"{path}: is a folder, not a feature file")
    fmt = format or "auto"
    if fmt not in FEATURE_FORMATS:
        raise LatentAtlasError(f"format: {fmt!r} is not one of {', '.join(FEATURE_FORMATS)}")
    if fmt == "auto":
        fmt = detect_feature_format(path)
    wanted, forced = _parse_columns(columns)
    where = str(path)
    try:
        if fmt == "ml100k-item":
            frame, spec, kinds = _ml100k_item(path)
        elif fmt == "ml100k-user":
            frame, spec, kinds = _ml100k_user(path)
        elif fmt == "movielens-movies":
            frame, spec, kinds = _movielens_movies(path)
        elif fmt == "yelp-business":
            frame, spec, kinds = _yelp_business(path, wanted)
            sep = sep or ","
        elif fmt == "recbole":
            frame, spec, kinds = _recbole(path)
            sep = sep or " "
        else:
            frame = _read_table(path, fmt)
            spec, kinds = None, {}
    except pd.errors.ParserError as exc:
        raise LatentAtlasError(f"{path}: {printable(str(exc).strip().splitlines()[-1])}") from None
    except UnicodeDecodeError as exc:
        raise LatentAtlasError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    frame.columns = [str(c) for c in frame.columns]
    if spec is None:  # a generic table: the id column by name, every other column a feature
        id_column = _id_column(frame, id_column, kind, path)
        spec, kinds = _generic_spec(frame, id_column, wanted is not None, sep or "|", forced)
    else:
        if id_column is not None and id_column != "id":
            raise LatentAtlasError(f"{path}: a {fmt} file has a fixed id column; id_column= ({id_column!r}) does "
                                   "not apply")
        id_column = "id"
    if wanted is not None:
        for w in wanted:  # a field of a known format that its defaults leave out (Yelp's is_open…)
            if w not in spec and w in frame.columns and w != id_column and not w.startswith("\0"):
                spec[w] = w
        unknown = [w for w in wanted if w not in spec]
        if unknown:
            raise LatentAtlasError(f"{path}: unknown feature column {unknown[0]!r}; the columns are "
                                   f"{', '.join(printable(c) for c in spec)}")
        spec = {w: spec[w] for w in wanted}
    kinds.update(forced)
    for group, cols in list(spec.items()):
        if isinstance(cols, str) and cols.startswith("\0zip:"):
            col = cols[5:]
            if group in forced and forced[group] != "categorical":
                spec[group] = col
                continue
            first = frame[col].astype("string").str.strip().str[:1].str.upper()
            frame[f"\0{group}"] = first.where(first.fillna("") != "", None).astype(object)
            spec[group] = f"\0{group}"
            kinds.setdefault(group, "categorical")
    header = fmt not in ("ml100k-item", "ml100k-user", "parquet", "jsonl", "yelp-business")
    _check_ids(frame, id_column, path, header=header)
    try:
        features = Features.from_frame(frame, id_column, spec, sep=sep or "|", kinds=kinds, source=where)
    except LatentAtlasError as exc:  # from_frame counts rows of the table; a file's reader wants its line
        found = re.search(r": field (.*) row (\d+): ", str(exc))
        if found is None:
            raise
        line = _line(path, int(found.group(2)) - 1, 2 if header else 1)
        raise LatentAtlasError(f"{path} {line}: field {found.group(1)}: {str(exc)[found.end():]}") from None
    meta = dict(features.meta)
    meta.update(format=fmt, source=where, left_out=list(frame.attrs.get("left_out", [])))
    object.__setattr__(features, "meta", meta)
    log.debug("%s: %s features of %d ids: %s", path, fmt, len(features), features.describe())
    return features


def _parse_columns(columns) -> tuple[list[str] | None, dict[str, str]]:
    if columns is None:
        return None, {}
    items = columns.split(",") if isinstance(columns, str) else [str(c) for c in columns]
    wanted, forced = [], {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, _, k = item.partition(":")
        name, k = name.strip(), k.strip()
        if k and k in KINDS:
            forced[name] = k
        elif k and k not in KINDS:
            name = item  # a column whose name holds ':' (RecBole-style): kept whole
        wanted.append(name)
    if not wanted:
        raise LatentAtlasError("feature columns: the list is empty")
    return wanted, forced


def _year(text) -> float:
    if not isinstance(text, str):
        return np.nan
    match = re.search(r"(\d{4})\s*$", text.strip())
    return float(match.group(1)) if match else np.nan


def _ml100k_item(path: Path):
    import pandas as pd

    names = ["id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
    frame = pd.read_csv(path, sep="|", header=None, names=names, encoding="latin-1", dtype=str,
                        keep_default_na=False, quoting=csv.QUOTE_NONE, index_col=False)
    _check_width(path, len(names), "|", "latin-1")
    for g in ML100K_GENRES:
        bad = ~frame[g].isin(["0", "1"])
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise LatentAtlasError(f"{path} line {line}: genre flag {g!r} is {frame[g].iloc[line - 1]!r}, "
                                   "expected 0 or 1")
    frame["year"] = frame["release_date"].map(_year)
    return frame, {"genre": list(ML100K_GENRES), "year": "year"}, {"year": "numeric"}


def _ml100k_user(path: Path):
    import pandas as pd

    names = ["id", "age", "gender", "occupation", "zip"]
    frame = pd.read_csv(path, sep="|", header=None, names=names, encoding="latin-1", dtype=str,
                        keep_default_na=False, quoting=csv.QUOTE_NONE, index_col=False)
    _check_width(path, len(names), "|", "latin-1")
    frame = frame.replace({"": None})
    return (frame, {"age": "age", "gender": "gender", "occupation": "occupation", "zip": "\0zip:zip"},
            {"age": "numeric", "gender": "categorical", "occupation": "categorical"})


def _movielens_movies(path: Path):
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    frame = frame.rename(columns={"movieId": "id"})
    frame["genres"] = frame["genres"].replace({"(no genres listed)": ""})
    frame["year"] = frame["title"].map(lambda t: float(m.group(1)) if (m := _YEAR_IN_TITLE.search(str(t)))
                                       else np.nan)
    return frame, {"genre": "genres", "year": "year"}, {"genre": "multi", "year": "numeric"}


YELP_FIELDS = (("categories", "multi"), ("city", "categorical"), ("state", "categorical"), ("stars", "numeric"),
               ("review_count", "numeric"))


def _yelp_business(path: Path, wanted=None):
    keep = {"business_id", *(name for name, _ in YELP_FIELDS), *(wanted or ())}
    frame = _read_json_lines(path, keep)  # the nested attributes and hours are most of the file
    frame = frame.rename(columns={"business_id": "id"})
    spec, kinds = {}, {}
    for name, k in YELP_FIELDS:
        if name in frame.columns:
            spec[name], kinds[name] = name, k
    return frame, spec, kinds


def _recbole(path: Path):
    import pandas as pd

    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
                        encoding="utf-8", encoding_errors="replace")
    spec, kinds, id_col = {}, {}, None
    renamed = {}
    for col in frame.columns:
        name, _, typ = str(col).partition(":")
        renamed[col] = name
    types = {renamed[c]: str(c).partition(":")[2] for c in renamed}
    col_of = {renamed[c]: c for c in renamed}
    for name, typ in types.items():
        if id_col is None and name in ITEM_NAMES + USER_NAMES:
            id_col = name
            continue
        if name in TITLE_NAMES:
            continue
        if name in ZIP_NAMES:
            spec[name] = f"\0zip:{name}"
        elif name in ("age", "year", "release_year") or typ in ("float",):
            spec[name], kinds[name] = name, "numeric"  # RecBole writes "unknown" for a missing number
            frame[col_of[name]] = pd.to_numeric(frame[col_of[name]].replace({"": None}), errors="coerce")
        elif typ == "token_seq":
            spec[name], kinds[name] = name, "multi"
        elif typ == "token":
            spec[name], kinds[name] = name, "categorical"
    if id_col is None:
        raise LatentAtlasError(f"{path}: no id column (looked for user_id, item_id…) in the RecBole header")
    frame = frame.rename(columns=renamed)
    frame = frame.replace({"": None}).rename(columns={id_col: "id"})
    return frame, spec, kinds


def _check_width(path: Path, width: int, delimiter: str, encoding: str) -> None:
    """Names the first line of a delimited file whose field count is not ``width`` (pandas pads short lines)."""
    with _open_text(path, encoding) as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if line.strip() and len(line.split(delimiter)) != width:
                raise LatentAtlasError(f"{path} line {number}: {len(line.split(delimiter))} fields, expected "
                                       f"{width}")


def _read_json_lines(path: Path, keep: set | None = None):
    import pandas as pd

    rows = []
    with _open_text(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise LatentAtlasError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise LatentAtlasError(f"{path} line {number}: not a JSON object")
            rows.append(record if keep is None else {k: v for k, v in record.items() if k in keep})
    return pd.DataFrame.from_records(rows)


def _read_table(path: Path, fmt: str):
    import pandas as pd

    if fmt == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise LatentAtlasError(f"{path}: not a readable Parquet file ({printable(exc)})") from None
    if fmt == "jsonl":
        return _read_json_lines(path)
    lines = _head(path, 20)
    delimiter = "\t" if fmt == "tsv" else _sniff(lines)
    return pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, na_values=[""],
                       encoding="utf-8", encoding_errors="replace")


def _sniff(lines: list[str]) -> str:
    for d in (",", "\t", "|", ";"):
        counts = {len(rec) for rec in csv.reader(lines, delimiter=d)}
        if len(counts) == 1 and counts.pop() > 1:
            return d
    return ","


def _id_column(frame, id_column, kind, path: Path) -> str:
    names = list(frame.columns)
    if id_column is not None:
        if str(id_column) not in names:
            raise LatentAtlasError(f"{path}: id column {printable(id_column)!r} not found; the columns are "
                                   f"{', '.join(printable(n) for n in names[:20])}")
        return str(id_column)
    order = (USER_NAMES + ITEM_NAMES) if kind == "user" else (ITEM_NAMES + USER_NAMES)
    for candidate in order + ("id",):
        if candidate in names:
            return candidate
    lowered = {n.lower(): n for n in names}
    for candidate in order + ("id",):
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    raise LatentAtlasError(f"{path}: no id column (looked for {', '.join(order[:6])}… and id); name it with "
                           f"--{kind or 'item'}-feature-id (id_column=); the columns are "
                           f"{', '.join(printable(n) for n in names[:20])}")


def _generic_spec(frame, id_column: str, chosen: bool, sep: str, forced: dict) -> tuple[dict, dict]:
    """Every column but the id: numbers numeric (text holding only numbers too), zip codes cut to their first
    character; unless ``chosen``, single-valued text columns whose values all differ (names, titles) and nested
    values are left out."""
    import pandas as pd

    spec, kinds, left_out = {}, {}, []
    for col in frame.columns:
        if col == id_column:
            continue
        series = frame[col]
        if col in forced:  # read as written, encoded as asked
            spec[col] = col
            continue
        if col.lower() in ZIP_NAMES:
            spec[col] = f"\0zip:{col}"
            continue
        values = series.dropna()
        inferred = pd.api.types.infer_dtype(values, skipna=True) if _texty(series) else ""
        if not chosen and inferred == "mixed" and any(isinstance(v, dict) for v in values.to_numpy()):
            log.debug("features: column %r holds nested values; left out", col)
            left_out.append(col)
            continue
        if inferred in ("string", "mixed-integer-float", "integer", "floating", "mixed-integer") and len(values):
            head = pd.to_numeric(values.iloc[:100], errors="coerce")
            numbers = pd.to_numeric(values, errors="coerce") if head.notna().all() else head
            if len(numbers) == len(values) and numbers.notna().all():
                frame[col] = pd.to_numeric(series, errors="coerce")
                spec[col], kinds[col] = col, "numeric"
                continue
        if inferred == "string" and not chosen and len(values) > 1 and len(values) == len(frame) and \
                values.nunique() == len(values) and not values.str.contains(sep, regex=False).any():
            log.debug("features: column %r has a different value on every row (a name?); left out", col)
            left_out.append(col)
            continue
        spec[col] = col
    frame.attrs["left_out"] = left_out
    return spec, kinds


def _check_ids(frame, id_column: str, path: Path, header: bool) -> None:
    """Missing and duplicate ids named with their line (rows of a header file start at line 2)."""
    import pandas as pd

    if len(frame) == 0:  # Features.from_frame says so (pyarrow has no string kernels for an all-null column)
        return
    offset = 2 if header else 1
    ids = frame[id_column]
    missing = np.array(pd.isna(ids), dtype=bool)  # a copy: pandas 3 hands out read-only views
    if _texty(ids) and pd.api.types.infer_dtype(ids, skipna=True) == "string":
        import pyarrow as pa
        import pyarrow.compute as pc

        blank = pc.equal(pc.utf8_trim_whitespace(pa.array(ids.to_numpy(dtype=object), from_pandas=True)), "")
        missing |= pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise LatentAtlasError(f"{path} {_line(path, row, offset)}: the id ({id_column}) is missing")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise LatentAtlasError(f"{path} {_line(path, row, offset)}: duplicate id {printable(ids.iloc[row])} "
                               "(each id may have one row)")


def _line(path: Path, row: int, offset: int) -> str:
    if _base(path).endswith(".parquet"):
        return f"row {row + 1}"
    return f"line {row + offset}"


def check_overlap(features: Features, ids, what: str, source: str | None = None) -> dict:
    """How ``features`` meets the ratings' ``ids`` of users or items (``what``): a dict of ``matched``
    (ratings ids with features), ``without`` (ratings ids without), ``cold`` (feature ids not in the
    ratings). None shared is a :class:`LatentAtlasError`; a partial overlap is for the caller to report
    (:func:`~latentatlas.ratings.pipeline.load_features` does)."""
    ids = np.asarray(ids)
    name = source or (features.meta or {}).get("source") or f"{what} features"
    matched = features.overlap(ids)
    if matched == 0 and len(ids) and len(features):
        article = "an" if what == "item" else "a"
        raise LatentAtlasError(f"{name}: none of its {len(features)} ids is {article} {what} id of the ratings "
                               f"(e.g. {shown_id(features.ids[0])} here, {shown_id(ids[0])} there)")
    cold = len(features) - matched
    return {"matched": matched, "without": int(len(ids) - matched), "cold": int(cold)}
