"""Side features in: :class:`Features` encodings, alignment, and the readers of every file format, on tiny
hand-made inputs whose matrices are written out by hand."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.features import Features, as_features
from latentatlas.ratings.io.features import check_overlap, read_features

S2 = 1 / math.sqrt(2)  # two values a and b standardise to -1, +1; three equally spaced: -sqrt(3/2), 0, +sqrt(3/2)
S32 = math.sqrt(1.5)


def dense(f: Features) -> dict:
    """{(id, column): value} of the non-zero entries."""
    m = f.matrix.tocoo()
    return {(f.ids[r].item(), f.columns[c]): round(float(v), 6) for r, c, v in zip(m.row, m.col, m.data)}


# --- encodings --------------------------------------------------------------------------------------------
def test_from_frame_encodes_each_kind_as_specified():
    df = pd.DataFrame({"movieId": [3, 1, 2], "genres": ["A|B", "B", None], "year": [1990.0, np.nan, 2000.0],
                       "colour": ["red", None, "blue"], "tags": [["x", "y", "x"], [], ["y"]]})
    f = Features.from_frame(df)
    assert f.ids.tolist() == [3, 1, 2] and f.ids.dtype == np.int64
    assert f.group_names == ("genres", "year", "colour", "tags")
    assert f.columns == ("genres=A", "genres=B", "year", "colour=blue", "colour=red", "tags=x", "tags=y")
    assert f.groups.tolist() == [0, 0, 1, 2, 2, 3, 3]
    assert dense(f) == {
        (3, "genres=A"): 0.5, (3, "genres=B"): 0.5, (1, "genres=B"): 1.0,  # multi: 1/count; missing: no entry
        (3, "year"): -1.0, (2, "year"): 1.0,  # numeric: standardised over the rows that have it; missing -> 0
        (3, "colour=red"): 1.0, (2, "colour=blue"): 1.0,  # categorical one-hot; missing: no entry
        (3, "tags=x"): 0.5, (3, "tags=y"): 0.5, (2, "tags=y"): 1.0}  # a repeated value counts once
    assert f.meta["kinds"] == {"genres": "multi", "year": "numeric", "colour": "categorical", "tags": "multi"}
    assert f.matrix.dtype == np.float64 and len(f) == 3


def test_indicator_columns_make_one_multi_valued_group_and_kinds_can_be_forced():
    df = pd.DataFrame({"id": ["a", "b", "c"], "Action": [1, 1, 0], "Comedy": [1, 0, 0], "Drama": [1, 0, 0],
                       "zip": [12345, 54321, 12345]})
    f = Features.from_frame(df, columns={"genre": ["Action", "Comedy", "Drama"], "zip": "zip"},
                            kinds={"zip": "categorical"})
    assert f.ids.tolist() == ["a", "b", "c"]
    third = round(1 / 3, 6)
    assert dense(f) == {("a", "genre=Action"): third, ("a", "genre=Comedy"): third, ("a", "genre=Drama"): third,
                        ("b", "genre=Action"): 1.0, ("a", "zip=12345"): 1.0, ("b", "zip=54321"): 1.0,
                        ("c", "zip=12345"): 1.0}
    assert f.group_sizes() == {"genre": 3, "zip": 2}


def test_aligned_orders_rows_by_the_given_ids_with_zero_rows_for_unknown_ids():
    f = Features.from_frame(pd.DataFrame({"item": [10, 20, 30], "c": ["x", "y", "x"]}))
    got = f.aligned(np.array([30, 99, 10, 20])).toarray()
    assert got.tolist() == [[1, 0], [0, 0], [1, 0], [0, 1]]
    # text ids of integers still join (a CSV read as text against integer ratings ids)
    assert f.aligned(np.array(["20", "10"])).toarray().tolist() == [[0, 1], [1, 0]]
    assert f.overlap([10, 11]) == 1 and f.extra_ids([10, 11]).tolist() == [20, 30]
    assert f.positions([20, 5]).tolist() == [1, -1]


def test_text_ids_of_canonical_integers_become_int64_like_the_ratings_readers():
    f = Features.from_frame(pd.DataFrame({"user_id": ["1", "2"], "g": ["a", "b"]}))
    assert f.ids.dtype == np.int64
    g = Features.from_frame(pd.DataFrame({"user_id": ["01", "2"], "g": ["a", "b"]}))
    assert g.ids.dtype.kind == "U"  # 01 is not written canonically: the ids stay text, as in read_ratings


def test_select_and_array_round_trip():
    f = Features.from_frame(pd.DataFrame({"id": [1, 2], "a": ["x", "y"], "b": [1.0, 3.0]}))
    s = f.select(["b"])
    assert s.columns == ("b",) and s.group_names == ("b",) and s.matrix.toarray().tolist() == [[-1], [1]]
    back = Features.from_arrays(f.to_arrays())
    assert back.columns == f.columns and (back.matrix != f.matrix).nnz == 0 and back.ids.tolist() == [1, 2]
    with pytest.raises(LatentAtlasError, match="no feature group 'zz'"):
        f.select(["zz"])


def test_from_frame_errors_name_the_field():
    with pytest.raises(LatentAtlasError, match="duplicate id 1 .*row 3"):
        Features.from_frame(pd.DataFrame({"id": [1, 2, 1], "a": [1, 2, 3]}))
    with pytest.raises(LatentAtlasError, match="no id column"):
        Features.from_frame(pd.DataFrame({"x": [1], "a": [1]}))
    with pytest.raises(LatentAtlasError, match="unknown feature column 'nope'"):
        Features.from_frame(pd.DataFrame({"id": [1], "a": [1]}), columns=["nope"])
    with pytest.raises(LatentAtlasError, match="row 2: 'abc' is not a number"):
        Features.from_frame(pd.DataFrame({"id": [1, 2], "a": ["1", "abc"]}), kinds={"a": "numeric"})
    with pytest.raises(LatentAtlasError, match="an id is missing"):
        Features.from_frame(pd.DataFrame({"id": ["a", None], "a": [1, 2]}))
    with pytest.raises(LatentAtlasError, match="row 3: 'inf' is not a finite number"):
        Features.from_frame(pd.DataFrame({"id": [1, 2, 3], "a": ["1", "2", "inf"]}), kinds={"a": "numeric"})
    with pytest.raises(LatentAtlasError, match="field 'b' row 2: -inf is not a finite number"):
        Features.from_frame(pd.DataFrame({"id": [1, 2], "a": [1, 0], "b": [0, -np.inf]}), columns={"g": ["a", "b"]})
    with pytest.raises(LatentAtlasError, match="the table has no rows, only the columns id, a"):
        Features.from_frame(pd.DataFrame({"id": [], "a": []}))
    with pytest.raises(LatentAtlasError, match="item_features: expected a Features, a pandas DataFrame or a file "
                                               "path, got list"):
        as_features([1, 2], "item")


def test_as_features_passes_features_through_and_reads_frames():
    f = Features.from_frame(pd.DataFrame({"id": [1], "a": ["x"]}))
    assert as_features(f, "user") is f and as_features(None, "user") is None
    assert as_features(pd.DataFrame({"id": [1], "a": ["x"]}), "user").columns == ("a=x",)


# --- file readers -------------------------------------------------------------------------------------------
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _flags(*on):
    return "|".join("1" if g in on else "0" for g in GENRES)


def test_movielens_100k_u_item(tmp_path):
    p = tmp_path / "u.item"
    lines = [f"1|Toy Story (1995)|01-Jan-1995||http://a|{_flags('Animation', 'Children''s', 'Comedy')}",
             f"2|GoldenEye (1995)|01-Jan-1996||http://b|{_flags('Action')}",
             f"267|unknown|||http://c|{_flags('unknown')}",
             f"4|Caf\xe9 (1997)|01-Jan-1997||http://d|{_flags('Drama', 'Romance')}"]
    p.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))  # u.item is Latin-1
    f = read_features(p)
    assert f.meta["format"] == "ml100k-item" and f.ids.tolist() == [1, 2, 267, 4]
    assert f.group_names == ("genre", "year") and f.columns[:2] == ("genre=unknown", "genre=Action")
    assert len(f.columns) == 20 and f.columns[-1] == "year"
    assert dense(f) == {(1, "genre=Animation"): 0.5, (1, "genre=Comedy"): 0.5, (2, "genre=Action"): 1.0,
                        (267, "genre=unknown"): 1.0, (4, "genre=Drama"): 0.5, (4, "genre=Romance"): 0.5,
                        (1, "year"): round(-S32, 6), (4, "year"): round(S32, 6)}  # 1996 is the mean: 0
    only_year = read_features(p, columns="year")
    assert only_year.columns == ("year",)


def test_movielens_100k_u_user_with_zip_first_character(tmp_path):
    p = tmp_path / "u.user"
    p.write_text("1|20|M|technician|85711\n2|40|F|other|94043\n3|30|M|writer|T8H1N\n")
    f = read_features(p)
    assert f.meta["format"] == "ml100k-user" and f.group_names == ("age", "gender", "occupation", "zip")
    assert f.columns == ("age", "gender=F", "gender=M", "occupation=other", "occupation=technician",
                         "occupation=writer", "zip=8", "zip=9", "zip=T")
    assert dense(f) == {(1, "age"): round(-S32, 6), (2, "age"): round(S32, 6),
                        (1, "gender=M"): 1.0, (2, "gender=F"): 1.0, (3, "gender=M"): 1.0,
                        (1, "occupation=technician"): 1.0, (2, "occupation=other"): 1.0,
                        (3, "occupation=writer"): 1.0, (1, "zip=8"): 1.0, (2, "zip=9"): 1.0, (3, "zip=T"): 1.0}
    assert read_features(p, columns="age,occupation").group_names == ("age", "occupation")


def test_movielens_movies_csv(tmp_path):
    p = tmp_path / "movies.csv"
    p.write_text('movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"Jumanji, The (1997)",'
                 'Adventure\n3,No year,(no genres listed)\n')
    f = read_features(p)
    assert f.meta["format"] == "movielens-movies" and f.ids.tolist() == [1, 2, 3]
    assert f.columns == ("genre=Adventure", "genre=Animation", "year")
    assert dense(f) == {(1, "genre=Adventure"): 0.5, (1, "genre=Animation"): 0.5, (2, "genre=Adventure"): 1.0,
                        (1, "year"): -1.0, (2, "year"): 1.0}


def test_yelp_business_json_lines(tmp_path):
    p = tmp_path / "yelp_academic_dataset_business.json"
    rows = [{"business_id": "b1", "name": "A", "city": "Tampa", "state": "FL", "stars": 4.0, "review_count": 10,
             "categories": "Food, Bars", "attributes": {"WiFi": "no"}},
            {"business_id": "b2", "name": "B", "city": "Reno", "state": "NV", "stars": 3.0, "review_count": 30,
             "categories": None, "attributes": None}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    f = read_features(p)
    assert f.meta["format"] == "yelp-business" and f.ids.tolist() == ["b1", "b2"]
    assert f.group_names == ("categories", "city", "state", "stars", "review_count")
    assert dense(f) == {("b1", "categories=Bars"): 0.5, ("b1", "categories=Food"): 0.5,
                        ("b1", "city=Tampa"): 1.0, ("b2", "city=Reno"): 1.0, ("b1", "state=FL"): 1.0,
                        ("b2", "state=NV"): 1.0, ("b1", "stars"): 1.0, ("b2", "stars"): -1.0,
                        ("b1", "review_count"): -1.0, ("b2", "review_count"): 1.0}


def test_recbole_atomic_item_and_user_files(tmp_path):
    item = tmp_path / "ml-100k.item"
    item.write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                    "1\tToy Story\t1995\tAnimation Comedy\n2\tX\tunkonwn\tAction\n3\tY\t1997\tAction\n")
    f = read_features(item)
    assert f.meta["format"] == "recbole" and f.group_names == ("release_year", "class")
    assert dense(f) == {(1, "release_year"): -1.0, (3, "release_year"): 1.0, (1, "class=Animation"): 0.5,
                        (1, "class=Comedy"): 0.5, (2, "class=Action"): 1.0, (3, "class=Action"): 1.0}
    user = tmp_path / "ml-100k.user"
    user.write_text("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                    "1\t24\tM\ttechnician\t85711\n2\t54\tF\tother\t94043\n")
    g = read_features(user)
    assert g.columns == ("age", "gender=F", "gender=M", "occupation=other", "occupation=technician",
                         "zip_code=8", "zip_code=9")


def test_generic_csv_parquet_and_json_lines_agree(tmp_path):
    df = pd.DataFrame({"item_id": [5, 6, 7], "title": ["p", "q", "r"], "genre": ["a|b", "b", "a"],
                       "price": [1.0, 2.0, 3.0], "shop": ["s", "t", "s"]})
    csv_path, pq_path, js_path, tsv_path = (tmp_path / n for n in ("f.csv", "f.parquet", "f.jsonl", "f.tsv"))
    df.to_csv(csv_path, index=False)
    df.to_csv(tsv_path, index=False, sep="\t")
    df.to_parquet(pq_path)
    df.to_json(js_path, orient="records", lines=True)
    expected = {(5, "genre=a"): 0.5, (5, "genre=b"): 0.5, (6, "genre=b"): 1.0, (7, "genre=a"): 1.0,
                (5, "price"): round(-S32, 6), (7, "price"): round(S32, 6), (5, "shop=s"): 1.0, (6, "shop=t"): 1.0,
                (7, "shop=s"): 1.0}
    for path, fmt in ((csv_path, "csv"), (tsv_path, "tsv"), (pq_path, "parquet"), (js_path, "jsonl")):
        f = read_features(path)
        assert f.meta["format"] == fmt
        assert f.group_names == ("genre", "price", "shop"), fmt  # the title (all different) is left out
        assert dense(f) == expected, fmt
    chosen = read_features(csv_path, columns="title,shop")  # chosen, a title column is a feature
    assert chosen.group_names == ("title", "shop") and len(chosen.columns) == 5
    forced = read_features(csv_path, columns=["price:categorical"])
    assert forced.columns == ("price=1.0", "price=2.0", "price=3.0")


def test_generic_table_id_column_by_name_or_given_and_separator(tmp_path):
    p = tmp_path / "attrs.csv"
    p.write_text("code,tags,user_id\nx,a;b,7\ny,b,8\n")
    f = read_features(p, kind="user", columns="tags", sep=";")
    assert f.ids.tolist() == [7, 8] and dense(f) == {(7, "tags=a"): 0.5, (7, "tags=b"): 0.5, (8, "tags=b"): 1.0}
    g = read_features(p, id_column="code", columns="tags", sep=";")
    assert g.ids.tolist() == ["x", "y"]


@pytest.mark.parametrize("text, message", [
    ("name,genre\nx,a\n", r"no id column .*the columns are name, genre"),
    ("item,genre\n1,a\n2,b\n1,c\n", r"line 4: duplicate id 1 "),
    ("item,genre\n1,a\n,b\n", r"line 3: the id \(item\) is missing"),
    ("item,genre\n", r"the table has no rows, only the columns item, genre"),
    ("item,year\n1,1990\n2,1991\n3,inf\n", r"line 4: field 'year': 'inf' is not a finite number"),
])
def test_bad_feature_files_name_the_file_and_line(tmp_path, text, message):
    p = tmp_path / "feat.csv"
    p.write_text(text)
    with pytest.raises(LatentAtlasError, match=message) as err:
        read_features(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_more_bad_inputs(tmp_path):
    p = tmp_path / "feat.csv"
    p.write_text("item,genre\n1,a\n")
    with pytest.raises(LatentAtlasError, match="unknown feature column 'year'; the columns are genre"):
        read_features(p, columns="genre,year")
    with pytest.raises(LatentAtlasError, match="id column 'nope' not found"):
        read_features(p, id_column="nope")
    with pytest.raises(LatentAtlasError, match="no such feature file"):
        read_features(tmp_path / "missing.csv")
    u = tmp_path / "u.item"
    u.write_text(f"1|T|01-Jan-1995||u|{_flags('Action')}\n2|T|01-Jan-1995||u|0|1\n")
    with pytest.raises(LatentAtlasError, match=r"u.item line 2: 7 fields, expected 24"):
        read_features(u)
    j = tmp_path / "b.json"
    j.write_text('{"business_id": "a", "categories": "x"}\n{"business_id": \n')
    with pytest.raises(LatentAtlasError, match=r"b.json line 2: not valid JSON"):
        read_features(j)


def test_overlap_with_the_ratings_none_is_an_error_partial_is_reported():
    from latentatlas.ratings.pipeline import load_features

    f = Features.from_frame(pd.DataFrame({"item": [1, 2, 3], "g": ["a", "b", "a"]}))
    assert check_overlap(f, np.array([2, 3, 4, 5]), "item") == {"matched": 2, "without": 2, "cold": 1}
    lines = []
    _, summary = load_features(f, np.array([2, 3, 4, 5]), "item", lines.append)
    assert summary["matched"] == 2 and summary["without_features"] == 2 and summary["cold_start"] == 1
    assert summary["groups"] == {"g": 2} and summary["columns"] == 2
    assert lines == ["item features: g (2): 2 columns from features; 2 ids of the ratings have features, 2 have "
                     "none; 1 cold-start ids (features, no ratings)"]
    with pytest.raises(LatentAtlasError, match="none of its 3 ids is an item id of the ratings"):
        check_overlap(f, np.array([7, 8]), "item")


def test_prepare_ratings_keeps_the_features_and_summarises_them(tmp_path):
    from latentatlas.ratings.pipeline import prepare_ratings, summary_text

    lines = ["user,item,rating"] + [f"{u},{i},{1 + (u + i) % 5}" for u in range(12) for i in range(10)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    items = pd.DataFrame({"item": [*range(10), 99], "genre": ["a|b", "b"] * 5 + ["a"]})
    (tmp_path / "items.csv").write_text(items.to_csv(index=False))
    for source in (items, tmp_path / "items.csv"):
        data = prepare_ratings(tmp_path / "r.csv", item_features=source, quiet=True)
        assert isinstance(data.item_features, Features) and data.user_features is None
        s = data.summary["item_features"]
        assert s["groups"] == {"genre": 2} and s["matched"] == 10 and s["cold_start"] == 1
        assert "item feat.  genre (2): 2 columns" in summary_text(data.summary)
    with pytest.raises(LatentAtlasError, match="none of its 1 ids is a user id of the ratings"):
        prepare_ratings(tmp_path / "r.csv", user_features=pd.DataFrame({"user": [500], "g": ["x"]}), quiet=True)


def test_a_known_format_takes_other_fields_when_they_are_named(tmp_path):
    p = tmp_path / "business.json"
    p.write_text('{"business_id": "b1", "categories": "Food", "city": "X", "is_open": 1}\n'
                 '{"business_id": "b2", "categories": "Bars", "city": "Y", "is_open": 0}\n')
    f = read_features(p, columns="categories,is_open")
    assert f.group_names == ("categories", "is_open")
    assert dense(f) == {("b1", "categories=Food"): 1.0, ("b2", "categories=Bars"): 1.0, ("b1", "is_open"): 1.0,
                        ("b2", "is_open"): -1.0}


def test_numbers_among_text_and_lists_encode_like_text():
    df = pd.DataFrame({"id": [1, 2, 3, 4], "c": ["a", 7, 2.0, None], "m": [["x", "y"], "y|z", None, ("z",)]})
    f = Features.from_frame(df, kinds={"c": "categorical", "m": "multi"})
    assert f.columns == ("c=2", "c=7", "c=a", "m=x", "m=y", "m=z")
    assert dense(f) == {(1, "c=a"): 1.0, (2, "c=7"): 1.0, (3, "c=2"): 1.0, (1, "m=x"): 0.5, (1, "m=y"): 0.5,
                        (2, "m=y"): 0.5, (2, "m=z"): 0.5, (4, "m=z"): 1.0}
