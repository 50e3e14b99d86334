"""Issue 18, trust round 2 (R2, R3, R5, R9, R12–R19) and the house items in the same files: library messages
that name arguments (the command line names its options), and no command code behind the Spark package."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from latentatlas import Ratings
from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.io import read_ratings
from latentatlas.ratings.pairs import read_item_ratings, read_pairs

BIG = 2 ** 63  # the first id that int64 cannot hold


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("latentatlas: error: "), err
    return err


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A small prepared split and a model on it with item names full of terminal escapes."""
    root = tmp_path_factory.mktemp("round2")
    assert run(["ratings", "prepare", "--builtin-size", "3000", "--out", str(root / "prep"), "-q"]) == 0
    names = root / "names.csv"
    rows = [f'{i},"\x1b[31mred {i}\x1b[0m\u202e"' for i in range(400)]
    write(names, "item,name\n" + "\n".join(rows) + "\n")
    assert run(["ratings", "train", str(root / "prep"), "--k", "3", "--max-steps", "2", "--item-names", str(names),
                "--out", str(root / "model"), "-q"]) == 0
    return root


# --- R2: ids that differ as text stay distinct ----------------------------------------------------------------
def test_leading_zero_ids_are_not_merged_with_plain_ones(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\n001,10,4\n1,10,3\n01,20,5\n2,20,1\n")
    r = read_ratings(f)
    assert r.n_users == 4 and sorted(r.user_ids.tolist()) == ["001", "01", "1", "2"]
    assert r.item_ids.dtype == np.int64 and r.item_ids.tolist() == [10, 20]  # plain integers stay integers
    # The same on the slow path (a bad line skipped) and in a headerless TSV.
    bad = write(tmp_path / "bad.csv", "user,item,rating\n001,10,4\n1,10,3\n7,7,oops\n")
    assert sorted(read_ratings(bad, on_bad_lines="skip").user_ids.tolist()) == ["001", "1"]
    tsv = write(tmp_path / "u.data", "007\t1\t4\t0\n7\t1\t3\t0\n")
    assert read_ratings(tsv).n_users == 2


def test_plain_integer_ids_stay_integers_in_sorted_order(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\n30,1,4\n-2,2,3\n 5 ,1,5\n0,2,1\n")
    r = read_ratings(f)
    assert r.user_ids.dtype == np.int64 and r.user_ids.tolist() == [-2, 0, 5, 30]
    assert {(int(r.user_ids[u]), float(v)) for u, v in zip(r.users, r.values)} == {(30, 4), (-2, 3), (5, 5), (0, 1)}


def test_pair_and_fold_in_files_keep_text_ids(tmp_path):
    users, items = read_pairs(write(tmp_path / "p.csv", "user,item\n001,1\n1,2\n"))
    assert users.tolist() == ["001", "1"] and items.tolist() == [1, 2]
    items, values = read_item_ratings(write(tmp_path / "f.csv", "item,rating\n010,4\n10,2\n"))
    assert items.tolist() == ["010", "10"] and values.tolist() == [4.0, 2.0]


def test_names_files_keep_text_ids_as_the_ratings_do(tmp_path):
    from latentatlas.ratings.names import read_names

    names = read_names(write(tmp_path / "n.csv", "movieId,title\n001,Zero one\n1,One\n"))
    assert names.ids.tolist() == ["001", "1"] and names.lookup(["001", "1"]).tolist() == ["Zero one", "One"]
    assert read_names(write(tmp_path / "p.csv", "movieId,title\n1,One\n2,Two\n")).ids.dtype == np.int64
    dat = read_names(write(tmp_path / "movies.dat", "01::Zero one::Drama\n1::One::Comedy\n"))
    assert dat.ids.tolist() == ["01", "1"]


# --- R3: ids beyond int64 do not wrap -------------------------------------------------------------------------
def test_ids_beyond_int64_in_a_csv_keep_every_digit(tmp_path):
    f = write(tmp_path / "r.csv", f"user,item,rating\n{BIG},1,4\n{BIG + 1},1,3\n{2 ** 64 - 1},2,5\n5,2,1\n")
    r = read_ratings(f)
    assert sorted(r.user_ids.tolist()) == sorted([str(BIG), str(BIG + 1), str(2 ** 64 - 1), "5"])


def test_uint64_ids_beyond_int64_do_not_wrap_negative(tmp_path):
    ids = np.array([BIG, 2 ** 64 - 1, 3], dtype=np.uint64)
    r = Ratings.from_arrays(ids, [1, 2, 3], [4, 5, 3])
    assert sorted(r.user_ids.tolist()) == sorted([str(BIG), str(2 ** 64 - 1), "3"])
    assert sorted(Ratings.from_arrays([BIG, -1], [1, 2], [4, 5]).user_ids.tolist()) == ["-1", str(BIG)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": pa.array(ids), "item": [1, 2, 3], "rating": [4.0, 5.0, 3.0]}),
                   tmp_path / "r.parquet")
    assert sorted(read_ratings(tmp_path / "r.parquet").user_ids.tolist()) == sorted([str(BIG), str(2 ** 64 - 1), "3"])
    # A model trained on them answers for the exact ids.
    from latentatlas import LatentFactorModel

    r = Ratings.from_arrays(np.repeat(ids, 4), np.tile([1, 2, 3, 4], 3), np.arange(12) % 5 + 1)
    model = LatentFactorModel(k=2, max_steps=2).fit(r)
    assert len(model.recommend(2 ** 64 - 1, n=1, exclude_seen=False)[0]) == 1  # an unknown user would raise
    assert str(-BIG) not in model.user_ids_.astype(str).tolist()


# --- R5: names from files are escaped in tables ---------------------------------------------------------------
def test_tables_escape_names_from_files(prepared, capsys):
    capsys.readouterr()
    assert run(["ratings", "recommend", str(prepared / "model"), "--user", "0", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mred" in out and "\\u202e" in out


# --- R9: an interrupted bayes run prints no resume command that would be refused -------------------------------
def test_interrupted_bayes_run_offers_no_resume(prepared, tmp_path, monkeypatch, capsys):
    from latentatlas.progress import Progress

    real = Progress.__call__

    def stop(self, message):
        if "bayes sample 4/" in message:
            raise KeyboardInterrupt
        return real(self, message)

    monkeypatch.setattr(Progress, "__call__", stop)
    capsys.readouterr()
    out = tmp_path / "b"
    assert run(["ratings", "train", str(prepared / "prep"), "--solver", "bayes", "--k", "3", "--n-samples", "20",
                "--burn-in", "2", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "--resume" not in err and "cannot be resumed" in err
    assert (out / "model.npz").is_file()


# --- R12: the report's two files are replaced together --------------------------------------------------------
def test_report_html_and_pdf_are_replaced_together(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.dirname(__file__))
    import report_fixtures as F

    from latentatlas.report import build_report

    interp = F.interpolate_run(tmp_path / "interp")
    out = tmp_path / "report"
    build_report([interp], out, title="first report")
    old_pdf = (out / "report.pdf").read_bytes()
    real = os.replace

    def fail_on_pdf(src, dst, *args, **kwargs):  # the second of two file renames fails
        if str(dst).endswith("report.pdf"):
            raise OSError(5, "Input/output error", str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", fail_on_pdf)
    try:
        build_report([interp], out, title="second report")
    except (OSError, LatentAtlasError):
        pass
    monkeypatch.undo()
    new_html = "second report" in (out / "report.html").read_text(encoding="utf-8")
    new_pdf = (out / "report.pdf").read_bytes() != old_pdf
    assert new_html == new_pdf, "report.html and report.pdf come from different builds"
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf"]
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name or ".replaced-" in p.name]


def test_report_into_a_folder_with_other_files_keeps_them(tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    import report_fixtures as F

    from latentatlas.report import build_report

    interp = F.interpolate_run(tmp_path / "interp")
    out = tmp_path / "docs"
    out.mkdir()
    write(out / "notes.txt", "mine")
    build_report([interp], out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.html", "report.pdf"]
    assert (out / "notes.txt").read_text() == "mine"


# --- R13: messages name options that exist --------------------------------------------------------------------
def test_names_file_errors_name_no_missing_option(prepared, tmp_path, capsys):
    names = write(tmp_path / "names.csv", "code,label\n1,One\n2,Two\n")
    with pytest.raises(LatentAtlasError, match=r"choose it with id_col=$"):
        from latentatlas.ratings.names import read_names

        read_names(names)
    capsys.readouterr()
    assert run(["ratings", "train", str(prepared / "prep"), "--k", "2", "--max-steps", "1", "--item-names",
                str(names), "--out", str(tmp_path / "m"), "-q"]) == 2
    err = one_line_error(capsys)
    assert "cannot find the id column" in err and "--id-col" not in err and "id_col" not in err
    assert "--name-col" not in err


def test_train_on_a_database_points_to_prepare(tmp_path, capsys):
    assert run(["ratings", "train", f"sqlite:///{tmp_path / 'x.db'}", "--out", str(tmp_path / "m")]) == 2
    err = one_line_error(capsys)
    assert "ratings prepare" in err and not (tmp_path / "m").exists()


# --- R14: a non-finite threshold is refused -------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_evaluate_refuses_a_non_finite_threshold(prepared, value, capsys):
    capsys.readouterr()
    assert run(["ratings", "evaluate", str(prepared / "model"), str(prepared / "prep"), "--threshold", value]) == 2
    assert "--threshold must be a finite number" in one_line_error(capsys)


# --- R15: a header-only pairs file has no pairs ---------------------------------------------------------------
def test_header_only_pairs_file_has_no_pairs(prepared, tmp_path, capsys):
    f = write(tmp_path / "pairs.csv", "user,item\n")
    with pytest.raises(LatentAtlasError, match="no pairs in file"):
        read_pairs(f)
    with pytest.raises(LatentAtlasError, match="no ratings in file"):
        read_item_ratings(write(tmp_path / "new.csv", "item,rating\n"))
    capsys.readouterr()
    assert run(["ratings", "predict", str(prepared / "model"), str(f)]) == 2
    assert "no pairs in file" in one_line_error(capsys)
    users, items = read_pairs(write(tmp_path / "one.csv", "ann,bob\n"))  # one unnamed pair is still a pair
    assert users.tolist() == ["ann"] and items.tolist() == ["bob"]


# --- R16: a names field over 128 KiB ---------------------------------------------------------------------------
def test_names_field_over_128_kib_is_read(tmp_path):
    from latentatlas.ratings.names import read_names

    long = "x" * 140_000
    names = read_names(write(tmp_path / "n.csv", f"movieId,title\n1,{long}\n2,short\n"))
    assert names.lookup([1, 2]).tolist() == [long, "short"]
    import csv

    assert csv.field_size_limit() == 131072  # the process-wide limit is left as it was


# --- R17: --metrics naming a folder is refused before any work ------------------------------------------------
def test_metrics_folder_is_refused_up_front(prepared, tmp_path, capsys):
    folder = tmp_path / "metrics"
    folder.mkdir()
    capsys.readouterr()
    assert run(["ratings", "train", str(prepared / "prep"), "--k", "2", "--max-steps", "1", "--metrics",
                str(folder), "--out", str(tmp_path / "m")]) == 2
    err = one_line_error(capsys)
    assert f"--metrics {folder} is a folder" in err and ".tmp" not in err
    assert not (tmp_path / "m").exists() and list(folder.iterdir()) == []


# --- R18: bayes refuses the options it would ignore -----------------------------------------------------------
@pytest.mark.parametrize("option, value", [("--reg", "0.1"), ("--lr", "0.01"), ("--max-steps", "5"),
                                           ("--init-scale", "0.5")])
def test_bayes_refuses_options_it_ignores(prepared, tmp_path, option, value, capsys):
    capsys.readouterr()
    assert run(["ratings", "train", str(prepared / "prep"), "--solver", "bayes", option, value,
                "--out", str(tmp_path / "m")]) == 2
    err = one_line_error(capsys)
    assert option in err and "bayes" in err and not (tmp_path / "m").exists()


def test_sampling_options_need_bayes(prepared, tmp_path, capsys):
    capsys.readouterr()
    assert run(["ratings", "train", str(prepared / "prep"), "--solver", "als", "--n-samples", "5",
                "--out", str(tmp_path / "m")]) == 2
    assert "--n-samples applies to --solver bayes only" in one_line_error(capsys)
    # with --solver auto (the default) an option only one solver takes chooses it; two that disagree are refused
    assert run(["ratings", "train", str(prepared / "prep"), "--reg", "0.1", "--n-samples", "5",
                "--out", str(tmp_path / "m")]) == 2
    assert "--n-samples applies to --solver bayes only" in one_line_error(capsys)



def test_solver_auto_samples_small_data_and_solves_large(prepared, tmp_path, capsys, monkeypatch):
    from latentatlas.cli import ratings as cli_ratings

    def train(name, *extra):
        capsys.readouterr()
        assert run(["ratings", "train", str(prepared / "prep"), "--k", "3", "--ranker", "popular", *extra,
                    "--out", str(tmp_path / name)]) == 0
        return json.loads((tmp_path / name / "run.json").read_text())["config"]["solver"], capsys.readouterr().err

    solver, err = train("small")  # about 2,400 training ratings: bayes
    assert solver == "bayes" and "solver bayes (--solver auto)" in err
    monkeypatch.setattr(cli_ratings, "AUTO_BAYES_MAX", 100)
    solver, err = train("large")  # more than the limit: als, said in the output
    assert solver == "als" and "solver als (--solver auto:" in err and "more than 100 for bayes" in err
    assert train("sampled", "--n-samples", "4", "--burn-in", "2")[0] == "bayes"  # an option of bayes only
    assert train("solved", "--max-steps", "2")[0] == "als"  # an option of ALS/SGD only


# --- R19: a closed standard output is an error ----------------------------------------------------------------
@pytest.mark.parametrize("args", [["--version"], ["ratings", "recommend", "MODEL", "--user", "0"]])
def test_closed_stdout_exits_non_zero(prepared, args):
    args = [str(prepared / "model") if a == "MODEL" else a for a in args]
    cmd = " ".join([sys.executable, "-m", "latentatlas", *args]) + " >&-"
    done = subprocess.run(["bash", "-c", cmd], capture_output=False, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == "latentatlas: error: cannot write the output: standard output is closed"


def test_broken_pipe_is_quiet_and_not_zero(prepared):
    cmd = (f"set -o pipefail; {sys.executable} -m latentatlas ratings recommend {prepared / 'model'} --all-users "
           "| head -c 10 >/dev/null")
    done = subprocess.run(["bash", "-c", cmd], stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


# --- the house: messages name arguments; the command line names options ---------------------------------------
def test_library_messages_name_arguments_and_the_cli_names_options(tmp_path, capsys):
    f = write(tmp_path / "r.csv", "userId,movieId,timestamp\n1,10,964982703\n2,10,964982704\n")
    with pytest.raises(LatentAtlasError) as err:
        read_ratings(f)
    assert "rating_col=" in str(err.value) and "--" not in str(err.value)
    with pytest.raises(LatentAtlasError, match="give either data or train_file"):
        from latentatlas.ratings.workflow import check_sources

        check_sources("x", "y", None, None)
    assert run(["ratings", "prepare", str(f), "--out", str(tmp_path / "p")]) == 2
    err = one_line_error(capsys)
    assert "choose it with --rating-col" in err and "rating_col" not in err
    from latentatlas.cli.options import cli_message

    assert cli_message("threshold=nan is bad") == "--threshold nan is bad"
    assert cli_message("/data/my_file/user_col=1.csv: no such file") == "/data/my_file/user_col=1.csv: no such file"


def test_the_spark_package_holds_no_command_code():
    code = ("import sys, latentatlas.ratings.spark as s, latentatlas.ratings.spark.workflow\n"
            "assert not hasattr(s, 'prepare_command') and not hasattr(s, 'check_engine')\n"
            "assert not [m for m in sys.modules if m.startswith('latentatlas.cli')], 'the library imported cli'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_spark_export_types_ids_as_the_local_readers_do():
    from latentatlas.ratings.spark.als import as_ids

    assert as_ids(["007"]).tolist() == ["007"] and as_ids(["007", "7"]).tolist() == ["007", "7"]
    assert as_ids(["17", "-3"]).dtype == np.int64 and as_ids([4, 5]).tolist() == [4, 5]
    assert as_ids([str(BIG), "1"]).tolist() == [str(BIG), "1"] and as_ids([BIG]).tolist() == [str(BIG)]


def test_spark_evaluate_refuses_the_threshold_it_would_ignore(prepared, capsys):
    capsys.readouterr()
    assert run(["ratings", "evaluate", str(prepared / "model"), str(prepared / "prep"), "--engine", "spark",
                "--threshold", "4"]) == 2
    assert "--threshold is for the ranking metrics of --engine local" in one_line_error(capsys)


def test_float_ids_beyond_int64_are_refused_not_wrapped(tmp_path):
    np.save(tmp_path / "r.npy", np.array([[1e19, 1, 4], [2, 1, 3]], dtype=np.float64))
    with pytest.raises(LatentAtlasError, match=r"row index 0: user id 1e\+19 is beyond the int64 range"):
        read_ratings(tmp_path / "r.npy")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": [1e19, 2.0], "item": [1, 2], "rating": [4.0, 3.0]}), tmp_path / "r.parquet")
    with pytest.raises(LatentAtlasError, match="user ids beyond the int64 range are stored as floating-point"):
        read_ratings(tmp_path / "r.parquet")


def test_sql_numeric_ids_beyond_int64_keep_every_digit():
    import decimal

    import pyarrow as pa

    from latentatlas.ratings.sql import _ids

    big = pa.array([decimal.Decimal(2 ** 64 - 1), decimal.Decimal(3)], pa.decimal128(20, 0))
    assert _ids(big).to_pylist() == [str(2 ** 64 - 1), "3"]
    assert _ids(pa.array([decimal.Decimal(5)], pa.decimal128(20, 0))).to_pylist() == [5]
    assert _ids([2 ** 70, 1]).to_pylist() == [str(2 ** 70), "1"]
