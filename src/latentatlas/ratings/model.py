"""The latent factor model ``R ≈ baseline + Q·P``, trained by alternating least squares or SGD.

The classic course formulation is kept exactly — ``Q`` is users × k, ``P`` is k × items, the loss is
``Σ_(u,i)∈S (R_ui − q_u·p_i)² + λ(Σ_i ‖p_i‖² + Σ_u ‖q_u‖²)``, ALS alternates ridge solves over each
column's and row's known entries, SGD walks the known entries in shuffled order, training stops after
``patience`` evaluations without improvement and keeps the best factors — but the defaults are chosen for
real, skewed data:

* ``center="biases"``: the factors model what remains after a damped global + user + item baseline
  (``prep.fit_biases``), the single biggest gain on real ratings;
* ``reg_weighting="count"``: a row with ``n`` ratings is penalised ``λ·n‖x‖²`` (Zhou et al. 2008, "ALS-WR",
  also Spark's ALS). This is the objective SGD's per-rating update already minimises, so λ means the same
  objective for both solvers, and heavy users are not under-regularised relative to light ones;
  ``reg_weighting="none"`` gives the formula above verbatim. The default λ is 0.12 for ALS and 0.065 for
  SGD, k = 64, lr = 0.02 (SGD's early stopping regularises too, hence its smaller λ); they were chosen on
  MovieLens-100K *validation* RMSE (benchmarks/tune_defaults.py), and accuracy is reported on other splits;
* stopping on the validation RMSE rather than the penalised loss (``stop_on="rmse"``), which stops too
  early once λ is large; ``stop_on="loss"`` restores the classic criterion;
* users and items without training ratings get zero factors, so they are predicted by the baseline.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError, not_fitted
from latentatlas.progress import as_progress
from latentatlas.fsutil import save_npz, to_json
from latentatlas.ratings.base import (FoldedUser, RecommenderBase, as_ratings, check_version,
                                      check_ratings, fit_inputs, id_column, index_array, map_ids, pairs,
                                      positive_int, rating_scale, read_model_file, same_ids, to_space,
                                      top_n)
from latentatlas.ratings.data import Ratings

FORMAT = "latentatlas.model"
FORMAT_VERSION = 1

SOLVERS = ("als", "sgd", "bayes")
INITS = ("random", "svd")
CENTERS = ("biases", "user", "none")
STOP_ON = ("rmse", "loss")
WEIGHTINGS = ("count", "none")
ALS_METHODS = ("cg", "cholesky")
SCHEDULES = ("blocks", "serial")
DTYPES = ("float32", "float64")

#: Default number of training steps per solver (ALS iterations converge in far fewer steps than SGD epochs).
DEFAULT_MAX_STEPS = {"als": 50, "sgd": 200}
#: Default λ per solver (count-weighted), tuned on MovieLens-100K (see the README section on defaults).
DEFAULT_REG = {"als": 0.12, "sgd": 0.065}
#: Default number of latent factors per solver (the sampler's was chosen on validation data, RESULTS-bayes.md).
DEFAULT_K = {"als": 64, "sgd": 64}  # bayes: latentatlas.ratings.bayes.DEFAULT_K, chosen with the sampler
IMPLICIT = ("auto", "both", "user", "item", "none")
#: bayes: up to this many training ratings a Gibbs sample draws each vector of the implicit/feature block whole
#: (the exact block sweep the defaults were tuned with; a K×K Gram matrix per user and item, 30× an ALS iteration
#: at 10 M ratings); above it, one coordinate at a time (``gibbs_fit(sweep="coordinate")``, O(K) per pair), so
#: implicit features (0.02-0.03 RMSE on MovieLens-100K) stay on at any size (RESULTS-bayes-implicit-speed.md).
BLOCK_SWEEP_MAX = 2_000_000
IMPLICIT_AUTO_MAX = BLOCK_SWEEP_MAX  # the older name
#: Arrays of a model file (each the fitted attribute of the same name plus ``_``).
_ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids", "seen_indptr",
           "seen_items")
#: The fitted state.
_STATE = ("user_factors_", "item_factors_", "user_bias_", "item_bias_", "mu_", "user_ids_", "item_ids_",
          "seen_indptr_", "seen_items_", "scale_", "reg_", "history_")
#: The part of it that grows with the data (parked during the refit; see ``_Parked``).
_LARGE_STATE = ("user_factors_", "item_factors_", "seen_indptr_", "seen_items_")
#: Up to this many pairs ``predict`` runs in the calling thread (numpy), above it the parallel kernel.
SERIAL_PAIRS = 4096
_CHUNKS = 64  # row chunks of the parallel kernels; fixed, so sums do not depend on the number of threads
#: Arrays set aside for a restore (the best factors so far, the early-stopped model during the refit) stay in
#: memory up to this many bytes and go to an anonymous temporary file above it (see ``_Parked``).
PARK_IN_MEMORY_MAX = 16 << 20


@dataclass
class History:
    """What happened during :meth:`LatentFactorModel.fit`.

    One entry per evaluation (every ``eval_every`` steps) in ``steps`` and the loss/RMSE lists; the losses
    are the penalised sums of squares (the classic definition, for both train and validation), the RMSEs
    the data term only. ``seconds`` holds the solver time of every step (evaluation excluded), ``cpu_seconds``
    the CPU time of the process (all threads) during it.
    ``converged_after`` is ``stopped_at − patience·eval_every`` when training stopped early, else −1.
    """

    steps: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    validation_loss: list = field(default_factory=list)
    train_rmse: list = field(default_factory=list)
    validation_rmse: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    cpu_seconds: list = field(default_factory=list)
    best_step: int = 0
    stopped_at: int = 0
    converged_after: int = -1
    interrupted: bool = False
    fallback_rows: int = 0
    refit_steps: int = 0
    criterion: str = ""

    @property
    def seconds_per_iteration(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seconds_per_iteration"] = self.seconds_per_iteration
        return d

    def __repr__(self) -> str:
        if not self.steps:
            return "History(empty)"
        best = f", best step {self.best_step}" if self.best_step else ""
        last = self.validation_rmse or self.train_rmse
        rmse = f", {'validation' if self.validation_rmse else 'train'} RMSE {min(last):.4f}" if last else ""
        return f"History({len(self.steps)} evaluations{best}{rmse}{', interrupted' if self.interrupted else ''})"

    def _repr_png_(self):
        from latentatlas.plots.ratings import history_png

        return history_png(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


class LatentFactorModel(RecommenderBase):
    """Matrix factorisation of explicit ratings: ``r_ui ≈ μ + b_u + b_i + q_u·p_i``.

    A scikit-learn regressor over *original* ids: ``fit(X, y)`` takes an (n, 2) array or DataFrame of
    (user id, item id) pairs and their ratings (or a :class:`Ratings`), ``predict(X)`` takes pairs of
    original ids, so ``clone``, ``GridSearchCV`` and ``cross_val_score`` work. Every method that takes a
    user or an item takes its original id; the ``*_indices`` methods take internal indices.

    Parameters
    ----------
    k : int or None
        Number of latent factors; None means 64 for ALS and SGD, 24 for ``bayes``.
    reg : float or None
        λ, the ridge penalty on the factors (per rating with ``reg_weighting="count"``); None means 0.12
        for ALS and 0.065 for SGD. ``bayes`` has no λ: the sampler learns the precisions.
    solver : {"als", "sgd", "bayes"}
        ``bayes``: Bayesian MF by Gibbs sampling (:mod:`latentatlas.ratings.bayes`) with implicit feedback;
        no λ to tune, predictions averaged over posterior samples, ``predict(..., return_std=True)``. It
        chooses nothing on validation data (no early stopping, no refit): validation ratings are only scored
        per sample for the curve, and without them it samples on all the given ratings.
    init : {"random", "svd"}
        ``random``: uniform on ``[0, init_scale)`` (the course uses ``[0, 1)``; the default scale
        ``1/√k`` keeps the initial ``q·p`` of order one instead of ``k/4``, which SGD needs on real data).
        ``svd``: truncated SVD of the centred training matrix, ``Q = U·diag(σ)``, ``P = Vᵀ``.
    init_scale : float or None
        Upper end of the uniform initialisation; None means ``1/√k``.
    lr : float
        SGD learning rate.
    max_steps : int or None
        ALS iterations or SGD epochs; None means 50 for ALS and 200 for SGD (early stopping ends sooner).
    patience, eval_every, log_every : int
        Evaluate every ``eval_every`` steps, stop after ``patience`` evaluations without improvement,
        report progress every ``log_every`` steps.
    stop_on : {"rmse", "loss"}
        The criterion: validation RMSE (default) or the classic penalised validation loss. Without
        validation data the training values decide when to stop and the last factors are kept.
    tol : float
        Relative improvement below which an evaluation counts as no improvement.
    center : {"biases", "user", "none"}
        Baseline removed before factorising: damped global + user + item means (``bias_reg`` is their
        pseudo-count), each user's mean, or nothing.
    reg_weighting : {"count", "none"}
        Penalise each row ``λ·n_ratings‖x‖²`` (ALS-WR) or ``λ‖x‖²``.
    als_method : {"cg", "cholesky"}, cg_steps : int
        Per-row solve: ``cg_steps`` warm-started conjugate-gradient steps (fast, default; 2 steps gave the
        same MovieLens-100K test RMSE as 3 and as the exact solve), or the exact Cholesky solve.
    sgd_schedule : {"blocks", "serial"}
        ``blocks``: parallel, lock-free stratified SGD; ``serial``: the classic single-thread loop over one
        global shuffled order. Both are reproducible from ``seed``.
    dtype : {"float32", "float64"}
    seed : int
    n_threads : int or None
        Threads for the kernels (None: all cores).
    n_samples, burn_in : int or None
        ``bayes``: posterior samples averaged (default 100) after discarding ``burn_in`` (default 10).
    implicit : {"auto", "both", "user", "item", "none"}
        ``bayes``: implicit "who rated what" features on the user side, item side, both or none; ``auto``
        (default) means both where the ratings fill at most 10 % of users × items (where which items a user
        chose says something), none otherwise
        (:func:`latentatlas.ratings.bayes.auto_implicit`). Up to 2 M training ratings the sampler draws the implicit and feature vectors
        whole (block sweep), above that one coordinate at a time (as libFM/myFM), which keeps a sample at
        10 M ratings within a small multiple of an ALS iteration (RESULTS-bayes-implicit-speed.md).
    time_bias : bool
        ``bayes``: timeSVD++-style time-aware biases (an item bias per time bin and a per-user drift,
        :mod:`latentatlas.ratings.timebias`) sampled with the rest, when the training ratings have timestamps
        (without them it is a no-op, said in the progress lines). ``predict`` adds them for the pairs' times
        (a :class:`Ratings`' timestamps, or ``times=``); without times they add nothing.
    validation_fraction : float
        Share of the ratings that ``fit`` holds out for early stopping when no ``validation`` set is given
        (as scikit-learn's gradient boosting does); 0 trains for ``max_steps`` without stopping early.
        The held-out ratings are the ones ``prep.split(X, n, 0, seed=seed)`` would hold out, but neither
        part is copied (the solvers read the given ratings through their positions), so holding out costs
        a few MB rather than a second copy of the ratings.
    refit : bool
        After early stopping has chosen the number of steps, train again on training + validation ratings
        from the same starting factors for that many steps and keep that model (the validation ratings
        then only chose the step count; on MovieLens-100K this lowers test RMSE by about 0.004). After an
        inner hold-out the refit trains on the given ratings in their given order. Meanwhile the
        early-stopped factors (and, during early stopping, the best factors so far) wait in an anonymous
        temporary file when they exceed 16 MB (in memory otherwise, or when no file can be written), so
        the peak memory of a fit at the defaults is about that of one plain fit.
    progress : callable or None
        Called with one line of text per ``log_every`` steps; the lines also go to the ``latentatlas``
        logger at INFO level (silent unless logging is configured).

    Examples
    --------
    >>> import numpy as np
    >>> from latentatlas import LatentFactorModel
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.integers(0, 50, 2000), rng.integers(0, 40, 2000)])
    >>> y = rng.integers(1, 6, 2000).astype(float)
    >>> model = LatentFactorModel(k=4).fit(X, y)
    >>> model.predict([[3, 7]]).shape
    (1,)
    """

    def __init__(self, k: int | None = None, reg: float | None = None, solver: str = "als", *, init: str = "random",
                 init_scale: float | None = None, lr: float = 0.02, max_steps: int | None = None,
                 patience: int = 3, eval_every: int = 1, log_every: int = 1, stop_on: str = "rmse",
                 tol: float = 1e-4, center: str = "biases", bias_reg: float = 5.0,
                 reg_weighting: str = "count", als_method: str = "cg", cg_steps: int = 2,
                 sgd_schedule: str = "blocks", dtype: str = "float32", seed: int = 0,
                 n_threads: int | None = None, n_samples: int | None = None, burn_in: int | None = None,
                 implicit: str = "auto", validation_fraction: float = 0.1, refit: bool = True,
                 time_bias: bool = False, progress: Callable[[str], None] | None = None):
        self.k = k
        self.reg = reg
        self.solver = solver
        self.init = init
        self.init_scale = init_scale
        self.lr = lr
        self.max_steps = max_steps
        self.patience = patience
        self.eval_every = eval_every
        self.log_every = log_every
        self.stop_on = stop_on
        self.tol = tol
        self.center = center
        self.bias_reg = bias_reg
        self.reg_weighting = reg_weighting
        self.als_method = als_method
        self.cg_steps = cg_steps
        self.sgd_schedule = sgd_schedule
        self.dtype = dtype
        self.seed = seed
        self.n_threads = n_threads
        self.n_samples = n_samples
        self.burn_in = burn_in
        self.implicit = implicit
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.time_bias = time_bias
        self.progress = progress

    # Hyper-parameters stored in model files (all but the progress callback).
    _PARAMS = ("k", "reg", "solver", "init", "init_scale", "lr", "max_steps", "patience", "eval_every",
               "log_every", "stop_on", "tol", "center", "bias_reg", "reg_weighting", "als_method", "cg_steps",
               "sgd_schedule", "dtype", "seed", "n_threads", "n_samples", "burn_in", "implicit",
               "validation_fraction", "refit", "time_bias")

    def _validate(self) -> None:
        def integer(name, low, none_ok=False):
            checks.integer(name, getattr(self, name), low, none_ok=none_ok)

        def number(name, low, strict=False, none_ok=False):
            checks.number(name, getattr(self, name), low, strict=strict, none_ok=none_ok)

        def choice(name, options):
            checks.choice(name, getattr(self, name), options)

        integer("k", 1, none_ok=True)
        integer("n_samples", 1, none_ok=True)
        integer("burn_in", 0, none_ok=True)
        choice("implicit", IMPLICIT)
        number("reg", 0, none_ok=True)
        choice("solver", SOLVERS)
        choice("init", INITS)
        number("init_scale", 0, strict=True, none_ok=True)
        number("lr", 0, strict=True)
        integer("max_steps", 1, none_ok=True)
        integer("patience", 1)
        integer("eval_every", 1)
        integer("log_every", 1)
        choice("stop_on", STOP_ON)
        number("tol", 0)
        choice("center", CENTERS)
        number("bias_reg", 0)
        choice("reg_weighting", WEIGHTINGS)
        choice("als_method", ALS_METHODS)
        integer("cg_steps", 1)
        choice("sgd_schedule", SCHEDULES)
        choice("dtype", DTYPES)
        integer("seed", 0)
        integer("n_threads", 1, none_ok=True)
        checks.fraction("validation_fraction", self.validation_fraction)
        if not isinstance(self.refit, (bool, np.bool_)):
            raise LatentAtlasError(f"refit must be True or False, got {self.refit!r}")
        if not isinstance(self.time_bias, (bool, np.bool_)):
            raise LatentAtlasError(f"time_bias must be True or False, got {self.time_bias!r}")
        if self.progress is not None and self.progress is not False and not callable(self.progress):
            raise LatentAtlasError(f"progress must be callable, False or None, got {self.progress!r}")

    @property
    def reg_value(self) -> float:
        """λ in use: ``reg``, or the solver's default when it is None."""
        return float(self.reg) if self.reg is not None else DEFAULT_REG[self.solver]

    @property
    def k_value(self) -> int:
        """The number of factors in use: ``k``, or the solver's default when it is None (capped at the number
        of users and of items of the data it was fitted on)."""
        if self.k is not None:
            return int(self.k)
        if getattr(self, "k_", None) is not None:
            return int(self.k_)
        if self.solver == "bayes":
            from latentatlas.ratings.bayes import DEFAULT_K as BAYES_K

            return BAYES_K
        return DEFAULT_K[self.solver]

    @property
    def steps_limit(self) -> int:
        return self.max_steps if self.max_steps is not None else DEFAULT_MAX_STEPS[self.solver]

    # --- learned state, course names ---------------------------------------------------------------------
    @property
    def Q_(self) -> np.ndarray:
        """User factors, n_users × k (the course's Q in R ≈ Q·P; the same array as ``user_factors_``).
        After ``fit``, ``k_`` and ``reg_`` hold the number of factors and the λ actually used (``k_value`` and
        ``reg_value`` say what a fit would use before it runs)."""
        self._check_fitted()
        return self.user_factors_

    @property
    def P_(self) -> np.ndarray:
        """Item factors, k × n_items (the course's P in R ≈ Q·P: ``item_factors_`` transposed, which is
        n_items × k like every other per-item array)."""
        self._check_fitted()
        return self.item_factors_.T

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise not_fitted("LatentFactorModel")

    # --- scikit-learn's regressor protocol (RegressorMixin's, written out: see base.Estimator) ----------------
    def __sklearn_tags__(self):
        from sklearn.utils import RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        return tags

    def score(self, X, y, sample_weight=None) -> float:
        """R² of ``predict(X)`` against the ratings ``y`` (scikit-learn's regressor score)."""
        from sklearn.metrics import r2_score

        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))

    # --- training ----------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, validation=None, init_from: "LatentFactorModel | None" = None,
            implicit_extra=None, user_features=None, item_features=None, times=None) -> "LatentFactorModel":
        """Learn factors from ratings; early-stop on validation ratings.

        Parameters
        ----------
        X : Ratings, or array-like / DataFrame of shape (n, 2)
            The training ratings: a :class:`Ratings`, or (user id, item id) pairs of original ids (a
            DataFrame's first two columns, or those named like ``user``/``item``) with ``y``.
        y : array-like of shape (n,), optional
            The ratings of ``X``'s pairs (not with a :class:`Ratings`).
        validation : Ratings, or a tuple (X_val, y_val), optional
            Ratings to early-stop on (mapped onto the training ids; pairs of unseen users or items are
            dropped). Without it, ``validation_fraction`` of the training ratings are held out (seeded),
            and with ``refit`` the model is then trained again on all of them.
        init_from : LatentFactorModel, optional
            A fitted model over the same ids and ``k`` (e.g. one saved by an interrupted run) whose factors
            replace the initialisation, so training resumes where it stopped; the refit phase starts from
            them too.
        implicit_extra : array-like of shape (n, 2), optional
            ``bayes`` only: more (user id, item id) pairs used only as implicit "who rated what"
            information (e.g. the pairs you will predict, as Rendle et al. 2019 do). Never used unless given,
            so held-out scores stay honest by default.
        user_features, item_features : Features, DataFrame or path, optional
            ``bayes`` only: side attributes (:class:`~latentatlas.ratings.features.Features`; a DataFrame or
            a file goes through :func:`~latentatlas.ratings.features.as_features`), one row per id, entering
            the model as feature groups with their own hyper-priors (Bayesian factorisation machine). Ids
            with features but no training ratings become known users/items (cold start): appended to
            ``user_ids_``/``item_ids_`` with no seen items, predicted from their features.
        times : array-like of shape (n,), optional
            When each rating of ``X`` was given (seconds since the epoch, datetimes or ISO dates), for
            ``time_bias``; a :class:`Ratings` brings its own ``timestamps``. ``validation`` may then be a
            Ratings with timestamps or ``(X_val, y_val, times_val)``.

        Returns
        -------
        self

        On Ctrl-C the best factors so far are kept (``history_.interrupted`` is set; an interrupted refit
        goes back to the factors chosen by early stopping) and the KeyboardInterrupt is re-raised, so a
        caller can save them.

        Examples
        --------
        >>> from latentatlas import LatentFactorModel, prepare_ratings
        >>> data = prepare_ratings(builtin_size=5000)
        >>> model = LatentFactorModel(k=8).fit(data.split.train, validation=data.split.validation)
        >>> model.history_.best_step >= 1
        True
        """
        import numba

        from latentatlas.ratings.kernels import als

        als.prefer_workqueue()
        self._validate()
        if (user_features is not None or item_features is not None) and self.solver != "bayes":
            raise LatentAtlasError("user_features/item_features are for solver='bayes'")
        if isinstance(X, Ratings) and isinstance(y, Ratings) and validation is None:
            y, validation = None, y
        if times is not None:
            if isinstance(X, Ratings):
                raise LatentAtlasError("times: X is a Ratings, which carries its own timestamps")
            X = _timed_ratings(X, y, times, "X")
            y = None
        train = fit_inputs(X, y, None)[0]
        if self.solver == "bayes" and (user_features is not None or item_features is not None):
            from latentatlas.ratings import bayes

            user_features, item_features, train = bayes.with_feature_ids(train, user_features, item_features,
                                                                         as_progress(self.progress))
        validation, dropped = _validation_space(validation, train)
        self.n_features_in_ = 2  # (user id, item id)
        if validation is not None:
            if dropped:
                as_progress(self.progress)(f"{dropped:,} validation ratings of users or items without training "
                                           "ratings are not used")
        held_out = None  # with an inner hold-out: the sorted positions of the held-out ratings in ``train``
        if validation is None and self.validation_fraction > 0 and self.solver != "bayes":
            n_val = int(round(self.validation_fraction * len(train)))
            if 0 < n_val < len(train):
                held_out = _held_out_positions(len(train), n_val, self.seed)
        if validation is not None and len(validation) == 0:
            validation = None
        limit_k = min(train.n_users, train.n_items)
        self.k_ = None
        if self.k is None and self.k_value > limit_k:  # the default k, on data too small for it
            self.k_ = max(1, limit_k - 1)
            as_progress(self.progress)(f"k={self.k_} latent factors: the default is more than {train.n_users} users "
                                       f"and {train.n_items} items allow")
        if self.k_value > limit_k:
            raise LatentAtlasError(f"k={self.k_value} latent factors is more than the data allow: the training "
                                   f"ratings have {train.n_users} users and {train.n_items} items; use k <= {limit_k}")
        if self.init == "svd" and self.k_value >= limit_k:
            raise LatentAtlasError(f"init='svd' needs k < min(n_users, n_items) = {limit_k}, got k={self.k_value}")
        self.k_ = self.k_value
        if init_from is not None:
            init_from._check_fitted()
            if init_from.solver == "bayes" or self.solver == "bayes":
                raise LatentAtlasError("cannot resume a bayes fit or from one: sampling starts afresh")
            if init_from.k_value != self.k_value:
                raise LatentAtlasError(f"cannot resume: the model to resume from has k={init_from.k_value}, "
                                       f"not {self.k_value}")
            for what, mine, theirs in (("user", train.user_ids, init_from.user_ids_),
                                       ("item", train.item_ids, init_from.item_ids_)):
                if len(mine) != len(theirs) or not np.array_equal(mine.astype(str), theirs.astype(str)):
                    raise LatentAtlasError(f"cannot resume: the model to resume from has other {what} ids than "
                                           f"the training data ({len(theirs)} vs {len(mine)})")
        if implicit_extra is not None and self.solver != "bayes":
            raise LatentAtlasError("implicit_extra is for solver='bayes' only")
        if self.solver == "bayes":
            self._fit_bayes(train, validation, implicit_extra, user_features, item_features)
            return self
        self._init_from = init_from
        dt = np.dtype(self.dtype)
        previous_threads = numba.get_num_threads()
        numba.set_num_threads(min(self.n_threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS))
        try:
            self._fit(train, validation, dt, held_out=held_out)
            if self.refit and (validation is not None or held_out is not None):
                held_out = None  # the refit trains on the given ratings as they are: nothing to join
                self._refit(train, validation, dt)
        finally:
            numba.set_num_threads(previous_threads)
            self._init_from = None
        return self

    def _refit(self, train: Ratings, validation: Ratings | None, dt) -> None:
        """Train again on train + validation (``validation`` None: ``train`` holds them all already) for the
        chosen number of steps, from the same starting factors (the resumed ones, or the same seeded draw).
        Ctrl-C here keeps the early-stopped model."""
        first = self.history_
        if first.interrupted or not first.best_step:
            return
        kept = {name: getattr(self, name) for name in _STATE}
        # The early-stopped factors and seen items wait outside memory while the refit runs, which holds its
        # own of each (at 10 M ratings and k = 64 they are 90 MB).
        parked = _Parked().put({name: kept.pop(name) for name in _LARGE_STATE})
        for name in _LARGE_STATE:
            setattr(self, name, None)
        _release_free_memory()  # the first phase's layouts are gone: let the refit's reuse their pages
        both = train if validation is None else Ratings(
            np.concatenate([train.users, validation.users]), np.concatenate([train.items, validation.items]),
            np.concatenate([train.values, validation.values]), train.user_ids, train.item_ids, dict(train.meta))
        try:
            self._fit(both, None, dt, limit=first.best_step, early_stop=False, phase="refit step")
        except BaseException as exc:  # Ctrl-C, or an error: the early-stopped model stays
            for name, value in {**kept, **parked.get()}.items():
                setattr(self, name, value)
            first.interrupted = first.interrupted or isinstance(exc, KeyboardInterrupt)
            self.history_ = first
            raise
        finally:
            parked.close()
        first.refit_steps = first.best_step
        first.seconds += self.history_.seconds
        first.cpu_seconds += self.history_.cpu_seconds
        self.history_ = first

    def _fit(self, train: Ratings, validation: Ratings | None, dt: np.dtype, limit: int | None = None,
             early_stop: bool = True, phase: str = "step", held_out: np.ndarray | None = None) -> None:
        """One training run on ``train``; ``held_out``: sorted positions of ``train``'s ratings that are the
        validation ratings instead (no copies of either part are made: a mask of the rest reaches the kernels
        that build the layouts, and the held-out ones are scored where they are)."""
        from latentatlas.ratings.kernels import als

        if held_out is not None and (self.center == "user" or self.sgd_schedule == "serial" and self.solver == "sgd"):
            keep = _kept(len(train), held_out)  # these read the training arrays themselves: give them copies
            train, validation, held_out = train.take(keep), train.take(~keep), None
            del keep
        keep = None if held_out is None else _kept(len(train), held_out)
        rng = np.random.default_rng(self.seed)
        reg, weighted = self.reg_value, self.reg_weighting == "count"
        self.reg_ = reg
        self.user_ids_, self.item_ids_ = train.user_ids, train.item_ids
        self.scale_ = _rating_scale(train, keep)
        self.mu_, self.user_bias_, self.item_bias_ = self._fit_baseline(train, keep)
        n_users, n_items = train.shape
        user_counts, item_counts = als.masked_counts(train.users, n_users, keep), \
            als.masked_counts(train.items, n_items, keep)
        n_train = int(user_counts.sum())

        # residuals of every given rating (a mask's held-out ones too: 4 bytes each, less than a copy of the rest)
        resid = np.empty(len(train), dtype=dt)
        als.residuals(train.users, train.items, train.values, self.mu_, self.user_bias_, self.item_bias_, resid)
        solver = _solver_class(self.solver)(self, train, resid, dt, rng, keep)
        del resid, keep  # the solver keeps its own layout of them
        if validation is not None:
            v_users, v_items = validation.users, validation.items
            v_resid = (validation.values - self._baseline(v_users, v_items)).astype(dt)
        elif held_out is not None:  # the same values as a copied validation set's, in the same order
            v_resid = (train.values[held_out] - self._baseline(train.users[held_out], train.items[held_out])).astype(dt)
        n_validation = len(validation) if validation is not None else 0 if held_out is None else len(held_out)
        _release_free_memory()  # the residuals, codes and temporaries the layouts and v_resid were made from
        matrix = solver.matrix

        Q, P = self._initial_factors(matrix, dt, rng, train.shape)
        Q[user_counts == 0] = 0
        P[item_counts == 0] = 0
        self.user_factors_, self.item_factors_ = Q, P

        user_w = user_counts.astype(np.float64) if weighted else np.ones(n_users)
        item_w = item_counts.astype(np.float64) if weighted else np.ones(n_items)

        def evaluate():
            penalty = reg * (float(user_w @ als.row_sq_norms(Q)) + float(item_w @ als.row_sq_norms(P)))
            sse = solver.sse(Q, P)
            rec = {"train_loss": sse + penalty, "train_rmse": math.sqrt(sse / n_train)}
            if n_validation:
                if validation is not None:
                    vsse = als.triplet_sse(v_users, v_items, v_resid, Q, P, _CHUNKS)
                else:
                    vsse = als.indexed_sse(held_out, train.users, train.items, v_resid, Q, P, _CHUNKS)
                rec["validation_loss"] = vsse + penalty
                rec["validation_rmse"] = math.sqrt(vsse / n_validation)
            return rec

        report = as_progress(self.progress)
        with report.ticking("compiling the training kernels (once; cached afterwards)", delay=1.0):
            solver.warm_up(self, dt)
        hist = History()
        self.history_ = hist
        criterion_key = ("validation_" if n_validation else "train_") + self.stop_on
        hist.criterion = criterion_key
        best_value, bad = math.inf, 0
        # Without validation data there is nothing to select by: the last factors are kept. With it, the best
        # so far are set aside, in a temporary file when large (a second Q and P is 56 MB at 10 M ratings).
        keep_best = early_stop and n_validation > 0
        best = _Parked() if keep_best else None
        limit = limit or self.steps_limit
        last: dict = {}
        t = 0
        try:
            for t in range(1, limit + 1):
                start, cpu = time.perf_counter(), time.process_time()
                solver.step(t, Q, P, reg, weighted)
                hist.seconds.append(time.perf_counter() - start)
                hist.cpu_seconds.append(time.process_time() - cpu)
                if t % self.eval_every == 0 or (t == limit and not hist.steps):
                    last = evaluate()
                    if not math.isfinite(last["train_loss"]):
                        hint = f"; lower lr (now {self.lr:g})" if self.solver == "sgd" else ""
                        raise LatentAtlasError(f"training diverged at step {t} (loss is not finite){hint}")
                    hist.steps.append(t)
                    for name in ("train_loss", "validation_loss", "train_rmse", "validation_rmse"):
                        if name in last:
                            getattr(hist, name).append(float(last[name]))
                    value = last[criterion_key]
                    if value < best_value * (1 - self.tol) or not hist.best_step:
                        best_value, bad = value, 0
                        hist.best_step = t
                        if keep_best:
                            best.put({"Q": Q, "P": P})
                    else:
                        bad += 1
                if t % self.log_every == 0:
                    report(self._progress_line(phase, t, limit, last, hist))
                if early_stop and bad >= self.patience:
                    hist.converged_after = t - self.patience * self.eval_every
                    break
        except KeyboardInterrupt:
            hist.interrupted = True
            raise
        finally:
            hist.stopped_at = t
            if keep_best:
                if hist.steps:
                    best.get(into={"Q": Q, "P": P})
                best.close()
            hist.fallback_rows += solver.fallback_rows
            self.seen_indptr_, self.seen_items_ = solver.seen(
                train, None if held_out is None else lambda: _kept(len(train), held_out))

    def _fit_bayes(self, train: Ratings, validation: Ratings | None, implicit_extra, user_features=None,
                   item_features=None) -> None:
        from latentatlas.ratings import bayes

        bayes.fit_model(self, train, validation, implicit_extra, user_features, item_features)

    def _n_stored(self) -> int:
        return getattr(self, "bayes_", None).n_stored if getattr(self, "bayes_", None) is not None else 1

    @property
    def user_embeddings_(self) -> np.ndarray:
        """User factors (for ``bayes`` their posterior means): ``user_embeddings_ @ item_embeddings_.T`` is the
        factor part of the predicted ratings."""
        self._check_fitted()
        return self._embedding(True)

    @property
    def item_embeddings_(self) -> np.ndarray:
        """Item factors (for ``bayes`` their posterior means)."""
        self._check_fitted()
        return self._embedding(False)

    def _embedding(self, users: bool) -> np.ndarray:
        """One k-vector per user or item: the factors, or for ``bayes`` their posterior means."""
        fit = getattr(self, "bayes_", None)
        if fit is not None:
            return fit.user_factor_mean if users else fit.item_factor_mean
        return self.user_factors_ if users else self.item_factors_

    def _progress_line(self, phase, t, limit, last, hist) -> str:
        parts = [f"{self.solver} {phase} {t}/{limit}"]
        if last:
            parts.append(f"train rmse {last['train_rmse']:.4f}")
            if "validation_rmse" in last:
                parts.append(f"validation rmse {last['validation_rmse']:.4f}")
            parts.append(f"loss {last['train_loss']:.4g}")
        parts.append(f"{hist.seconds[-1] * 1000:.1f} ms/step")
        return "  ".join(parts)

    def _fit_baseline(self, train: Ratings, keep: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        from latentatlas.ratings import prep

        if self.center == "biases":  # prep.fit_biases' method, without its n-sized float64 temporaries
            from latentatlas.ratings.kernels import als

            mu, bu, bi = als.damped_biases(train.users, train.items, train.values, train.n_users, train.n_items,
                                           float(self.bias_reg), float(self.bias_reg), 10, keep)
            return float(mu), bu, bi
        if self.center == "user":  # (``_fit`` gives this one a copy rather than a mask)
            mu = float(train.values.mean())
            return mu, prep.user_means(train, fill=mu) - mu, np.zeros(train.n_items)
        return 0.0, np.zeros(train.n_users), np.zeros(train.n_items)

    def _baseline(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu_ + self.user_bias_[users] + self.item_bias_[items]

    def _initial_factors(self, matrix, dt, rng, shape):
        """Random factors for ``shape``, or the truncated SVD of ``matrix()`` (the centred training matrix),
        or the factors of the model to resume from."""
        source = getattr(self, "_init_from", None)
        if source is not None:
            return (np.array(source.user_factors_, dtype=dt, order="C"),
                    np.array(source.item_factors_, dtype=dt, order="C"))
        if self.init == "random":
            n_users, n_items = shape
            scale = self.init_scale if self.init_scale is not None else 1 / math.sqrt(self.k_value)
            Q = rng.random((n_users, self.k_value), dtype=dt)  # drawn in dt: no float64 copy of a large Q
            P = rng.random((n_items, self.k_value), dtype=dt)
            Q *= dt.type(scale)
            P *= dt.type(scale)
            return Q, P
        from scipy.sparse.linalg import svds

        try:
            u, s, vt = svds(matrix(), k=self.k_value, random_state=int(self.seed))
        except Exception as exc:  # ARPACK convergence problems are input problems here
            raise LatentAtlasError(f"init='svd' failed ({exc}); use init='random' or a smaller k") from None
        order = np.argsort(s)[::-1]
        u, s, vt = u[:, order], s[order], vt[order]
        Q = np.ascontiguousarray(u * s[None, :], dtype=dt)  # U·diag(σ): scale columns, not u.dot(s)
        P = np.ascontiguousarray(vt.T, dtype=dt)
        return Q, P

    # --- prediction (original ids) ----------------------------------------------------------------------
    def predict(self, X, *, clip: bool = True, return_std: bool = False, times=None):
        """Predicted ratings for (user id, item id) pairs of original ids.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, 2), or a :class:`Ratings`
            Pairs of original ids. Unknown ids are predicted from the known part of the baseline
            (μ + b_i for a new user, μ + b_u for a new item, μ for both).
        clip : bool
            Clip to the rating scale seen in training (default), as predictions shown to people should be.
        return_std : bool
            ``bayes`` only: also return the predictive standard deviation of each rating (posterior spread
            plus noise; about 68 % of ratings fall within one of it). NaN for pairs with an unknown id.
        times : array-like of shape (n,), optional
            When each pair is rated, for a model with time biases (``time_bias=True``); a :class:`Ratings`
            brings its own timestamps. Without times the time terms add nothing.

        Returns
        -------
        ndarray of shape (n,), and with ``return_std`` a second one

        Examples
        --------
        >>> model.predict([[196, 242], [186, 302]])            # doctest: +SKIP
        array([3.87, 4.12])
        """
        self._check_fitted()
        if times is None and isinstance(X, Ratings):
            times = X.timestamps
        users, items = _pairs(X)
        u = map_ids(self.user_ids_, users)
        i = map_ids(self.item_ids_, items)
        if times is not None:
            times = _times_of(times, len(u))
        pred = self._predict_mapped(u, i, clip, times)
        if not return_std:
            return pred
        fit = getattr(self, "bayes_", None)
        if fit is None:
            raise LatentAtlasError(f"return_std needs solver='bayes' (this model was trained with {self.solver!r})")
        std = np.full(len(u), np.nan)
        known = (u >= 0) & (i >= 0)
        std[known] = fit.predict_std(u[known], i[known])
        return pred, std

    def _predict_mapped(self, u: np.ndarray, i: np.ndarray, clip: bool, times=None) -> np.ndarray:
        from latentatlas.ratings.kernels import als

        known = (u >= 0) & (i >= 0)
        pred = np.empty(len(u))
        uk, ik = u[known], i[known]
        if len(uk) <= SERIAL_PAIRS:  # a thread pool costs more than it saves (and waits on a busy machine)
            out = np.einsum("ij,ij->i", self.user_factors_[uk].astype(np.float64),
                            self.item_factors_[ik].astype(np.float64))
        else:
            out = np.empty(len(uk), dtype=self.user_factors_.dtype)
            als.triplet_predict(uk, ik, self.user_factors_, self.item_factors_, out)
        pred[known] = out.astype(np.float64) + self._baseline(uk, ik)
        fit = getattr(self, "bayes_", None)
        if times is not None and fit is not None and fit.time_biases is not None:
            pred[known] += fit.time_biases.predict(uk, ik, times[known])
        cold = ~known
        bu = np.where(u[cold] >= 0, self.user_bias_[np.maximum(u[cold], 0)], 0.0)
        bi = np.where(i[cold] >= 0, self.item_bias_[np.maximum(i[cold], 0)], 0.0)
        pred[cold] = self.mu_ + bu + bi
        return np.clip(pred, *self.scale_) if clip else pred

    def predict_indices(self, users, items, clip: bool = True, times=None) -> np.ndarray:
        """:meth:`predict` for internal index arrays (``user_ids_[users]``, ``item_ids_[items]``)."""
        self._check_fitted()
        users = _index_array(users, self.n_users_, "users")
        items = _index_array(items, self.n_items_, "items")
        if users.shape != items.shape:
            raise LatentAtlasError(f"users and items must have the same length, got {len(users)} and {len(items)}")
        return self._predict_mapped(users, items, clip, None if times is None else _times_of(times, len(users)))

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        """Unclipped predicted ratings of every item for the users at index ``rows``."""
        P = self.item_factors_
        return self.mu_ + self.user_bias_[rows, None] + self.item_bias_[None, :] + \
            (self.user_factors_[rows] @ P.T).astype(np.float64)

    def _score_folded(self, user: FoldedUser) -> np.ndarray:
        return self.mu_ + user.bias + self.item_bias_ + (self.item_factors_ @ user.factors).astype(np.float64)

    def recommend(self, user, n: int = 10, *, exclude_seen: bool = True, items=None,
                  clip: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items with the highest predicted rating for one user, best first.

        This ranks by predicted rating, which answers "what would this user rate highest?"; for the list a
        user should see first, use a ranking model or :class:`~latentatlas.ratings.recommender.Recommender`.

        Parameters
        ----------
        user : original user id (or unique name), or a :class:`FoldedUser` from :meth:`fold_in`
        n : int
        exclude_seen : bool
            Drop the items the user rated in training.
        items : array-like of item ids, optional
            Rank only these candidates (unknown ids are ignored).
        clip : bool
            Clip the scores to the rating scale (ties at the top keep the unclipped order).

        Returns
        -------
        (item ids, predicted ratings)

        Examples
        --------
        >>> ids, scores = model.recommend(196, n=5)             # doctest: +SKIP
        """
        ids, vals = super().recommend(user, n, exclude_seen=exclude_seen, items=items)
        return ids, (np.clip(vals, *self.scale_) if clip else vals)

    def recommend_indices(self, user: int, n: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` with a user index in and item indices out (unclipped scores)."""
        self._check_fitted()
        u = index_array([user], self.n_users_, "user")
        top, vals = self.top_indices(u, n, exclude_seen=exclude_seen)
        keep = np.isfinite(vals[0])
        return top[0][keep], vals[0][keep]

    def recommend_batch(self, users, n: int = 10, *, exclude_seen: bool = True, clip: bool = True,
                        batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items by predicted rating for many users at once (one matrix product per batch).

        Returns ``(item ids, scores)``, both of shape (len(users), n), best first; rows of users with
        fewer than ``n`` unseen items end in score NaN (their id slots repeat the row's last real item,
        never a seen one). Unknown user ids raise.

        Examples
        --------
        >>> ids, scores = model.recommend_batch(model.user_ids_, n=10)     # doctest: +SKIP
        """
        ids, vals = super().recommend_batch(users, n, exclude_seen=exclude_seen, batch_size=batch_size)
        return ids, (np.clip(vals, *self.scale_) if clip else vals)

    def fold_in(self, items, ratings) -> FoldedUser:
        """A new user's bias and factors from their ratings of known items, with the items fixed.

        Parameters
        ----------
        items : array-like of original item ids or unique names (ids the model does not know are ignored)
        ratings : array-like of the same length, on the training scale

        Returns
        -------
        FoldedUser, which :meth:`recommend` accepts in place of a user id.

        The bias is the damped mean residual (as in training), the factors the ridge solution with the
        training penalty — exactly one ALS user half-step for this row.

        Examples
        --------
        >>> new_user = model.fold_in([50, 172, 133], [5, 5, 1])   # doctest: +SKIP
        >>> model.recommend(new_user, n=5)                        # doctest: +SKIP
        """
        if ratings is None:
            raise LatentAtlasError("fold_in needs the ratings of the items (a rating model predicts ratings)")
        return super().fold_in(items, ratings)

    def _fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldedUser:
        return self.fold_in_indices(items, values)

    def fold_in_indices(self, items, values) -> FoldedUser:
        """:meth:`fold_in` with item indices."""
        self._check_fitted()
        items = _index_array(items, self.n_items_, "items")
        values = np.asarray(values, dtype=np.float64)
        if values.shape != items.shape:
            raise LatentAtlasError(f"items and values must have the same length, got {len(items)} and {len(values)}")
        n = len(items)
        if getattr(self, "bayes_", None) is not None:
            bias, factors = self.bayes_.fold_in(items, values)
            return FoldedUser(factors, bias, items)
        resid = values - self.mu_ - self.item_bias_[items]
        if self.center == "biases":
            bias = float(resid.sum() / (n + self.bias_reg)) if n else 0.0
        elif self.center == "user":
            bias = float(resid.mean()) if n else 0.0
        else:
            bias = 0.0
        resid = resid - bias
        q = np.zeros(self.k_value)
        if n:
            Y = self.item_factors_[items].astype(np.float64)
            lam = self.reg_ * (n if self.reg_weighting == "count" else 1)
            A = Y.T @ Y + lam * np.eye(self.k_value)
            q = np.linalg.lstsq(A, Y.T @ resid, rcond=None)[0]
        return FoldedUser(q.astype(self.user_factors_.dtype), bias, items)

    # --- persistence -------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model as ``.npz`` (arrays) with a JSON ``meta`` entry; loads without pickle."""
        self._check_fitted()
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "params": self._json_params(), "k_used": self.k_value,
                "mu": self.mu_, "scale": list(self.scale_), "reg_used": self.reg_,
                "history": self.history_.to_dict()}
        names = {}
        for what in ("item", "user"):
            if getattr(self, f"{what}_names_", None) is not None:
                names.update(getattr(self, f"{what}_names_").to_arrays(prefix=f"{what}_names_"))
        fit = getattr(self, "bayes_", None)
        if fit is not None:  # what predict_std and fold_in need besides the averaged factors
            meta["bayes"], state = fit.to_file()
            names.update({f"bayes_{name}": value for name, value in state.items()})
        return save_npz(path, **{name: getattr(self, f"{name}_") for name in _ARRAYS}, **names,
                        meta=np.array(to_json(meta, indent=None)))

    def _json_params(self) -> dict:
        return {name: getattr(self, name) for name in self._PARAMS}

    @classmethod
    def load(cls, path: str | Path) -> "LatentFactorModel":
        """Read a model written by :meth:`save`. Anything else — another file, a newer format, a truncated or
        crafted file — gives a one-line :class:`LatentAtlasError` naming the file.

        Examples
        --------
        >>> model = LatentFactorModel.load("model/model.npz")    # doctest: +SKIP
        """
        path = Path(path)
        if path.is_dir():
            path = path / "model.npz" if (path / "model.npz").is_file() else path
        meta, stored, names = read_model_file(path, (FORMAT,))
        check_version(path, meta, FORMAT_VERSION)
        arrays = {name: stored[name] for name in _ARRAYS if name in stored}
        bayes_arrays = {name[6:]: value for name, value in stored.items() if name.startswith("bayes_")}
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise LatentAtlasError(f"{path}: model file lacks the arrays {', '.join(missing)}")
        params = meta.get("params")
        if not isinstance(params, dict):
            raise LatentAtlasError(f"{path}: model file has no hyper-parameters")
        known = {k: v for k, v in params.items() if k in cls._PARAMS}
        model = cls(**known)
        try:
            model._validate()
        except LatentAtlasError as exc:
            raise LatentAtlasError(f"{path}: bad hyper-parameters in model file ({exc})") from None
        if model.k is None and isinstance(meta.get("k_used"), int) and meta["k_used"] >= 1:
            model.k_ = meta["k_used"]
        model.k_ = model.k_value
        for name, value in arrays.items():
            setattr(model, f"{name}_", value)
        model.item_names_, model.user_names_ = names["item"], names["user"]
        try:
            model.mu_ = float(meta["mu"])
            model.scale_ = tuple(float(x) for x in meta["scale"])
            model.reg_ = None if model.solver == "bayes" else float(meta.get("reg_used", model.reg_value))
            model.history_ = History.from_dict(meta.get("history") or {})
            if model.solver == "bayes":
                model._load_bayes(meta["bayes"], bayes_arrays)
        except (KeyError, TypeError, ValueError):
            raise LatentAtlasError(f"{path}: model file metadata is incomplete (mu, scale, the sampler's state)") from None
        problem = model._shape_problem()
        if problem:
            raise LatentAtlasError(f"{path}: inconsistent model file: {problem}")
        return model

    def _load_bayes(self, scalars: dict, arrays: dict) -> None:
        from latentatlas.ratings import bayes

        bayes.restore_model(self, scalars, arrays)

    def _shape_problem(self) -> str | None:
        """Why the fitted arrays do not fit together, or None."""
        fit = getattr(self, "bayes_", None)
        nu, ni, k = len(self.user_ids_), len(self.item_ids_), self.k_value if fit is None else fit.width
        checks = [
            (self.user_factors_.shape == (nu, k), f"user_factors has shape {self.user_factors_.shape}, not ({nu}, {k})"),
            (self.item_factors_.shape == (ni, k), f"item_factors has shape {self.item_factors_.shape}, not ({ni}, {k})"),
            (self.user_factors_.dtype.kind == "f" and self.item_factors_.dtype.kind == "f", "factors are not floats"),
            (self.user_bias_.shape == (nu,) and self.item_bias_.shape == (ni,), "bias lengths do not match the ids"),
            (self.seen_indptr_.shape == (nu + 1,), "seen_indptr length does not match the users"),
            (self.user_ids_.ndim == 1 and self.item_ids_.ndim == 1, "ids are not 1-D"),
            (len(self.scale_) == 2 and self.scale_[0] <= self.scale_[1], "bad rating scale"),
            (len(np.unique(self.user_ids_)) == nu, "repeated user ids"),
            (len(np.unique(self.item_ids_)) == ni, "repeated item ids"),
        ]
        for ok, message in checks:
            if not ok:
                return message
        ip, seen = self.seen_indptr_, self.seen_items_
        if ip.dtype.kind not in "iu" or seen.dtype.kind not in "iu" or ip[0] != 0 or ip[-1] != len(seen) \
                or (np.diff(ip) < 0).any() or (len(seen) and (seen.min() < 0 or seen.max() >= ni)):
            return "seen items are out of range"
        if not (np.isfinite(self.user_factors_).all() and np.isfinite(self.item_factors_).all()):
            return "factors contain NaN or infinity"
        return None


def _times_of(times, n: int) -> np.ndarray:
    from latentatlas.ratings.data import _seconds

    times = _seconds(np.asarray(times).reshape(-1), "times")
    if len(times) != n:
        raise LatentAtlasError(f"times must have one entry per pair, got {len(times)} for {n} pairs")
    return times


def _timed_ratings(X, y, times, name: str) -> Ratings:
    """Ratings of id pairs ``X``, ratings ``y`` and their ``times`` (kept aligned through duplicate handling)."""
    if y is None:
        raise LatentAtlasError(f"{name}: times go with (pairs, ratings); y is None")
    users, items = pairs(X)
    try:
        values = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise LatentAtlasError("y must hold numbers (ratings)") from None
    if len(values) != len(users):
        raise LatentAtlasError(f"{name} has {len(users)} pairs but y has {len(values)} ratings")
    return Ratings.from_arrays(users, items, values, timestamps=times)


def _validation_space(validation, train: Ratings) -> tuple[Ratings | None, int]:
    """Validation ratings (a Ratings, ``(X, y)`` or ``(X, y, times)``) mapped onto the training ids, their
    timestamps kept; pairs of users or items without a training row are dropped (and counted)."""
    if validation is None:
        return None, 0
    if isinstance(validation, tuple) and len(validation) == 3:
        validation = _timed_ratings(validation[0], validation[1], validation[2], "validation")
    validation = as_ratings(*(validation if isinstance(validation, tuple) else (validation,)), name="validation")
    check_ratings(validation, "validation")
    if same_ids(validation.user_ids, train.user_ids) and same_ids(validation.item_ids, train.item_ids):
        return validation, 0
    u = map_ids(train.user_ids, validation.user_ids)[validation.users]
    i = map_ids(train.item_ids, validation.item_ids)[validation.items]
    known = (u >= 0) & (i >= 0)
    times = None if validation.timestamps is None else validation.timestamps[known]
    return Ratings(u[known], i[known], validation.values[known], train.user_ids, train.item_ids,
                   dict(validation.meta), times), int((~known).sum())


def _held_out_positions(n: int, n_held_out: int, seed: int) -> np.ndarray:
    """Sorted positions of the ``n_held_out`` of ``n`` ratings to hold out: those that
    ``prep.split(ratings, n_held_out, 0, seed=seed)`` puts in its validation part, without copying either
    part (int32 where it fits: 4 MB for 1 M positions)."""
    perm = np.random.default_rng(seed).permutation(n)  # prep.split's draw, so the same ratings are held out
    held_out = np.sort(perm[:n_held_out])
    del perm
    return held_out.astype(np.int32) if n <= np.iinfo(np.int32).max else held_out


def _kept(n: int, held_out: np.ndarray) -> np.ndarray:
    """The bool mask of the ratings that are not held out."""
    keep = np.ones(n, dtype=bool)
    keep[held_out] = False
    return keep


class _Parked:
    """Arrays set aside to be restored later (the best factors so far; the early-stopped model during the
    refit): copies in memory up to ``PARK_IN_MEMORY_MAX`` bytes, above it the raw bytes in an anonymous
    temporary file (deleted when closed), so the process does not hold a second set of factors (issue 16).
    They come back bit for bit either way; ``get(into=...)`` reads them into arrays of the same shape and
    type without another copy."""

    def __init__(self):
        self._arrays: dict | None = None
        self._file = None
        self._layout: list = []  # (name, shape, dtype) in file order

    def put(self, arrays: dict) -> "_Parked":
        arrays = {name: a for name, a in arrays.items() if a is not None}
        if sum(a.nbytes for a in arrays.values()) > PARK_IN_MEMORY_MAX and self._arrays is None:
            try:
                return self._write(arrays)
            except OSError:  # no writable temporary directory, or it is full: memory then, as before
                self.close()
        old = self._arrays or {}
        self._arrays = {name: _copy_into(old.get(name), a) for name, a in arrays.items()}
        return self

    def _write(self, arrays: dict) -> "_Parked":
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="latentatlas-", buffering=0)
        self._file.seek(0)
        self._layout = []
        for name, a in arrays.items():
            view = memoryview(np.ascontiguousarray(a)).cast("B")
            done = 0
            while done < len(view):
                done += self._file.write(view[done:])
            self._layout.append((name, a.shape, a.dtype))
        self._file.truncate()
        return self

    def get(self, into: dict | None = None) -> dict:
        into = into or {}
        if self._arrays is not None:
            return {name: _copy_into(into.get(name), a) for name, a in self._arrays.items()}
        if self._file is None:
            return {}
        self._file.seek(0)
        out = {}
        for name, shape, dtype in self._layout:
            target = into.get(name)
            if target is None or target.shape != shape or target.dtype != dtype or not target.flags.c_contiguous:
                target = np.empty(shape, dtype=dtype)
            view = memoryview(target).cast("B")
            done = 0
            while done < len(view):
                got = self._file.readinto(view[done:])
                if not got:
                    raise OSError("the temporary file of parked arrays is shorter than written")
                done += got
            out[name] = target
        return out

    def close(self) -> None:
        self._arrays = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _copy_into(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    if old is not None and old.shape == new.shape and old.dtype == new.dtype:
        old[...] = new
        return old
    return np.array(new, copy=True)


def _release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    Arrays below glibc's mmap threshold (which grows up to 32 MB as large arrays are freed) live on the heap,
    and what they leave when freed stays in the process's resident memory: at 10 M ratings about 70 MB of
    the first phase's layouts were still counted during the refit. Nothing that is in use moves."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def _solver_class(solver: str):
    """The ALS or SGD solver (:mod:`latentatlas.ratings.als`, :mod:`latentatlas.ratings.sgd`)."""
    if solver == "als":
        from latentatlas.ratings.als import ALSSolver

        return ALSSolver
    from latentatlas.ratings.sgd import SGDSolver

    return SGDSolver


# --- helpers (shared with every recommender; the old private names stay for callers) ----------------------
_same_ids = same_ids
_check_ratings = check_ratings
_rating_scale = rating_scale
_positive_int = positive_int
_top_n = top_n
_pairs = pairs
_id_column = id_column
_as_ratings = as_ratings
_to_space = to_space
_index_array = index_array
