"""Timestamps through the readers, the Ratings table and its files, and the per-user leave-last-out split."""

import json
import logging
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from latentatlas import Ratings
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.io import parse_times, read_ratings
from latentatlas.ratings.io.readers import _time_value
from latentatlas.ratings.pipeline import prepare_ratings
from latentatlas.ratings.prep import Split, kcore, split


def write(path, text):
    path.write_text(text)
    return path


def rows(r):
    """{(user id, item id): (rating, timestamp)} with original ids."""
    f = r.to_frame()
    return {(u, i): (v, t) for u, i, v, t in zip(f["user"].tolist(), f["item"].tolist(), f["rating"].tolist(),
                                                 f["timestamp"].tolist())}


def pairs(r):
    return {(r.user_ids[u].item(), r.item_ids[i].item()) for u, i in zip(r.users, r.items)}


def epoch(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# --- the split --------------------------------------------------------------------------------------------------
TINY = (
    # user 1: five ratings, out of time order in the file; user 2: two ratings tied in time; user 3: three
    "1\t10\t5\t500\n"
    "1\t11\t4\t100\n"
    "2\t10\t3\t700\n"
    "1\t12\t3\t400\n"
    "3\t10\t2\t50\n"
    "1\t13\t2\t300\n"
    "2\t11\t1\t700\n"
    "3\t11\t5\t60\n"
    "1\t14\t1\t200\n"
    "3\t12\t4\t55\n"
    "2\t12\t4\t10\n"
)


def test_leave_last_out_exact_membership(tmp_path):
    r = read_ratings(write(tmp_path / "u.data", TINY))
    s = split(r, leave_last_out=1)
    # user 1: latest 10 (t=500) to test, 12 (t=400) to validation; user 2: 10 and 11 tie at t=700, the later
    # line (11) counts as later; user 3: 11 (t=60) to test, 12 (t=55) to validation.
    assert pairs(s.test) == {(1, 10), (2, 11), (3, 11)}
    assert pairs(s.validation) == {(1, 12), (2, 10), (3, 12)}
    assert pairs(s.train) == {(1, 11), (1, 13), (1, 14), (2, 12), (3, 10)}
    assert rows(s.test)[(1, 10)] == (5.0, 500.0) and rows(s.validation)[(3, 12)] == (4.0, 55.0)
    # deterministic: the seed plays no part
    assert pairs(split(r, leave_last_out=1, seed=7).test) == pairs(s.test)


def test_leave_last_out_two_and_users_too_small(tmp_path):
    r = read_ratings(write(tmp_path / "u.data", TINY))
    s = split(r, leave_last_out=2)
    # only user 1 (5 ratings) keeps a training rating with 2 + 2 held out; users 2 and 3 stay in train
    assert pairs(s.test) == {(1, 10), (1, 12)}
    assert pairs(s.validation) == {(1, 13), (1, 14)}
    assert pairs(s.train) == {(1, 11)} | {(2, i) for i in (10, 11, 12)} | {(3, i) for i in (10, 11, 12)}


def test_every_test_rating_is_later_than_the_users_training_ratings():
    rng = np.random.default_rng(3)
    n = 4000
    users, items = rng.integers(0, 60, n), rng.integers(0, 500, n)
    times = rng.integers(0, 50, n).astype(float)  # many ties
    r = Ratings.from_arrays(users, items, rng.integers(1, 6, n), timestamps=times)
    s = split(r, leave_last_out=3)
    for part in (s.validation, s.test):
        assert np.all(np.bincount(part.users, minlength=r.n_users)[np.unique(part.users)] == 3)
    for u in np.unique(s.test.users):
        train_t = s.train.timestamps[s.train.users == u]
        val_t = s.validation.timestamps[s.validation.users == u]
        test_t = s.test.timestamps[s.test.users == u]
        assert len(train_t) >= 1 and train_t.max() <= val_t.min() and val_t.max() <= test_t.min()
    assert len(s.train) + len(s.validation) + len(s.test) == len(r)


def test_leave_last_out_without_timestamps_is_one_line_error(tmp_path):
    f = write(tmp_path / "r.csv", "userId,movieId,rating\n1,10,5\n1,11,4\n1,12,3\n2,10,1\n")
    r = read_ratings(f)
    assert r.timestamps is None
    with pytest.raises(LatentAtlasError) as err:
        split(r, leave_last_out=1)
    msg = str(err.value)
    assert "leave_last_out" in msg and "no timestamps" in msg and "\n" not in msg
    assert "timestamp, time, date or datetime" in msg
    with pytest.raises(LatentAtlasError, match="leave_last_out.*no timestamps"):
        prepare_ratings(f, min_entries=0, leave_last_out=1, quiet=True)
    with pytest.raises(LatentAtlasError, match="leave_last_out must be an integer >= 1"):
        split(read_ratings(write(tmp_path / "u.data", TINY)), leave_last_out=0)
    with pytest.raises(LatentAtlasError, match="cannot be combined"):
        prepare_ratings(f, leave_last_out=1, test_fraction=0.2, quiet=True)


# --- readers keep each time with its own rating --------------------------------------------------------------
def test_u_data_times_duplicates_and_a_skipped_bad_line(tmp_path):
    f = write(tmp_path / "u.data", "196\t242\t3\t881250949\n"
                                   "186\t302\t3\t891717742\n"
                                   "22\t377\t1\tlast-tuesday\n"  # line 3: a bad time
                                   "196\t242\t5\t881250999\n"  # the pair of line 1 again
                                   "244\t51\t2\t880606923\n")
    with pytest.raises(LatentAtlasError, match=r"u\.data: line 3: time 'last-tuesday' is not a time"):
        read_ratings(f)
    r = read_ratings(f, on_bad_lines="skip")
    assert r.meta["bad_lines"] == 1 and r.meta["bad_line_numbers"] == [3]
    assert rows(r) == {(196, 242): (5.0, 881250999.0), (186, 302): (3.0, 891717742.0),
                       (244, 51): (2.0, 880606923.0)}
    first = rows(read_ratings(f, on_bad_lines="skip", duplicates="first"))
    assert first[(196, 242)] == (3.0, 881250949.0)
    mean = rows(read_ratings(f, on_bad_lines="skip", duplicates="mean"))
    assert mean[(196, 242)] == (4.0, 881250999.0)  # the latest time of the pair
    assert r.meta["time_column"] == "3"


def test_ratings_dat_times(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::x\n"
                                        "2::661::4::978298413\n")
    r = read_ratings(f, on_bad_lines="skip")
    assert r.meta["bad_line_numbers"] == [3]
    assert rows(r) == {(1, 1193): (5.0, 978300760.0), (1, 661): (3.0, 978302109.0), (2, 661): (4.0, 978298413.0)}


def test_ratings_csv_times_with_bad_lines_of_every_kind(tmp_path):
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n"
                                        "1,1,4.0,964982703\n"
                                        "1,3,3.5\n"  # line 3: a field short
                                        "6,3,0.5,845553522\n"
                                        "6,7,x,845553523\n"  # line 5: a bad rating
                                        "6,8,2.0,\n"  # line 6: no time
                                        "1,1,2.0,964982800\n"  # the pair of line 2 again
                                        "7,9,1.0,2001-09-09 01:46:40\n")  # an ISO date among Unix seconds
    with pytest.raises(LatentAtlasError, match=r"ratings\.csv: line 3: expected 4 fields"):
        read_ratings(f)
    r = read_ratings(f, on_bad_lines="skip")
    assert r.meta["bad_line_numbers"] == [3, 5, 6]
    assert rows(r) == {(1, 1): (2.0, 964982800.0), (6, 3): (0.5, 845553522.0), (7, 9): (1.0, 1e9)}
    assert r.meta["time_column"] == "'timestamp'"


