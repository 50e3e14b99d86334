"""Bayesian matrix factorisation by Gibbs sampling (BPMF with implicit feedback), as pure array functions.

The model (Salakhutdinov & Mnih 2008, with the per-dimension hyper-priors of libFM/myFM, and the
"SVD++ flipped" implicit features of Rendle et al. 2019)::

    r_ui = μ + b̃_u + b̃_i + q̃_u·p̃_i + ε,          ε ~ N(0, 1/(α·τ_u·κ_i))
    [b̃_u, q̃_u] = [b_u, q_u] + |N(u)|^-½ Σ_{j∈N(u)} [w_j, y_j]        (user side, implicit "user" part)
    [b̃_i, p̃_i] = [b_i, p_i] + |N(i)|^-½ Σ_{v∈N(i)} [w'_v, z_v]       (item side, implicit "item" part)

``N(u)`` is the set of items user ``u`` rated in training (plus ``implicit_extra`` pairs when given),
``N(i)`` the users who rated item ``i``. Each group (user vectors ``[b_u, q_u]``, item vectors, ``[w, y]``,
``[w', z]``) has, per dimension, a Normal prior whose mean and precision are sampled under a Normal-Gamma
hyper-prior (α₀ = β₀ = 1, μ₀ = 0, γ₀ = 1, as libFM); α gets a Gamma(1, 1) prior, μ a flat one. Nothing is
tuned: the precisions that play the role of λ in ALS are sampled. ``noise="global"`` (default) fixes
τ_u = κ_i = 1; ``"user"``, ``"item"``, ``"both"`` sample per-user/per-item precision factors with Gamma(ν/2, ν/2)
priors (``noise_dof`` = ν; Student-t noise per user/item, as "robust BPMF"). On MovieLens-100K validation data
they did not help (RESULTS-bayes.md), so they are off by default; they do make ``predict_std`` per user/item.

Side features (Bayesian factorisation machine, as libFM/myFM use them): the implicit sums generalise to
``[b̃_u, q̃_u] = [b_u, q_u] + Σ_f F_u[u, f]·[w_f, y_f]`` where ``F_u`` holds the implicit columns (value
|N(u)|^-½ for each rated item) *and* user attribute columns (one-hot categories, 1/count for multi-valued fields,
standardised numbers; :class:`latentatlas.ratings.features.Features`), each column in a group (one source field)
whose vectors share a per-dimension Normal prior with its own Normal-Gamma hyper-prior; the same on the item
side. Column 0 of a feature vector is the factorisation machine's linear term, the rest its embedding. A user or
item known only by its attributes (no ratings) is a row without ratings: its vector is the feature part plus a
draw from its group's prior, so the posterior mean predicts it from its features (cold start), with the prior's
spread in ``predict_std``.

Time (``time_bias=True``): timeSVD++-style item-bin biases and user drift (:mod:`latentatlas.ratings.timebias`)
are one more Gibbs block: the targets of the other blocks are the ratings net of the current time offsets, and
after the item step the time block is drawn from the residuals of everything else.

One Gibbs sample = hyper-parameters, then all user rows in parallel (a ridge solve plus a Cholesky-scaled
normal draw, :mod:`latentatlas.ratings.kernels.bayes`), the ``[w, y]`` vectors one item after another, all
item rows, the ``[w', z]`` vectors, then μ, the τ/κ factors and α. Implicit features cost a sequential sweep
(O(K²) per training pair) on top of the parallel row steps. ``sweep="coordinate"`` instead draws one coordinate
of every vector at a time from its scalar conditional (libFM/myFM's order: O(K) per rating and per feature
non-zero, no K×K Gram matrices); LatentFactorModel uses it above 2 M training ratings. It keeps one residual per
rating, carried from the user side to the item side and on to the next sample (recomputed every 16 samples), so
μ, the τ/κ factors and α take their sums from it in O(1) per rating.

Posterior mean. Predictions average the per-sample predictions: ``μ̄ + b̄_u + b̄_i`` (running means over
all kept samples) plus the average of ``q̃_u·p̃_i`` over the stored samples. The stored samples' factors are
kept side by side (float32, at most :data:`STORE_BYTES` = 256 MiB, evenly thinned when the kept samples do not
fit: at 10 M ratings with ~80 k users and items and k = 32 that is about 25 samples), and exposed as factor
matrices of width ``n_stored·k`` scaled by 1/√n_stored, so prediction stays ``μ + b_u + b_i + q_u·p_i``.
The cheaper product of posterior-mean factors ``q̄_u·p̄_i`` (O((n_users + n_items)·k), kept as
``user_factor_mean``/``item_factor_mean``) lost 0.0006–0.0025 validation RMSE on MovieLens-100K at 50 samples
with burn-in 5–10 (samples early in the chain differ by more than a rotation; history field
``validation_rmse_factor_mean`` vs ``validation_rmse``; RESULTS-bayes.md). ``validation_rmse`` is the RMSE of
exactly the prediction the fit returns.

Model files keep the compact form (:meth:`BayesFit.compact`, which ``LatentFactorModel(solver="bayes")`` applies
after sampling): the posterior means, their variances and a rank-k correction of the sample average, k + k
columns per row instead of ``n_stored·k``; ``predict_std`` is unchanged by it (up to float32 rounding) and
``predict`` moves by about the Monte Carlo noise of the average (benchmarks/RESULTS-model-size.md). Files
written with every stored sample still load, in that form.

Predictive standard deviation (``BayesFit.predict_std``): the variance of the prediction under the
posterior, with the two sides and the dimensions treated as independent,
``Var b̃_u + Var b̃_i + Σ_f (q̄²·Var p̃ + p̄²·Var q̃ + Var q̃·Var p̃)``, plus the noise variance
E[1/α]·E[1/τ_u]·E[1/κ_i]; it is a standard deviation for the *rating*, so about 68 % of held-out ratings fall
within one of it when the noise is Gaussian (tested on synthetic data; on MovieLens' integer ratings about
73 %, i.e. slightly conservative).

Ctrl-C: a ``KeyboardInterrupt`` during sampling finalises the averages from the kept samples so far (or the
current sample when none was kept yet) and raises :class:`GibbsInterrupted` (a ``KeyboardInterrupt``) whose
``fit`` attribute holds that :class:`BayesFit` with ``interrupted=True``. Callers that do nothing still stop
as on any Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.kernels import bayes as kb
from latentatlas.ratings.kernels.als import compressed

_CHUNKS = 64  # row chunks of the parallel kernels; fixed, so sums do not depend on the number of threads
IMPLICIT = ("none", "user", "item", "both")

# defaults, chosen on the validation parts of eight scenarios of four real data sets (MovieLens-100K random,
# time-ordered and 30 % subsample; InstEval and its 30 %; bfi and its 30 %; Book-Crossing): one setting for all,
# benchmarks/tune_rating_defaults.py, benchmarks/RESULTS-rating-defaults.md
DEFAULT_K = 24
DEFAULT_SAMPLES = 100  # beat 50 on 7 of 8 scenarios
DEFAULT_BURN_IN = 10
DEFAULT_IMPLICIT = "both"
DEFAULT_NOISE = "both"  # per-user and per-item precisions: ML-100K 0.8715 vs 0.8796, Book-Crossing 1.624 vs 1.645
DEFAULT_NOISE_DOF = 4.0
#: implicit="auto": "which items a user rated" features are used where that choice says something: the training
#: ratings fill at most this share of (rated users × rated items). They gained 0.005-0.03 RMSE on MovieLens and
#: InstEval and lost on bfi (99 % dense) and its 30 % subsample (RESULTS-rating-defaults.md).
IMPLICIT_AUTO_MAX_DENSITY = 0.10
STORE_BYTES = 256 * 2**20  # cap on the stored samples' factors (float32) that predictions average over
NOISE = ("global", "user", "item", "both")
SWEEPS = ("block", "coordinate")
#: sweep="coordinate", implicit columns alone (no attributes on that side): how the implicit vectors are drawn.
#: "own": coordinate by coordinate given the rows' own vectors, between the rows' coordinates (libFM's
#: parametrisation); "effective": each vector whole given the rows' effective vectors, after the rows
#: (kernels.bayes.sweep_implicit_given_effective; 35 % cheaper per sample at 10 M ratings, k = 64, but it mixes
#: more slowly per sample where rows have many ratings: validation RMSE 0.0023 worse on MovieLens-100K and on
#: InstEval at 100 samples, 0.004 better on the very sparse Book-Crossing); "alternate": "effective" on even
#: samples, "own" on odd ones. All exact (RESULTS-bayes-implicit-speed.md). Not public: kept for the benchmark.
_IMPLICIT_UPDATE = "own"


def _implicit_update(sample: int) -> str:
    if _IMPLICIT_UPDATE == "alternate":
        return "own" if sample % 2 else "effective"
    return _IMPLICIT_UPDATE


#: the coordinate sweep keeps the feature sums by adding changes; every this many samples they are recomputed
_REFRESH = 16


@dataclass
class BayesFit:
    """What prediction needs, from the posterior averaged over the kept samples.

    ``prediction = mu + user_bias[u] + item_bias[i] + user_factors[u]·item_factors[i]``, the implicit
    parts already folded into the effective vectors. The biases are posterior means over all kept samples;
    ``user_factors``/``item_factors`` (float32, n × (n_stored·k)) are the ``n_stored`` stored samples' factors
    side by side, scaled by 1/√n_stored, so that the dot product is the average of the per-sample products
    (the posterior mean of q̃_u·p̃_i, not the product of posterior means). ``user_factor_mean``/
    ``item_factor_mean`` (n × k) are the posterior means of the factors (embeddings for plots, and the std).
    ``user_var``/``item_var`` (n × (k+1)) hold the posterior variances of the effective bias (column 0) and of
    each factor dimension; ``noise_variance`` is E[1/α].
    ``implicit_user`` (n_items × (k+1), ``[w_j, y_j]``) is what a new user's rated items add to their vector
    (``fold_in``); None without user-side implicit features. ``user_prior_mean``/``user_prior_precision``
    (k+1) are the averaged hyper-parameters of the raw user vectors ``[b_u, q_u]``. ``user_noise``/``item_noise``
    are E[1/τ_u] and E[1/κ_i] (all ones with ``noise="global"``): the noise variance of pair (u, i) is
    ``noise_variance·user_noise[u]·item_noise[i]``.
    ``user_feature_weights``/``item_feature_weights`` (n_columns × (k+1), posterior means; None without side
    features): what each attribute column adds to the ``[bias, factors]`` vector of a user/item that has it
    (value 1), the factorisation machine's linear term in column 0 and its embedding in the rest.
    ``user_feature_columns``/``user_feature_groups`` (and the item ones): each weight row's column name and
    group name, when the model knows them (LatentFactorModel fills them from the Features).
    ``time_biases``: the posterior mean of the time-aware bias terms
    (:class:`latentatlas.ratings.timebias.TimeBiases`), None without them; :meth:`predict` adds them for
    the pairs' times.
    ``history``: lists per sample (burn-in included): ``sample``, ``kept``, ``train_rmse`` (of that
    sample's parameters), ``validation_rmse`` (of the running posterior mean; of the current sample during
    burn-in; NaN without validation data), ``alpha``, ``seconds`` (cumulative).
    """

    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    n_stored: int
    user_factor_mean: np.ndarray
    item_factor_mean: np.ndarray
    user_var: np.ndarray
    item_var: np.ndarray
    noise_precision: float
    noise_variance: float
    user_prior_mean: np.ndarray
    user_prior_precision: np.ndarray
    implicit_user: np.ndarray | None
    user_noise: np.ndarray
    item_noise: np.ndarray
    k: int
    implicit: str
    noise: str
    n_kept: int
    burn_in: int
    seed: int
    history: dict = field(default_factory=dict)
    interrupted: bool = False
    form: str = "samples"
    rank: int = 0
    user_feature_weights: np.ndarray | None = None
    item_feature_weights: np.ndarray | None = None
    time_biases: object | None = None
    user_feature_columns: tuple = ()
    item_feature_columns: tuple = ()
    user_feature_groups: tuple = ()
    item_feature_groups: tuple = ()

    @property
    def width(self) -> int:
        """Columns of ``user_factors``/``item_factors``: ``n_stored·k`` (samples side by side) or ``k + rank``
        (compact: posterior means, then the low-rank correction)."""
        return self.k + self.rank if self.form == "compact" else self.k * self.n_stored

    @property
    def n_users(self) -> int:
        return len(self.user_bias)

    @property
    def n_items(self) -> int:
        return len(self.item_bias)

    def _effective(self, mean: bool = False):
        Uf, Vf = (self.user_factor_mean, self.item_factor_mean) if mean else (self.user_factors, self.item_factors)
        U = np.concatenate([self.user_bias[:, None], Uf], axis=1)
        V = np.concatenate([self.item_bias[:, None], Vf], axis=1)
        return np.ascontiguousarray(U), np.ascontiguousarray(V)

    def predict(self, users, items, times=None) -> np.ndarray:
        """Posterior-mean predictions for index pairs (float64, not clipped): biases averaged over all kept
        samples, the factor product averaged over the stored samples; with time biases and ``times`` (seconds,
        one per pair), plus their posterior-mean offsets (no offset without times)."""
        users, items = _pairs(users, items, self.n_users, self.n_items, "users", "items")
        U, V = self._effective()
        out = np.empty(len(users))
        kb.predict_pairs(users, items, float(self.mu), U, V, out)
        if self.time_biases is not None and times is not None:
            times = np.ascontiguousarray(times, dtype=np.float64).ravel()
            if len(times) != len(users):
                raise LatentAtlasError(f"times must have one entry per pair ({len(times)} != {len(users)})")
            out += np.asarray(self.time_biases.predict(users, items, times), dtype=np.float64)
        return out

    def predict_std(self, users, items) -> np.ndarray:
        """Predictive standard deviation of the rating (posterior variance of the mean plus noise)."""
        users, items = _pairs(users, items, self.n_users, self.n_items, "users", "items")
        U, V = self._effective(mean=True)
        out = np.empty(len(users))
        kb.predict_var_pairs(users, items, U, V, np.ascontiguousarray(self.user_var, dtype=np.float64),
                             np.ascontiguousarray(self.item_var, dtype=np.float64), out)
        noise = self.user_noise[users].astype(np.float64) * self.item_noise[items].astype(np.float64)
        return np.sqrt(out + self.noise_variance * noise)

    def fold_in(self, items, values) -> tuple[float, np.ndarray]:
        """``(bias, factors)`` of a new user from their ratings, usable as a row of ``user_bias`` /
        ``user_factors``: per stored sample, the posterior mean of the user's ``[b_u, q_u]`` given that sample's
        item vectors, under the averaged user prior, noise precision and item biases, plus the implicit part of
        the rated items (averaged ``[w_j, y_j]``); factors side by side like ``user_factors``."""
        items = np.asarray(items, dtype=np.int64).ravel()
        values = np.asarray(values, dtype=np.float64).ravel()
        if len(items) != len(values):
            raise LatentAtlasError(f"items and values must have the same length ({len(items)} != {len(values)})")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise LatentAtlasError(f"items: index out of range 0..{self.n_items - 1}")
        if not np.all(np.isfinite(values)):
            raise LatentAtlasError("values: not all finite")
        k, M = self.k, self.n_stored
        s = np.zeros(k + 1)
        if self.implicit_user is not None and len(items):
            seen = np.unique(items)
            s = self.implicit_user[seen].astype(np.float64).sum(axis=0) / np.sqrt(len(seen))
        t = values - self.mu - self.item_bias[items]
        lam = np.asarray(self.user_prior_precision, dtype=np.float64)
        w = self.noise_precision / self.item_noise[items].astype(np.float64)  # a new user's noise factor: 1
        if self.form == "compact":  # the expected normal equations under the items' posterior means and variances
            Y = np.concatenate([np.ones((len(items), 1)), self.item_factor_mean[items].astype(np.float64)], axis=1)
            spread = self.item_var[items].astype(np.float64)
            spread[:, 0] = 0.0  # the bias feature is the constant 1
            A = (Y.T * w) @ Y + np.diag(w @ spread)
            b = (Y.T * w) @ t - A @ s + lam * self.user_prior_mean
            x = np.linalg.solve(A + np.diag(lam), b) + s
            factors = np.zeros(self.width, dtype=self.user_factors.dtype)
            factors[:k] = x[1:]
            return float(x[0]), factors
        root = np.sqrt(M)
        biases, blocks = [], []
        for m in range(M):
            P = self.item_factors[items, m * k:(m + 1) * k].astype(np.float64) * root
            Y = np.concatenate([np.ones((len(items), 1)), P], axis=1)
            A = (Y.T * w) @ Y + np.diag(lam)
            b = (Y.T * w) @ (t - Y @ s) + lam * self.user_prior_mean
            x = np.linalg.solve(A, b) + s
            biases.append(x[0])
            blocks.append(x[1:] / root)
        return float(np.mean(biases)), np.concatenate(blocks).astype(self.user_factors.dtype)

    def compact(self, rank: int | None = None, seed: int | None = None) -> "BayesFit":
        """The same posterior in ``O((n_users + n_items)·k)`` numbers, as model files store it.

        The stored samples' factors (``n_stored·k`` columns) become ``k + rank`` columns: the posterior means
        ``q̄_u``, ``p̄_i``, then the best rank-``rank`` approximation (randomised SVD, seeded) of what the
        average of the per-sample products adds to the product of means,
        ``(1/M) Σ_m q̃_u^m·p̃_i^m − q̄_u·p̄_i``. ``rank`` (default ``k``) = 0 keeps the product of means alone.
        Everything per row becomes float32. ``predict_std`` reads only the means and variances, so its answers
        do not change beyond float32 rounding; ``predict`` changes by the part of the sample average beyond
        that rank (on MovieLens-100K, k = 24, 50 samples: RMS 0.037 per prediction at rank 24, mostly Monte
        Carlo noise of the average, and validation RMSE 0.8692 against 0.8695 for all samples and 0.8702 for
        the product of means; benchmarks/RESULTS-model-size.md); ``fold_in`` solves the expected normal
        equations under the items' posterior means and variances instead of one per stored sample.
        """
        if self.form == "compact":
            return self
        k = self.k
        rank = k if rank is None else _check_int("rank", rank, 0)
        rank = min(rank, self.n_users, self.n_items, self.n_stored * k)
        f32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        Um, Vm = f32(self.user_factor_mean), f32(self.item_factor_mean)
        Cu, Cv = _residual_factors(f32(self.user_factors), f32(self.item_factors), Um, Vm, rank,
                                   self.seed if seed is None else seed)
        U = np.ascontiguousarray(np.concatenate([Um, Cu], axis=1), dtype=np.float32)
        V = np.ascontiguousarray(np.concatenate([Vm, Cv], axis=1), dtype=np.float32)
        return dataclasses.replace(
            self, user_factors=U, item_factors=V, user_factor_mean=U[:, :k], item_factor_mean=V[:, :k],
            user_var=f32(self.user_var), item_var=f32(self.item_var), implicit_user=f32(self.implicit_user),
            user_noise=f32(self.user_noise), item_noise=f32(self.item_noise),
            user_feature_weights=f32(self.user_feature_weights), item_feature_weights=f32(self.item_feature_weights),
            user_prior_mean=np.asarray(self.user_prior_mean, dtype=np.float64),
            user_prior_precision=np.asarray(self.user_prior_precision, dtype=np.float64),
            history=dict(self.history), form="compact", rank=rank)

    # --- model files -----------------------------------------------------------------------------------------
    def to_file(self) -> tuple[dict, dict]:
        """``(scalars, arrays)`` that, with the biases and factors a model file keeps anyway, are this fit
        (:meth:`from_file`). A compact fit stores no separate factor means: they are the first ``k`` columns."""
        scalars = {name: getattr(self, name) for name in _FILE_SCALARS}
        scalars.update({name: list(getattr(self, name)) for name in _TEXT_SCALARS if getattr(self, name)})
        names = _FILE_ARRAYS if self.form == "samples" else \
            tuple(n for n in _FILE_ARRAYS if n not in ("user_factor_mean", "item_factor_mean"))
        arrays = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.time_biases is not None:
            arrays.update({f"time_{name}": value for name, value in self.time_biases.to_arrays().items()})
        return scalars, arrays

    @classmethod
    def from_file(cls, scalars: dict, arrays: dict, *, mu: float, user_bias: np.ndarray, item_bias: np.ndarray,
                  user_factors: np.ndarray, item_factors: np.ndarray) -> "BayesFit":
        """The inverse of :meth:`to_file`, for files of either form (files before the compact form hold the
        samples); a KeyError or ValueError when something is missing or does not fit."""
        form = scalars.get("form", "samples")
        if form not in ("samples", "compact"):
            raise ValueError(f"unknown form {form!r}")
        k = int(scalars["k"])
        if form == "compact":
            arrays = {**arrays, "user_factor_mean": user_factors[:, :k], "item_factor_mean": item_factors[:, :k]}
        missing = [name for name in _FILE_ARRAYS if name not in arrays and name not in _OPTIONAL_ARRAYS]
        if missing:
            raise KeyError(missing[0])
        time_arrays = {name[5:]: value for name, value in arrays.items() if name.startswith("time_")}
        time_biases = None
        if time_arrays:
            from latentatlas.ratings.timebias import TimeBiases

            time_biases = TimeBiases.from_arrays(time_arrays)
        fit = cls(mu=mu, user_bias=user_bias, item_bias=item_bias, user_factors=user_factors,
                  item_factors=item_factors, **{name: arrays.get(name) for name in _OPTIONAL_ARRAYS},
                  **{name: arrays[name] for name in _FILE_ARRAYS if name not in _OPTIONAL_ARRAYS},
                  **{name: scalars[name] for name in _FILE_SCALARS if name not in ("form", "rank")},
                  form=form, rank=int(scalars.get("rank", 0)), time_biases=time_biases,
                  **{name: tuple(str(x) for x in scalars.get(name, ())) for name in _TEXT_SCALARS})
        nu, ni = len(user_bias), len(item_bias)
        shapes = [(fit.user_factors, (nu, fit.width)), (fit.item_factors, (ni, fit.width)),
                  (fit.user_factor_mean, (nu, k)), (fit.item_factor_mean, (ni, k)), (fit.user_var, (nu, k + 1)),
                  (fit.item_var, (ni, k + 1)), (fit.user_noise, (nu,)), (fit.item_noise, (ni,)),
                  (fit.user_prior_mean, (k + 1,)), (fit.user_prior_precision, (k + 1,))]
        if fit.implicit_user is not None:
            shapes.append((fit.implicit_user, (ni, k + 1)))
        for weights in (fit.user_feature_weights, fit.item_feature_weights):
            if weights is not None:
                shapes.append((weights, (len(weights), k + 1)))
        if any(np.shape(a) != shape for a, shape in shapes) or fit.rank < 0:
            raise ValueError("the sampler's arrays do not match the ids and k")
        return fit


#: What a model file keeps of a :class:`BayesFit` besides the biases and the factors (arrays ``bayes_<name>``,
#: scalars in the metadata); "form" and "rank" are absent from files written before the compact form.
_FILE_ARRAYS = ("user_factor_mean", "item_factor_mean", "user_var", "item_var", "user_prior_mean",
                "user_prior_precision", "implicit_user", "user_noise", "item_noise", "user_feature_weights",
                "item_feature_weights")
#: Names of the feature-weight rows (lists of text in the metadata; absent without side features).
_TEXT_SCALARS = ("user_feature_columns", "item_feature_columns", "user_feature_groups", "item_feature_groups")
#: Arrays a file may lack (no implicit or side features); time-bias arrays are stored as ``time_<name>``.
_OPTIONAL_ARRAYS = ("implicit_user", "user_feature_weights", "item_feature_weights")
_FILE_SCALARS = ("n_stored", "noise_precision", "noise_variance", "k", "implicit", "noise", "n_kept", "burn_in",
                 "seed", "form", "rank")


def _residual_factors(A, B, Um, Vm, rank: int, seed: int, n_iter: int = 4):
    """``(X, Y)`` of ``rank`` columns with ``X·Yᵀ`` ≈ ``A·Bᵀ − Um·Vmᵀ`` (the best rank-``rank`` approximation,
    by a seeded randomised SVD with power iterations, Halko et al. 2011) without forming the n_users ×
    n_items matrix."""
    nu, ni = A.shape[0], B.shape[0]
    if rank == 0:
        return np.zeros((nu, 0), dtype=np.float32), np.zeros((ni, 0), dtype=np.float32)

    def right(X):  # R @ X
        X = X.astype(np.float32)
        return (A @ (B.T @ X) - Um @ (Vm.T @ X)).astype(np.float64)

    def left(Y):  # Rᵀ @ Y
        Y = Y.astype(np.float32)
        return (B @ (A.T @ Y) - Vm @ (Um.T @ Y)).astype(np.float64)

    width = min(2 * rank + 8, nu, ni)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0]))
    Q = np.linalg.qr(right(rng.standard_normal((ni, width))))[0]
    for _ in range(n_iter):
        Q = np.linalg.qr(left(Q))[0]
        Q = np.linalg.qr(right(Q))[0]
    W, S, Zt = np.linalg.svd(left(Q).T, full_matrices=False)
    root = np.sqrt(S[:rank])
    return (Q @ W[:, :rank] * root).astype(np.float32), (Zt[:rank].T * root).astype(np.float32)


class GibbsInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`gibbs_fit`; ``fit`` holds the posterior average of the samples so far."""

    def __init__(self, fit: BayesFit):
        super().__init__("sampling interrupted")
        self.fit = fit


