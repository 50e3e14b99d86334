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


# --- issue 10: trust ---------------------------------------------------------------------------------------
def error_of(path, **kwargs) -> str:
    with pytest.raises(LatentAtlasError) as err:
        read_ratings(path, **kwargs)
    message = str(err.value)
    assert message.isprintable(), message  # one line, no control characters
    return message


def test_header_without_rating_column_is_refused(tmp_path):
    f = write(tmp_path / "ratings.csv", "userId,movieId,timestamp\n1,10,964982703\n2,10,964982704\n")
    message = error_of(f)
    assert message.startswith(f"{f}: no rating column (columns are: userId, movieId, timestamp")
    assert message.endswith("choose it with rating_col= (a column name or 0-based index)")
    # Chosen explicitly, a timestamp column still meets the scale check.
    assert "far outside any rating scale" in error_of(f, rating_col="timestamp")


def test_headerless_timestamp_in_rating_position_is_refused(tmp_path):
    rows = "".join(f"{u}\t{u % 7}\t{881250949 + u}\n" for u in range(20))
    f = write(tmp_path / "u.data", rows)
    message = error_of(f)
    assert message.startswith(f"{f}: column 2, taken as the rating by its position, does not look like ratings")
    assert "a timestamp or an id?" in message and "rating_col=" in message


def test_headerless_span_of_millions_refused(tmp_path):
    f = write(tmp_path / "r.csv", "1,2,-900000\n1,3,900000\n2,2,-900000\n")  # within ±1e6, a span of 1.8e6
    assert "(a span of 1.8e+06)" in error_of(f)


