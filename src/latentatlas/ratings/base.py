"""The recommender base: what every model of the family shares.

Every recommender — the rating models (:class:`~latentatlas.ratings.model.LatentFactorModel`: ALS, SGD,
Bayesian) and the ranking models (:class:`~latentatlas.ratings.ease.EASE`,
:class:`~latentatlas.ratings.ials.ImplicitALS`, :class:`~latentatlas.ratings.popular.Popularity`) — takes
original user and item ids (or names, where the model has them) and answers with original ids. A subclass
supplies the scores; the base does the rest:

* ids: :meth:`~RecommenderBase.user_index`, :meth:`~RecommenderBase.item_index` (ids or unique names);
* top-N: :meth:`~RecommenderBase.recommend`, :meth:`~RecommenderBase.recommend_batch` (seen items never
  appear; a list is shorter than ``n`` rather than padded with seen items);
* similarity: :meth:`~RecommenderBase.similar_items`, :meth:`~RecommenderBase.similar_users`, by cosine of
  ``item_embeddings_`` / ``user_embeddings_``, whose dot products are the model's scores (or approximate them);
* fold-in of a user who was not in training: :meth:`~RecommenderBase.fold_in`;
* save/load without pickle: ``.npz`` arrays and one JSON ``meta`` entry; :func:`load_recommender` reads any.

A ranking model answers "what should this user see first?"; its scores are not ratings. The helpers at the
bottom (id mapping, top-N selection, input checks) are used by every model.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError, not_fitted, printable
from latentatlas.fsutil import save_npz, to_json
from latentatlas.ratings.data import Ratings

RANKING_FORMAT = "latentatlas.recommender"
RATING_MODEL_FORMAT = "latentatlas.model"  # LatentFactorModel's files
RANKING_FORMAT_VERSION = 1
#: Score rows computed at once in ``recommend_batch`` and the evaluation (a block is rows × items floats).
BATCH_ROWS = 1024


@dataclass(frozen=True)
class FoldedUser:
    """A user who was not in training, solved against the fixed item side (see ``fold_in``).

    ``items`` are the *indices* of the items the user rated (``item_ids`` their original ids), ``values``
    their ratings; ``factors`` and ``bias`` are the model's representation of the user (None where the
    model has none, e.g. EASE scores straight from the rated items)."""

    factors: np.ndarray | None
    bias: float
    items: np.ndarray
    values: np.ndarray | None = None
    item_ids: np.ndarray | None = None

    def __repr__(self) -> str:
        k = "" if self.factors is None else f", k={len(self.factors)}"
        return f"FoldedUser({len(self.items)} rated items{k})"


class Estimator:
    """scikit-learn's estimator protocol (``get_params``/``set_params``, the changed-parameters repr, tags),
    written out rather than inherited from ``sklearn.base.BaseEstimator``: importing scikit-learn pulls in
    pandas, pyarrow and scipy.stats (about 130 MB of a process that fits 10 M ratings, issue 16), and its
    tools (``clone``, ``GridSearchCV``, ``cross_val_score``, pipelines) only duck-type on these methods.
    scikit-learn is imported only where it is already in use (tags, ``score``)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = [p for p in inspect.signature(init).parameters.values()
                  if p.name != "self" and p.kind != p.VAR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            raise RuntimeError(f"{cls.__name__}: estimators name their parameters in __init__ (no *args)")
        return sorted(p.name for p in params)

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters and their values (with ``deep``, those of nested estimators too, as
        ``name__param``)."""
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set parameters (``name__param`` reaches a nested estimator's); returns self."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict = {}
        for key, value in params.items():
            key, delim, sub = key.partition("__")
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                                 f"Valid parameters are: {self._get_param_names()!r}.")
            if delim:
                nested.setdefault(key, {})[sub] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub_params in nested.items():
            valid[key].set_params(**sub_params)
        return self

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags  # asked for by scikit-learn only, so it is loaded already

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), transformer_tags=None,
                    regressor_tags=None, classifier_tags=None)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """``Name(param=value, ...)`` with the parameters that differ from the defaults, as scikit-learn shows
        them."""
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            same_nan = all(isinstance(v, float) and v != v for v in (value, default))
            if default is inspect.Parameter.empty or (repr(value) != repr(default) and not same_nan):
                shown.append(f"{name}={value!r}")
        text = f"{type(self).__name__}({', '.join(shown)})"
        if len(text) > N_CHAR_MAX:
            half = N_CHAR_MAX // 2
            text = text[:half] + "..." + text[-half:]
        return text

    def _repr_html_(self) -> str | None:
        """scikit-learn's estimator diagram in notebooks: loaded only when a notebook shows the model, so a
        script that never displays one does not pay scikit-learn's imports. None (the text repr) if it fails."""
        try:
            from sklearn.utils import estimator_html_repr

            return estimator_html_repr(self)
        except Exception:  # a display hook must never raise; the text repr is a fine fallback
            return None


class RecommenderBase(Estimator):
    """Shared interface of every recommender (see the module docstring). Subclasses implement ``_fit``,
    ``_score_rows`` and ``_fold_in`` and name their saved state in ``_SAVED_ARRAYS``/``_SAVED_SCALARS``."""

    #: The name of the model in files and messages.
    model_name = "recommender"
    #: Whether scores are predicted ratings (rating models) or only an order (ranking models).
    predicts_ratings = False
    _SAVED_ARRAYS: tuple[str, ...] = ()
    _SAVED_SCALARS: tuple[str, ...] = ()

    # --- fitting ----------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, validation=None):
        """Learn from ratings.

        Parameters
        ----------
        X : Ratings, or array-like / DataFrame of (user id, item id) pairs with ``y``
        y : ratings of ``X``'s pairs (not with a Ratings)
        validation : Ratings or (X_val, y_val), optional
            Held-out ratings that the model may use to choose its own settings (mapped onto the training ids).

        Returns
        -------
        self
        """
        self._validate()
        train, validation, _ = fit_inputs(X, y, validation)
        if validation is not None and len(validation) == 0:
            validation = None
        self._set_space(train)
        self._fit(train, validation)
        return self

    def _set_space(self, train: Ratings) -> None:
        from latentatlas.ratings.kernels import als

        self.user_ids_, self.item_ids_ = train.user_ids, train.item_ids
        self.scale_ = rating_scale(train)
        self.seen_indptr_, self.seen_items_ = als.compressed(train.users, train.items, None, train.n_users)[:2]

    def _validate(self) -> None:
        """Check the hyper-parameters (subclasses add theirs)."""

    def _fit(self, train: Ratings, validation: Ratings | None) -> None:
        raise NotImplementedError

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        """Scores of every item for the users at index ``rows``: float64, (len(rows), n_items)."""
        raise NotImplementedError

    def _score_folded(self, user: FoldedUser) -> np.ndarray:
        """Scores of every item for a folded-in user."""
        raise NotImplementedError

    def _fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldedUser:
        raise NotImplementedError

    # --- fitted state -----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "user_ids_"):
            raise not_fitted(type(self).__name__)

    @property
    def n_users_(self) -> int:
        return len(self.user_ids_)

    @property
    def n_items_(self) -> int:
        return len(self.item_ids_)

    @property
    def user_embeddings_(self) -> np.ndarray:
        """One vector per user, such that ``user_embeddings_ @ item_embeddings_.T`` gives (or approximates)
        the model's scores; used by ``similar_users``, the explorer and the projector export."""
        raise LatentAtlasError(f"a {self.model_name} model has no user embeddings")

    @property
    def item_embeddings_(self) -> np.ndarray:
        """One vector per item (see ``user_embeddings_``)."""
        raise LatentAtlasError(f"a {self.model_name} model has no item embeddings")

    def seen(self, u: int) -> np.ndarray:
        """Indices of the items user index ``u`` rated in training."""
        return self.seen_items_[self.seen_indptr_[u]:self.seen_indptr_[u + 1]]

    # --- ids and names ----------------------------------------------------------------------------------
    def _index(self, key, what: str) -> int:
        self._check_fitted()
        if not isinstance(key, (str, bytes)) and np.ndim(key) > 0:
            many = "recommend_batch(users)" if what == "user" else "a loop over the items"
            raise LatentAtlasError(f"give one {what} id (or name), not {type(key).__name__} {_shown(key)[:60]}; "
                                   f"for many use {many}")
        ids = self.user_ids_ if what == "user" else self.item_ids_
        idx = map_ids(ids, [key])[0]
        if idx >= 0:
            return int(idx)
        names = getattr(self, f"{what}_names_", None)
        if names is not None and isinstance(key, str) and hasattr(names, "find"):
            found = names.find(key)  # one-line error when unknown or ambiguous
            idx = map_ids(ids, [found])[0]
            if idx >= 0:
                return int(idx)
            raise LatentAtlasError(f"{what} {_shown(key)} (id {found!r}) is not in the model's training data")
        raise LatentAtlasError(f"unknown {what} id {_shown(key)} (not in the model's training data)")

    def user_index(self, user) -> int:
        """Index of an original user id (or a unique user name); a one-line error naming it when unknown."""
        return self._index(user, "user")

    def user_rows(self, users) -> np.ndarray:
        """Indices of many user ids at once (names too, where the model has them); unknown ones raise."""
        self._check_fitted()
        users = users if isinstance(users, np.ndarray) else np.array(_as_list(users), dtype=object)
        if users.ndim != 1:
            raise LatentAtlasError(f"users must be a flat list of user ids, got an array of shape {users.shape}")
        rows = map_ids(self.user_ids_, id_column(users, "user") if users.dtype == object else users)
        for j in np.flatnonzero(rows < 0):  # names, or an error naming the first unknown id
            rows[j] = self.user_index(users[j].item() if hasattr(users[j], "item") else users[j])
        return rows

    def item_index(self, item) -> int:
        """Index of an original item id (or a unique item name, e.g. a film title); a one-line error naming it
        when unknown or ambiguous."""
        return self._index(item, "item")

    def set_names(self, items=None, users=None):
        """Names for the item and/or user ids (a :class:`~latentatlas.ratings.names.Names` or a file for
        :func:`~latentatlas.ratings.names.read_names`), kept in ``item_names_`` / ``user_names_``, shown by
        the CLI and the report, and saved with the model. Methods that take an id then also take a name."""
        from latentatlas.ratings.names import Names, read_names

        for what, source in (("item", items), ("user", users)):
            if source is not None:
                setattr(self, f"{what}_names_", source if isinstance(source, Names) else read_names(source))
        return self

    # --- top-N ------------------------------------------------------------------------------------------
    def _user_scores(self, user) -> tuple[np.ndarray, np.ndarray]:
        """(scores of every item, indices of the items to exclude as seen) for an id or a FoldedUser."""
        if isinstance(user, FoldedUser):
            return np.asarray(self._score_folded(user), dtype=np.float64), user.items
        u = self.user_index(user)
        return self._score_rows(np.array([u]))[0], self.seen(u)

    def recommend(self, user, n: int = 10, *, exclude_seen: bool = True, items=None):
        """The ``n`` best items for one user, best first: ``(item ids, scores)``.

        ``user`` is an original id, a unique name or a :class:`FoldedUser` from :meth:`fold_in`; with
        ``exclude_seen`` the items it rated in training never appear; ``items`` restricts the candidates.
        The list is shorter than ``n`` when fewer candidates remain.
        """
        self._check_fitted()
        n = positive_int(n, "n")
        scores, seen = self._user_scores(user)
        allowed = None
        if items is not None:
            idx = map_ids(self.item_ids_, items)
            allowed = np.zeros(self.n_items_, dtype=bool)
            allowed[idx[idx >= 0]] = True
        top, vals = top_n(scores[None, :], n, [seen] if exclude_seen else None, allowed)
        keep = np.isfinite(vals[0])
        return self.item_ids_[top[0][keep]], vals[0][keep]

    def recommend_batch(self, users, n: int = 10, *, exclude_seen: bool = True,
                        batch_size: int = BATCH_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for many users at once: ``(item ids, scores)`` of shape (len(users), n), best
        first. Where a user has fewer than ``n`` unseen items, the row ends in score NaN, and its id slots
        repeat the row's last real item (never a seen item)."""
        self._check_fitted()
        n = positive_int(n, "n")
        rows = self.user_rows(users)
        top, vals = self.top_indices(rows, n, exclude_seen=exclude_seen, batch_size=batch_size)
        return self.item_ids_[top], vals

    def top_indices(self, rows: np.ndarray, n: int, *, exclude_seen: bool = True,
                    batch_size: int = BATCH_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend_batch` on user indices, answering item indices (padding as described there)."""
        n_eff = min(n, self.n_items_)
        out_i = np.zeros((len(rows), n_eff), dtype=np.int64)
        out_s = np.full((len(rows), n_eff), np.nan)
        for s in range(0, len(rows), batch_size):
            block = rows[s:s + batch_size]
            scores = self._score_rows(block)
            seen = [self.seen(r) for r in block] if exclude_seen else None
            top, vals = top_n(scores, n_eff, seen, None)
            ok = np.isfinite(vals)
            # Pad with the row's last real item rather than with a masked (seen) one.
            last = np.maximum(ok.sum(axis=1) - 1, 0)
            fill = top[np.arange(len(top)), last]
            out_i[s:s + len(block)] = np.where(ok, top, fill[:, None])
            out_s[s:s + len(block)] = np.where(ok, vals, np.nan)
        return out_i, out_s

    # --- similarity -------------------------------------------------------------------------------------
    def _similar(self, F: np.ndarray, i: int, n: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F = np.asarray(F, dtype=np.float64)
        norms = np.linalg.norm(F, axis=1)
        safe = np.where(norms > 0, norms, 1.0)
        cos = (F @ F[i]) / (safe * safe[i])
        cos[norms == 0] = 0.0
        cos[i] = -np.inf
        top, vals = top_n(cos[None, :], min(n, len(F) - 1), None, None)
        return ids[top[0]], vals[0]

    def similar_items(self, item, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items whose embeddings are most cosine-similar to ``item`` (an id or a unique name;
        itself excluded): ``(item ids, cosines)``."""
        self._check_fitted()
        return self._similar(self.item_embeddings_, self.item_index(item), positive_int(n, "n"), self.item_ids_)

    def similar_users(self, user, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` users whose embeddings are most cosine-similar to ``user``: ``(user ids, cosines)``."""
        self._check_fitted()
        return self._similar(self.user_embeddings_, self.user_index(user), positive_int(n, "n"), self.user_ids_)

    # --- fold-in ----------------------------------------------------------------------------------------
    def fold_in(self, items, ratings=None) -> FoldedUser:
        """A user who was not in training, from the items they rated (ids or unique names) and, optionally,
        the ratings (on the training scale; ranking models that only use *which* items were rated may omit
        them). Ids the model does not know are ignored. :meth:`recommend` takes the result in place of a
        user id."""
        self._check_fitted()
        items = _as_list(items)
        idx = np.array([self._item_or_unknown(i) for i in items], dtype=np.int64)
        if ratings is None:
            values = np.full(len(idx), self.scale_[1])
        else:
            values = np.asarray(ratings, dtype=np.float64).reshape(-1) if len(_as_list(ratings)) else np.zeros(0)
            if values.shape != idx.shape:
                raise LatentAtlasError(f"items and ratings must have the same length, got {len(idx)} and "
                                       f"{len(values)}")
            check_scale(values, self.scale_, "ratings")
        keep = idx >= 0
        folded = self._fold_in(idx[keep], values[keep])
        return FoldedUser(folded.factors, folded.bias, idx[keep], values[keep], self.item_ids_[idx[keep]])

    def _item_or_unknown(self, item) -> int:
        try:
            return self.item_index(item)
        except LatentAtlasError:
            return -1

    # --- persistence ------------------------------------------------------------------------------------
    def _params_json(self) -> dict:
        return {k: v for k, v in self.get_params(deep=False).items() if not callable(v)}

    def save(self, path: str | Path) -> Path:
        """Write the model as ``.npz`` (arrays) with a JSON ``meta`` entry; :func:`load_recommender` (or the
        class's ``load``) reads it back without pickle."""
        self._check_fitted()
        meta = {"format": RANKING_FORMAT, "version": RANKING_FORMAT_VERSION, "model": self.model_name,
                "params": self._params_json(), "scale": list(self.scale_),
                "state": {name: getattr(self, name) for name in self._SAVED_SCALARS},
                "display_name": getattr(self, "display_name", None)}
        arrays = {name: getattr(self, name) for name in ("user_ids_", "item_ids_", "seen_indptr_", "seen_items_")
                  + self._SAVED_ARRAYS}
        for what in ("item", "user"):
            if getattr(self, f"{what}_names_", None) is not None:
                arrays.update(getattr(self, f"{what}_names_").to_arrays(prefix=f"{what}_names_"))
        return save_npz(path, **arrays, meta=np.array(to_json(meta, indent=None)))

    @classmethod
    def load(cls, path: str | Path):
        """Read a model written by :meth:`save`; a one-line error naming the file for anything else."""
        model = load_recommender(path)
        if not isinstance(model, cls):
            raise LatentAtlasError(f"{path}: holds a {model.model_name} model, not a {cls.model_name} model")
        return model

    def _restore(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Set the saved state (subclasses check their own arrays' shapes)."""
        for name in ("user_ids_", "item_ids_", "seen_indptr_", "seen_items_") + self._SAVED_ARRAYS:
            setattr(self, name, arrays[name])
        for name in self._SAVED_SCALARS:
            setattr(self, name, state[name])
        problem = self._shape_problem()
        if problem:
            raise ValueError(problem)

    def _shape_problem(self) -> str | None:
        nu, ni = len(self.user_ids_), len(self.item_ids_)
        ip, seen = self.seen_indptr_, self.seen_items_
        if self.user_ids_.ndim != 1 or self.item_ids_.ndim != 1:
            return "ids are not 1-D"
        for what, ids in (("user", self.user_ids_), ("item", self.item_ids_)):
            if len(np.unique(ids)) != len(ids):
                return f"repeated {what} ids"
        if ip.shape != (nu + 1,) or ip.dtype.kind not in "iu" or seen.dtype.kind not in "iu" or ip[0] != 0 \
                or ip[-1] != len(seen) or (np.diff(ip) < 0).any() or (len(seen) and (seen.min() < 0 or seen.max() >= ni)):
            return "seen items are out of range"
        return None

    def __repr__(self, N_CHAR_MAX: int = 300) -> str:
        params = super().__repr__(N_CHAR_MAX)
        if not hasattr(self, "user_ids_"):
            return params
        return f"{params}  # fitted: {self.n_users_:,} users × {self.n_items_:,} items"


# --- loading any model -------------------------------------------------------------------------------------
def _registry() -> dict[str, type]:
    from latentatlas.ratings.ease import EASE
    from latentatlas.ratings.ials import ImplicitALS
    from latentatlas.ratings.popular import Popularity

    return {cls.model_name: cls for cls in (EASE, ImplicitALS, Popularity)}


def load_recommender(path: str | Path):
    """Read any saved recommender: a ranking model, a rating model (``LatentFactorModel``), or the folder
    holding one. One-line errors naming the file for anything else; nothing is unpickled."""
    path = Path(path)
    if path.is_dir() and (path / "model.npz").is_file():
        path = path / "model.npz"
    meta, arrays, names = read_model_file(path, (RATING_MODEL_FORMAT, RANKING_FORMAT))
    rating_model = meta["format"] == RATING_MODEL_FORMAT
    if not rating_model:
        check_version(path, meta, RANKING_FORMAT_VERSION)
    if rating_model:
        from latentatlas.ratings.model import LatentFactorModel

        return LatentFactorModel.load(path)
    cls = _registry().get(meta.get("model"))
    if cls is None:
        raise LatentAtlasError(f"{path}: unknown model {printable(meta.get('model'))!r}")
    params = meta.get("params")
    if not isinstance(params, dict):
        raise LatentAtlasError(f"{path}: model file has no hyper-parameters")
    valid = cls().get_params(deep=False)
    try:
        model = cls(**{k: v for k, v in params.items() if k in valid})
        model._validate()
        model.scale_ = tuple(float(x) for x in meta["scale"])
        model._restore(arrays, meta.get("state") or {})
    except (LatentAtlasError, KeyError, TypeError, ValueError) as exc:
        raise LatentAtlasError(f"{path}: inconsistent {cls.model_name} model file ({printable(exc)})") from None
    model.item_names_, model.user_names_ = names["item"], names["user"]
    if isinstance(meta.get("display_name"), str):
        model.display_name = meta["display_name"]
    return model


def read_model_file(path: Path, formats: tuple[str, ...]) -> tuple[dict, dict, dict]:
    """(metadata, arrays, names) of a model ``.npz`` whose metadata names one of ``formats``, read without
    pickle; a one-line error naming the file for anything else."""
    import zipfile

    from latentatlas.ratings.names import Names

    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise LatentAtlasError(f"{path}: not a latentatlas model file (no 'meta' entry)")
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict) or meta.get("format") not in formats:
                raise LatentAtlasError(f"{path}: not a latentatlas model file (format "
                                       f"{meta.get('format') if isinstance(meta, dict) else None!r})")
            arrays = {name: z[name] for name in z.files if name != "meta"}
        names = {what: Names.from_arrays(arrays, prefix=f"{what}_names_") for what in ("item", "user")}
    except LatentAtlasError as exc:
        message = str(exc)
        raise LatentAtlasError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except FileNotFoundError:
        raise LatentAtlasError(f"{path}: no such model file") from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise LatentAtlasError(f"{path}: not a readable model file ({printable(exc)})") from None
    return meta, arrays, names


def check_version(path: Path, meta: dict, newest: int) -> None:
    version = meta.get("version", 0)
    if not isinstance(version, int) or version > newest:
        raise LatentAtlasError(f"{path}: model file format version {version!r} is newer than this latentatlas "
                               f"understands ({newest}); upgrade latentatlas")


def check_npz(path: Path) -> None:
    """A one-line error unless ``path`` is a file that starts like an ``.npz`` (zip) archive."""
    if path.is_dir():
        raise LatentAtlasError(f"{path}: a folder without a model.npz; give a model file or a training run folder")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise LatentAtlasError(f"{path}: no such model file") from None
    except OSError as exc:
        raise LatentAtlasError(f"{path}: cannot read model file ({printable(exc.strerror or exc)})") from None
    if not head:
        raise LatentAtlasError(f"{path}: not a readable model file (the file is empty)")
    if head != b"PK\x03\x04":
        raise LatentAtlasError(f"{path}: not a latentatlas model file (a model file is an .npz archive)")


# --- helpers shared by every model ---------------------------------------------------------------------------
#: Ratings beyond this magnitude are ids or timestamps read as ratings, not ratings.
MAX_ABS_RATING = 1e6

_USER_COLUMNS = ("user", "user_id", "userid", "userId", "uid")
_ITEM_COLUMNS = ("item", "item_id", "itemid", "itemId", "movieId", "movie_id", "business_id")


def _shown(key) -> str:
    """An id as messages show it: text quoted with control characters escaped, numbers as they are."""
    if hasattr(key, "item"):
        key = key.item()
    return repr(printable(key)) if isinstance(key, str) else repr(key)


def _as_list(x) -> list:
    if isinstance(x, (str, bytes)) or np.ndim(x) == 0:
        return [x]
    return list(x)


def fit_inputs(X, y=None, validation=None) -> tuple[Ratings, Ratings | None, int]:
    """What every ``fit`` takes, checked: (training ratings, validation ratings mapped onto the training ids or
    None, number of validation ratings dropped because their user or item has no training rating).
    ``fit(train, validation)`` with two Ratings means what it says."""
    if isinstance(X, Ratings) and isinstance(y, Ratings) and validation is None:
        y, validation = None, y
    train = as_ratings(X, y, name="X")
    check_ratings(train, "train")
    if len(train) == 0:
        raise LatentAtlasError("no training ratings")
    dropped = 0
    if validation is not None:
        validation = as_ratings(*(validation if isinstance(validation, tuple) else (validation,)), name="validation")
        check_ratings(validation, "validation")
        validation, dropped = to_space(validation, train.user_ids, train.item_ids)
    return train, validation, dropped


def same_ids(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (len(a) == len(b) and a.dtype.kind == b.dtype.kind and bool(np.array_equal(a, b)))


def check_ratings(r, name: str) -> None:
    if not isinstance(r, Ratings):
        raise LatentAtlasError(f"{name} must be a latentatlas Ratings object, got {type(r).__name__}")
    if len(r) and not np.isfinite(r.values).all():
        raise LatentAtlasError(f"{name} ratings contain NaN or infinite values")
    if len(r) and float(np.abs(r.values).max()) > MAX_ABS_RATING:
        raise LatentAtlasError(f"{name} ratings reach {float(np.abs(r.values).max()):.4g}, far outside any rating "
                               "scale: is an id or a timestamp column being read as the rating?")


def check_scale(values: np.ndarray, scale: tuple[float, float], name: str) -> None:
    """Refuse ratings that are not finite or fall outside the training scale."""
    if not np.isfinite(values).all():
        raise LatentAtlasError(f"{name} must be finite numbers")
    lo, hi = scale
    bad = values[(values < lo) | (values > hi)]
    if len(bad):
        raise LatentAtlasError(f"{name}: {bad[0]:g} is outside the rating scale {lo:g}–{hi:g} of the training data")


def rating_scale(train: Ratings, keep: np.ndarray | None = None) -> tuple[float, float]:
    """The rating scale of ``train`` (of its ratings where the bool mask ``keep`` is True, when given):
    the scale its source declared, widened to the ratings' own range."""
    if keep is None:
        low, high = float(train.values.min()), float(train.values.max())
    else:  # no copy of the kept ratings
        low = float(np.min(train.values, where=keep, initial=np.inf))
        high = float(np.max(train.values, where=keep, initial=-np.inf))
    scale = train.meta.get("scale") if isinstance(train.meta, dict) else None
    if isinstance(scale, (list, tuple)) and len(scale) == 2:
        lo, hi = float(scale[0]), float(scale[1])
        if lo < hi:
            return min(lo, low), max(hi, high)
    return low, high


def positive_int(n, name: str) -> int:
    return checks.integer(name, n, 1)


def top_n(scores: np.ndarray, n: int, seen: list | None, allowed: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` the ``n`` best columns, best first (ties by column), after masking each row's
    ``seen`` columns and columns not ``allowed`` with −inf; masked slots come last with score −inf."""
    scores = np.array(scores, dtype=np.float64)
    if seen is not None:
        for r, cols in enumerate(seen):
            scores[r, cols] = -np.inf
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    n = min(n, scores.shape[1])
    if n == 0:
        return np.zeros((len(scores), 0), dtype=np.int64), np.zeros((len(scores), 0))
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    return top, np.take_along_axis(scores, top, axis=1)


def pairs(X) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, item ids) from an (n, 2) array-like, a DataFrame or a Ratings."""
    if isinstance(X, Ratings):
        return X.user_ids[X.users], X.item_ids[X.items]
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # a DataFrame, without importing pandas
        cols = list(X.columns)
        if len(cols) < 2:
            raise LatentAtlasError(f"X must have 2 columns (user id, item id), got {len(cols)}")
        user = next((c for c in cols if str(c) in _USER_COLUMNS), cols[0])
        item = next((c for c in cols if str(c) in _ITEM_COLUMNS), cols[1] if cols[0] == user else cols[0])
        return np.asarray(X[user]), np.asarray(X[item])
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise LatentAtlasError("X must be (user id, item id) pairs, not a sparse matrix; for a user × item "
                               "matrix use Ratings.from_sparse(matrix)")
    arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
    if arr.dtype.kind == "c" or (arr.dtype == object and any(isinstance(v, complex) for v in arr.ravel()[:100])):
        raise LatentAtlasError("Complex data not supported: ids must be integers or text")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise LatentAtlasError(f"X has 0 feature(s) (shape={arr.shape}) while a minimum of 2 is required: one "
                               "(user id, item id) pair per row")
    if arr.ndim == 2 and arr.shape[0] == 0:
        raise LatentAtlasError(f"X has 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise LatentAtlasError(f"X must have shape (n, 2): one (user id, item id) pair per row; got shape "
                               f"{arr.shape}")
    return id_column(arr[:, 0], "user"), id_column(arr[:, 1], "item")


def id_column(col: np.ndarray, what: str = "") -> np.ndarray:
    """Ids as given: integers stay integers; floats must be whole numbers (1.0 is id 1; 1.5 or NaN is an
    error, not a silently truncated or unknown id); anything else is text."""
    if col.dtype.kind == "f":
        bad = ~np.isfinite(col) | (col != np.round(col))
        if bad.any():
            raise LatentAtlasError(f"{what} id {col[bad][0]!r} is not a whole number; ids must be integers or text")
        return col.astype(np.int64)
    if col.dtype != object:
        return col
    values = col.tolist()
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64) if values else np.zeros(0, dtype=np.int64)
    if any(isinstance(v, (float, np.floating)) for v in values) and \
            all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
        return id_column(np.array(values, dtype=np.float64), what)
    return col.astype(str)


def as_ratings(X, y=None, name: str = "X") -> Ratings:
    """A Ratings from a Ratings, or from id pairs ``X`` and ratings ``y``."""
    if isinstance(X, Ratings):
        if y is not None:
            raise LatentAtlasError(f"{name} is a Ratings object: it holds the ratings already, so y must be None")
        return X
    if y is None:
        raise LatentAtlasError(f"{name}: this model requires y to be passed, but the target y is None: call "
                               "fit(X, y) with X the (user id, item id) pairs and y their ratings, or fit(ratings) "
                               "with a Ratings")
    users, items = pairs(X)
    values = np.asarray(y, dtype=object if np.asarray(y).dtype == object else None).reshape(-1)
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"y must hold numbers (ratings); got {values[:3].tolist()!r}...") from None
    if len(values) != len(users):
        raise LatentAtlasError(f"X has {len(users)} pairs but y has {len(values)} ratings")
    return Ratings.from_arrays(users, items, values)


def to_space(r: Ratings, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[Ratings, int]:
    """``r`` re-indexed onto the given ids; pairs with an id not among them are dropped (and counted)."""
    if same_ids(r.user_ids, user_ids) and same_ids(r.item_ids, item_ids):
        return r, 0
    u = map_ids(user_ids, r.user_ids)[r.users]
    i = map_ids(item_ids, r.item_ids)[r.items]
    known = (u >= 0) & (i >= 0)
    return Ratings(u[known], i[known], r.values[known], user_ids, item_ids, dict(r.meta)), int((~known).sum())


def index_array(x, n: int, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size and arr.dtype.kind not in "iu":
        raise LatentAtlasError(f"{name} must be integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)][0]
        raise LatentAtlasError(f"{name} index {bad} is out of range (the model has {n})")
    return arr


def map_ids(known: np.ndarray, query) -> np.ndarray:
    """Positions of ``query`` ids within ``known`` ids, −1 where absent (int and str ids both work)."""
    query = np.asarray(query)
    if query.ndim == 0:
        query = query.reshape(1)
    if known.dtype.kind in "iu":
        if query.dtype.kind == "f":  # 3.0 is id 3; 3.5 and NaN match nothing
            whole = np.isfinite(query) & (query == np.round(query))
            q = np.where(whole, query, 0).astype(np.int64)
            pos = map_ids(known, q)
            return np.where(whole, pos, -1)
        if query.dtype.kind not in "iu":
            try:
                query = query.astype(np.int64)
            except (TypeError, ValueError, OverflowError):  # some ids are not integers: those are unknown
                known, query = known.astype(str), np.array([str(q).strip() for q in query.tolist()])
    else:
        known, query = known.astype(str), query.astype(str)
    order = np.argsort(known, kind="stable")
    sorted_known = known[order]
    pos = np.searchsorted(sorted_known, query)
    pos = np.minimum(pos, max(len(known) - 1, 0))
    hit = (sorted_known[pos] == query) if len(known) else np.zeros(len(query), dtype=bool)
    return np.where(hit, order[pos], -1).astype(np.int64)
