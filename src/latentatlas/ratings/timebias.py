"""Time-aware biases (timeSVD++ style) as one Gibbs block of the Bayesian sampler.

The offset of rating ``j`` = (user ``u``, item ``i``, time ``t``) is (Koren 2009, "Collaborative filtering with
temporal dynamics": the item-bin bias and the user drift of timeSVD++)::

    offset(u, i, t) = b_{i,bin(t)} + a_u · dev_u(t)

* ``bin(t)``: ``n_bins`` equal-frequency bins of the training times (each bin holds about the same number of
  training ratings; tied times never straddle an edge, so there may be fewer bins than asked). Times before the
  first edge fall in the first bin, times past the last edge in the last one.
* ``dev_u(t) = sign(t - t̄_u) · (|t - t̄_u| / day)^β``, divided by one constant so that it has unit standard
  deviation over the training ratings. ``t̄_u`` is the user's mean training time; users without training times
  (and ratings without a time, NaN) get ``dev = 0``. β = :data:`DEFAULT_EXPONENT`, ``day`` = 86 400 s. With a
  small β the drift is nearly a step at ``t̄_u``: "the user's later ratings against the earlier ones", which is
  what MovieLens-100K rewards (most of its users rate in one session, and rate lower later in it on average).
* Priors: ``b_{i,b} ~ N(0, 1/λ_bin)``, ``a_u ~ N(0, 1/λ_drift)``, and ``λ_bin, λ_drift ~ Gamma(1, 1)`` (shape,
  rate), sampled like the other precisions of the Bayesian model, so there is nothing to tune.

One Gibbs step (:meth:`TimeBiases.sample`) takes ``residual_j = y_j - (everything but the time terms)`` and the
per-rating noise precision ``p_j`` and draws exactly from the conditionals:

* every ``b_{i,b}`` at once (they are independent given the drifts)::

      b_{i,b} | … ~ N( Σ p_j (r_j - a_u dev_j) / (λ_bin + Σ p_j),  1 / (λ_bin + Σ p_j) )   (j in cell (i, b))

* then every ``a_u`` given the new ``b``::

      a_u | … ~ N( Σ p_j dev_j (r_j - b_{i,bin}) / (λ_drift + Σ p_j dev_j²),  1 / (λ_drift + Σ p_j dev_j²) )

* then ``λ_bin ~ Gamma(1 + C/2, 1 + Σ b²/2)`` and ``λ_drift ~ Gamma(1 + U/2, 1 + Σ a²/2)``.

Cells without training ratings and users whose ratings all have ``dev = 0`` (one rating, or all at one time) have
no likelihood term: their coefficients are integrated out (their posterior is the prior, mean 0), so they are
held at 0 and ``C``/``U`` above count only the cells and users with data. Drawing them from the prior instead
would leave the same posterior but tie λ to thousands of pure-prior draws, which mixes slowly.

Each step is three sequential passes over the ratings (:mod:`latentatlas.ratings.kernels.timebias`): the
per-cell sums, the per-user sums and the offsets (benchmarks/RESULTS-timebias.md for the cost at 10 M ratings).

``n_bins`` and β were chosen by validation RMSE on MovieLens-100K split per user by time (each user's latest
ratings held out, as Netflix's probe set): there the terms help. On a global cut in time (validation ratings
after every training rating, many from users' later sessions) the drift hurts, likely because what a_u learns is
mostly the trend within a session, which does not carry over to the next one (benchmarks/RESULTS-timebias.md).
"""

from __future__ import annotations

import math

import numpy as np

from latentatlas import checks
from latentatlas.errors import LatentAtlasError
from latentatlas.ratings.kernels import timebias as kt

