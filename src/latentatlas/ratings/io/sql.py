"""Ratings from a SQL database: any SQLAlchemy URL and a query that returns (user, item, rating) rows.

Two ways to the rows, the same result:

* **ADBC** (``adbc-driver-postgresql``) for PostgreSQL when it is installed: the server streams the result as
  binary ``COPY`` straight into Arrow columns, with no Python object per value — the fast path for tens of
  millions of rows.
* **SQLAlchemy** for everything else (SQLite through the standard library's ``sqlite3``, PostgreSQL through
  ``psycopg``, MySQL, …): rows are fetched in batches of :data:`BATCH_ROWS` and turned into columns.

The ids and ratings then go through the file readers' own code (:func:`latentatlas.ratings.io.readers._assemble`), so
ids are numbered, duplicates resolved (``"last"`` by default) and ratings checked exactly as for a file.

The query runs in a transaction that is rolled back, never committed. Every message names the URL with its
password replaced by ``***``, and the password itself is scrubbed from any text a driver hands back.
"""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import numpy as np

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.io.readers import (DUPLICATE_POLICIES, ITEM_NAMES, RATING_NAMES, USER_NAMES, _assemble,
                                    _check_values, _pick, _rating_problem)

BACKENDS = ("auto", "adbc", "sqlalchemy")
BATCH_ROWS = 100_000
#: libpq waits for ever by default; an unreachable PostgreSQL server fails after this many seconds instead
#: (unless the URL sets ``connect_timeout`` itself).
CONNECT_TIMEOUT_S = 30
MASK = "***"

_ROW = "row {} of the query result"


def mask_url(url: str) -> str:
    """``url`` with any password (in the authority part or a ``password=`` parameter) replaced by ``***``;
    works on URLs that SQLAlchemy cannot parse too."""
    text = str(url)
    # Greedy up to the last '@' of the authority: an unescaped '@' in a password is masked whole.
    text = re.sub(r"(://[^/?#@:]*:)[^/?#]*@", rf"\g<1>{MASK}@", text)
    text = re.sub(r"([?&;]password=)[^&;#]*", rf"\g<1>{MASK}", text, flags=re.IGNORECASE)
    return printable(text)


def read_ratings_sql(url: str, query: str, *, user_col: str | int | None = None, item_col: str | int | None = None,
                     rating_col: str | int | None = None, duplicates: str = "last",
                     backend: str = "auto") -> Ratings:
    """Run ``query`` against the database at ``url`` (a SQLAlchemy URL: ``sqlite:///app.db``,
    ``postgresql://user:password@host:5432/db``, ``mysql+pymysql://…``) and read its rows as ratings.

    Columns are found by name like the file readers do (``user_id``, ``item_id``/``business_id``,
    ``rating``/``stars``…), else by position (first three), or given by name or 0-based index.
    ``backend``: ``"auto"`` (ADBC for PostgreSQL when installed, else SQLAlchemy), ``"adbc"`` or
    ``"sqlalchemy"``. ``meta["source"]`` is the masked URL and ``meta["query"]`` the query.
    """
    masked = mask_url(url)
    if duplicates not in DUPLICATE_POLICIES:
        raise LatentAtlasError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    if backend not in BACKENDS:
        raise LatentAtlasError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not isinstance(query, str) or not query.strip():
        raise LatentAtlasError(f"{masked}: give the SQL query that returns the ratings (e.g. query="
                               "\"SELECT user_id, item_id, rating FROM ratings\")")
    parsed = _parse(url, masked)
    secrets = [s for s in (parsed.password, *_query_passwords(parsed)) if s]
    try:
        if backend == "adbc" or (backend == "auto" and parsed.get_backend_name() == "postgresql"
                                 and _has_adbc_postgresql()):
            names, columns = _fetch_adbc(parsed, query, masked, secrets)
        else:
            names, columns = _fetch_sqlalchemy(parsed, query, masked, secrets)
    except (LatentAtlasError, TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError):
        raise  # ours, or a bug: not to be dressed up as a database problem
    except Exception as exc:  # a driver's own error type: still one line, and no password in it
        raise LatentAtlasError(f"{masked}: {_scrub(_first_line(exc), secrets)}") from None
    if not names:
        raise LatentAtlasError(f"{masked}: the query returned no columns")
    user = _pick(names, user_col, USER_NAMES, 0, "user", masked)
    item = _pick(names, item_col, ITEM_NAMES, 1, "item", masked)
    rating = _pick(names, rating_col, RATING_NAMES, 2, "rating", masked)
    if len({user, item, rating}) < 3:
        raise LatentAtlasError(f"{masked}: the user, item and rating columns must differ "
                               f"(got {user}, {item}, {rating}; the query returned {', '.join(names)})")
    if len(columns[rating]) == 0:
        raise LatentAtlasError(f"{masked}: the query returned no rows")
    values = _ratings(columns[rating], rating, masked)
    ratings = _assemble(masked, "sql", _ids(columns[user]), _ids(columns[item]), values, duplicates)
    ratings.meta["query"] = query
    return ratings


