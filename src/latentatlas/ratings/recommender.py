"""The default recommender: a rating model for "what would this user rate?" and a ranking model for "what
should this user see first?", fitted together on the same data.

A model fitted only to rating values ranks items by predicted rating and ignores which items people choose
to rate, so its top-N lists lose even to a list of the most popular items (Cremonesi et al. 2010; Steck 2019).
:class:`Recommender` therefore keeps two models:

* ``rating_model_`` (:class:`~latentatlas.ratings.model.LatentFactorModel`, ALS by default) answers
  :meth:`Recommender.predict`: ratings on the training scale, with its RMSE. Its factors are the
  recommender's ``user_embeddings_``/``item_embeddings_`` (their dot products are the factor part of the
  predicted ratings), so ``similar_items``, the explorer and the projector export show neighbours in taste
  (Toy Story's are The Lion King, Raiders of the Lost Ark, Beauty and the Beast on MovieLens-100K), which an
  item–item ranking model's weights do not give;
* ``ranking_model_`` answers :meth:`~RecommenderBase.recommend`, ``recommend_batch`` and ``fold_in``. With
  ``ranker="auto"`` it is chosen on validation ratings by full-ranking NDCG@10 among EASE (two ways of
  weighting ratings × a grid of λ, where the item × item matrix fits in memory), implicit ALS (a small grid)
  and the popularity list, and then refitted on training + validation ratings.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.progress import as_progress
from latentatlas.ratings.base import FoldedUser, RecommenderBase, fit_inputs
from latentatlas.ratings.data import Ratings

RANKERS = ("auto", "ease", "ials", "popular", "rating")
#: EASE is a candidate of ``ranker="auto"`` up to this many items (its fit is cubic in the items: about a
#: minute per λ at 20,000 items on two cores); above, implicit ALS serves.
AUTO_EASE_MAX_ITEMS = 20_000
#: Up to this many items every λ of ``ease.REG_GRID`` is tried with both weightings; above, three λ with
#: rating weights (12 dense solves would take long).
EASE_FULL_GRID_MAX_ITEMS = 4_000
#: Implicit-ALS settings tried by ``ranker="auto"`` (and ``ranker="ials"``): around Rendle et al.'s (2022)
#: recommendations, and what MovieLens validation data preferred (RESULTS-ranking.md).
IALS_GRID = ({"reg": 0.03, "alpha": 1.0, "alpha0": 0.1}, {"reg": 0.01, "alpha": 1.0, "alpha0": 0.1},
             {"reg": 0.1, "alpha": 2.0, "alpha0": 0.1})
#: When the best EASE λ is the largest one tried, up to this many larger ones (×2.5 each) are tried too.
EASE_EXTEND_STEPS = 2
RANKING_FILE = "ranking.npz"
RATING_FILE = "model.npz"


def ranker_candidates(ranker: str, n_items: int, max_memory: int | None, seed: int, n_threads: int | None
                      ) -> list[tuple[str, Callable[[], RecommenderBase]]]:
    """(label, factory) of every ranking model ``ranker`` tries on validation data."""
    from latentatlas.ratings.ease import REG_GRID, EASE, check_memory, default_memory_limit, needed_bytes
    from latentatlas.ratings.ials import ImplicitALS
    from latentatlas.ratings.popular import Popularity

    out: list[tuple[str, Callable[[], RecommenderBase]]] = []
    if ranker == "ease":
        check_memory(n_items, max_memory)  # asked for by name: a clear error rather than a fallback
    limit = default_memory_limit() if max_memory is None else max_memory
    if ranker == "ease" or (ranker == "auto" and n_items <= AUTO_EASE_MAX_ITEMS and needed_bytes(n_items) <= limit):
        # Each fit costs a dense n_items³ solve: the whole grid on small catalogues, its middle on larger ones.
        small = n_items <= EASE_FULL_GRID_MAX_ITEMS
        for weighting in ("rating", "binary") if small else ("rating",):
            for lam in REG_GRID if small else REG_GRID[2:5]:
                out.append((f"EASE (λ={lam:g}, {weighting} weights)",
                            lambda lam=lam, w=weighting: EASE(reg=lam, weighting=w, max_memory=max_memory)))
    if ranker in ("ials", "auto"):
        for p in IALS_GRID:
            out.append((f"implicit ALS (reg={p['reg']:g}, alpha={p['alpha']:g}, alpha0={p['alpha0']:g})",
                        lambda p=p: ImplicitALS(**p, seed=seed, n_threads=n_threads)))
    if ranker in ("popular", "auto"):
        out.append(("most popular", Popularity))
    return out


def _beyond_the_edge(best, tried: list, max_memory: int | None):
    """The next EASE candidate past the largest λ tried with ``best``'s weighting, when ``best`` is that one."""
    from latentatlas.ratings.ease import EASE

    if not isinstance(best, EASE):
        return None
    same = [m.reg for m in tried if isinstance(m, EASE) and m.weighting == best.weighting]
    if best.reg < max(same):
        return None
    lam, w = best.reg * 2.5, best.weighting
    return (f"EASE (λ={lam:g}, {w} weights)", lambda: EASE(reg=lam, weighting=w, max_memory=max_memory))