def _pairs(users, items, n_users, n_items, uname, iname):
    users = np.ascontiguousarray(users, dtype=np.int64).ravel()
    items = np.ascontiguousarray(items, dtype=np.int64).ravel()
    if len(users) != len(items):
        raise LatentAtlasError(f"{uname} and {iname} must have the same length ({len(users)} != {len(items)})")
    if len(users):
        if users.min() < 0 or users.max() >= n_users:
            raise LatentAtlasError(f"{uname}: index out of range 0..{n_users - 1}")
        if items.min() < 0 or items.max() >= n_items:
            raise LatentAtlasError(f"{iname}: index out of range 0..{n_items - 1}")
    return users.astype(np.int32), items.astype(np.int32)


def _check_int(name, value, low):
    return checks.integer(name, value, low)


def _implicit_mode(implicit) -> str:
    if implicit is True:
        return "both"
    if implicit is False or implicit is None:
        return "none"
    if implicit not in IMPLICIT:
        raise LatentAtlasError(f"implicit must be True, False or one of {', '.join(IMPLICIT)}, got {implicit!r}")
    return implicit


def _sample_hyper(X, rng, mean, prec):
    """Per-dimension Normal-Gamma update of a group's prior mean and precision (libFM's constants)."""
    n = X.shape[0]
    alpha0, beta0, mu0, gamma0 = 1.0, 1.0, 0.0, 1.0
    dev, sx = kb.column_moments(np.ascontiguousarray(X, dtype=np.float64), mean, _CHUNKS)
    shape = (alpha0 + n + 1) / 2
    rate = (beta0 + dev + gamma0 * (mean - mu0) ** 2) / 2
    prec[:] = rng.gamma(shape, 1.0 / rate)
    mean[:] = rng.normal((sx + gamma0 * mu0) / (n + gamma0), 1.0 / np.sqrt((n + gamma0) * prec))


