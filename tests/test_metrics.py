"""Rating and ranking metrics on hand-checked cases."""

import math

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.ratings import metrics, prep
from latentatlas.ratings.data import Ratings
from latentatlas.ratings.model import LatentFactorModel
from latentatlas.ratings.synthetic import synthetic


def test_rmse_and_mae_by_hand():
    assert metrics.rmse([1, 2, 3], [1, 4, 3]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.mae([1, 2, 3], [2, 4, 3]) == pytest.approx(1.0)
    with pytest.raises(LatentAtlasError, match="same length"):
        metrics.rmse([1, 2], [1])
    with pytest.raises(LatentAtlasError, match="no ratings"):
        metrics.mae([], [])


def test_loss_by_hand():
    # 2 users x 3 items, k = 1; ratings (0,0)=3, (0,2)=1, (1,1)=2.
    r = Ratings([0, 0, 1], [0, 2, 1], [3, 1, 2], [10, 11], [20, 21, 22])
    Q = np.array([[1.0], [2.0]])
    P = np.array([[2.0, 0.5, -1.0]])
    # predictions 2, -1, 1 -> errors 1, 2, 1 -> SSE 6; ‖q‖² = 1 + 4, ‖p‖² = 4 + 0.25 + 1
    assert metrics.loss(r, Q, P, 0.1) == pytest.approx(6 + 0.1 * (5 + 5.25))
    # count weighting: user counts 2, 1; item counts 1, 1, 1
    assert metrics.loss(r, Q, P, 0.1, weighting="count") == pytest.approx(6 + 0.1 * (2 * 1 + 1 * 4 + 5.25))
    with pytest.raises(LatentAtlasError, match="Q .* and P"):
        metrics.loss(r, Q, P.T, 0.1)


def test_ranking_metrics_by_hand():
    rec = [5, 3, 9, 1]
    rel = {3, 1, 7}
    assert metrics.precision_at_k(rec, rel, 2) == 0.5
    assert metrics.precision_at_k(rec, rel, 4) == 0.5
    assert metrics.recall_at_k(rec, rel, 4) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(rec, rel, 4) == pytest.approx(dcg / ideal)
    assert metrics.ndcg_at_k([3, 1, 7], rel, 3) == pytest.approx(1.0)
    assert math.isnan(metrics.recall_at_k(rec, set(), 3))
    with pytest.raises(LatentAtlasError, match="k must be"):
        metrics.precision_at_k(rec, rel, 0)


def test_evaluate_matches_the_definitions():
    r = synthetic(50, 40, 900, seed=4)
    s = prep.split(r, test_fraction=0.2, seed=0)
    m = LatentFactorModel(k=3, max_steps=3).fit(s.train)
    out = metrics.evaluate(m, s.test, k=5)
    pred = m.predict(s.test)  # original ids; for synthetic data they equal the indices
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((pred - s.test.values) ** 2)))
    assert out["relevance_threshold"] == 4.0
    users = np.unique(s.test.users[s.test.values >= 4])
    precision = []
    for u in users:
        top, _ = m.recommend(int(u), 5, clip=False)
        relevant = set(s.test.items[(s.test.users == u) & (s.test.values >= 4)])
        precision.append(len(set(top) & relevant) / 5)
    assert out["ranking_users"] == len(users)
    assert out["precision@5"] == pytest.approx(np.mean(precision))
    assert 0 <= out["ndcg@5"] <= 1