DAY = 86400.0
#: default number of equal-frequency time bins per item (benchmarks/RESULTS-timebias.md)
DEFAULT_BINS = 30
#: default exponent β of the drift deviation |t - t̄_u|^β (Koren 2009 used 0.4 on Netflix; on MovieLens-100K's
#: per-user time split 0.4 lost 0.0009 validation RMSE against no time terms and 0.05 gained 0.0078:
#: benchmarks/RESULTS-timebias.md)
DEFAULT_EXPONENT = 0.05
#: the hyper-prior of λ_bin and λ_drift: Gamma(shape, rate)
PRIOR_SHAPE = 1.0
PRIOR_RATE = 1.0

#: the keys of :meth:`TimeBiases.to_arrays`
ARRAY_KEYS = ("edges", "user_time", "dev_scale", "exponent", "day", "item_bin_bias", "user_drift", "precisions")


class TimeBiases:
    """offset(u, i, t) = b_{i,bin(t)} + a_u * dev_u(t)   (Koren 2009, timeSVD++: item-bin bias, user drift)

    bin(t): n_bins equal-frequency bins of the training times (times past the last edge fall in the last bin);
    dev_u(t) = sign(t - tbar_u) * |t - tbar_u / day|^exponent, scaled to unit sd over the training ratings
    (exponent: 0.4 in Koren 2009; default DEFAULT_EXPONENT = 0.05, chosen on MovieLens-100K);
    tbar_u = the user's mean training time (users without training times: dev = 0).
    Priors: b_{i,b} ~ N(0, 1/lam_bin), a_u ~ N(0, 1/lam_drift), lam_* ~ Gamma(1, 1) hyper-priors sampled.

    Build one with :meth:`setup` (training ratings) or :meth:`from_arrays` (a saved posterior mean, which can
    predict but not sample). State: ``b`` (n_items × n_bins) and ``a`` (n_users) are the current draw,
    ``lam_bin``/``lam_drift`` the current precisions; :attr:`item_bin_bias`/:attr:`user_drift` are the
    posterior means over the kept draws (the current draw before any :meth:`keep`).
    """

    def __init__(self, edges, user_time, dev_scale, exponent, day, n_items, *, lam_bin=1.0, lam_drift=1.0):
        self.edges = np.asarray(edges, dtype=np.float64)
        self.user_time = np.asarray(user_time, dtype=np.float64)
        self.dev_scale = float(dev_scale)
        self.exponent = float(exponent)
        self.day = float(day)
        self.n_users = len(self.user_time)
        self.n_items = int(n_items)
        self.n_bins = len(self.edges) + 1
        # the current b, flat, with one spare cell at the end (ratings without a time) held at 0
        self._bflat = np.zeros(self.n_items * self.n_bins + 1)
        self.a = np.zeros(self.n_users)
        self.lam_bin = float(lam_bin)
        self.lam_drift = float(lam_drift)
        self.fixed_bin = False
        self.fixed_drift = False
        self.n_kept = 0
        self._b_sum = np.zeros((self.n_items, self.n_bins))
        self._a_sum = np.zeros_like(self.a)
        self._lam_sum = np.zeros(2)
        self._mean = None  # (b, a, lam) loaded by from_arrays
        self._train = None  # the training ratings' cells and deviations (setup only)

    # --- construction -------------------------------------------------------------------------------------------
    @classmethod
    def setup(cls, users, items, times, n_users, n_items, *, n_bins=DEFAULT_BINS, exponent=DEFAULT_EXPONENT,
              day=DAY, lam_bin=None, lam_drift=None) -> "TimeBiases":
        """The block for these training ratings: bin edges, user mean times and deviations, state at zero.

        ``users``/``items``: indices in ``[0, n_users)``/``[0, n_items)``; ``times``: seconds since the epoch
        (float; NaN = no time: no offset for that rating). ``lam_bin``/``lam_drift``: fix that prior precision
        instead of sampling it (tests, ablations); None (default) samples it.
        """
        n_users = checks.integer("n_users", n_users)
        n_items = checks.integer("n_items", n_items)
        n_bins = checks.integer("n_bins", n_bins, 1)
        exponent = checks.number("exponent", exponent, strict=True)
        day = checks.number("day", day, strict=True)
        lam_bin = checks.number("lam_bin", lam_bin, strict=True, none_ok=True)
        lam_drift = checks.number("lam_drift", lam_drift, strict=True, none_ok=True)
        times = _times(times, "times")
        users = _indices(users, n_users, "users", len(times))
        items = _indices(items, n_items, "items", len(times))

        timed = np.isfinite(times)
        t = times[timed]
        edges = equal_frequency_edges(t, n_bins)
        count = np.bincount(users[timed], minlength=n_users)
        with np.errstate(invalid="ignore", divide="ignore"):
            user_time = np.bincount(users[timed], weights=t, minlength=n_users) / count
        user_time[count == 0] = np.nan
        raw = _raw_deviation(times, user_time[users], exponent, day)
        sd = float(raw[timed].std()) if timed.any() else 0.0
        dev_scale = sd if sd > 0 and math.isfinite(sd) else 1.0

        self = cls(edges, user_time, dev_scale, exponent, day, n_items,
                   lam_bin=1.0 if lam_bin is None else lam_bin, lam_drift=1.0 if lam_drift is None else lam_drift)
        self.fixed_bin, self.fixed_drift = lam_bin is not None, lam_drift is not None
        n_cells = n_items * self.n_bins
        index = np.int32 if max(n_cells + 1, n_users) < 2**31 else np.int64  # halves the memory when it can
        cell = (items * self.n_bins + np.searchsorted(edges, times, side="right")).astype(index)
        cell[~timed] = n_cells  # one spare cell, held at 0, for ratings without a time
        dev = raw / dev_scale
        cell_count = np.bincount(cell, minlength=n_cells + 1)
        user_dev2 = np.bincount(users, weights=dev * dev, minlength=n_users)
        self._train = {
            "users": users.astype(index), "cell": cell, "dev": dev,
            "active_cells": np.flatnonzero(cell_count[:n_cells] > 0), "active_users": np.flatnonzero(user_dev2 > 0),
        }
        return self

    # --- the Gibbs block -----------------------------------------------------------------------------------------
    def offsets(self) -> np.ndarray:
        """The current offset of every training rating (float64, in the order given to :meth:`setup`)."""
        tr = self._training("offsets")
        return kt.offsets(tr["cell"], tr["users"], tr["dev"], self._bflat, self.a)

    def bin_conditional(self, residual, precision) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (n_items × n_bins each) of every ``b_{i,b}`` given ``residual`` (y minus all but the
        time terms), ``precision`` (scalar or per rating), the current drifts and ``lam_bin``. Cells without
        training ratings get the prior, (0, 1/lam_bin)."""
        tr = self._training("bin_conditional")
        r, p = self._check(residual, precision)
        sp, spr = kt.cell_sums(tr["cell"], tr["users"], tr["dev"], r, p, self.a, len(self._bflat))
        prec = self.lam_bin + sp[:-1]
        shape = (self.n_items, self.n_bins)
        return (spr[:-1] / prec).reshape(shape), (1.0 / prec).reshape(shape)

    def drift_conditional(self, residual, precision) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (n_users each) of every ``a_u`` given ``residual``, ``precision``, the current
        item-bin biases and ``lam_drift``. Users without deviations get the prior, (0, 1/lam_drift)."""
        tr = self._training("drift_conditional")
        r, p = self._check(residual, precision)
        sp, spr = kt.user_sums(tr["cell"], tr["users"], tr["dev"], r, p, self._bflat, self.n_users)
        prec = self.lam_drift + sp
        return spr / prec, 1.0 / prec

    def precision_conditionals(self) -> dict[str, tuple[float, float]]:
        """The Gamma (shape, rate) conditionals of ``lam_bin`` and ``lam_drift`` given the current ``b`` and
        ``a``, over the cells and users with data."""
        tr = self._training("precision_conditionals")
        b = self._bflat[tr["active_cells"]]
        a = self.a[tr["active_users"]]
        return {"lam_bin": (PRIOR_SHAPE + len(b) / 2, PRIOR_RATE + float(b @ b) / 2),
                "lam_drift": (PRIOR_SHAPE + len(a) / 2, PRIOR_RATE + float(a @ a) / 2)}

    def sample(self, residual, precision, rng) -> None:
        """One exact Gibbs step: all ``b_{i,b}``, then all ``a_u`` given the new ``b``, then ``lam_bin`` and
        ``lam_drift`` (unless fixed). ``residual_j`` = y_j minus everything but the time terms; ``precision``:
        the noise precision, a scalar or one per rating; ``rng``: a ``np.random.Generator``."""
        if not isinstance(rng, np.random.Generator):
            raise LatentAtlasError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        tr = self._training("sample")
        r, p = self._check(residual, precision)
        mean, var = self.bin_conditional(r, p)
        cells = tr["active_cells"]
        self._bflat[:] = 0.0
        self._bflat[cells] = mean.ravel()[cells] + np.sqrt(var.ravel()[cells]) * rng.standard_normal(len(cells))
        mean, var = self.drift_conditional(r, p)
        users = tr["active_users"]
        self.a = np.zeros(self.n_users)
        self.a[users] = mean[users] + np.sqrt(var[users]) * rng.standard_normal(len(users))
        conditionals = self.precision_conditionals()
        if not self.fixed_bin:
            shape, rate = conditionals["lam_bin"]
            self.lam_bin = float(rng.gamma(shape, 1.0 / rate))
        if not self.fixed_drift:
            shape, rate = conditionals["lam_drift"]
            self.lam_drift = float(rng.gamma(shape, 1.0 / rate))

    def keep(self) -> None:
        """Add the current state to the running posterior mean (call once per kept sample, after burn-in)."""
        self._b_sum += self.b
        self._a_sum += self.a
        self._lam_sum += (self.lam_bin, self.lam_drift)
        self.n_kept += 1
        self._mean = None

    @property
    def b(self) -> np.ndarray:
        """The current item-bin biases (n_items × n_bins; a view: assigning to it sets the state)."""
        return self._bflat[:-1].reshape(self.n_items, self.n_bins)

    @b.setter
    def b(self, value) -> None:
        self._bflat[:-1] = np.asarray(value, dtype=np.float64).reshape(-1)

    # --- the posterior mean --------------------------------------------------------------------------------------
    @property
    def item_bin_bias(self) -> np.ndarray:
        """Posterior mean of ``b`` (n_items × n_bins): over the kept draws, else the current draw."""
        return self._posterior()[0]

    @property
    def user_drift(self) -> np.ndarray:
        """Posterior mean of ``a`` (n_users): over the kept draws, else the current draw."""
        return self._posterior()[1]

    def bins(self, times) -> np.ndarray:
        """The bin of each time (int64): before the first edge the first bin, past the last edge the last; NaN
        times get bin 0 (they get no offset anyway)."""
        times = _times(times, "times")
        return np.searchsorted(self.edges, np.where(np.isnan(times), -np.inf, times), side="right")

    def deviation(self, users, times) -> np.ndarray:
        """``dev_u(t)`` for each pair (scaled as in training); 0 for users out of range, users without training
        times and NaN times."""
        users = _ids(users, "users")
        times = _times(times, "times")
        if users.shape != times.shape:
            raise LatentAtlasError(f"users and times must have the same length, got {users.shape} and {times.shape}")
        known = (users >= 0) & (users < self.n_users)
        tbar = np.full(len(times), np.nan)
        tbar[known] = self.user_time[users[known]]
        raw = _raw_deviation(times, tbar, self.exponent, self.day)
        return raw / self.dev_scale

    def predict(self, users, items, times) -> np.ndarray:
        """Posterior-mean offsets for any (user, item, time) triples: ``times=None`` gives zeros; items beyond
        the fitted ones get no bin bias, users beyond them (or without training times) no drift."""
        users = _ids(users, "users")
        items = _ids(items, "items")
        if users.shape != items.shape:
            raise LatentAtlasError(f"users and items must have the same length, got {len(users)} and {len(items)}")
        if times is None:
            return np.zeros(len(users))
        times = _times(times, "times")
        if times.shape != users.shape:
            raise LatentAtlasError(f"times must have one entry per pair, got {len(times)} for {len(users)} pairs")
        b, a, _ = self._posterior()
        out = np.zeros(len(users))
        ok = (items >= 0) & (items < self.n_items) & np.isfinite(times)
        out[ok] = b[items[ok], self.bins(times[ok])]
        dev = self.deviation(users, times)
        known = dev != 0
        out[known] += a[users[known]] * dev[known]
        return out

    # --- files ---------------------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The posterior mean and the time scale as plain numpy arrays (keys :data:`ARRAY_KEYS`; ``np.savez``
        without pickle). :meth:`from_arrays` rebuilds a block that predicts the same."""
        b, a, lam = self._posterior()
        return {"edges": self.edges.copy(), "user_time": self.user_time.copy(),
                "dev_scale": np.float64(self.dev_scale), "exponent": np.float64(self.exponent),
                "day": np.float64(self.day), "item_bin_bias": np.array(b, dtype=np.float64),
                "user_drift": np.array(a, dtype=np.float64), "precisions": np.array(lam, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "TimeBiases":
        """A block from :meth:`to_arrays`' dictionary (or an ``np.load`` of it): it predicts, but cannot
        sample (the training ratings are not stored). Inconsistent arrays raise :class:`LatentAtlasError`."""
        missing = [k for k in ARRAY_KEYS if k not in arrays]
        if missing:
            raise LatentAtlasError(f"time-bias arrays: missing {', '.join(missing)}")
        arr = {}
        for k in ARRAY_KEYS:
            v = np.asarray(arrays[k])
            if v.dtype.kind not in "fiu":
                raise LatentAtlasError(f"time-bias arrays: {k} must be numbers, got dtype {v.dtype}")
            arr[k] = v.astype(np.float64)
        edges, user_time, b, a, lam = (arr[k] for k in ("edges", "user_time", "item_bin_bias", "user_drift",
                                                        "precisions"))
        scalars = {}
        for k in ("dev_scale", "exponent", "day"):
            v = arr[k]
            if v.size != 1 or not np.isfinite(v).all() or float(v.ravel()[0]) <= 0:
                raise LatentAtlasError(f"time-bias arrays: {k} must be one positive finite number, got {v!r}")
            scalars[k] = float(v.ravel()[0])
        if edges.ndim != 1 or not np.isfinite(edges).all() or (np.diff(edges) <= 0).any():
            raise LatentAtlasError("time-bias arrays: edges must be a strictly increasing 1-D array of finite times")
        if user_time.ndim != 1 or np.isinf(user_time).any():
            raise LatentAtlasError("time-bias arrays: user_time must be a 1-D array of times (NaN for none)")
        if b.ndim != 2 or b.shape[1] != len(edges) + 1:
            raise LatentAtlasError(f"time-bias arrays: item_bin_bias must have shape (n_items, {len(edges) + 1}) "
                                   f"for {len(edges)} edges, got {b.shape}")
        if a.shape != user_time.shape:
            raise LatentAtlasError(f"time-bias arrays: user_drift has shape {a.shape} but user_time has "
                                   f"{user_time.shape}")
        if not (np.isfinite(b).all() and np.isfinite(a).all()):
            raise LatentAtlasError("time-bias arrays: item_bin_bias and user_drift must be finite")
        if lam.shape != (2,) or not (np.isfinite(lam).all() and (lam > 0).all()):
            raise LatentAtlasError(f"time-bias arrays: precisions must be two positive numbers, got {lam!r}")
        self = cls(edges, user_time, scalars["dev_scale"], scalars["exponent"], scalars["day"], b.shape[0],
                   lam_bin=lam[0], lam_drift=lam[1])
        self.b, self.a = b.copy(), a.copy()
        self._mean = (self.b, self.a, lam.copy())
        return self

    def __repr__(self) -> str:
        kind = "fitted" if self._train is None else f"{self.n_kept} kept"
        return (f"TimeBiases(n_users={self.n_users}, n_items={self.n_items}, n_bins={self.n_bins}, "
                f"exponent={self.exponent:g}, {kind})")

    # --- helpers -------------------------------------------------------------------------------------------------
    def _posterior(self):
        if self._mean is not None:
            return self._mean
        if self.n_kept:
            return (self._b_sum / self.n_kept, self._a_sum / self.n_kept, self._lam_sum / self.n_kept)
        return self.b, self.a, np.array([self.lam_bin, self.lam_drift])


    def _training(self, what: str) -> dict:
        if self._train is None:
            raise LatentAtlasError(f"{what}() needs the training ratings: build the block with TimeBiases.setup "
                                   "(one loaded with from_arrays only predicts)")
        return self._train

    def _check(self, residual, precision):
        n = len(self._train["cell"])
        r = np.ascontiguousarray(residual, dtype=np.float64)
        if r.shape != (n,):
            raise LatentAtlasError(f"residual must have one entry per training rating ({n}), got shape {r.shape}")
        p = np.ascontiguousarray(precision, dtype=np.float64)
        if p.size == 1 and p.ndim <= 1:
            p = p.reshape(1)
        elif p.shape != (n,):
            raise LatentAtlasError(f"precision must be a number or one per training rating ({n}), got shape "
                                   f"{p.shape}")
        return r, p


def equal_frequency_edges(times: np.ndarray, n_bins: int) -> np.ndarray:
    """The inner edges (at most ``n_bins - 1``, strictly increasing) that cut sorted ``times`` into ``n_bins``
    runs of equal size; a time equal to an edge belongs to the bin above it, so tied times share a bin and
    edges that would leave a bin empty are dropped."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    if len(t) == 0 or n_bins <= 1:
        return np.zeros(0)
    edges = np.unique(t[(np.arange(1, n_bins) * len(t)) // n_bins])
    return edges[edges > t[0]]


def _raw_deviation(times, tbar, exponent, day):
    with np.errstate(invalid="ignore"):
        d = times - tbar
        raw = np.sign(d) * (np.abs(d) / day) ** exponent
    return np.where(np.isfinite(raw), raw, 0.0)


def _times(times, name) -> np.ndarray:
    try:
        t = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{name} must be numbers (seconds since the epoch)") from None
    if t.ndim != 1:
        raise LatentAtlasError(f"{name} must be a 1-D array, got shape {t.shape}")
    if np.isinf(t).any():
        raise LatentAtlasError(f"{name} must be finite (NaN for no time), got an infinite value")
    return t


def _ids(values, name) -> np.ndarray:
    v = np.asarray(values)
    if v.ndim != 1:
        raise LatentAtlasError(f"{name} must be a 1-D array of indices, got shape {v.shape}")
    if v.dtype.kind not in "iu":
        if v.size == 0:
            return v.astype(np.intp)
        raise LatentAtlasError(f"{name} must be integer indices, got dtype {v.dtype}")
    return v.astype(np.intp, copy=False)


def _indices(values, n, name, length) -> np.ndarray:
    v = _ids(values, name)
    if len(v) != length:
        raise LatentAtlasError(f"{name} must have one entry per time ({length}), got {len(v)}")
    if len(v) and (v.min() < 0 or v.max() >= n):
        bad = v[(v < 0) | (v >= n)][0]
        raise LatentAtlasError(f"{name} must be indices in [0, n_{name}={n}), got {bad}")
    return v
