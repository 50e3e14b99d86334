import logging
import sqlite3

import numpy as np
import pytest

import pg_server
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.io import read_ratings
from latentatlas.ratings.sql import mask_url, read_ratings_sql

pytest.importorskip("sqlalchemy", reason="the SQL reader needs SQLAlchemy (pip install 'latentatlas[sql]')")

# (user, item, stars) in insertion order; (u1, 10) is rated twice and the last rating (2.0) must win.
ROWS = [("u1", 10, 4.0), ("u2", 10, 3.5), ("u1", 20, 5.0), ("u3", 30, 1.0), ("u1", 10, 2.0)]


def _assert_known(r):
    # String user ids are numbered in order of first appearance, integer item ids in sorted order (as io does).
    assert r.user_ids.tolist() == ["u1", "u2", "u3"]
    assert r.item_ids.tolist() == [10, 20, 30]
    assert r.users.tolist() == [1, 0, 2, 0]
    assert r.items.tolist() == [0, 1, 2, 0]
    np.testing.assert_array_equal(r.values, np.array([3.5, 5.0, 1.0, 2.0], dtype=np.float32))
    assert r.meta["duplicates"] == 1 and r.meta["duplicate_policy"] == "last" and r.meta["lines_read"] == 5


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE reviews (id INTEGER PRIMARY KEY, user_id TEXT, item_id INTEGER, stars REAL, note TEXT)")
    con.executemany("INSERT INTO reviews (user_id, item_id, stars, note) VALUES (?, ?, ?, ?)",
                    [(u, i, s, f"n{k}%") for k, (u, i, s) in enumerate(ROWS)])
    con.commit()
    con.close()
    return path


def test_sqlite_known_rows(sqlite_db):
    url = f"sqlite:///{sqlite_db}"
    # '%' and ':' reach the driver as written (not taken for bind parameters); a trailing ';' is fine.
    r = read_ratings_sql(url, "SELECT user_id, item_id, stars FROM reviews WHERE note LIKE 'n%' "
                              "AND ':x' = ':x' ORDER BY id;")
    _assert_known(r)
    assert r.meta["source"] == url and r.meta["format"] == "sql"


