"""The Spark engine against the local engine on the same small data (one shared SparkSession, local[2])."""

import importlib.util
import json
import stat
import subprocess
import sys

import numpy as np
import pytest

from latentatlas import runs
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import prep, spark as S
from latentatlas.ratings.spark import workflow
from latentatlas.ratings.io import read_ratings
from latentatlas.ratings.synthetic import synthetic

HAVE_PYSPARK = importlib.util.find_spec("pyspark") is not None
needs_pyspark = pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    if not HAVE_PYSPARK:
        pytest.skip("pyspark is not installed")
    session = S.get_session("local[2]", ["spark.sql.shuffle.partitions=2", "spark.default.parallelism=2",
                                             "spark.driver.memory=1g"])
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data():
    """A 5-core-filtered synthetic set and the local engine's split of it."""
    raw = synthetic(800, 400, 10000, rank=4, noise=0.5, seed=11)
    kept = prep.kcore(raw, 4)
    return raw, kept, prep.split(kept, validation_fraction=0.1, test_fraction=0.1, seed=0)


def _triplets(df):
    return sorted((str(r["user"]), str(r["item"]), float(r["rating"])) for r in df.collect())


def _local_triplets(r):
    return sorted(zip(map(str, r.user_ids[r.users]), map(str, r.item_ids[r.items]), map(float, r.values)))


# --- availability and configuration: no JVM needed ---------------------------------------------------------
def test_missing_pyspark_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    with pytest.raises(LatentAtlasError, match=r"pip install 'latentatlas\[spark\]'.*"
                                               r"\.venv/bin/pip install -e '\.\[spark\]'"):
        S.require_spark()
    with pytest.raises(LatentAtlasError, match="pyspark"):
        S.get_session("local[1]")


@needs_pyspark
def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(LatentAtlasError, match=r"JAVA_HOME=.*no-jdk has no bin/java.*Java 17"):
        S.require_spark()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LatentAtlasError, match=r"no 'java' on PATH.*JAVA_HOME"):
        S.require_spark()


@needs_pyspark
def test_old_java_is_refused(monkeypatch, tmp_path):
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.20" 2023-07-18\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(LatentAtlasError, match="needs Java 17 or newer, found Java 11"):
        S.require_spark()


def test_importing_the_package_starts_nothing():
    """The package is import-cheap: no pyspark, no typer, no JVM until a name is used."""
    code = ("import sys, latentatlas.ratings.spark as S; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'typer', 'click', 'py4j')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_parse_conf():
    assert S.parse_conf(["spark.executor.memory=4g", "a.b = c=d"]) == {"spark.executor.memory": "4g", "a.b": "c=d"}
    assert S.parse_conf(None) == {}
    for bad in ("spark.executor.memory", "=4g"):
        with pytest.raises(LatentAtlasError, match="KEY=VALUE"):
            S.parse_conf([bad])


# --- readers -----------------------------------------------------------------------------------------------
def _write_inputs(tmp_path):
    files = {}
    files["header.csv"] = "userId,movieId,rating,timestamp\n1,10,4.0,5\n2,10,3.5,5\n1,11,2,6\n1,10,5,7\n"
    files["plain.csv"] = "a,1,x,3\nb,1,y,4\na,2,y,5\n"  # no header; columns chosen by index below
    files["u.data"] = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n"
    files["ratings.dat"] = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    files["reviews.json"] = "\n".join(json.dumps(d) for d in [
        {"review_id": "r1", "user_id": "u-a", "business_id": "b-1", "stars": 4, "text": "good, \"really\"\nok"},
        {"review_id": "r2", "user_id": "u-b", "business_id": "b-1", "stars": 2.0, "text": "meh"},
        {"review_id": "r3", "user_id": "u-a", "business_id": "b-2", "stars": 5, "useful": 3},
    ]) + "\n"
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user_id": [5, 6, 5], "item_id": ["p", "p", "q"], "stars": [1.0, 2.0, 3.0]}),
                   tmp_path / "r.parquet")
    return tmp_path


