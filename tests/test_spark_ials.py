"""`--engine spark --solver ials`: Spark MLlib's implicit ALS, exported as a local ranking model."""

import importlib.util

import numpy as np
import pytest

from latentatlas import runs
from latentatlas.ratings.ials import ImplicitALS
from latentatlas.ratings.synthetic import synthetic
from latentatlas.ratings.workflow import load_model

pytestmark = [pytest.mark.spark, pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed")]


def test_spark_implicit_als_trains_a_ranking_model_that_lists_unseen_items(tmp_path):
    from latentatlas.cli import run
    from latentatlas.ratings.spark import workflow

    raw = synthetic(200, 80, 3000, seed=5)
    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating\n" + "".join(
        f"{u},{i},{v:g}\n" for u, i, v in zip(raw.user_ids[raw.users], raw.item_ids[raw.items], raw.values)))
    result = workflow.train(csv, solver="ials", k=4, max_steps=3, out=tmp_path / "m", master="local[2]",
                            conf=["spark.sql.shuffle.partitions=2", "spark.driver.memory=1g"])
    model = result.model
    assert isinstance(model, ImplicitALS) and "test_rmse" not in result.metrics
    # the exported factors are Spark's: the local scores are their dot products
    f = result.estimator.factors()
    np.testing.assert_allclose(model._score_rows(np.arange(3)), f["user_factors"][:3] @ f["item_factors"].T,
                               rtol=1e-5, atol=1e-6)
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, ImplicitALS) and runs.load_run(tmp_path / "m").config["engine"] == "spark"
    user = loaded.user_ids_[0]
    ids, _ = loaded.recommend(user, n=5)
    seen = set(loaded.item_ids_[loaded.seen(0)].tolist())
    assert len(ids) == 5 and not set(ids.tolist()) & seen
    assert run(["ratings", "recommend", str(tmp_path / "m"), "--user", str(user), "-n", "3", "--json"]) == 0