def test_clean_and_slow_paths_give_the_same_alignment(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    u, i, v, t = rng.integers(0, 300, n), rng.integers(0, 900, n), rng.integers(1, 6, n), rng.integers(0, 10**9, n)
    lines = [f"{a},{b},{c},{d}" for a, b, c, d in zip(u, i, v, t)]
    clean = write(tmp_path / "clean.csv", "user,item,rating,timestamp\n" + "\n".join(lines) + "\n")
    dirty = write(tmp_path / "dirty.csv", "user,item,rating,timestamp\n" + "\n".join(lines[:1000]) + "\n1,2,3,never\n"
                  + "\n".join(lines[1000:]) + "\n")
    a, b = read_ratings(clean), read_ratings(dirty, on_bad_lines="skip")
    assert b.meta["bad_line_numbers"] == [1002]
    assert a.to_frame().equals(b.to_frame())
    expected = {}
    for a_, b_, c_, d_ in zip(u, i, v, t):  # last rating of a pair wins, with its time
        expected[(int(a_), int(b_))] = (float(c_), float(d_))
    assert rows(a) == expected


def yelp(*records):
    return "".join(json.dumps(r) + "\n" for r in records)


def test_yelp_json_dates(tmp_path):
    f = write(tmp_path / "review.json", yelp(
        {"review_id": "r1", "user_id": "U1", "business_id": "B1", "stars": 5, "date": "2016-03-09 00:44:15"},
        {"review_id": "r2", "user_id": "U2", "business_id": "B1", "stars": 2, "date": "2018-07-07 22:09:11"},
        {"review_id": "r3", "user_id": "U1", "business_id": "B2", "stars": 4, "date": "2016-02-30 10:00:00"},
        {"review_id": "r4", "user_id": "U1", "business_id": "B1", "stars": 1, "date": "2017-01-01 00:00:00"},
        {"review_id": "r5", "user_id": "U3", "business_id": "B2", "stars": 3, "date": "2019-05-05T12:00:00+02:00"},
    ))
    with pytest.raises(LatentAtlasError, match=r"review\.json: line 3: time '2016-02-30 10:00:00' is not a time"):
        read_ratings(f)
    r = read_ratings(f, on_bad_lines="skip")
    assert r.meta["bad_line_numbers"] == [3] and r.meta["time_column"] == "'date'"
    assert rows(r) == {("U1", "B1"): (1.0, epoch("2017-01-01 00:00:00")),
                       ("U2", "B1"): (2.0, epoch("2018-07-07 22:09:11")),
                       ("U3", "B2"): (3.0, epoch("2019-05-05 10:00:00"))}


def test_yelp_json_clean_file_and_missing_dates(tmp_path, caplog):
    good = write(tmp_path / "good.json", yelp(
        {"user_id": "U1", "business_id": "B1", "stars": 5, "date": "2016-03-09 00:44:15"},
        {"user_id": "U1", "business_id": "B2", "stars": 4, "date": "2016-03-10"}))
    assert rows(read_ratings(good)) == {("U1", "B1"): (5.0, 1457484255.0), ("U1", "B2"): (4.0, epoch("2016-03-10"))}
    # a date found by its name but absent from some records: no times at all (never times shifted to
    # other rows); named with time_col, an absent date is a bad line
    holes = write(tmp_path / "holes.json", yelp(
        {"user_id": "U1", "business_id": "B1", "stars": 5, "date": "2016-03-09 00:44:15"},
        {"user_id": "U2", "business_id": "B1", "stars": 4},
        {"user_id": "U3", "business_id": "B1", "stars": 3, "date": "2016-03-11 00:00:00"}))
    with caplog.at_level(logging.INFO, logger="latentatlas"):
        assert read_ratings(holes).timestamps is None
    assert "without timestamps" in caplog.text
    with pytest.raises(LatentAtlasError, match=r"line 2: missing field 'date' \(time\)"):
        read_ratings(holes, time_col="date")
    r = read_ratings(holes, time_col="date", on_bad_lines="skip")
    assert set(rows(r)) == {("U1", "B1"), ("U3", "B1")} and rows(r)[("U3", "B1")][1] == epoch("2016-03-11")


def test_json_unix_times_as_numbers(tmp_path):
    f = write(tmp_path / "reviews.jsonl", yelp(
        {"reviewerID": "A", "asin": "X", "overall": 5.0, "unixReviewTime": 1252800000},
        {"reviewerID": "A", "asin": "Y", "overall": 3.0, "unixReviewTime": "soon"},
        {"reviewerID": "B", "asin": "X", "overall": 1.0, "unixReviewTime": 1252900000}))
    with pytest.raises(LatentAtlasError, match="line 2: time 'soon' is not a JSON number"):
        read_ratings(f)
    assert rows(read_ratings(f, on_bad_lines="skip")) == {("A", "X"): (5.0, 1252800000.0),
                                                          ("B", "X"): (1.0, 1252900000.0)}


def test_named_columns_parquet_and_npy(tmp_path, caplog):
    f = write(tmp_path / "r.csv", "who,what,stars,when\na,x,4,2020-01-02\nb,x,3,2020-01-01\n")
    assert read_ratings(f, user_col="who", item_col="what").timestamps is None  # 'when' is not a time name
    r = read_ratings(f, user_col="who", item_col="what", time_col="when")
    assert rows(r) == {("a", "x"): (4.0, epoch("2020-01-02")), ("b", "x"): (3.0, epoch("2020-01-01"))}
    with pytest.raises(LatentAtlasError, match="missing column 'nope' for the time"):
        read_ratings(f, user_col="who", item_col="what", time_col="nope")
    # a column called date that holds no dates is left out, not turned into bad lines
    odd = write(tmp_path / "odd.csv", "user,item,rating,date\na,x,4,09/13/2009\nb,x,3,09/14/2009\n")
    with caplog.at_level(logging.INFO, logger="latentatlas"):
        assert read_ratings(odd).timestamps is None
    assert "does not hold times" in caplog.text
    # Parquet: a timestamp column, text dates, and a missing time as a bad row
    p = tmp_path / "r.parquet"
    when = pa.array([datetime(2020, 1, 1), None, datetime(2020, 1, 3)], pa.timestamp("ms"))
    pq.write_table(pa.table({"user_id": ["a", "b", "c"], "item_id": [1, 1, 2], "rating": [4.0, 3.0, 5.0],
                             "timestamp": when}), p)
    with pytest.raises(LatentAtlasError, match="r.parquet: row 2: time is missing"):
        read_ratings(p)
    assert rows(read_ratings(p, on_bad_lines="skip")) == {("a", 1): (4.0, epoch("2020-01-01")),
                                                          ("c", 2): (5.0, epoch("2020-01-03"))}
    pq.write_table(pa.table({"user_id": ["a"], "item_id": [1], "rating": [4.0], "date": ["2020-01-01 12:00"]}), p)
    assert rows(read_ratings(p)) == {("a", 1): (4.0, epoch("2020-01-01 12:00"))}
    n = tmp_path / "r.npy"
    np.save(n, np.array([[0, 5, 3, 100], [2, 5, 4, 200]], dtype=np.int64))
    assert read_ratings(n).timestamps is None
    assert rows(read_ratings(n, time_col=3)) == {(0, 5): (3.0, 100.0), (2, 5): (4.0, 200.0)}


def test_python_and_arrow_agree_on_what_a_time_is():
    texts = ["0", "-5", "1e9", " 12.5 ", "nan", "inf", "", "  ", "2016-03-09", "2016-03-09 00:44:15",
             "2016-03-09T00:44:15.250", "2016-03-09T00:44:15Z", "2016-03-09 01:44:15+01:00",
             "2016-03-09 00:44:15-0130", "2016-02-29", "2015-02-29", "2016-02-30", "2016-13-01", "2016-00-10",
             "2016-03-09 24:00:00", "2016-03-09 23:60:00", "2016-03-09 23:59:60", "2016-3-9", "09/03/2016",
             "2016-03-09 00:44:15+25:00", "0000-03-01", "1969-12-31 23:59:59", "２０１６-03-09", "20160309",
             "2016-03-09T00", "2016-03-09 00:44:15 ", "\t2016-03-09"]
    seconds, bad = parse_times(texts)
    for text, s, b in zip(texts, seconds, bad):
        expected = _time_value(text)
        assert b == (expected is None), text
        if expected is not None:
            assert s == pytest.approx(expected, abs=1e-6), text
    assert _time_value("2016-03-09 00:44:15") == 1457484255.0
    assert _time_value("2016-03-09 01:44:15+01:00") == 1457484255.0
    assert _time_value("1969-12-31 23:59:59") == -1.0
    assert _time_value("0000-03-01") == np.datetime64("0000-03-01", "s").astype(np.int64)
    # many values in threads, one answer
    many = pa.array(["2016-03-09 00:44:15", "17"] * (1 << 21))
    s, b = parse_times(many)
    assert not b.any() and s[0] == 1457484255.0 and s[-1] == 17.0 and len(s) == 1 << 22


# --- the table and its files ----------------------------------------------------------------------------------
def test_ratings_keep_times_through_every_derivation():
    r = Ratings.from_arrays(["a", "a", "b", "a"], [1, 2, 1, 1], [4, 3, 5, 2],
                            timestamps=np.array(["2020-01-01", "2020-01-02", "2020-01-03", "2019-12-31"],
                                                dtype="datetime64[s]"), duplicates="mean")
    assert rows(r)[("a", 1)] == (3.0, epoch("2020-01-01"))  # the latest of the pair's times
    assert r[1:].timestamps.tolist() == r.timestamps[1:].tolist()
    assert r[r.values >= 3].timestamps.tolist() == r.timestamps[r.values >= 3].tolist()
    sub = r.take(np.array([2])).compact()
    assert sub.timestamps.tolist() == [r.timestamps[2]] and sub.shape == (1, 1)
    assert r.with_values(r.values * 2).timestamps is r.timestamps
    assert kcore(r, 0).timestamps.tolist() == r.timestamps.tolist()
    paris = pd.to_datetime(["2020-01-01 01:00", "2020-01-02 00:00"]).tz_localize("Europe/Paris")
    df = pd.DataFrame({"user": ["x", "y"], "item": [1, 2], "rating": [1.0, 2.0], "timestamp": paris})
    assert Ratings.from_pandas(df).timestamps.tolist() == [epoch("2020-01-01 00:00"), epoch("2020-01-01 23:00")]
    df["timestamp"] = [1.0, None]
    with pytest.raises(LatentAtlasError, match=r"time column 'timestamp'\[1\] is missing or not a time"):
        Ratings.from_pandas(df)
    assert Ratings.from_pandas(df[["user", "item", "rating"]]).timestamps is None
    with pytest.raises(LatentAtlasError, match="one entry per rating"):
        Ratings.from_arrays([1, 2], [1, 1], [3, 4], timestamps=[1.0])


def test_save_and_load_keep_times_and_read_files_without(tmp_path):
    r = read_ratings(write(tmp_path / "u.data", TINY))
    assert Ratings.load(r.save(tmp_path / "r.npz")).timestamps.tolist() == r.timestamps.tolist()
    data = prepare_ratings(tmp_path / "u.data", min_entries=0, leave_last_out=1, quiet=True)
    assert "time" in data.summary["split_by"]
    path = data.write(tmp_path / "prepared")
    back = Split.load(path)
    for part in Split.PARTS:
        assert rows(getattr(back, part)) == rows(getattr(data.split, part))
    # a prepared file of data without times (or from before times were kept) still loads, with none
    plain = Split(*(Ratings(p.users, p.items, p.values, p.user_ids, p.item_ids) for p in
                    (back.train, back.validation, back.test)))
    old = Split.load(plain.save(tmp_path / "old.npz"))
    assert old.train.timestamps is None and old.sizes() == back.sizes()
    with np.load(tmp_path / "old.npz") as z:
        assert not any(k.endswith("timestamps") for k in z.files)


# --- the command line -----------------------------------------------------------------------------------------
def test_cli_prepare_leave_last_out(tmp_path, run_cli):
    f = write(tmp_path / "u.data", TINY)
    res = run_cli("ratings", "prepare", f, "--leave-last-out", "1", "--min-entries", "0", "--json",
                  "--out", tmp_path / "prepared")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["split"] == {"train": 5, "validation": 3, "test": 3}
    assert summary["split_by"].startswith("time")
    s = Split.load(tmp_path / "prepared" / "prepared.npz")
    assert pairs(s.test) == {(1, 10), (2, 11), (3, 11)}
    assert s.test.timestamps is not None
    run = json.loads((tmp_path / "prepared" / "run.json").read_text())
    assert run["config"]["leave_last_out"] == 1
    res = run_cli("ratings", "prepare", f, "--leave-last-out", "1", "--min-entries", "0", "--out", tmp_path / "p2")
    assert res.returncode == 0, res.stderr
    assert "by time" in res.stdout


def test_cli_prepare_leave_last_out_without_times(tmp_path, run_cli):
    f = write(tmp_path / "r.csv", "userId,movieId,rating\n1,10,5\n1,11,4\n1,12,3\n2,10,1\n")
    res = run_cli("ratings", "prepare", f, "--leave-last-out", "1", "--min-entries", "0", "--out", tmp_path / "p")
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()[-1]
    assert "Traceback" not in res.stderr
    assert "--leave-last-out" in err and "no timestamps" in err and "--time-col" in err
    assert not (tmp_path / "p").exists()


def test_train_loads_a_raw_file_split_by_time(tmp_path):
    from latentatlas.ratings.workflow import load_parts

    parts = load_parts(write(tmp_path / "u.data", TINY), min_entries=0, leave_last_out=1)
    assert pairs(parts.test) == {(1, 10), (2, 11), (3, 11)}
    assert pairs(parts.validation) == {(1, 12), (2, 10), (3, 12)}