READ_CASES = [
    ("header.csv", {}),
    ("header.csv", {"duplicates": "mean"}),
    ("plain.csv", {"user_col": "2", "item_col": "0", "rating_col": "3"}),
    ("u.data", {}),
    ("ratings.dat", {}),
    ("reviews.json", {}),
    ("r.parquet", {}),
]


def test_readers_match_the_local_readers(spark, tmp_path):
    _write_inputs(tmp_path)
    for name, options in READ_CASES:
        df, n_dup = S.read_ratings_df(spark, tmp_path / name, **options)
        local = read_ratings(tmp_path / name, **options)
        assert _triplets(df) == _local_triplets(local), (name, options)
        assert n_dup == local.meta["duplicates"], (name, options)
    assert _triplets(S.read_ratings_df(spark, tmp_path / "header.csv")[0])[0] == ("1", "10", 5.0)  # keep last


@pytest.mark.parametrize("name, text, message", [
    ("bad.csv", "user,item,rating\n1,2,4\n1,3,four\n", r"bad\.csv: 1 bad rows.*rating 'four'.*not a number"),
    ("gap.csv", "user,item,rating\n1,2,4\n,3,5\n", r"gap\.csv: 1 bad rows.*missing user or item"),
    ("cols.csv", "who,what,score\n1,2,4\n", r"cols\.csv: missing column 'stars'"),
    ("bad.json", '{"user_id": "a", "business_id": "b", "stars": 4}\n{"user_id": "a", "stars"\n',
     r"bad\.json: 1 bad rows.*malformed"),
    ("nostar.json", '{"user_id": "a", "business_id": "b", "stars": 4}\n{"user_id": "a", "business_id": "c"}\n',
     r"nostar\.json: 1 bad rows.*rating None"),
    ("empty.csv", "", r"empty\.csv: file is empty"),
])
def test_bad_input_is_a_clear_error(spark, tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    options = {"rating_col": "stars"} if name == "cols.csv" else {}
    with pytest.raises(LatentAtlasError, match=message):
        S.read_ratings_df(spark, tmp_path / name, **options)


def test_uri_input_detects_the_format_from_its_first_lines(spark, tmp_path):
    """A URI (here file://) is sampled through Spark and detected by the local detector: a JSON-lines file
    without a telling name, and the error for a missing field names the URI, not the local sample."""
    _write_inputs(tmp_path)
    (tmp_path / "reviews").write_text((tmp_path / "reviews.json").read_text())
    df, _ = S.read_ratings_df(spark, f"file://{tmp_path}/reviews")
    assert _triplets(df) == _local_triplets(read_ratings(tmp_path / "reviews.json"))
    (tmp_path / "nouser").write_text('{"who": "a", "business_id": "b", "stars": 4}\n')
    with pytest.raises(LatentAtlasError, match=rf"file://{tmp_path}/nouser: line 1: no user field"):
        S.read_ratings_df(spark, f"file://{tmp_path}/nouser")


def test_bad_rows_can_be_skipped(spark, tmp_path):
    (tmp_path / "gap.csv").write_text("user,item,rating\n1,2,4\n,3,5\n1,3,x\n2,2,1\n2,2,3\n")
    lines = []
    df, n_dup = S.read_ratings_df(spark, tmp_path / "gap.csv", on_bad_lines="skip", progress=lines.append)
    assert _triplets(df) == [("1", "2", 4.0), ("2", "2", 3.0)] and n_dup == 1
    assert len(lines) == 1 and "skipped 2 bad rows" in lines[0]
    with pytest.raises(LatentAtlasError, match="on_bad_lines must be error or skip"):
        S.read_ratings_df(spark, tmp_path / "gap.csv", on_bad_lines="warn")


def test_missing_file_and_bad_options(spark, tmp_path):
    with pytest.raises(LatentAtlasError, match="nope.csv: no such file"):
        S.read_ratings_df(spark, tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("1,2,3\n")
    with pytest.raises(LatentAtlasError, match="duplicates must be one of"):
        S.read_ratings_df(spark, tmp_path / "x.csv", duplicates="max")
    with pytest.raises(LatentAtlasError, match="unknown format 'xls'"):
        S.read_ratings_df(spark, tmp_path / "x.csv", format="xls")


# --- preparation: same counts as the local engine --------------------------------------------------------------
def test_kcore_and_splits_have_the_local_counts(spark, data):
    raw, kept, _ = data
    df = S.ratings_to_df(spark, raw)
    rounds = []
    core = S.kcore_df(df, 4, progress=rounds.append, rounds_per_job=1)
    assert len(rounds) >= 3  # removals cascade: several rounds before nothing changes
    row = core.selectExpr("count(*) n", "count(distinct user) u", "count(distinct item) i").first()
    assert (row["n"], row["u"], row["i"]) == (len(kept), kept.n_users, kept.n_items) and len(kept) < len(raw)
    assert _triplets(core) == _local_triplets(kept)  # the k-core is unique: the same ratings, not just counts
    cases = [dict(n_validation=500, n_test=600), dict(validation_fraction=0.1, test_fraction=0.15),
             dict(leave_k_out=2)]
    for kw in cases:
        want = prep.split(kept, seed=3, **kw).sizes()
        got = S.split_df(core, seed=3, **kw)
        assert got.count() == got.sizes() == want, kw
    # disjoint and complete, seeded
    parts = S.split_df(core, n_validation=500, n_test=600, seed=3)
    union = parts.train.unionByName(parts.validation).unionByName(parts.test)
    assert union.select("user", "item").distinct().count() == len(kept)
    again = S.split_df(core, n_validation=500, n_test=600, seed=3)
    other = S.split_df(core, n_validation=500, n_test=600, seed=4)
    assert _triplets(again.test) == _triplets(parts.test) != _triplets(other.test)
    with pytest.raises(LatentAtlasError, match="leave nothing to train on"):
        S.split_df(core, n_validation=len(kept) // 2, n_test=len(kept) - len(kept) // 2)
    with pytest.raises(LatentAtlasError, match="no ratings left"):
        S.kcore_df(df, 10_000)


def test_centring_subtracts_training_user_means(spark, data):
    _, _, split = data
    train = S.ratings_to_df(spark, split.train)
    means = S.user_means_df(train)
    centred = S.center_df(train, means, fill=3.0)
    worst = centred.groupBy("user").avg("rating").selectExpr("max(abs(`avg(rating)`))").first()[0]
    assert worst < 1e-9
    local_means = prep.user_means(split.train)
    got = {int(r["user"]): r["mean"] for r in means.collect()}
    np.testing.assert_allclose([got[int(u)] for u in split.train.user_ids[np.unique(split.train.users)]],
                               local_means[np.unique(split.train.users)], rtol=1e-6)
    # a user unknown to training gets the fill value
    new = spark.createDataFrame([(10**6, 1, 4.0)], "user long, item long, rating double")
    assert S.center_df(new, means, fill=3.0).first()["rating"] == 1.0


# --- training, evaluation, export ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(spark, data):
    _, _, split = data
    train = S.ratings_to_df(spark, split.train)
    return S.SparkALS(k=4, reg=0.1, max_iter=10, seed=0, center="user").fit(train), train


def test_test_rmse_matches_the_local_engine(spark, data, fitted):
    from latentatlas.ratings.model import LatentFactorModel

    _, _, split = data
    model, _ = fitted
    got = model.evaluate(S.ratings_to_df(spark, split.test))
    local = LatentFactorModel(k=4, reg=0.1, center="user", reg_weighting="count", als_method="cholesky",
                              max_steps=10, validation_fraction=0, seed=0).fit(split.train)
    pred = local.predict(split.test)
    err = pred - split.test.values
    assert got["n"] == len(split.test)
    assert abs(got["rmse"] - np.sqrt(np.mean(err ** 2))) < 0.02
    assert abs(got["mae"] - np.mean(np.abs(err))) < 0.02
    # and both learn something beyond the user means they start from
    means = prep.user_means(split.train)
    baseline = np.sqrt(np.mean((means[split.test.users] - split.test.values) ** 2))
    assert got["rmse"] < baseline - 0.05


def test_exported_model_recommends_what_spark_recommends(spark, data, fitted, tmp_path):
    from latentatlas.ratings.model import LatentFactorModel

    _, _, split = data
    model, train = fitted
    path = model.to_local(train, include_seen=True).save(tmp_path / "model.npz")
    local = LatentFactorModel.load(path)
    users = [int(u) for u in split.train.user_ids[:6]]
    recs = model.recommend(users, n=10)
    for u in users:
        items, scores = local.recommend(u, 10, exclude_seen=False, clip=False)
        assert [int(i) for i, _ in recs[u]] == [int(i) for i in items]
        np.testing.assert_allclose([s for _, s in recs[u]], scores, atol=1e-4)
    # predictions (clipped, user mean added back) agree row by row
    sample = spark.createDataFrame(
        [(int(split.test.user_ids[u]), int(split.test.item_ids[i]), 0.0)
         for u, i in zip(split.test.users[:50], split.test.items[:50])], "user long, item long, rating double")
    got = {(r["user"], r["item"]): r["prediction"] for r in model.predict(sample).collect()}
    want = local.predict(np.column_stack([split.test.user_ids[split.test.users[:50]],
                                          split.test.item_ids[split.test.items[:50]]]))
    keys = zip(split.test.user_ids[split.test.users[:50]], split.test.item_ids[split.test.items[:50]])
    np.testing.assert_allclose([got[(int(a), int(b))] for a, b in keys], want, atol=1e-4)
    # with the seen items exported, local recommendations skip the user's training items
    u = users[0]
    rated = set(split.train.item_ids[split.train.items[split.train.users == split.train.user_index(u)]].tolist())
    items, _ = local.recommend(u, 10)
    assert rated and not rated & set(items.tolist())
    with pytest.raises(LatentAtlasError, match="unknown user id"):
        model.recommend([10**9])


# --- parity with the local engine: baseline, defaults, accuracy -------------------------------------------------
def test_biases_equal_the_local_damped_biases(spark, data):
    _, _, split = data
    train = S.ratings_to_df(spark, split.train)
    got = S.fit_biases_df(train)
    want = prep.fit_biases(split.train, 5.0, 5.0, 10)
    assert abs(got.mu - want.mu) < 1e-6  # prep.fit_biases averages float32 values in float32
    bu = {int(r["user"]): r["bu"] for r in got.user.collect()}
    bi = {int(r["item"]): r["bi"] for r in got.item.collect()}
    users, items = np.unique(split.train.users), np.unique(split.train.items)
    assert len(bu) == len(users) and len(bi) == len(items)
    np.testing.assert_allclose([bu[int(split.train.user_ids[u])] for u in users], want.user[users], atol=1e-6)
    np.testing.assert_allclose([bi[int(split.train.item_ids[i])] for i in items], want.item[items], atol=1e-6)
    assert np.abs(want.item[items]).max() > 0.1  # the offsets are not trivially zero
    # one undamped step: each item's plain mean residual, then each user's (a different answer)
    plain, want_plain = S.fit_biases_df(train, 0.0, 0.0, n_iter=1), prep.fit_biases(split.train, 0.0, 0.0, 1)
    got_plain = {int(r["item"]): r["bi"] for r in plain.item.collect()}
    np.testing.assert_allclose([got_plain[int(split.train.item_ids[i])] for i in items], want_plain.item[items],
                               atol=1e-6)
    assert np.abs(want_plain.item[items] - want.item[items]).max() > 0.01


@pytest.fixture(scope="module")
def fitted_defaults(spark, data):
    """SparkALS at its defaults (k=64, λ=0.12 count-weighted, biases, 10 iterations)."""
    _, _, split = data
    train = S.ratings_to_df(spark, split.train)
    return S.SparkALS(seed=0).fit(train), train


def test_defaults_are_the_local_defaults(fitted_defaults, data, tmp_path):
    from latentatlas.ratings.model import DEFAULT_REG, LatentFactorModel

    _, _, split = data
    est, train = fitted_defaults
    exported = LatentFactorModel.load(est.to_local(train).save(tmp_path / "model.npz"))
    mine, local = exported.get_params(), LatentFactorModel().get_params()
    for name in ("reg_weighting", "center", "bias_reg"):
        assert mine[name] == local[name], name
    assert exported.k_value == LatentFactorModel().k_value == 64 and exported.reg_ == LatentFactorModel().reg_value
    assert (mine["center"], mine["reg_weighting"], mine["bias_reg"]) == ("biases", "count", 5.0)
    assert est.reg_value == DEFAULT_REG["als"] == 0.12 and est.iterations == S.DEFAULT_MAX_ITER == 10
    # the exported baseline is the local model's: mu, user and item biases by id
    want = prep.fit_biases(split.train, 5.0, 5.0, 10)
    assert abs(exported.mu_ - want.mu) < 1e-6
    u = [split.train.user_index(x) for x in exported.user_ids_]
    i = [split.train.item_index(x) for x in exported.item_ids_]
    np.testing.assert_allclose(exported.user_bias_, want.user[u], atol=1e-6)
    np.testing.assert_allclose(exported.item_bias_, want.item[i], atol=1e-6)


def test_test_rmse_at_defaults_matches_local_als(spark, data, fitted_defaults):
    from latentatlas.ratings.model import LatentFactorModel

    _, _, split = data
    est, _ = fitted_defaults
    got = est.evaluate(S.ratings_to_df(spark, split.test))
    # the same settings locally: defaults, exact row solves as Spark's, the same fixed number of iterations
    local = LatentFactorModel(als_method="cholesky", max_steps=S.DEFAULT_MAX_ITER, validation_fraction=0,
                              seed=0).fit(split.train)
    err = local.predict(split.test) - split.test.values
    local_rmse = float(np.sqrt(np.mean(err ** 2)))
    assert abs(got["rmse"] - local_rmse) < 0.02, (got["rmse"], local_rmse)
    biases = prep.fit_biases(split.train)
    baseline = np.sqrt(np.mean((biases.predict(split.test.users, split.test.items) - split.test.values) ** 2))
    assert got["rmse"] < baseline - 0.05  # the factors add to the baseline


def test_workflow_run_folders_round_trip(spark, data, tmp_path):
    from latentatlas.ratings.model import LatentFactorModel

    raw, _, _ = data
    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating\n" + "".join(
        f"{u},{i},{v:g}\n" for u, i, v in zip(raw.user_ids[raw.users], raw.item_ids[raw.items], raw.values)))
    prepared = workflow.prepare(csv, tmp_path / "prep", master="local[2]")
    run = runs.load_run(tmp_path / "prep")
    assert run.kind == runs.RATINGS_PREPARE and run.config["engine"] == "spark"
    assert run.metrics["test_ratings"] == prepared.summary["split"]["test"]
    assert spark.read.parquet(str(run.artifact(runs.TEST_PART))).count() == prepared.summary["split"]["test"]
    assert json.loads(run.artifact(runs.SUMMARY).read_text())["ratings"] == prepared.summary["ratings"]

    result = workflow.train(tmp_path / "prep", k=4, max_steps=3, out=tmp_path / "model", master="local[2]")
    run = runs.load_run(tmp_path / "model")
    assert run.kind == runs.RATINGS_TRAIN and run.config["engine"] == "spark"
    assert run.metrics["test_rmse"] == pytest.approx(result.metrics["test_rmse"])
    assert run.metrics_file()["test_ratings"] == prepared.summary["split"]["test"]
    model = LatentFactorModel.load(run.artifact(runs.MODEL))
    np.testing.assert_array_equal(model.item_factors_, result.model.item_factors_)
    rows = run.tables["recommendations"]
    assert len(rows) == 30 and rows[0]["rank"] == 1
    items, _ = model.recommend(rows[0]["user"], 10)
    assert [r["item"] for r in rows[:10]] == items.tolist()
    # rerunning replaces the folder as a whole
    workflow.train(tmp_path / "prep", k=2, max_steps=1, out=tmp_path / "model", master="local[2]")
    assert runs.load_run(tmp_path / "model").config["k"] == 2


def test_long_fits_checkpoint_into_a_temporary_folder(spark, data):
    """Past 20 iterations ALS needs a checkpoint directory (about 50 overflow the JVM stack without one): a
    local fit uses a temporary one, unset again afterwards and removed with the estimator."""
    import gc
    import os

    _, _, split = data
    est = S.SparkALS(k=2, max_iter=25, center="none").fit(S.ratings_to_df(spark, split.train))
    folder = est._checkpoint_dir.name
    assert os.listdir(folder) and spark.sparkContext.getCheckpointDir() is None
    assert est.factors()["item_factors"].any()
    del est
    gc.collect()
    assert not os.path.exists(folder)


# --- command line ------------------------------------------------------------------------------------------
def test_cli_without_pyspark_says_what_to_install(monkeypatch, capsys, tmp_path):
    from latentatlas.cli import run

    monkeypatch.setitem(sys.modules, "pyspark", None)
    (tmp_path / "r.csv").write_text("1,2,3\n")
    assert run(["ratings", "prepare", str(tmp_path / "r.csv"), "--engine", "spark", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentatlas: error:") and "pip install 'latentatlas[spark]'" in err
    assert run(["ratings", "prepare", "--engine", "hadoop"]) == 2
    assert "--engine must be local or spark" in capsys.readouterr().err
    assert run(["ratings", "prepare", "--engine", "spark", "--spark-conf", "novalue", "--out", str(tmp_path)]) == 2
    assert "--spark-conf expects KEY=VALUE" in capsys.readouterr().err


def test_cli_spark_engine_end_to_end(spark, data, tmp_path, capsys):
    """prepare → train → recommend/evaluate with --engine spark: the local engine's counts, and a model file
    that the local commands serve."""
    from latentatlas.cli import run
    from latentatlas.ratings.model import LatentFactorModel

    raw, _, _ = data
    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating\n" + "".join(
        f"{u},{i},{v:g}\n" for u, i, v in zip(raw.user_ids[raw.users], raw.item_ids[raw.items], raw.values)))
    spark_args = ["--engine", "spark", "--spark-master", "local[2]", "--spark-conf", "spark.sql.shuffle.partitions=2"]
    assert run(["ratings", "prepare", str(csv), "--out", str(tmp_path / "sp"), "--json", *spark_args]) == 0
    got = json.loads(capsys.readouterr().out)
    assert run(["ratings", "prepare", str(csv), "--out", str(tmp_path / "lp"), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    for key in ("users", "items", "ratings", "duplicates", "shape_before", "shape_after", "ratings_before", "split",
                "histogram"):
        assert got[key] == want[key], key
    assert runs.load_run(tmp_path / "sp").kind == runs.RATINGS_PREPARE

    assert run(["ratings", "train", str(tmp_path / "sp"), "--k", "4", "--reg", "0.1", "--max-steps", "5",
                "--out", str(tmp_path / "t"), "--json", "--quiet", *spark_args]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["engine"] == "spark" and metrics["test_ratings"] == want["split"]["test"]
    trained = runs.load_run(tmp_path / "t")
    assert trained.kind == runs.RATINGS_TRAIN and trained.artifact(runs.MODEL).name == "model.npz"
    model = LatentFactorModel.load(trained.artifact(runs.MODEL))
    assert model.user_factors_.shape[1] == 4
    top = trained.tables["recommendations"]
    user = top[0]["user"]
    # the run's table, the local command and the Spark-scored command give the same list (seen items excluded)
    assert run(["ratings", "recommend", str(tmp_path / "t" / "model.npz"), "--user", str(user), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert [r["item"] for r in local] == [r["item"] for r in top if r["user"] == user]
    assert run(["ratings", "recommend", str(tmp_path / "t" / "model.npz"), "--user", str(user), "--json",
                *spark_args]) == 0
    assert [r["item"] for r in json.loads(capsys.readouterr().out)] == [r["item"] for r in local]
    assert run(["ratings", "evaluate", str(tmp_path / "t" / "model.npz"), str(tmp_path / "sp"), "--json",
                *spark_args]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n_ratings"] == want["split"]["test"]
    assert abs(ev["rmse"] - metrics["test_rmse"]) < 1e-6
