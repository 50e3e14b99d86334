"""The popularity baseline: every user gets the most-rated items they have not rated yet.

Every ranking evaluation reports it beside the model, because a list of the most popular items is hard to
beat on real, skewed data, and a model that loses to it is not worth its cost.
"""

from __future__ import annotations

import numpy as np

from latentatlas.ratings.base import FoldedUser, RecommenderBase
from latentatlas.ratings.data import Ratings


class Popularity(RecommenderBase):
    """Scores each item by its number of training ratings (the same list for everyone, seen items removed).

    Examples
    --------
    >>> from latentatlas import prepare_ratings
    >>> from latentatlas.ratings.popular import Popularity
    >>> train = prepare_ratings(builtin_size=5000).split.train
    >>> ids, counts = Popularity().fit(train).recommend(train.user_ids[0], n=3)
    >>> len(ids)
    3
    """

    model_name = "popular"
    _SAVED_ARRAYS = ("item_counts_",)

    @classmethod
    def from_seen(cls, model: RecommenderBase) -> "Popularity":
        """The popularity list of the data a fitted model was trained on (its seen items), over its ids: the
        baseline for that model when the training ratings themselves are not at hand."""
        model._check_fitted()
        pop = cls()
        for name in ("user_ids_", "item_ids_", "seen_indptr_", "seen_items_", "scale_"):
            setattr(pop, name, getattr(model, name))
        pop.item_counts_ = np.bincount(np.asarray(model.seen_items_, dtype=np.int64),
                                       minlength=len(model.item_ids_)).astype(np.float64)
        pop.display_name = "most popular (baseline)"
        return pop

    def _fit(self, train: Ratings, validation: Ratings | None) -> None:
        self.item_counts_ = train.item_counts().astype(np.float64)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_counts_, (len(rows), self.n_items_))

    def _score_folded(self, user: FoldedUser) -> np.ndarray:
        return self.item_counts_

    def _fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldedUser:
        return FoldedUser(None, 0.0, items)

    def _shape_problem(self) -> str | None:
        if self.item_counts_.shape != (len(self.item_ids_),):
            return "item_counts does not match the item ids"
        return super()._shape_problem()