# --- URL ------------------------------------------------------------------------------------------------------
def _sqlalchemy(masked: str):
    try:
        import sqlalchemy
    except ImportError:
        raise LatentAtlasError(f"{masked}: reading ratings from SQL needs SQLAlchemy "
                               "(pip install 'latentatlas[sql]')") from None
    return sqlalchemy


def _parse(url: str, masked: str):
    sqlalchemy = _sqlalchemy(masked)
    from sqlalchemy.exc import ArgumentError

    try:
        return sqlalchemy.engine.make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise LatentAtlasError(f"{masked}: not a database URL; expected e.g. sqlite:///app.db or "
                               "postgresql://user:password@host:5432/database") from None


def _query_passwords(parsed) -> list[str]:
    out = []
    for key, value in parsed.query.items():
        if key.lower() == "password":
            out.extend([value] if isinstance(value, str) else list(value))
    return out


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_adbc_postgresql() -> bool:
    return _installed("adbc_driver_postgresql")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    # SQLAlchemy appends the statement and a link to its docs on separate lines; the first line says it.
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return re.sub(r"\s+", " ", re.sub(r"^\((?:[\w.]+)\)\s*", "", line))


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
        text = text.replace(quote_plus(secret), MASK)
    return printable(text)


def _strip_semicolon(query: str) -> str:
    # Wrapped in COPY (…) by ADBC and sent as one statement: a trailing ';' is a syntax error there.
    return re.sub(r"[\s;]+$", "", query)


def _check_sqlite_file(parsed, masked: str) -> None:
    """SQLite creates a missing database file on connect; a misspelt path would then fail as 'no such table'."""
    from pathlib import Path

    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or \
            database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        raise LatentAtlasError(f"{masked}: no such SQLite database file {database}")
    if path.is_dir():
        raise LatentAtlasError(f"{masked}: {database} is a directory, not a SQLite database file")


# --- fetching -------------------------------------------------------------------------------------------------
def _fetch_sqlalchemy(parsed, query: str, masked: str, secrets: list[str]) -> tuple[list[str], dict]:
    sqlalchemy = _sqlalchemy(masked)
    from sqlalchemy import exc as sa_exc

    _check_sqlite_file(parsed, masked)
    if parsed.drivername == "postgresql" and not _installed("psycopg2") and _installed("psycopg"):
        # SQLAlchemy 2.0 takes plain 'postgresql' to mean psycopg2; the 'sql' extra installs psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=connect_args)
    except sa_exc.NoSuchModuleError:
        raise LatentAtlasError(f"{masked}: SQLAlchemy knows no database kind {parsed.drivername!r}") from None
    except ImportError as exc:
        module = getattr(exc, "name", None) or str(exc)
        raise LatentAtlasError(f"{masked}: the Python database driver {module!r} is not installed "
                               "(PostgreSQL: pip install 'latentatlas[sql]')") from None
    try:
        try:
            conn = engine.connect()
        except sa_exc.DBAPIError as exc:
            raise LatentAtlasError(f"{masked}: cannot connect: {_scrub(_first_line(exc), secrets)}") from None
        dbapi_error = getattr(engine.dialect, "loaded_dbapi", None) or engine.dialect.dbapi
        with conn:
            raw = conn.connection  # the driver's own connection
            cursor = raw.cursor()
            try:
                # The query goes to the driver as written, with no parameters: then neither SQLAlchemy (':name')
                # nor psycopg ('%') reads placeholders in it, and PostgreSQL's '::int' casts stay casts.
                cursor.execute(query)
                if not cursor.description:
                    raise LatentAtlasError(f"{masked}: the query returned no rows (is it a SELECT?)")
                names = [str(d[0]) for d in cursor.description]
                _check_unique(names, masked)
                lists: list[list] = [[] for _ in names]
                while batch := cursor.fetchmany(BATCH_ROWS):
                    for target, column in zip(lists, zip(*batch)):
                        target.extend(column)
            except dbapi_error.Error as exc:
                raise LatentAtlasError(f"{masked}: query failed: {_scrub(_first_line(exc), secrets)}") from None
            finally:
                cursor.close()
                raw.rollback()
    finally:
        engine.dispose()
    return names, dict(zip(names, lists))