def test_sqlite_matches_the_csv_reader(sqlite_db, tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("user_id,item_id,stars\n" + "".join(f"{u},{i},{s}\n" for u, i, s in ROWS))
    a = read_ratings(csv)
    b = read_ratings_sql(f"sqlite:///{sqlite_db}", "SELECT user_id, item_id, stars FROM reviews ORDER BY id")
    for name in ("users", "items", "values", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_sqlite_columns_by_name_and_position(sqlite_db):
    r = read_ratings_sql(f"sqlite:///{sqlite_db}", "SELECT id, stars AS s, item_id AS thing, user_id AS who "
                                                   "FROM reviews ORDER BY id",
                         user_col="who", item_col="thing", rating_col=1)
    _assert_known(r)


@pytest.mark.parametrize("query, message", [
    ("SELEC user_id FROM reviews", 'query failed: near "SELEC": syntax error'),
    ("SELECT user_id, item_id, stars FROM nope", "query failed: no such table: nope"),
    ("SELECT user_id, item_id, note FROM reviews ORDER BY id", "row 1 of the query result: rating 'n0%' is not a "
                                                               "number (column 'note')"),
    ("SELECT user_id, item_id, CASE WHEN id = 3 THEN NULL ELSE stars END AS stars FROM reviews ORDER BY id",
     "row 3 of the query result: rating is missing (column 'stars')"),
    ("SELECT user_id, item_id, stars FROM reviews WHERE 0", "the query returned no rows"),
    ("SELECT user_id AS rating, item_id AS rating, stars AS rating FROM reviews",
     "the query returns more than one column named 'rating'; give them distinct names with AS"),
])
def test_sqlite_errors_are_one_line(sqlite_db, query, message):
    url = f"sqlite:///{sqlite_db}"
    with pytest.raises(LatentAtlasError) as err:
        read_ratings_sql(url, query)
    assert str(err.value) == f"{url}: {message}"


def test_sqlite_query_that_changes_data_is_rolled_back(sqlite_db):
    url = f"sqlite:///{sqlite_db}"
    with pytest.raises(LatentAtlasError) as err:
        read_ratings_sql(url, "DELETE FROM reviews")
    assert str(err.value) == f"{url}: the query returned no rows (is it a SELECT?)"
    with sqlite3.connect(sqlite_db) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == len(ROWS)


def test_bad_urls(tmp_path):
    with pytest.raises(LatentAtlasError) as err:
        read_ratings_sql("not a url", "SELECT 1")
    assert str(err.value) == ("not a url: not a database URL; expected e.g. sqlite:///app.db or "
                              "postgresql://user:password@host:5432/database")
    missing = tmp_path / "missing.db"
    with pytest.raises(LatentAtlasError) as err:
        read_ratings_sql(f"sqlite:///{missing}", "SELECT 1")
    assert str(err.value) == f"sqlite:///{missing}: no such SQLite database file {missing}"
    assert not missing.exists()  # SQLite would have created it
    with pytest.raises(LatentAtlasError) as err:
        read_ratings_sql("nosuchdb://bob:hunter2@host/db", "SELECT 1")
    assert str(err.value) == "nosuchdb://bob:***@host/db: SQLAlchemy knows no database kind 'nosuchdb'"


def test_mask_url():
    assert mask_url("postgresql://bob:hunter2@db.example:5432/x") == "postgresql://bob:***@db.example:5432/x"
    assert mask_url("postgresql://bob:p@ss:w@rd@h/x") == "postgresql://bob:***@h/x"
    assert mask_url("postgresql://h/x?user=bob&password=hunter2&sslmode=require") == \
        "postgresql://h/x?user=bob&password=***&sslmode=require"
    assert mask_url("sqlite:///app.db") == "sqlite:///app.db"
    assert mask_url("postgresql://bob@h/x") == "postgresql://bob@h/x"


# --- a real PostgreSQL server ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg():
    try:
        with pg_server.running_server() as server:
            server.psql("CREATE TABLE reviews (id serial PRIMARY KEY, user_id text, item_id bigint, "
                        "stars numeric(3, 1), note text)")
            values = ", ".join(f"('{u}', {i}, {s}, 'n{k}%')" for k, (u, i, s) in enumerate(ROWS))
            server.psql(f"INSERT INTO reviews (user_id, item_id, stars, note) VALUES {values}")
            yield server
    except pg_server.Unavailable as exc:
        pytest.skip(str(exc))


BACKENDS = ["adbc", "sqlalchemy"]


def _backend(name):
    if name == "adbc":
        pytest.importorskip("adbc_driver_postgresql", reason="adbc-driver-postgresql is not installed")
    else:
        pytest.importorskip("psycopg", reason="psycopg is not installed")
    return name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg"])
def test_postgresql_known_rows(pg, backend, driver):
    url = pg.url(driver)
    # numeric(3,1) ratings, a '::' cast and a '%' pass through as written.
    r = read_ratings_sql(url, "SELECT user_id, item_id::bigint, stars FROM reviews "
                              "WHERE note LIKE 'n%' ORDER BY id;", backend=_backend(backend))
    _assert_known(r)
    assert r.meta["source"] == url.replace(pg.password, "***")


@pytest.mark.parametrize("backend", BACKENDS)
def test_postgresql_password_as_a_url_parameter(pg, backend):
    url = f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.database}?connect_timeout=5&password={pg.password}"
    r = read_ratings_sql(url, "SELECT user_id, item_id, stars FROM reviews ORDER BY id", backend=_backend(backend))
    _assert_known(r)
    assert r.meta["source"] == f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.database}?connect_timeout=5&password=***"


@pytest.mark.parametrize("backend", BACKENDS)
def test_postgresql_errors_are_one_line_and_never_show_the_password(pg, backend, caplog):
    backend = _backend(backend)
    masked = pg.url().replace(pg.password, "***")
    cases = [
        (pg.url(), "SELECT nope FROM reviews", 'column "nope" does not exist'),
        (pg.url(), "SELECT user_id, item_id, note FROM reviews ORDER BY id",
         "row 1 of the query result: rating 'n0%' is not a number (column 'note')"),
        (pg.url(password="wrong-" + pg.password), "SELECT 1", "password authentication failed"),
        (pg.url().replace(f":{pg.port}/", ":1/"), "SELECT 1", "cannot connect"),
    ]
    with caplog.at_level(logging.DEBUG):
        for url, query, fragment in cases:
            with pytest.raises(LatentAtlasError) as err:
                read_ratings_sql(url, query, backend=backend)
            text = str(err.value)
            assert "\n" not in text and fragment in text
            assert text.startswith(mask_url(url) + ": ")
            assert pg.password not in text
    assert masked.endswith(f"/{pg.database}")
    assert pg.password not in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_postgresql_query_that_changes_data_is_rolled_back(pg, backend):
    with pytest.raises(LatentAtlasError, match="the query returned no rows"):
        read_ratings_sql(pg.url(), "DELETE FROM reviews", backend=_backend(backend))
    assert pg.psql("SELECT count(*) FROM reviews").split()[2] == str(len(ROWS))


def test_adbc_refuses_other_databases(sqlite_db):
    pytest.importorskip("adbc_driver_postgresql")
    with pytest.raises(LatentAtlasError, match="the ADBC backend reads PostgreSQL only"):
        read_ratings_sql(f"sqlite:///{sqlite_db}", "SELECT 1", backend="adbc")
