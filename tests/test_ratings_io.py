import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.io import detect_format, read_ratings


def triplets(r):
    """The ratings as a set of (original user id, original item id, rating)."""
    return {(r.user_ids[u].item(), r.item_ids[i].item(), float(v)) for u, i, v in zip(r.users, r.items, r.values)}


def write(path, text):
    path.write_text(text)
    return path


def test_movielens_u_data(tmp_path):
    f = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    r = read_ratings(f)
    assert triplets(r) == {(196, 242, 3.0), (186, 302, 3.0), (22, 377, 1.0)}
    assert list(r.user_ids) == [22, 186, 196]  # integer ids numbered in sorted order
    assert r.meta["format"] == "movielens" and r.meta["duplicates"] == 0


def test_movielens_ratings_dat(tmp_path):
    f = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    assert triplets(read_ratings(f)) == {(1, 1193, 5.0), (1, 661, 3.0), (2, 1193, 4.0)}


def test_movielens_ratings_csv_half_stars(tmp_path):
    f = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n"
                                        "6,3,0.5,845553522\n")
    assert triplets(read_ratings(f)) == {(1, 1, 4.0), (1, 3, 3.5), (6, 3, 0.5)}


def test_csv_without_header_and_string_ids(tmp_path):
    f = write(tmp_path / "r.csv", "alice,book,4\nbob,book,2\nalice,pen,5\n")
    r = read_ratings(f)
    assert triplets(r) == {("alice", "book", 4.0), ("bob", "book", 2.0), ("alice", "pen", 5.0)}
    assert r.user_ids.dtype.kind == "U"


def test_csv_columns_chosen_by_flag(tmp_path):
    f = write(tmp_path / "r.csv", "when,score,who,what\n1,4,u1,i1\n2,2,u2,i1\n")
    r = read_ratings(f, user_col="who", item_col="what", rating_col="score")
    assert triplets(r) == {("u1", "i1", 4.0), ("u2", "i1", 2.0)}
    r = read_ratings(f, user_col="2", item_col="3", rating_col="1")
    assert triplets(r) == {("u1", "i1", 4.0), ("u2", "i1", 2.0)}


def test_tsv_with_header_and_format_override(tmp_path):
    f = write(tmp_path / "ratings.txt", "user_id\titem_id\trating\n7\t8\t1.5\n")
    assert triplets(read_ratings(f, format="tsv")) == {(7, 8, 1.5)}
    assert detect_format(f) == "tsv"


def test_parquet(tmp_path):
    f = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user_id": ["a", "b"], "movieId": [10, 20], "stars": [4.0, 1.0], "x": [0, 0]}), f)
    assert triplets(read_ratings(f)) == {("a", 10, 4.0), ("b", 20, 1.0)}


def test_npy_triplets(tmp_path):
    f = tmp_path / "ratings.npy"
    np.save(f, np.array([[0, 5, 3], [2, 5, 4], [0, 1, 1]], dtype=np.int64))
    r = read_ratings(f)
    assert triplets(r) == {(0, 5, 3.0), (2, 5, 4.0), (0, 1, 1.0)}
    assert r.shape == (2, 2)


def yelp_lines():
    rows = [
        {"review_id": "r1", "user_id": "Ux-1", "business_id": "B1", "stars": 5, "useful": 2,
         "text": "Great \"user_id\": \"FAKE\" tacos,\nwould return", "date": "2018-07-07 22:09:11"},
        {"review_id": "r2", "user_id": "Uy-2", "business_id": "B1", "stars": 2.0, "text": "meh", "cool": 0},
        {"review_id": "r3", "user_id": "Ux-1", "business_id": "B2", "stars": 4, "text": "ok ☺"},
    ]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_yelp_review_json_lines(tmp_path):
    r = read_ratings(write(tmp_path / "yelp_academic_dataset_review.json", yelp_lines()))
    assert triplets(r) == {("Ux-1", "B1", 5.0), ("Uy-2", "B1", 2.0), ("Ux-1", "B2", 4.0)}
    assert r.n_users == 2 and r.n_items == 2


def test_yelp_gzip(tmp_path):
    f = tmp_path / "reviews.json.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(yelp_lines())
    assert len(read_ratings(f, format="yelp")) == 3


@pytest.mark.parametrize("policy,expected", [("last", 2.0), ("first", 5.0), ("mean", 3.5)])
def test_duplicate_policies(tmp_path, policy, expected):
    f = write(tmp_path / "u.data", "1\t10\t5\t0\n2\t10\t4\t0\n1\t10\t2\t0\n")
    r = read_ratings(f, duplicates=policy)
    assert r.meta["duplicates"] == 1
    assert triplets(r) == {(1, 10, expected), (2, 10, 4.0)}


@pytest.mark.parametrize("name,text,message", [
    ("empty.csv", "", "empty.csv: file is empty"),
    ("r.csv", "userId,movieId,rating\n1,2,4\n1,3,abc\n", "r.csv: line 3: rating 'abc' is not a number"),
    ("r.csv", "userId,movieId,rating\n1,2,4\n1,3,\n", "r.csv: line 3: rating is missing"),
    ("r.csv", "userId,movieId,rating\n1,2,4\n1,3,nan\n", "r.csv: line 3: rating 'nan' is not a finite number"),
    ("r.csv", "userId,movieId,rating\n1,2,4\n1,3\n", "r.csv: line 3: expected 3 fields"),
    ("u.data", "1\t2\t3\t0\n1\t2\n", "u.data: line 2: expected 4 fields"),
    ("ratings.dat", "1::2::3::0\n1::2::x::0\n", "ratings.dat: line 2: rating 'x' is not a number"),
    ("y.json", '{"user_id":"a","business_id":"b","stars":4}\n{"user_id":"a","business_id":"c","stars":4\n',
     "y.json: line 2: not valid JSON"),
    ("y.json", '{"user_id":"a","business_id":"b","stars":4}\n{"user_id":"a","stars":4}\n',
     "y.json: line 2: missing field 'business_id'"),
    ("y.json", '{"user_id":"a","business_id":"b","stars":4}\n{"user_id":"a","business_id":"c","stars":"five"}\n',
     "y.json: line 2: rating 'five' is not a number"),
    ("y.json", '{"user_id":"a","business_id":"b","stars":null}\n', "y.json: line 1: missing field 'stars'"),
])
def test_bad_input_names_file_and_line(tmp_path, name, text, message):
    f = write(tmp_path / name, text)
    with pytest.raises(LatentAtlasError) as err:
        read_ratings(f)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_named_column(tmp_path):
    f = write(tmp_path / "r.csv", "userId,movieId,rating\n1,2,4\n")
    with pytest.raises(LatentAtlasError, match=r"r.csv: missing column 'stars' for the rating \(columns are: "
                                               r"userId, movieId, rating\)"):
        read_ratings(f, rating_col="stars")


def test_npy_wrong_shape_and_missing_file(tmp_path):
    f = tmp_path / "bad.npy"
    np.save(f, np.arange(6))
    with pytest.raises(LatentAtlasError, match="expected an N×3 array"):
        read_ratings(f)
    with pytest.raises(LatentAtlasError, match="no such file"):
        read_ratings(tmp_path / "nope.csv")
    with pytest.raises(LatentAtlasError, match="unknown format"):
        read_ratings(f, format="xlsx")
    with pytest.raises(LatentAtlasError, match="duplicates must be one of"):
        read_ratings(f, duplicates="max")