class Recommender(RecommenderBase):
    """A rating model and a ranking model over the same ids (see the module docstring).

    Parameters
    ----------
    ranker : {"auto", "ease", "ials", "popular", "rating"}
        The ranking model: chosen on validation data (``auto``), one family with its settings chosen on
        validation data, or ``rating`` to rank by predicted rating (the rating model's list).
    rating_model : LatentFactorModel or None
        The rating model (unfitted; a clone is fitted), e.g. ``LatentFactorModel(solver="bayes")``; None means
        ``LatentFactorModel()`` (ALS with its defaults).
    validation_fraction : float
        Share of the training ratings held out (seeded) to choose the ranking model when no ``validation``
        ratings are given to ``fit``; it is then refitted on all. The rating model is fitted on all the given
        ratings as its own ``fit`` would be (ALS and SGD hold out their ``validation_fraction``, the same
        seeded share when the two fractions are equal, to early-stop and refit; ``bayes`` samples on all).
    max_memory : int or None
        Bytes EASE's item × item matrices may take (None: half the memory available).
    seed, n_threads, progress : as for ``LatentFactorModel``.

    Examples
    --------
    >>> from latentatlas import Recommender, prepare_ratings
    >>> split = prepare_ratings(builtin_size=5000).split
    >>> model = Recommender().fit(split.train, validation=split.validation)
    >>> items, scores = model.recommend(split.train.user_ids[0], n=5)     # what to show first
    >>> model.predict([[split.train.user_ids[0], items[0]]]).shape         # what the user would rate it
    (1,)
    """

    model_name = "recommender"
    predicts_ratings = True

    def __init__(self, ranker: str = "auto", rating_model=None, validation_fraction: float = 0.1,
                 max_memory: int | None = None, seed: int = 0, n_threads: int | None = None,
                 progress: Callable[[str], None] | None = None):
        self.ranker = ranker
        self.rating_model = rating_model
        self.validation_fraction = validation_fraction
        self.max_memory = max_memory
        self.seed = seed
        self.n_threads = n_threads
        self.progress = progress

    def _validate(self) -> None:
        if self.ranker not in RANKERS:
            raise LatentAtlasError(f"ranker must be one of {', '.join(RANKERS)}; got {self.ranker!r}")
        checks.fraction("validation_fraction", self.validation_fraction)

    def _rating_model(self):
        from sklearn.base import clone

        from latentatlas.ratings.model import LatentFactorModel

        if self.rating_model is None:
            return LatentFactorModel(seed=self.seed, n_threads=self.n_threads, progress=self.progress)
        if not isinstance(self.rating_model, LatentFactorModel):
            raise LatentAtlasError(f"rating_model must be a LatentFactorModel or None, got "
                                   f"{type(self.rating_model).__name__}")
        model = clone(self.rating_model)
        if model.progress is None and self.progress is not None:
            model.set_params(progress=self.progress)
        return model

    # --- fitting ----------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, validation=None, init_from=None, user_features=None, item_features=None):
        """Fit the rating model (early stopping and refit, as ``LatentFactorModel.fit``) and choose and fit
        the ranking model; ``validation`` (or a held-out ``validation_fraction``) chooses, then both are
        refitted on training + validation ratings. ``init_from``: a rating model to resume from.
        ``user_features``/``item_features``: side attributes for a ``bayes`` rating model (as
        ``LatentFactorModel.fit``); ids with features but no ratings become known users/items of both models
        (the rating model predicts them from their features; the ranking models see no ratings of them)."""
        from latentatlas.ratings import prep
        from latentatlas.ratings.ease import _merged

        self._validate()
        rating = self._rating_model()
        rating._validate()
        train, validation, _ = fit_inputs(X, y, validation)
        features = {}
        if user_features is not None or item_features is not None:
            if rating.solver != "bayes":
                raise LatentAtlasError("user_features/item_features are for solver='bayes'")
            from latentatlas.ratings import bayes

            uf, itf, train = bayes.with_feature_ids(train, user_features, item_features, as_progress(self.progress))
            features = {"user_features": uf, "item_features": itf}
            if validation is not None:  # the appended ids come last: the indices stay valid
                validation = Ratings(validation.users, validation.items, validation.values, train.user_ids,
                                     train.item_ids, dict(validation.meta), validation.timestamps)
        given, held_out = train, False
        if validation is None and self.validation_fraction > 0 and self.ranker != "rating":
            n_val = int(round(self.validation_fraction * len(train)))
            if 0 < n_val < len(train):
                inner = prep.split(train, n_val, 0, seed=self.seed)
                train, validation, held_out = inner.train, inner.validation, True
        if validation is not None and len(validation) == 0:
            validation = None
        report = as_progress(self.progress)
        self.rating_model_ = self._rating_model()
        self.ranking_model_, self.ranker_table_ = self.rating_model_, []
        both = given if held_out else train if validation is None else _merged(train, validation)
        self._set_space(both)
        self.n_ranker_validation_ = 0 if validation is None else len(validation)
        self.validation_held_out_ = held_out
        # Ctrl-C in either phase keeps what is fitted (the rating model ranks until a ranking model is chosen)
        # and is re-raised, so a caller can save it.
        if held_out:  # the part held out here chooses the ranking model only: the rating model gets the given
            # ratings, as from its own fit (a seeded share for early stopping and a refit; bayes samples on all)
            self.rating_model_.fit(given, init_from=init_from, **features)
        else:
            self.rating_model_.fit(train, validation=validation, init_from=init_from, **features)
        self.ranking_model_, self.ranker_table_ = self._choose_ranker(train, validation, both, report)
        return self

    def _choose_ranker(self, train: Ratings, validation: Ratings | None, both: Ratings, report):
        from latentatlas.ratings.metrics import validation_ndcg

        if self.ranker == "rating":
            return self.rating_model_, []
        candidates = ranker_candidates(self.ranker, train.n_items, self.max_memory, self.seed, self.n_threads)
        table = []
        if validation is None or len(candidates) == 1:
            label, make = candidates[0]
            if validation is None and len(candidates) > 1:
                report(f"no validation ratings to choose a ranking model on: using {label}")
            best = (label, make)
        else:
            best, best_value = candidates[0], -math.inf
            todo, extended = list(candidates), 0
            while todo:
                label, make = todo.pop(0)
                start = time.perf_counter()
                model = make().fit(train)
                value = validation_ndcg(model._score_rows, train, validation, self.rating_model_.scale_)
                table.append({"ranker": label, "validation_ndcg@10": round(value, 4),
                              "seconds": round(time.perf_counter() - start, 2)})
                report(f"ranker {label}: validation NDCG@10 {value:.4f}")
                if math.isfinite(value) and value > best_value:
                    best, best_value = (label, make), value
                if not todo and extended < EASE_EXTEND_STEPS:  # the best λ on the grid's upper edge: go on
                    more = _beyond_the_edge(best[1](), [c[1]() for c in candidates], self.max_memory)
                    if more is not None:
                        todo.append(more)
                        candidates.append(more)
                        extended += 1
            report(f"chose {best[0]} (validation NDCG@10 {best_value:.4f}); refitting on training + validation")
        model = best[1]().fit(both)
        model.display_name = best[0]
        for row in table:
            row["chosen"] = row["ranker"] == best[0]
        return model, table

    # --- answers ----------------------------------------------------------------------------------------
    @property
    def ranker_name_(self) -> str:
        """The chosen ranking model, as it is shown (e.g. ``EASE (λ=400, rating weights)``)."""
        self._check_fitted()
        return getattr(self.ranking_model_, "display_name", None) or type(self.ranking_model_).__name__

    def predict(self, X, **kwargs):
        """Predicted ratings of (user id, item id) pairs: the rating model's (``LatentFactorModel.predict``)."""
        self._check_fitted()
        return self.rating_model_.predict(X, **kwargs)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        scores = self.ranking_model_._score_rows(rows)
        if self.ranking_model_ is not self.rating_model_:
            # a user known only by side features has no ratings for the ranking model to go on (EASE scores
            # every item 0 for them): their list is the rating model's, which predicts them from the features
            cold = np.diff(self.seen_indptr_)[rows] == 0
            if cold.any():
                scores = np.array(scores, dtype=np.float64, copy=True)
                scores[cold] = self.rating_model_._score_rows(np.asarray(rows)[cold])
        return scores

    def _score_folded(self, user: FoldedUser) -> np.ndarray:
        return self.ranking_model_._score_folded(user)

    def _fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldedUser:
        return self.ranking_model_._fold_in(items, values)

    @property
    def user_embeddings_(self) -> np.ndarray:
        """The rating model's user factors (see the module docstring)."""
        self._check_fitted()
        return self.rating_model_.user_embeddings_

    @property
    def item_embeddings_(self) -> np.ndarray:
        """The rating model's item factors (see the module docstring)."""
        self._check_fitted()
        return self.rating_model_.item_embeddings_

    def set_names(self, items=None, users=None):
        super().set_names(items=items, users=users)
        for m in (getattr(self, "rating_model_", None), getattr(self, "ranking_model_", None)):
            if m is not None and m is not self:
                m.set_names(items=items, users=users)
        return self

    # --- persistence: a folder with the two model files ---------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``model.npz`` (the rating model) and ``ranking.npz`` (the ranking model) into the folder
        ``path``, replacing it as a whole (only an empty folder or one of ours is ever replaced)."""
        from latentatlas import runs

        self._check_fitted()
        with runs.staged_run(path) as stage:
            self.write_into(stage)
        return Path(path)

    def write_into(self, folder: Path) -> None:
        """The two model files into an existing folder (a run folder being staged)."""
        self.rating_model_.save(Path(folder) / RATING_FILE)
        if self.ranking_model_ is not self.rating_model_:
            self.ranking_model_.save(Path(folder) / RANKING_FILE)

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Read a folder written by :meth:`save` (or a ``ratings train`` run folder)."""
        from latentatlas.ratings.base import load_recommender
        from latentatlas.ratings.model import LatentFactorModel

        folder = Path(path)
        if folder.is_file() and folder.name == RATING_FILE:
            folder = folder.parent
        if not folder.is_dir() or not (folder / RATING_FILE).is_file():
            raise LatentAtlasError(f"{path}: not a Recommender folder (one holding {RATING_FILE} and {RANKING_FILE}, "
                                   "as Recommender.save and `ratings train` write)")
        rating = LatentFactorModel.load(folder / RATING_FILE)
        ranking = load_recommender(folder / RANKING_FILE) if (folder / RANKING_FILE).is_file() else rating
        if ranking is not rating and (len(ranking.user_ids_) != len(rating.user_ids_)
                                      or len(ranking.item_ids_) != len(rating.item_ids_)):
            raise LatentAtlasError(f"{folder}: {RANKING_FILE} and {RATING_FILE} cover different users or items")
        model = cls(ranker="rating" if ranking is rating else "auto")
        model.rating_model_, model.ranking_model_ = rating, ranking
        model.ranker_table_ = []
        for name in ("user_ids_", "item_ids_", "seen_indptr_", "seen_items_"):
            setattr(model, name, getattr(ranking, name))
        model.scale_ = rating.scale_
        model.item_names_ = getattr(rating, "item_names_", None)
        model.user_names_ = getattr(rating, "user_names_", None)
        return model

    def __repr__(self, N_CHAR_MAX: int = 300) -> str:
        if not hasattr(self, "ranking_model_"):
            return super().__repr__(N_CHAR_MAX)
        return (f"Recommender(ranking: {self.ranker_name_}; ratings: {self.rating_model_.solver.upper()} "
                f"k={self.rating_model_.k_value}; {self.n_users_:,} users × {self.n_items_:,} items)")