def _key(seed: int, sample: int, phase: int) -> np.uint64:
    return np.random.SeedSequence([seed, sample, phase]).generate_state(1, np.uint64)[0]


def gibbs_fit(users, items, values, n_users: int, n_items: int, *, k: int = DEFAULT_K,
              n_samples: int = DEFAULT_SAMPLES, burn_in: int = DEFAULT_BURN_IN, implicit=DEFAULT_IMPLICIT,
              implicit_extra: tuple | None = None, noise: str = DEFAULT_NOISE, noise_dof: float = DEFAULT_NOISE_DOF,
              n_stored: int | None = None, validation: tuple | None = None, seed: int = 0,
              n_threads: int | None = None, init_std: float = 0.1, init_factors: tuple | None = None,
              callback: Callable[[int, dict], None] | None = None, user_features: tuple | None = None,
              item_features: tuple | None = None, times=None, time_bias: bool = False,
              time_bins: int | None = None, sweep: str = "block") -> BayesFit:
    """Sample the posterior of the model in the module docstring and average it.

    ``users``, ``items`` (int, contiguous indices below ``n_users``/``n_items``) and ``values`` are the
    training ratings. ``n_samples`` samples are kept after ``burn_in`` discarded ones. ``implicit``:
    True/"both", "user", "item", or False/"none". ``implicit_extra=(users, items)``: more pairs used only as
    implicit information (e.g. the pairs to be predicted); never used unless given. ``validation=(users,
    items, values)``: scored after every sample (history). ``callback(sample_index, record)`` is called after
    every sample with that sample's history record. ``noise``: "global" (one noise precision), or per-user /
    per-item / both precision factors with Student-t-like Gamma(ν/2, ν/2) priors, ν = ``noise_dof``.
    ``n_stored``: how many kept samples' factors are stored to average predictions over (evenly thinned;
    None: all kept samples, as far as :data:`STORE_BYTES` allows).
    ``init_factors=(user_factors, item_factors)``: starting factors (n_users × k and n_items × k, e.g. an ALS
    fit's) instead of random ones. Started from small random factors, a chain can sit near zero for dozens of
    samples before the signal takes over (seen on synthetic rank-16 data: 60 samples); a MAP starting point,
    as Salakhutdinov & Mnih start from PMF, avoids that.
    ``user_features=(matrix, groups)`` (and ``item_features``): side attributes as a sparse matrix with one
    row per user (item) index, ``n_users`` rows, and one group number per column (one source field each:
    genre, age...); column ``f`` adds ``F[u, f]·w_f`` to the user's ``[b̃_u, q̃_u]`` (a factorisation
    machine's linear term and embedding), the ``w_f`` of each group under its own Normal prior with a
    Normal-Gamma hyper-prior (the implicit columns are one more group). Rows without ratings are users
    (items) known only by their features (cold start): their vectors are the feature part plus a draw from
    the prior. ``BayesFit.user_feature_weights`` holds the posterior means of the ``w_f``.
    ``time_bias=True`` with ``times`` (seconds, one per rating): timeSVD++-style item-bin biases and user
    drift (:class:`latentatlas.ratings.timebias.TimeBiases`, ``time_bins`` bins when given) sampled as one
    more Gibbs block; then ``validation`` may carry a fourth array, the validation times.
    ``sweep``: "block" (default) draws each user/item vector and each implicit/feature vector whole from its
    K-dimensional conditional (a K×K Gram matrix per user and item; O(K²) per rating and per implicit pair,
    the implicit sweep sequential); "coordinate" draws every scalar from its own conditional, one coordinate
    of all vectors after another (libFM/myFM's order; O(K) per rating and per feature non-zero, one residual
    per rating instead of the Gram matrices). Both are exact Gibbs samplers of the same posterior; on
    MovieLens-100K their validation RMSEs agree within chain-to-chain noise (RESULTS-bayes-implicit-speed.md).
    ``init_std``: standard deviation of the random initial factors (biases start at 0). The same ``seed`` gives
    the same result whatever ``n_threads`` (None: numba's current setting). Computation is in float64.

    Memory beyond the ratings (two CSR copies, 10-12 bytes per rating each, plus two float64 target arrays):
    ``O((n_users + n_items)·k)`` for the state and running moments, the stored samples (float32, at most
    :data:`STORE_BYTES`), and with implicit features one K×K float32 Gram matrix per user and per item
    (K = k + 1) for ``sweep="block"``; ``sweep="coordinate"`` instead keeps the residuals in both orders and the
    two orders' positions (24 bytes per rating).

    Raises :class:`GibbsInterrupted` on Ctrl-C (see the module docstring) and ``LatentAtlasError`` for bad
    arguments.
    """
    k = _check_int("k", k, 1)
    n_samples = _check_int("n_samples", n_samples, 1)
    burn_in = _check_int("burn_in", burn_in, 0)
    n_users = _check_int("n_users", n_users, 1)
    n_items = _check_int("n_items", n_items, 1)
    seed = _check_int("seed", seed, 0)
    mode = _implicit_mode(implicit)
    if noise not in NOISE:
        raise LatentAtlasError(f"noise must be one of {', '.join(NOISE)}, got {noise!r}")
    if isinstance(noise_dof, bool) or not isinstance(noise_dof, (int, float)) or not (0 < noise_dof < np.inf):
        raise LatentAtlasError(f"noise_dof must be a positive finite number, got {noise_dof!r}")
    if n_threads is not None:
        n_threads = _check_int("n_threads", n_threads, 1)
    if not (isinstance(init_std, (int, float)) and np.isfinite(init_std) and init_std >= 0):
        raise LatentAtlasError(f"init_std must be a finite number >= 0, got {init_std!r}")
    if callback is not None and not callable(callback):
        raise LatentAtlasError("callback must be callable")
    if init_factors is not None:
        if len(init_factors) != 2:
            raise LatentAtlasError("init_factors must be (user_factors, item_factors)")
        init_factors = tuple(np.asarray(f, dtype=np.float64) for f in init_factors)
        for f, n, what in zip(init_factors, (n_users, n_items), ("user", "item")):
            if f.shape != (n, k) or not np.all(np.isfinite(f)):
                raise LatentAtlasError(f"init_factors: the {what} factors must be finite, of shape ({n}, {k}); "
                                       f"got {f.shape}")
    cap = max(1, STORE_BYTES // (4 * k * (n_users + n_items)))
    if n_stored is None:
        n_stored = min(n_samples, cap)
    else:
        n_stored = min(_check_int("n_stored", n_stored, 1), n_samples)
    users, items = _pairs(users, items, n_users, n_items, "users", "items")
    values = np.ascontiguousarray(values, dtype=np.float64).ravel()
    if len(values) != len(users):
        raise LatentAtlasError(f"values must have one entry per (user, item) pair ({len(values)} != {len(users)})")
    if len(values) == 0:
        raise LatentAtlasError("values: no training ratings")
    if not np.all(np.isfinite(values)):
        raise LatentAtlasError("values: not all finite")
    vt = None
    if validation is not None:
        if len(validation) not in (3, 4):
            raise LatentAtlasError("validation must be (users, items, values) or (users, items, values, times)")
        vu, vi = _pairs(validation[0], validation[1], n_users, n_items, "validation users", "validation items")
        vv = np.ascontiguousarray(validation[2], dtype=np.float64).ravel()
        if len(vv) != len(vu):
            raise LatentAtlasError("validation values must have one entry per pair")
        if len(validation) == 4 and validation[3] is not None:
            vt = _times("validation times", validation[3], len(vu))
    user_attrs = _attributes(user_features, n_users, "user_features")
    item_attrs = _attributes(item_features, n_items, "item_features")
    if not isinstance(time_bias, (bool, np.bool_)):
        raise LatentAtlasError(f"time_bias must be True or False, got {time_bias!r}")
    if time_bins is not None:
        time_bins = _check_int("time_bins", time_bins, 1)
    if sweep not in SWEEPS:
        raise LatentAtlasError(f"sweep must be one of {', '.join(SWEEPS)}, got {sweep!r}")
    if time_bias:
        if times is None:
            raise LatentAtlasError("time_bias=True needs times (one per training rating)")
        times = _times("times", times, len(values))
    else:
        times = vt = None
    if implicit_extra is not None:
        if len(implicit_extra) != 2:
            raise LatentAtlasError("implicit_extra must be (users, items)")
        eu, ei = _pairs(implicit_extra[0], implicit_extra[1], n_users, n_items,
                        "implicit_extra users", "implicit_extra items")
    previous_threads = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        return _run(users, items, values, n_users, n_items, k, n_samples, burn_in, n_stored, mode, noise,
                    float(noise_dof),
                    (eu, ei) if implicit_extra is not None else None,
                    (vu, vi, vv, vt) if validation is not None else None, seed, init_std, init_factors, callback,
                    user_attrs, item_attrs, times, time_bins, sweep)
    finally:
        numba.set_num_threads(previous_threads)


def _times(name, times, n):
    times = np.ascontiguousarray(times, dtype=np.float64).ravel()
    if len(times) != n:
        raise LatentAtlasError(f"{name} must have one entry per rating ({len(times)} != {n})")
    if not np.all(np.isfinite(times)):
        raise LatentAtlasError(f"{name}: not all finite")
    return times


def _attributes(spec, n_rows, name):
    """``(csr float64, groups 0..G-1 per column, original group numbers)`` from ``(matrix, groups)``, or None."""
    if spec is None:
        return None
    import scipy.sparse as sp

    if not isinstance(spec, (tuple, list)) or len(spec) != 2:
        raise LatentAtlasError(f"{name} must be (sparse matrix, groups), got {type(spec).__name__}")
    matrix, groups = spec
    try:
        matrix = sp.csr_matrix(matrix if sp.issparse(matrix) else np.asarray(matrix, dtype=np.float64),
                               dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LatentAtlasError(f"{name}: the matrix is not numeric ({exc})") from None
    if matrix.ndim != 2 or matrix.shape[0] != n_rows:
        raise LatentAtlasError(f"{name}: the matrix needs one row per index ({n_rows}), got shape {matrix.shape}")
    matrix.sum_duplicates()
    matrix.sort_indices()
    if not np.all(np.isfinite(matrix.data)):
        raise LatentAtlasError(f"{name}: the matrix has NaN or infinite values")
    groups = np.asarray(groups).ravel()
    if len(groups) != matrix.shape[1] or (len(groups) and (groups.dtype.kind not in "iu" or groups.min() < 0)):
        raise LatentAtlasError(f"{name}: groups must be one non-negative integer per column "
                               f"({matrix.shape[1]} columns, got {len(groups)} groups)")
    if matrix.shape[1] == 0:
        return None
    ids, compact = np.unique(groups, return_inverse=True)
    return matrix, compact.astype(np.int32).ravel(), ids


def _implicit_structure(users, items, extra, n_users, n_items):
    """CSR patterns user→items and item→users of the implicit sets (deduplicated), and 1/√|N|."""
    if extra is not None:
        users = np.concatenate([users, extra[0]])
        items = np.concatenate([items, extra[1]])
    keys = np.unique(users.astype(np.int64) * n_items + items)
    u = (keys // n_items).astype(np.int32)
    i = (keys % n_items).astype(np.int32)
    by_user = compressed(u, i, None, n_users, n_cols=n_items)[:2]  # uint16 indices where they fit
    by_item = compressed(i, u, None, n_items, n_cols=n_users)[:2]
    nu = np.diff(by_user[0])
    ni = np.diff(by_item[0])
    wu = np.where(nu > 0, 1.0 / np.sqrt(np.maximum(nu, 1)), 0.0)
    wi = np.where(ni > 0, 1.0 / np.sqrt(np.maximum(ni, 1)), 0.0)
    return by_user, by_item, wu, wi


class _Block:
    """The feature columns of one side: the implicit "who rated what" columns (one per item for the user side),
    then the attribute columns, with ``S[u] = Σ_f F[u, f]·W[f]`` added to row ``u``'s vector. Group 0 holds the
    implicit columns (when there are any), then one group per attribute group; each group has its own
    per-dimension Normal prior (``means[g]``, ``precs[g]``) with a Normal-Gamma hyper-prior."""

    def __init__(self, n_rows, K, implicit, attrs, method="block"):
        self.method = method
        self.implicit = implicit  # (by_row, by_col, weight) or None
        self.n_imp = len(implicit[1][0]) - 1 if implicit is not None else 0
        self.attrs = attrs  # (csr, groups compact 0..G-1, original group ids) or None
        n_attr = attrs[0].shape[1] if attrs is not None else 0
        n_groups = len(attrs[2]) if attrs is not None else 0
        self.n_attr = n_attr
        self.active = self.n_imp + n_attr > 0
        self.W = np.zeros((self.n_imp + n_attr, K))
        first = 1 if implicit is not None else 0
        self.first = first
        self.means = np.zeros((first + n_groups, K))
        self.precs = np.ones((first + n_groups, K))
        if attrs is not None:
            csr, groups, _ = attrs
            csc = csr.tocsc()
            csc.sort_indices()
            offset = 0
            if implicit is not None:
                by_col, weight = implicit[1], implicit[2]
                indptr = np.concatenate([by_col[0].astype(np.int64), by_col[0][-1] + csc.indptr[1:].astype(np.int64)])
                indices = np.concatenate([by_col[1].astype(np.int32), csc.indices.astype(np.int32)])
                data = np.concatenate([weight[by_col[1]], csc.data])
                col_groups = np.concatenate([np.zeros(self.n_imp, dtype=np.int32), groups + first])
                offset = self.n_imp
            else:
                indptr, indices, data = csc.indptr.astype(np.int64), csc.indices.astype(np.int32), csc.data
                col_groups = groups.astype(np.int32)
            self.sweep_cols = (np.ascontiguousarray(indptr), np.ascontiguousarray(indices),
                               np.ascontiguousarray(data, dtype=np.float64),
                               np.ascontiguousarray(col_groups, dtype=np.int32))
            self.attr_rows = (csr.indptr.astype(np.int64), (csr.indices + offset).astype(np.int32),
                              np.ascontiguousarray(csr.data, dtype=np.float64))
            self.group_cols = [np.flatnonzero(groups == g) + offset for g in range(n_groups)]
        elif implicit is not None and method == "coordinate":
            by_col, weight = implicit[1], implicit[2]
            self.sweep_cols = (np.ascontiguousarray(by_col[0], dtype=np.int64),
                               np.ascontiguousarray(by_col[1]),
                               np.ascontiguousarray(weight[by_col[1]], dtype=np.float64),
                               np.zeros(self.n_imp, dtype=np.int32))

    def hyper_implicit(self, rng):
        if self.implicit is not None:
            _sample_hyper(self.W[:self.n_imp], rng, self.means[0], self.precs[0])

    def hyper_attrs(self, rng):
        if self.attrs is not None:
            for g, cols in enumerate(self.group_cols):
                _sample_hyper(self.W[cols], rng, self.means[self.first + g], self.precs[self.first + g])

    def sample_by_coordinate(self, csr, resid, Yaug, X, S, hyper, alpha, row_w, col_w, key_rows, key_cols,
                             by_col=None, sample=0, work=None):
        """The rows' own vectors and the feature columns one coordinate at a time
        (:func:`latentatlas.ratings.kernels.bayes.sample_side_by_coordinate`); ``resid`` (the residuals in
        ``csr``'s order, or in ``by_col``'s, the other side's CSR, when given) and ``S`` follow the changes."""
        kb.sample_side_by_coordinate(csr[0], csr[1], None, Yaug, X, S, hyper[0], hyper[1], alpha, row_w, col_w,
                                     key_rows, self.sweep_cols if self.active else None, self.W, self.means,
                                     self.precs, key_cols, _CHUNKS, resid,
                                     self.implicit[2] if self.attrs is None and self.implicit is not None else None,
                                     by_col, _implicit_update(sample), work)

    def refresh_sums(self, S):
        """``S`` recomputed from the feature vectors (the coordinate sweep updates it by changes, which leaves
        rounding behind)."""
        if self.active:
            self._sums(S)

    def _sums(self, S):
        if self.implicit is not None:
            by_row, _, weight = self.implicit
            kb.implicit_sums(by_row[0], by_row[1], weight, self.W, S, _CHUNKS)
        else:
            S[:] = 0.0
        if self.attrs is not None:
            kb.add_feature_sums(*self.attr_rows, self.W, S, _CHUNKS)

    def sweep(self, gram, grad, S, alpha, key):
        """One Gibbs sweep over every column, then the sums recomputed from scratch (no drift)."""
        if self.attrs is None:
            by_row, by_col, weight = self.implicit
            kb.sample_implicit(by_col[0], by_col[1], weight, gram, grad, self.W, S, self.means[0], self.precs[0],
                               alpha, key, True)
        else:
            kb.sample_columns(*self.sweep_cols, gram, grad, self.W, S, self.means, self.precs, alpha, key, True)
        self._sums(S)

    def attribute_weights(self):
        return self.W[self.n_imp:] if self.attrs is not None else None


def _run(users, items, values, n_users, n_items, k, n_samples, burn_in, n_stored, mode, noise, dof, extra,
         validation, seed, init_std, init_factors, callback, user_attrs=None, item_attrs=None, times=None,
         time_bins=None, sweep="block"):
    K = k + 1
    N = len(values)
    # uint16 column indices where they fit: each of the coordinate sweep's K passes per side reads them
    user_csr = compressed(users, items, values, n_users, np.float64, n_items)
    item_csr = compressed(items, users, values, n_items, np.float64, n_users)
    t_user = np.empty(N)
    t_item = np.empty(N)
    use_y = mode in ("user", "both")
    use_z = mode in ("item", "both")
    if use_y or use_z:
        by_user, by_item, wu, wi = _implicit_structure(users, items, extra, n_users, n_items)
    ublock = _Block(n_users, K, (by_user, by_item, wu) if use_y else None, user_attrs, sweep)
    iblock = _Block(n_items, K, (by_item, by_user, wi) if use_z else None, item_attrs, sweep)
    side_u, side_i = ublock.active, iblock.active
    grams = sweep == "block"  # the coordinate-wise sweep needs no Gram matrices
    if not grams:
        # the coordinate sweep keeps one residual per rating; the user side's final residuals start the item side
        # and the item side's give μ, τ, κ and α their sums in O(1) per rating: the two CSR orders' positions
        order_u = np.argsort(users, kind="stable")  # compressed() keeps the input order within a row
        order_i = np.argsort(items, kind="stable")
        where = np.empty(N, dtype=np.int64)
        where[order_u] = np.arange(N)
        item_from_user = where[order_i].astype(np.int32)  # e_item = e_user[item_from_user]
        where[order_i] = np.arange(N)
        user_from_item = where[order_u].astype(np.int32)
        del where, order_u, order_i
        work_u, work_i = {}, {}  # the coordinate sweep's scratch arrays of users' and of items' length, kept
        e_user = np.empty(N)
        e_item = np.empty(N)
        resid = {"u": e_user, "i": e_item}
        # a side with fewer rows than the other goes through the ratings in the other side's order
        # (sample_rows_coordinate_by_col): its random accesses then hit its own short arrays
        u_order = "i" if kb.by_col_pays(n_users, n_items) else "u"
        i_order = "u" if kb.by_col_pays(n_items, n_users) else "i"

        # the μ/τ/κ sums per user and per item read the residuals in the order the item side leaves them
        mom_u = np.empty((kb._BY_COL_CHUNKS, n_users, 3)) if i_order == "i" else None
        mom_i = np.empty((kb._BY_COL_CHUNKS, n_items, 3)) if i_order == "u" and noise in ("item", "both") else None

        def reorder(src):  # the residuals held in order src copied into the other order
            if src == "u":
                np.take(e_user, item_from_user, out=e_item)
            else:
                np.take(e_item, user_from_item, out=e_user)
            return "i" if src == "u" else "u"
    carried = None  # the order ("u"/"i") of residuals carried over from the last sample at its parameters

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    Ux = rng.normal(0, init_std, (n_users, K))  # raw [b_u, q_u]
    Vx = rng.normal(0, init_std, (n_items, K))
    Ux[:, 0] = 0
    Vx[:, 0] = 0
    if init_factors is not None:
        Ux[:, 1:], Vx[:, 1:] = init_factors
    S = np.zeros((n_users, K))  # user feature sums (implicit and attributes)
    T = np.zeros((n_items, K))
    gram_u = np.empty((n_users, K, K), dtype=np.float32) if side_u and grams else np.zeros((1, K, K), dtype=np.float32)
    grad_u = np.empty((n_users, K)) if side_u and grams else np.zeros((1, K))
    gram_i = np.empty((n_items, K, K), dtype=np.float32) if side_i and grams else np.zeros((1, K, K), dtype=np.float32)
    grad_i = np.empty((n_items, K)) if side_i and grams else np.zeros((1, K))
    hyper = {name: (np.zeros(K), np.ones(K)) for name in ("U", "V")}
    mu = float(values.mean())
    alpha = 1.0
    tau = np.ones(n_users)  # per-user and per-item noise precision factors (all 1: one global precision)
    kappa = np.ones(n_items)
    user_noise = noise in ("user", "both")
    item_noise = noise in ("item", "both")
    n_u = np.diff(user_csr[0]).astype(np.float64)
    n_i = np.diff(item_csr[0]).astype(np.float64)
    # rows without ratings on a side with attributes (users/items known only by their features): their own
    # vector has no likelihood, so it is integrated out: held at its prior mean (no Monte Carlo noise in their
    # predictions), left out of the hyper-parameter updates, its prior variance added to the posterior variance at
    # the end. (Without attributes such rows are drawn from the prior as before.)
    cold_u = (n_u == 0) if user_attrs is not None and (n_u == 0).any() else None
    cold_i = (n_i == 0) if item_attrs is not None and (n_i == 0).any() else None
    sq_u, lin_u, w_u = np.empty(n_users), np.empty(n_users), np.empty(n_users)
    sq_i, lin_i, w_i = np.empty(n_items), np.empty(n_items), np.empty(n_items)

    # time-aware biases (timeSVD++): the ratings net of the current time offsets are the sampler's targets
    tb = None
    net = values
    if times is not None:
        from latentatlas.ratings.timebias import TimeBiases

        tb = TimeBiases.setup(users, items, times, n_users, n_items,
                              **({} if time_bins is None else {"n_bins": time_bins}))
        perm_u = np.argsort(users, kind="stable")  # the CSR orders (compressed keeps the input order in a row)
        perm_i = np.argsort(items, kind="stable")
        no_time = np.empty(N)

        def refresh():
            new = values - np.asarray(tb.offsets(), dtype=np.float64)
            user_csr[2][:] = new[perm_u]
            item_csr[2][:] = new[perm_i]
            return new

        net = refresh()

    acc = {"U": np.zeros((n_users, K)), "U2": np.zeros((n_users, K)), "V": np.zeros((n_items, K)),
           "V2": np.zeros((n_items, K)), "mu": 0.0, "alpha": 0.0, "inv_alpha": 0.0,
           "Um": np.zeros(K), "Ul": np.zeros(K), "Y": np.zeros((n_items, K)) if use_y else None,
           "inv_U": np.zeros(K), "inv_V": np.zeros(K),
           "inv_tau": np.zeros(n_users), "inv_kappa": np.zeros(n_items),
           "Fu": None if user_attrs is None else np.zeros((ublock.n_attr, K)),
           "Fi": None if item_attrs is None else np.zeros((iblock.n_attr, K))}
    # the stored samples: every stride-th kept sample's factors, side by side (float32)
    stride = -(-n_samples // n_stored)
    store = {"U": np.empty((n_users, (n_samples // stride) * k), dtype=np.float32),
             "V": np.empty((n_items, (n_samples // stride) * k), dtype=np.float32), "n": 0}
    history = {"sample": [], "kept": [], "train_rmse": [], "validation_rmse": [],
               "validation_rmse_factor_mean": [], "alpha": [], "seconds": []}
    n_kept = 0
    Ueff = Ux + S  # effective vectors; these four arrays are rewritten in place (no fresh pages every sample)
    Veff = Vx + T
    Uaug = np.empty_like(Ueff)
    Vaug = np.empty_like(Veff)
    val_time = None
    if validation is not None:
        val_pred = np.empty(len(validation[0]))
        val_bias = np.zeros(len(validation[0]))  # Σ over kept samples of μ + b̃_u + b̃_i
        val_dot = np.zeros(len(validation[0]))  # Σ over stored samples of q̃_u·p̃_i
        if tb is not None and len(validation) > 3 and validation[3] is not None:
            val_time = validation[3]
    start = time.perf_counter()
    total = burn_in + n_samples
    try:
        for t in range(total):
            if not grams and t % _REFRESH == 0:  # also recomputes the residuals, which carry rounding too
                carried = None
                ublock.refresh_sums(S)
                iblock.refresh_sums(T)
                np.add(Ux, S, out=Ueff)
                np.add(Vx, T, out=Veff)
            hrng = np.random.default_rng(np.random.SeedSequence([seed, t, 7]))
            _sample_hyper(Ux if cold_u is None else Ux[~cold_u], hrng, *hyper["U"])
            _sample_hyper(Vx if cold_i is None else Vx[~cold_i], hrng, *hyper["V"])
            ublock.hyper_implicit(hrng)
            iblock.hyper_implicit(hrng)
            ublock.hyper_attrs(hrng)
            iblock.hyper_attrs(hrng)

            # users: features [1, p̃_i], targets r − μ − b̃_i
            Vaug[:] = Veff
            Vaug[:, 0] = 1.0
            if grams or carried is None:
                kb.effective_targets(user_csr[0], user_csr[1], user_csr[2], mu, np.ascontiguousarray(Veff[:, 0]),
                                     t_user)
            if grams:
                kb.sample_rows(user_csr[0], user_csr[1], t_user, Vaug, S, *hyper["U"], alpha, tau, kappa, Ux,
                               _key(seed, t, 1), True, gram_u, grad_u, side_u, _CHUNKS)
                if side_u:
                    ublock.sweep(gram_u, grad_u, S, alpha, _key(seed, t, 2))
            else:
                cur = carried
                if cur is None:
                    kb.full_residuals(user_csr[0], user_csr[1], t_user, Vaug, Ux, S, e_user, _CHUNKS)
                    cur = "u"
                if cur != u_order:
                    cur = reorder(cur)
                ublock.sample_by_coordinate(user_csr, resid[cur], Vaug, Ux, S, hyper["U"], alpha, tau, kappa,
                                            _key(seed, t, 1), _key(seed, t, 2), item_csr[:2] if cur == "i" else None,
                                            t, (work_u, work_i))
            if cold_u is not None:
                Ux[cold_u] = hyper["U"][0]
            kb.effective_and_augmented(Ux, S, Ueff, Uaug)

            # items: features [1, q̃_u], targets r − μ − b̃_u
            if grams:
                kb.effective_targets(item_csr[0], item_csr[1], item_csr[2], mu, np.ascontiguousarray(Ueff[:, 0]),
                                     t_item)
                kb.sample_rows(item_csr[0], item_csr[1], t_item, Uaug, T, *hyper["V"], alpha, kappa, tau, Vx,
                               _key(seed, t, 3), True, gram_i, grad_i, side_i, _CHUNKS)
                if side_i:
                    iblock.sweep(gram_i, grad_i, T, alpha, _key(seed, t, 4))
            else:  # the user side's final residuals are the item side's
                if cur != i_order:
                    cur = reorder(cur)
                iblock.sample_by_coordinate(item_csr, resid[cur], Uaug, Vx, T, hyper["V"], alpha, kappa, tau,
                                            _key(seed, t, 3), _key(seed, t, 4), user_csr[:2] if cur == "u" else None,
                                            t, (work_i, work_u))
            if cold_i is not None:
                Vx[cold_i] = hyper["V"][0]
            np.add(Vx, T, out=Veff)

            if tb is not None:  # the time terms given everything else, then the targets net of the new ones
                kb.predict_pairs(users, items, mu, Ueff, Veff, no_time)
                precision = np.asarray(alpha, dtype=np.float64) if noise == "global" else alpha * tau[users] * kappa[items]
                tb.sample(values - no_time, precision, np.random.default_rng(np.random.SeedSequence([seed, t, 13])))
                net = refresh()

            # global mean (flat prior), noise precision α (Gamma(1, 1) prior) and, when asked, per-user τ_u and
            # per-item κ_i factors of it (Gamma(ν/2, ν/2) priors: Student-t noise per user / item)
            grng = np.random.default_rng(np.random.SeedSequence([seed, t, 11]))
            kept_resid = not grams and tb is None  # resid[cur]: every rating's residual at the current parameters
            if kept_resid and cur == "u":
                kb.row_moments(user_csr[0], user_csr[1], e_user, 0.0, kappa, sq_u, lin_u, w_u)
            elif kept_resid:
                kb.row_moments_by_col(item_csr[0], item_csr[1], e_item, 0.0, kappa, mom_u, sq_u, lin_u, w_u)
            else:
                kb.row_residuals(user_csr[0], user_csr[1], user_csr[2], mu, Ueff, Veff, kappa, sq_u, lin_u, w_u)
            weight_sum = float(tau @ w_u)
            shift = grng.normal(float(tau @ lin_u) / weight_sum, 1.0 / np.sqrt(alpha * weight_sum))
            mu += shift
            sq_u += shift * (shift * w_u - 2 * lin_u)  # Σ κ e² per user at the new μ
            np.maximum(sq_u, 0.0, out=sq_u)
            if noise == "global":
                sse = plain_sse = float(sq_u.sum())
            else:
                if user_noise:
                    tau = grng.gamma(dof / 2 + n_u / 2, 1.0 / (dof / 2 + alpha * sq_u / 2))
                if item_noise:
                    if kept_resid and cur == "i":
                        kb.row_moments(item_csr[0], item_csr[1], e_item, shift, tau, sq_i, lin_i, w_i)
                    elif kept_resid:
                        kb.row_moments_by_col(user_csr[0], user_csr[1], e_user, shift, tau, mom_i, sq_i, lin_i, w_i)
                    else:
                        kb.row_residuals(item_csr[0], item_csr[1], item_csr[2], mu, Veff, Ueff, tau, sq_i, lin_i,
                                         w_i)
                    kappa = grng.gamma(dof / 2 + n_i / 2, 1.0 / (dof / 2 + alpha * sq_i / 2))
                    sse = float(kappa @ sq_i)
                else:
                    sse = float(tau @ sq_u)
                plain_sse = kb.sum_squares(resid[cur], shift, _CHUNKS) if kept_resid else \
                    kb.residual_moments(users, items, net, mu, Ueff, Veff, _CHUNKS)[1]
            alpha = grng.gamma((1.0 + N) / 2, 2.0 / (1.0 + sse))
            if kept_resid:  # the next sample's user side starts from these residuals (at the new μ)
                resid[cur] -= shift
                carried = cur

            kept = t >= burn_in
            if kept:
                n_kept += 1
                kb.accumulate_moments(Ueff, acc["U"], acc["U2"])
                kb.accumulate_moments(Veff, acc["V"], acc["V2"])
                acc["mu"] += mu
                acc["alpha"] += alpha
                acc["inv_alpha"] += 1.0 / alpha
                acc["inv_tau"] += 1.0 / tau
                acc["inv_kappa"] += 1.0 / kappa
                acc["Um"] += hyper["U"][0]
                acc["Ul"] += hyper["U"][1]
                acc["inv_U"] += 1.0 / hyper["U"][1]
                acc["inv_V"] += 1.0 / hyper["V"][1]
                if use_y:
                    acc["Y"] += ublock.W[:n_items]
                if acc["Fu"] is not None:
                    acc["Fu"] += ublock.attribute_weights()
                if acc["Fi"] is not None:
                    acc["Fi"] += iblock.attribute_weights()
                if tb is not None:
                    tb.keep()
                stored = n_kept % stride == 0
                if stored:
                    m = store["n"]
                    store["U"][:, m * k:(m + 1) * k] = Ueff[:, 1:]
                    store["V"][:, m * k:(m + 1) * k] = Veff[:, 1:]
                    store["n"] = m + 1
            vrmse = frmse = float("nan")
            if validation is not None:
                vu, vi, vv = validation[:3]
                kb.predict_pairs(vu, vi, mu, Ueff, Veff, val_pred)
                if kept:
                    vtime = 0.0 if val_time is None else np.asarray(tb.predict(vu, vi, val_time), dtype=np.float64)
                    bias = mu + Ueff[vu, 0] + Veff[vi, 0]
                    val_bias += bias
                    if stored:
                        val_dot += val_pred - bias
                    vrmse = float(np.sqrt(np.mean((vv - val_bias / n_kept - val_dot / max(store["n"], 1)
                                                   - vtime) ** 2)))
                    kb.predict_pairs(vu, vi, acc["mu"] / n_kept, acc["U"] / n_kept, acc["V"] / n_kept, val_pred)
                    frmse = float(np.sqrt(np.mean((vv - val_pred - vtime) ** 2)))
                else:
                    vrmse = frmse = float(np.sqrt(np.mean((vv - val_pred) ** 2)))
            record = {"sample": t, "kept": kept, "train_rmse": float(np.sqrt(plain_sse / N)), "validation_rmse": vrmse,
                      "validation_rmse_factor_mean": frmse, "alpha": float(alpha),
                      "seconds": time.perf_counter() - start}
            for name, value in record.items():
                history[name].append(value)
            if callback is not None:
                callback(t, record)
    except KeyboardInterrupt:
        fit = _finish(acc, store, n_kept, Ueff, Veff, mu, alpha, tau, kappa, hyper, ublock, iblock, k, mode, noise,
                      burn_in, seed, history, tb, cold_u, cold_i)
        fit.interrupted = True
        raise GibbsInterrupted(fit) from None
    return _finish(acc, store, n_kept, Ueff, Veff, mu, alpha, tau, kappa, hyper, ublock, iblock, k, mode, noise,
                   burn_in, seed, history, tb, cold_u, cold_i)


def _finish(acc, store, n_kept, Ueff, Veff, mu, alpha, tau, kappa, hyper, ublock, iblock, k, mode, noise, burn_in,
            seed, history, tb=None, cold_u=None, cold_i=None) -> BayesFit:
    n_items = len(Veff)
    if n_kept == 0:  # interrupted during burn-in: the current sample, no spread
        U, V = Ueff.copy(), Veff.copy()
        Uvar, Vvar = np.zeros_like(U), np.zeros_like(V)
        prior_var_u, prior_var_v = 1.0 / hyper["U"][1], 1.0 / hyper["V"][1]
        mean_mu, mean_alpha, inv_alpha = mu, alpha, 1.0 / alpha
        prior_mean, prior_prec = hyper["U"][0].copy(), hyper["U"][1].copy()
        implicit_user = None if acc["Y"] is None else ublock.W[:n_items].copy()
        user_noise, item_noise = 1.0 / tau, 1.0 / kappa
        fu = None if acc["Fu"] is None else ublock.attribute_weights().copy()
        fi = None if acc["Fi"] is None else iblock.attribute_weights().copy()  # (time biases: the current draw)
    else:
        U = acc["U"] / n_kept
        V = acc["V"] / n_kept
        Uvar = np.maximum(acc["U2"] / n_kept - U * U, 0.0)
        Vvar = np.maximum(acc["V2"] / n_kept - V * V, 0.0)
        prior_var_u, prior_var_v = acc["inv_U"] / n_kept, acc["inv_V"] / n_kept
        mean_mu = acc["mu"] / n_kept
        mean_alpha = acc["alpha"] / n_kept
        inv_alpha = acc["inv_alpha"] / n_kept
        prior_mean, prior_prec = acc["Um"] / n_kept, acc["Ul"] / n_kept
        implicit_user = None if acc["Y"] is None else acc["Y"] / n_kept
        user_noise, item_noise = acc["inv_tau"] / n_kept, acc["inv_kappa"] / n_kept
        fu = None if acc["Fu"] is None else acc["Fu"] / n_kept
        fi = None if acc["Fi"] is None else acc["Fi"] / n_kept
    if cold_u is not None:  # the integrated-out own vector's prior spread (E[1/λ] per dimension)
        Uvar[cold_u] += prior_var_u
    if cold_i is not None:
        Vvar[cold_i] += prior_var_v
    M = store["n"]
    if M == 0:  # nothing stored yet: the current sample's factors
        Uf, Vf, M = Ueff[:, 1:].astype(np.float32), Veff[:, 1:].astype(np.float32), 1
    else:
        scale = np.float32(1 / np.sqrt(M))
        Uf = store["U"][:, :M * k] * scale
        Vf = store["V"][:, :M * k] * scale
    return BayesFit(mu=float(mean_mu), user_bias=np.ascontiguousarray(U[:, 0]), item_bias=np.ascontiguousarray(V[:, 0]),
                    user_factors=Uf, item_factors=Vf, n_stored=M,
                    user_factor_mean=np.ascontiguousarray(U[:, 1:]), item_factor_mean=np.ascontiguousarray(V[:, 1:]),
                    user_var=Uvar, item_var=Vvar, noise_precision=float(mean_alpha),
                    noise_variance=float(inv_alpha), user_prior_mean=prior_mean, user_prior_precision=prior_prec,
                    implicit_user=implicit_user, user_noise=user_noise, item_noise=item_noise, k=k,
                    implicit=mode, noise=noise, n_kept=n_kept, burn_in=burn_in, seed=seed, history=history,
                    user_feature_weights=fu, item_feature_weights=fi, time_biases=tb)


def auto_implicit(train) -> str:
    """``implicit="auto"``: "both" where the training ratings fill at most :data:`IMPLICIT_AUTO_MAX_DENSITY` of
    rated users × rated items, else "none"."""
    n_users = int(np.count_nonzero(np.bincount(train.users, minlength=train.n_users)))
    n_items = int(np.count_nonzero(np.bincount(train.items, minlength=train.n_items)))
    if n_users == 0 or n_items == 0:
        return "none"
    return "both" if len(train) / (n_users * n_items) <= IMPLICIT_AUTO_MAX_DENSITY else "none"


# --- the LatentFactorModel(solver="bayes") glue ------------------------------------------------------------
def with_feature_ids(train, user_features, item_features, report=None):
    """``(user Features, item Features, train)``: the features as :class:`~latentatlas.ratings.features.Features`
    and the training ratings with the ids that have features but no ratings appended to ``user_ids`` /
    ``item_ids`` (cold-start users and items: rows without ratings). A table that shares no id with the
    ratings is refused (a wrong id column, most likely)."""
    from latentatlas.ratings.data import Ratings
    from latentatlas.ratings.features import as_features

    feats = {"user": as_features(user_features, "user"), "item": as_features(item_features, "item")}
    ids = {"user": train.user_ids, "item": train.item_ids}
    for kind, f in feats.items():
        if f is None:
            continue
        if len(f) and f.overlap(ids[kind]) == 0:
            raise LatentAtlasError(f"{kind}_features: none of its {len(f):,} ids is a {kind} id of the training "
                                   f"ratings (e.g. {f.ids[0]!r} vs {ids[kind][0]!r}); is the id column right?")
        extra = f.extra_ids(ids[kind])
        if len(extra):
            known = ids[kind]
            if known.dtype.kind in "iu" and extra.dtype.kind not in "iu":
                try:
                    extra = extra.astype(np.int64)
                except (TypeError, ValueError):
                    raise LatentAtlasError(f"{kind}_features: ids such as {extra[0]!r} are text but the ratings' "
                                           f"{kind} ids are numbers") from None
            elif known.dtype.kind not in "iu":
                extra = extra.astype(str)
            ids[kind] = np.concatenate([known, extra])
            if report is not None:
                report(f"bayes: {len(extra):,} {kind}s known only by their features (cold start)")
    if len(ids["user"]) == train.n_users and len(ids["item"]) == train.n_items:
        return feats["user"], feats["item"], train
    return feats["user"], feats["item"], Ratings(train.users, train.items, train.values, ids["user"], ids["item"],
                                                 dict(train.meta), train.timestamps)


def fit_model(model, train, validation, implicit_extra, user_features=None, item_features=None) -> None:
    """Fit ``model`` (a ``LatentFactorModel(solver="bayes")``) by Gibbs sampling (:func:`gibbs_fit`): the
    posterior average becomes the model's biases and factors, so prediction stays ``μ + b_u + b_i + q_u·p_i``;
    its ``history_`` holds the RMSE per sample. Ctrl-C keeps the samples so far and re-raises.
    ``user_features``/``item_features``: Features over ``train``'s ids (see :func:`with_feature_ids`)."""
    from latentatlas.progress import as_progress
    from latentatlas.ratings.base import map_ids, pairs
    from latentatlas.ratings.model import BLOCK_SWEEP_MAX, History

    report = as_progress(model.progress)
    n_samples = model.n_samples if model.n_samples is not None else DEFAULT_SAMPLES
    burn_in = model.burn_in if model.burn_in is not None else DEFAULT_BURN_IN
    total = n_samples + burn_in
    hist = History(criterion="validation_rmse" if validation is not None else "train_rmse")
    last = [0.0]

    def callback(_, record):
        t = len(hist.steps) + 1
        hist.steps.append(t)
        hist.train_rmse.append(float(record["train_rmse"]))
        if validation is not None:
            hist.validation_rmse.append(float(record["validation_rmse"]))
        hist.seconds.append(record["seconds"] - last[0])
        last[0] = record["seconds"]
        if t % model.log_every == 0 or t == total:
            parts = [f"bayes sample {t}/{total}" + ("" if record["kept"] else " (burn-in)"),
                     f"train rmse {record['train_rmse']:.4f}"]
            if validation is not None:
                parts.append(f"validation rmse {record['validation_rmse']:.4f}"
                             + (" (running mean)" if record["kept"] else ""))
            parts.append(f"{hist.seconds[-1] * 1000:.0f} ms/sample")
            report("  ".join(parts))

    implicit = model.implicit
    if implicit == "auto":
        implicit = auto_implicit(train)
        report(f"bayes: implicit features {'on' if implicit == 'both' else 'off'} (implicit='auto': "
               f"the ratings fill {'at most' if implicit == 'both' else 'more than'} {IMPLICIT_AUTO_MAX_DENSITY:.0%} of users × items)")
    sweep = "block" if len(train) <= BLOCK_SWEEP_MAX else "coordinate"
    if sweep == "coordinate":
        report(f"bayes: {len(train):,} training ratings: the implicit and feature vectors are drawn one coordinate "
               "at a time (sweep='coordinate')")
    extra = None
    if implicit_extra is not None:
        eu, ei = pairs(implicit_extra)
        u, i = map_ids(train.user_ids, eu), map_ids(train.item_ids, ei)
        known = (u >= 0) & (i >= 0)
        extra = (u[known], i[known])
    time_bias = bool(getattr(model, "time_bias", False))
    if time_bias and train.timestamps is None:
        report("bayes: time_bias=True but the training ratings have no timestamps: no time biases")
        time_bias = False
    val = None if validation is None else (validation.users, validation.items, validation.values,
                                           validation.timestamps if time_bias else None)
    sides = {}
    for kind, f, ids in (("user", user_features, train.user_ids), ("item", item_features, train.item_ids)):
        sides[kind] = None if f is None else (f.aligned(ids), np.asarray(f.groups))
        if f is not None:
            report(f"bayes: {kind} features {f.describe()}")
    interrupted = False
    try:
        fit = gibbs_fit(train.users, train.items, train.values, train.n_users, train.n_items, k=model.k_value,
                        n_samples=n_samples, burn_in=burn_in, implicit=implicit, implicit_extra=extra,
                        validation=val, seed=model.seed, n_threads=model.n_threads, callback=callback,
                        user_features=sides["user"], item_features=sides["item"],
                        times=train.timestamps if time_bias else None, time_bias=time_bias, sweep=sweep)
    except GibbsInterrupted as exc:
        fit, interrupted = exc.fit, True
    for kind, f in (("user", user_features), ("item", item_features)):
        if f is not None:
            setattr(fit, f"{kind}_feature_columns", tuple(f.columns))
            setattr(fit, f"{kind}_feature_groups", tuple(f.group_names[g] for g in np.asarray(f.groups)))
    hist.best_step = hist.stopped_at = len(hist.steps)
    hist.interrupted = interrupted
    set_fit(model, fit, train)
    model.history_ = hist
    if interrupted:
        raise KeyboardInterrupt


def set_fit(model, fit: "BayesFit", train=None) -> None:
    """A sampler's result as ``model``'s fitted state (compacted: posterior means, variances and a rank-k
    correction, what model files keep)."""
    from latentatlas.ratings.base import rating_scale

    fit = fit.compact()  # what model files keep: posterior means, variances and a rank-k correction
    model.bayes_ = fit
    model.mu_ = float(fit.mu)
    model.user_bias_, model.item_bias_ = fit.user_bias, fit.item_bias
    model.user_factors_, model.item_factors_ = fit.user_factors, fit.item_factors
    model.reg_ = None
    if train is not None:
        model.user_ids_, model.item_ids_ = train.user_ids, train.item_ids
        model.scale_ = rating_scale(train)
        model.seen_indptr_, model.seen_items_ = compressed(train.users, train.items, None, train.n_users)[:2]


def restore_model(model, scalars: dict, arrays: dict) -> None:
    """The sampler's state read from a model file onto ``model``: the compact form, or, in older files, every
    stored sample."""
    fit = BayesFit.from_file(scalars, arrays, mu=model.mu_, user_bias=model.user_bias_, item_bias=model.item_bias_,
                             user_factors=model.user_factors_, item_factors=model.item_factors_)
    if fit.k != model.k_value or len(model.user_bias_) != len(model.user_ids_) \
            or len(model.item_bias_) != len(model.item_ids_):
        raise ValueError("the sampler's arrays do not match the ids and k")
    model.bayes_ = fit
