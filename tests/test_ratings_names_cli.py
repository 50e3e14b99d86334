"""Names files, SQL sources and projector export through the ratings commands."""

import json
import sqlite3

import numpy as np
import pytest

from latentatlas import runs
from latentatlas.cli import run
from latentatlas.ratings import workflow
from latentatlas.ratings.prep import Split


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("named")
    names = root / "movies.csv"
    names.write_text("movieId,title,genres\n" + "".join(f'{i},"Film {i}, the sequel",Drama|Comedy\n'
                                                        for i in range(0, 300, 2)))
    prep = root / "prep"
    assert run(["ratings", "prepare", "--builtin-size", "20000", "--item-names", str(names), "--out", str(prep),
                "--quiet"]) == 0
    out = root / "model"
    assert run(["ratings", "train", str(prep), "--k", "4", "--max-steps", "3", "--quiet", "--out", str(out)]) == 0
    return root, prep, out


def test_names_are_kept_with_the_data_and_the_model(named_run, capsys):
    root, prep, out = named_run
    split = Split.load(prep / "prepared.npz")
    assert split.item_names.lookup([4, 5]).tolist() == ["Film 4, the sequel", None]
    model = workflow.load_model(out)
    assert model.item_names_.lookup([2])[0] == "Film 2, the sequel"
    rows = runs.load_run(out).tables["recommendations"]
    named = [r for r in rows if r["item"] % 2 == 0]
    assert named and all(r["item_name"] == f"Film {r['item']}, the sequel" for r in named)
    capsys.readouterr()
    assert run(["ratings", "recommend", str(out), "--user", str(model.user_ids_[0]), "-n", "5", "--json"]) == 0
    for row in json.loads(capsys.readouterr().out):
        assert row["item_name"] == (f"Film {row['item']}, the sequel" if row["item"] % 2 == 0 else "")


def test_names_that_match_no_id_are_refused(tmp_path, capsys):
    names = tmp_path / "names.csv"
    names.write_text("movieId,title\nx1,Nothing\nx2,Else\n")
    assert run(["ratings", "prepare", "--builtin-size", "5000", "--item-names", str(names), "--out",
                str(tmp_path / "p"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of its 2 ids is an item id of the ratings" in err


def test_export_projector_of_item_factors(named_run):
    root, _, out = named_run
    proj = root / "proj"
    assert run(["ratings", "export-projector", str(out), "--out", str(proj), "--parquet", str(root / "f.parquet")]) == 0
    model = workflow.load_model(out)
    tensors = np.loadtxt(proj / "tensors.tsv", delimiter="\t")
    np.testing.assert_allclose(tensors, model.item_embeddings_, atol=1e-5)
    meta = (proj / "metadata.tsv").read_text().splitlines()
    assert meta[0].split("\t")[:2] == ["id", "name"] and len(meta) == model.n_items_ + 1
    import pyarrow.parquet as pq

    assert pq.read_table(root / "f.parquet").num_rows == model.n_items_


def test_prepare_from_sqlite(tmp_path, capsys):
    pytest.importorskip("sqlalchemy")
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("create table reviews(user_id text, item_id integer, stars real, note text)")
    rng = np.random.default_rng(0)
    rows = [(f"u{rng.integers(0, 80)}", int(rng.integers(0, 60)), float(rng.integers(1, 6)), "x")
            for _ in range(3000)]
    con.executemany("insert into reviews values (?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    url = f"sqlite:///{db}"
    assert run(["ratings", "prepare", url, "--query", "SELECT user_id, item_id, stars FROM reviews", "--out",
                str(tmp_path / "p"), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ratings_before"] == len({(u, i) for u, i, _, _ in rows})
    assert run(["ratings", "prepare", url, "--out", str(tmp_path / "q")]) == 2
    assert "give the SQL query" in capsys.readouterr().err


def test_cli_takes_a_unique_name_where_an_item_id_goes(named_run, capsys):
    _, _, out = named_run
    model = workflow.load_model(out)
    item = next(i for i in model.item_ids_ if i % 2 == 0)
    capsys.readouterr()
    assert run(["ratings", "similar", str(out), "--item", f"film {item}, the sequel", "-n", "3", "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert run(["ratings", "similar", str(out), "--item", str(item), "-n", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_name  # the same answer as by id
    assert run(["ratings", "similar", str(out), "--item", "No Such Film", "-n", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No Such Film" in err