def _fetch_adbc(parsed, query: str, masked: str, secrets: list[str]) -> tuple[list[str], dict]:
    if parsed.get_backend_name() != "postgresql":
        raise LatentAtlasError(f"{masked}: the ADBC backend reads PostgreSQL only; use backend='sqlalchemy'")
    try:
        import adbc_driver_postgresql.dbapi as pgdb
        from adbc_driver_manager import dbapi as adbc
    except ImportError:
        raise LatentAtlasError(f"{masked}: the ADBC backend needs adbc-driver-postgresql "
                               "(pip install 'latentatlas[sql]')") from None
    # libpq reads the same URL once the SQLAlchemy driver name ('+psycopg') is dropped.
    target = parsed.set(drivername="postgresql")
    if "connect_timeout" not in parsed.query:
        target = target.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    uri = target.render_as_string(hide_password=False)
    try:
        conn = pgdb.connect(uri)
    except adbc.Error as exc:
        raise LatentAtlasError(f"{masked}: cannot connect: {_scrub(_first_line(exc), secrets)}") from None
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(_strip_semicolon(query))
                if not cur.description:
                    raise LatentAtlasError(f"{masked}: the query returned no rows (is it a SELECT?)")
                table = cur.fetch_arrow_table()
            except adbc.Error as exc:
                raise LatentAtlasError(f"{masked}: query failed: {_scrub(_first_line(exc), secrets)}") from None
        conn.rollback()
    finally:
        conn.close()
    names = [str(n) for n in table.column_names]
    _check_unique(names, masked)
    return names, {n: table.column(k) for k, n in enumerate(names)}


def _check_unique(names: list[str], masked: str) -> None:
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise LatentAtlasError(f"{masked}: the query returns more than one column named "
                               f"{', '.join(sorted(map(repr, seen)))}; give them distinct names with AS")


# --- columns to arrays ----------------------------------------------------------------------------------------
def _ids(column):
    """An id column as something :func:`~latentatlas.ratings.io.readers._encode` takes: an Arrow array."""
    import pyarrow as pa

    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_decimal(column.type):  # NUMERIC ids: integral ones become int64, others fail in _encode
            if column.type.scale <= 0:
                try:
                    return column.cast(pa.int64())
                except (pa.ArrowInvalid, OverflowError):  # beyond int64: exact as text, never a rounded float
                    return column.cast(pa.string())
            column = column.cast(pa.float64())
        return column
    try:
        return pa.array(column)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # OverflowError: an integer beyond 64 bits
        # SQLite lets one column hold numbers and text: such ids are compared as text.
        return pa.array([None if v is None else str(v) for v in column], type=pa.string())


def _ratings(column, name: str, masked: str) -> np.ndarray:
    """The rating column as float64; the first row that is missing or not a number is named."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = None
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        try:
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            column = column.to_pylist()
    else:
        try:
            values = np.asarray(column, dtype=np.float64)  # numbers, numeric text and Decimal alike
        except (TypeError, ValueError):
            pass
    if values is None or not np.all(np.isfinite(values)):
        if isinstance(column, (pa.Array, pa.ChunkedArray)):
            column = column.to_pylist()
        for row, value in enumerate(column):
            problem = _rating_problem(value)
            if problem:
                raise LatentAtlasError(f"{masked}: {_ROW.format(row + 1)}: {problem} (column {name!r})")
    if values is None:
        raise LatentAtlasError(f"{masked}: column {name!r} does not hold numbers")
    _check_values(masked, values, line_of=lambda row: f"{row + 1} (row of the query result)")
    return np.asarray(values, dtype=np.float64)
