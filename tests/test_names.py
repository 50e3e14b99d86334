import json

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import save_npz
from latentatlas.ratings.names import Names, read_names

MOVIES_CSV = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
11,"American President, The (1995)",Comedy|Drama|Romance
29,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Adventure|Drama|Fantasy|Mystery|Sci-Fi
2,1984 (1984),Drama|Sci-Fi
11,Duplicate of 11,Drama
3,"Quote ""Inside"" (2000)",(no genres listed)
"""

# MovieLens 100K u.item: id|title|release date|video release date|IMDb URL|19 genre flags; Latin-1, no header.
U_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "4|Get Shorty (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Get%20Shorty%20(1995)|0|1|0|0|0|1|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
    "1547|Café au lait (1993)|01-Jan-1993||http://us.imdb.com/M/title-exact?Caf%E9%20au%20lait%20(1993)|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    '1650|Butcher\'s Wife, The "Bad" (1991)|01-Jan-1991||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0|0|0|0\n'
)

YELP = [
    {"business_id": "Pns2l4eNsfO8kk83dixA6A", "name": "Abby Rappoport, LAC, CMQ", "city": "Santa Barbara",
     "stars": 5.0, "review_count": 7, "attributes": {"ByAppointmentOnly": "True"},
     "categories": "Doctors, Traditional Chinese Medicine", "hours": None},
    {"business_id": "mpf3x-BjTdTEA3yCZrAYPw", "name": "The UPS Store", "city": "Affton", "stars": 3.0,
     "review_count": 15, "attributes": {"BusinessAcceptsCreditCards": "True", "Parking": {"lot": False}},
     "categories": None, "hours": {"Monday": "0:0-0:0"}},
    {"business_id": "tUFrWirKiKi_TAnsVWINQQ", "name": "Target", "city": "Tucson", "stars": 3.5,
     "review_count": 22, "attributes": None, "categories": "Department Stores, Shopping", "hours": None},
]


def _write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_movielens_movies_csv_with_quoted_commas_and_duplicates(tmp_path):
    names = read_names(_write(tmp_path, "movies.csv", MOVIES_CSV))
    assert names.ids.dtype == np.int64
    assert names.ids.tolist() == [1, 11, 29, 2, 3]
    assert names.names.tolist() == ["Toy Story (1995)", "American President, The (1995)",
                                    "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
                                    "1984 (1984)", 'Quote "Inside" (2000)']
    assert names.metadata["genres"].tolist() == ["Adventure|Animation|Children|Comedy|Fantasy",
                                                 "Comedy|Drama|Romance",
                                                 "Adventure|Drama|Fantasy|Mystery|Sci-Fi", "Drama|Sci-Fi",
                                                 "(no genres listed)"]
    assert names.meta["duplicates"] == 1 and names.meta["rows"] == 6
    assert names.meta["id_col"] == "movieId" and names.meta["name_col"] == "title"


def test_lookup_is_vectorised_and_marks_missing_ids(tmp_path):
    names = read_names(_write(tmp_path, "movies.csv", MOVIES_CSV))
    got = names.lookup(np.array([2, 999, 1, 11]))
    assert got.dtype == object and got.tolist() == ["1984 (1984)", None, "Toy Story (1995)",
                                                    "American President, The (1995)"]
    assert names.lookup([999, 3], missing="").tolist() == ["", 'Quote "Inside" (2000)']
    # Ratings ids read from text ("2") find the integer id 2.
    assert names.lookup(np.array(["2", "x"])).tolist() == ["1984 (1984)", None]
    assert names.index([29, 5]).tolist() == [2, -1]
    assert names.column("genres", [2, 5], missing="").tolist() == ["Drama|Sci-Fi", ""]
    assert names.label([1, 5]).tolist() == ["Toy Story (1995) (1)", "5"]


def test_movielens_100k_u_item_in_latin1(tmp_path):
    path = _write(tmp_path, "u.item", U_ITEM, encoding="latin-1")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # the sample really is not UTF-8
    names = read_names(path)
    assert names.ids.tolist() == [1, 4, 1547, 1650]
    assert names.names.tolist() == ["Toy Story (1995)", "Get Shorty (1995)", "Café au lait (1993)",
                                    'Butcher\'s Wife, The "Bad" (1991)']
    assert names.metadata["genres"].tolist() == ["Animation|Children's|Comedy", "Action|Comedy|Drama",
                                                 "Comedy", "Comedy|Romance"]
    assert names.metadata["release_date"][0] == "01-Jan-1995"
    assert names.meta["format"] == "movielens-100k" and names.meta["encoding"] == "latin-1"


def test_movielens_1m_movies_dat(tmp_path):
    text = ("1::Toy Story (1995)::Animation|Children's|Comedy\n"
            "260::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
            "1140::Entertaining Angels: The Dorothy Day Story (1996)::Drama\n"
            "3822::Girl on the Bridge, The (La Fille sur le Pont) (1999)::Drama\n"
            "2599::Élection (1999)::Comedy\n")
    names = read_names(_write(tmp_path, "movies.dat", text, encoding="latin-1"))
    assert names.ids.tolist() == [1, 260, 1140, 3822, 2599]
    assert names.names[1] == "Star Wars: Episode IV - A New Hope (1977)" and names.names[4] == "Élection (1999)"
    assert names.metadata["genres"].tolist()[:2] == ["Animation|Children's|Comedy", "Action|Sci-Fi"]
    with pytest.raises(LatentAtlasError) as err:
        read_names(_write(tmp_path, "bad.dat", "1::A::X\n2::B\n"))
    assert str(err.value) == f"{tmp_path / 'bad.dat'}: line 2: expected 3 fields separated by '::', found 2"


def test_yelp_business_json_lines(tmp_path):
    path = _write(tmp_path, "yelp_academic_dataset_business.json", "\n".join(json.dumps(r) for r in YELP) + "\n")
    names = read_names(path)
    assert names.ids.dtype.kind == "U"
    assert names.ids.tolist() == [r["business_id"] for r in YELP]
    assert names.names.tolist() == ["Abby Rappoport, LAC, CMQ", "The UPS Store", "Target"]
    assert names.metadata["city"].tolist() == ["Santa Barbara", "Affton", "Tucson"]
    assert names.metadata["categories"].tolist() == ["Doctors, Traditional Chinese Medicine", "",
                                                     "Department Stores, Shopping"]
    assert names.lookup(["tUFrWirKiKi_TAnsVWINQQ", "nope"]).tolist() == ["Target", None]
    numeric = read_names(path, extra_cols=["stars", "review_count"])
    assert list(numeric.metadata) == ["stars", "review_count"]
    np.testing.assert_array_equal(numeric.metadata["stars"], [5.0, 3.0, 3.5])


def test_tsv_without_header_takes_id_then_name(tmp_path):
    names = read_names(_write(tmp_path, "items.tsv", "a7\tFirst, with comma\nb8\tSecond\n"))
    assert names.ids.tolist() == ["a7", "b8"] and names.names.tolist() == ["First, with comma", "Second"]
    # All-text columns: a first line of known column names is a header.
    names = read_names(_write(tmp_path, "biz.csv", "business_id,name\na7,First\nb8,Second\n"))
    assert names.ids.tolist() == ["a7", "b8"] and names.names.tolist() == ["First", "Second"]


def test_columns_can_be_named_or_indexed(tmp_path):
    path = _write(tmp_path, "things.csv", "code,label_text,kind\n17,Thing one,A\n18,Thing two,B\n")
    with pytest.raises(LatentAtlasError) as err:
        read_names(path)
    assert str(err.value) == (f"{path}: cannot find the id column (columns are: code, label_text, kind); "
                              "choose it with id_col=")
    names = read_names(path, id_col="code", name_col=1, extra_cols=["kind"])
    assert names.ids.tolist() == [17, 18] and names.names.tolist() == ["Thing one", "Thing two"]
    assert names.metadata["kind"].tolist() == ["A", "B"]


def test_bad_csv_names_the_line(tmp_path):
    path = _write(tmp_path, "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Jumanji\n")
    with pytest.raises(LatentAtlasError) as err:
        read_names(path)
    assert str(err.value) == f"{path}: line 3: expected 3 fields separated by ',', found 2"


def test_missing_id_names_the_line(tmp_path):
    path = _write(tmp_path, "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n,Jumanji,Drama\n")
    with pytest.raises(LatentAtlasError) as err:
        read_names(path)
    assert str(err.value) == f"{path}: line 3: missing id"


def test_bad_json_line_is_named(tmp_path):
    path = _write(tmp_path, "business.json", json.dumps(YELP[0]) + "\n" + '{"business_id": "x", "name": \n')
    with pytest.raises(LatentAtlasError) as err:
        read_names(path)
    assert str(err.value).startswith(f"{path}: line 2: not valid JSON (")
    assert "\n" not in str(err.value)


def test_json_without_an_id_field_names_the_fields_and_the_flag(tmp_path):
    path = _write(tmp_path, "b.json", '{"key": "a", "name": "N"}\n')
    with pytest.raises(LatentAtlasError) as err:
        read_names(path)
    assert str(err.value) == f"{path}: cannot find the id column (columns are: key, name); choose it with id_col="
    assert read_names(path, id_col="key").lookup(["a"]).tolist() == ["N"]


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(LatentAtlasError, match="no such file"):
        read_names(tmp_path / "nope.csv")
    with pytest.raises(LatentAtlasError, match="file is empty"):
        read_names(_write(tmp_path, "empty.csv", "\n\n"))


def test_round_trip_through_npz_without_pickle(tmp_path):
    path = _write(tmp_path, "yelp.json", "\n".join(json.dumps(r) for r in YELP) + "\n")
    names = read_names(path, extra_cols=["city", "stars"])
    arrays = names.to_arrays(prefix="item_names_")
    assert all(np.asarray(a).dtype != object for a in arrays.values())
    save_npz(tmp_path / "m.npz", other=np.arange(3), **arrays)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        back = Names.from_arrays(z, prefix="item_names_")
        assert Names.from_arrays(z, prefix="user_names_") is None
    assert back.ids.tolist() == names.ids.tolist() and back.names.tolist() == names.names.tolist()
    assert list(back.metadata) == ["city", "stars"]
    np.testing.assert_array_equal(back.metadata["stars"], names.metadata["stars"])
    assert back.meta["source"] == str(path) and back.meta["duplicates"] == 0