def test_headerless_all_distinct_values_refused_unless_chosen(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.permutation(1000) / 250 + 1  # 1000 different values between 1 and 5
    f = write(tmp_path / "r.csv", "".join(f"u{k % 40},i{k % 97},{v}\n" for k, v in enumerate(values)))
    assert "all 1,000 values are different" in error_of(f)
    assert len(read_ratings(f, rating_col=2)) == 1000


def test_ratings_far_outside_any_scale_are_refused(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\n1,2,4\n1,3,1e12\n")
    message = error_of(f)
    assert message.startswith(f"{f}: ratings in column 'rating' reach 1e+12, far outside any rating scale")


def test_headerless_u_data_still_read_by_position(tmp_path):
    rng = np.random.default_rng(1)
    rows = "".join(f"{u}\t{i}\t{r}\t{881250949 + k}\n" for k, (u, i, r) in
                   enumerate(zip(rng.integers(1, 900, 2000), rng.integers(1, 1600, 2000), rng.integers(1, 6, 2000))))
    r = read_ratings(write(tmp_path / "u.data", rows))
    assert r.meta["lines_read"] == 2000 and set(np.unique(r.values)) <= {1, 2, 3, 4, 5}
    assert r.user_ids.dtype == np.int64


BAD_CSV = ("user,item,rating\n"   # 1
           "1,10,4\n"             # 2
           "1,11\n"               # 3 too few fields
           "\n"                   # 4 blank: skipped, not bad
           "   \n"                # 5 whitespace only: skipped, not bad
           "2,10,x\n"             # 6 rating not a number
           "\"3,a\",10,5\n"       # 7 quoted delimiter: fine
           "4,,3\n"               # 8 missing item id
           "5,12,nan\n"           # 9 not finite
           "6,12,3.5\n")          # 10


def test_on_bad_lines_skip_counts_and_names_lines(tmp_path, caplog):
    f = write(tmp_path / "r.csv", BAD_CSV)
    with caplog.at_level("WARNING", logger="latentatlas"):
        r = read_ratings(f, on_bad_lines="skip")
    assert triplets(r) == {("1", 10, 4.0), ("3,a", 10, 5.0), ("6", 12, 3.5)}
    assert r.meta["bad_lines"] == 4 and r.meta["bad_line_numbers"] == [3, 6, 8, 9]
    assert r.meta["on_bad_lines"] == "skip"
    assert "r.csv: skipped 4 bad lines (first: line 3, 6, 8, 9)" in caplog.text


def test_on_bad_lines_error_names_the_first(tmp_path):
    f = write(tmp_path / "r.csv", BAD_CSV)
    assert error_of(f) == f"{f}: line 3: expected 3 fields separated by ',', found 2"
    with pytest.raises(LatentAtlasError, match="on_bad_lines must be one of error, skip"):
        read_ratings(f, on_bad_lines="warn")


def test_on_bad_lines_skip_keeps_integer_ids_and_counts_clean_files_as_zero(tmp_path):
    f = write(tmp_path / "u.data", "1\t2\t3\t0\n1\t2\n1\t3\tq\t0\n4\t5\t5\t0\n")
    r = read_ratings(f, on_bad_lines="skip")
    assert r.user_ids.dtype == np.int64 and triplets(r) == {(1, 2, 3.0), (4, 5, 5.0)}
    assert (r.meta["bad_lines"], r.meta["bad_line_numbers"]) == (2, [2, 3])
    clean = read_ratings(write(tmp_path / "c.data", "1\t2\t3\t0\n"))
    assert (clean.meta["bad_lines"], clean.meta["bad_line_numbers"]) == (0, [])


def test_on_bad_lines_skip_ratings_dat_and_json(tmp_path):
    r = read_ratings(write(tmp_path / "ratings.dat", "1::2::3::0\n1::2::x::0\n\n2::3::4::5\n1::5\n"),
                     on_bad_lines="skip")
    assert triplets(r) == {(1, 2, 3.0), (2, 3, 4.0)} and r.meta["bad_line_numbers"] == [2, 5]
    good = '{"user_id":"a","business_id":"b","stars":4}\n'
    text = (good + '{"user_id":"a","business_id":"c","stars":4\n' + "  \n" + good.replace('"b"', '"d"')
            + '{"user_id":"a","stars":4}\n' + '{"user_id":"a","business_id":"e","stars":"five"}\n')
    r = read_ratings(write(tmp_path / "y.json", text), on_bad_lines="skip")
    assert triplets(r) == {("a", "b", 4.0), ("a", "d", 4.0)}
    assert (r.meta["bad_lines"], r.meta["bad_line_numbers"]) == (3, [2, 5, 6])


def test_whitespace_only_lines_are_skipped(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\n1,2,4\n   \n\t\n\n2,3,5\n  ")
    r = read_ratings(f)
    assert triplets(r) == {(1, 2, 4.0), (2, 3, 5.0)} and r.meta["bad_lines"] == 0
    u = write(tmp_path / "u.data", "1\t2\t3\t0\n\t\t\t\n \t\t \t\n2\t3\t4\t0\n")  # tabs only: 4 empty fields
    assert triplets(read_ratings(u)) == {(1, 2, 3.0), (2, 3, 4.0)}
    assert read_ratings(u, on_bad_lines="skip").meta["bad_lines"] == 0
    j = write(tmp_path / "y.json", '\n  {"user_id":"a","business_id":"b","stars":4}\n \n')
    assert triplets(read_ratings(j)) == {("a", "b", 4.0)}


def test_gzip_found_by_magic_bytes_not_name(tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_bytes(gzip.compress(b"user,item,rating\n1,2,4\n2,3,5\n"))
    assert triplets(read_ratings(f)) == {(1, 2, 4.0), (2, 3, 5.0)}
    y = tmp_path / "reviews"
    y.write_bytes(gzip.compress(yelp_lines().encode()))
    assert len(read_ratings(y)) == 3
    plain = write(tmp_path / "r.csv.gz", "user,item,rating\n1,2,4\n")  # named .gz, but plain text
    assert len(read_ratings(plain)) == 1
    assert len(read_ratings(write(tmp_path / "y.json.gz", yelp_lines()))) == 3


@pytest.mark.parametrize("name,payload", [("r.csv.gz", b"1,2,3\n" * 100_000),
                                          ("y.json.gz", yelp_lines().encode() * 10_000)])
def test_truncated_gzip(tmp_path, name, payload):
    data = gzip.compress(payload)
    f = tmp_path / name
    f.write_bytes(data[: len(data) // 2])
    assert error_of(f).startswith(f"{f}: compressed data is truncated or corrupt")


def test_invalid_utf8_in_an_id_names_the_line(tmp_path):
    f = tmp_path / "r.csv"
    f.write_bytes(b"user,item,rating\nu1,i1,4\nu\xff2,i2,3\nu3,i3,5\n")
    assert error_of(f) == f"{f}: line 3: user id 'u\\udcff2' is not valid UTF-8"
    r = read_ratings(f, on_bad_lines="skip")
    assert triplets(r) == {("u1", "i1", 4.0), ("u3", "i3", 5.0)} and r.meta["bad_line_numbers"] == [3]
    j = tmp_path / "y.json"
    j.write_bytes(b'{"user_id":"a","business_id":"b","stars":4}\n{"user_id":"a\xff","business_id":"b","stars":4}\n')
    assert error_of(j) == f"{j}: line 2: not valid UTF-8 (byte 0xff at column 14)"


def test_control_characters_are_escaped(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\nu1,i1,4\nu2,i2,\x1b[31mred\x07\n")
    assert error_of(f) == f"{f}: line 3: rating '\\x1b[31mred\\x07' is not a number"
    h = write(tmp_path / "h.csv", "us\x1ber,item,when\u202e\nu1,i1,4\n")
    assert "columns are: us\\x1ber, item, when\\u202e" in error_of(h)
    j = write(tmp_path / "y.json", '{"u\\u001b":"a","business_id":"b","stars":4}\n')
    assert "fields are: u\\x1b, business_id, stars" in error_of(j)


def test_empty_file_and_directory(tmp_path):
    assert error_of(write(tmp_path / "r.csv", "")) == f"{tmp_path / 'r.csv'}: file is empty"
    assert error_of(write(tmp_path / "b.csv", "\n  \n")) == f"{tmp_path / 'b.csv'}: file is empty"
    empty_gz = tmp_path / "e.csv.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    assert error_of(empty_gz) == f"{empty_gz}: file is empty"
    assert error_of(tmp_path) == f"{tmp_path}: is a directory, not a ratings file"


def test_string_ids_from_arrow_buffers(tmp_path):
    # ASCII ids of mixed length go through the fixed-width copy; non-ASCII ones through Python strings.
    f = write(tmp_path / "r.csv", "user,item,rating\nalice,x,1\nbo,yy,2\nalice,zzz,3\nżaneta,x,4\n")
    r = read_ratings(f)
    assert list(r.user_ids) == ["alice", "bo", "żaneta"] and list(r.item_ids) == ["x", "yy", "zzz"]
    g = write(tmp_path / "g.csv", "user,item,rating\nalice,x,1\nbo,yy,2\n")
    assert list(read_ratings(g).user_ids) == ["alice", "bo"]


def test_ids_typed_as_numbers_by_the_first_block_then_text(tmp_path, monkeypatch):
    import latentatlas.ratings.io.readers as rio

    monkeypatch.setattr(rio, "BLOCK_SIZE", 64)  # many blocks: the first ones hold only numeric ISBNs
    rows = "".join(f"{1000 + k},{k % 3},4\n" for k in range(40)) + "034545104X,1,5\n"
    r = read_ratings(write(tmp_path / "books.csv", "isbn,user_id,rating\n" + rows))
    assert len(r) == 41 and "034545104X" in set(r.item_ids) and r.meta["bad_lines"] == 0
    bad = rows + "1,2,x\n"
    assert error_of(write(tmp_path / "b.csv", "isbn,user_id,rating\n" + bad)).endswith(
        "b.csv: line 43: rating 'x' is not a number")


def test_on_bad_lines_skip_json_across_blocks(tmp_path, monkeypatch):
    import latentatlas.ratings.io.readers as rio

    monkeypatch.setattr(rio, "BLOCK_SIZE", 256)  # several blocks: line numbers must carry across them
    lines = [json.dumps({"user_id": f"u{k}", "business_id": f"b{k % 5}", "stars": 1 + k % 5}) for k in range(60)]
    lines[17] = lines[17][:-1]  # broken JSON
    lines[41] = '{"user_id": "u41", "business_id": "b1", "stars": "x"}'
    f = tmp_path / "y.json.gz"
    f.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    r = read_ratings(f, on_bad_lines="skip")
    assert len(r) == 58 and (r.meta["bad_lines"], r.meta["bad_line_numbers"]) == (2, [18, 42])
    assert error_of(f).endswith(f"y.json.gz: line 18: not valid JSON (Expecting ',' delimiter at column "
                             f"{len(lines[17]) + 1})")


def test_json_parsed_in_byte_ranges_matches_one_pass(tmp_path, monkeypatch):
    import latentatlas.ratings.io.readers as rio

    rows = [json.dumps({"user_id": f"u{k % 13}", "business_id": f"b{k % 7}", "stars": 1 + k % 5, "text": "x" * k})
            for k in range(200)]
    f = write(tmp_path / "y.json", "\n".join(rows[:100]) + "\n\n   \n" + "\n".join(rows[100:]) + "\n")
    whole = read_ratings(f)
    monkeypatch.setattr(rio, "BLOCK_SIZE", 1000)
    monkeypatch.setattr(rio.os, "cpu_count", lambda: 7)  # 7 ranges cut at line ends
    parts = read_ratings(f)
    assert triplets(parts) == triplets(whole) and len(parts) == len(whole) == 91
    assert list(parts.user_ids) == list(whole.user_ids)


def test_separator_choices(tmp_path):
    f = write(tmp_path / "r.txt", "1;2;4\n3;4;5\n")
    assert triplets(read_ratings(f, sep=";")) == {(1, 2, 4.0), (3, 4, 5.0)}
    t = write(tmp_path / "t.txt", "1\t2\t4\n")
    assert triplets(read_ratings(t, sep="\\t")) == {(1, 2, 4.0)}
    d = write(tmp_path / "d.txt", "1::2::4::0\n")
    assert triplets(read_ratings(d, sep="::")) == {(1, 2, 4.0)}
    assert error_of(f, sep=";;") == "sep must be one ASCII character (or '::'), got ';;'"


def test_byte_order_mark_before_the_header(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("rating,userId,movieId\n3,1,2\n", encoding="utf-8-sig")  # the rating is found by its name
    r = read_ratings(f)
    assert triplets(r) == {(1, 2, 3.0)}
